// ssd_chunk_scan entry point: validate, describe as plain params, route by device.

#include "mcv/kernels/ssd.h"

#include <cmath>
#include <string>
#include <utility>

#include "common/op_checks.h"
#include "ssd/ssd_params.h"

namespace mcv::kernels {

namespace {
constexpr int kMaxChunk = 1024;
}  // namespace

void ssd_chunk_scan(Context& ctx, const SsdArgs& a) {
  using op_checks::Checker;
  const Checker c("ssd_chunk_scan", ctx);
  c.present("x", a.x);
  c.dims("x", a.x, 4, "(batch, L, H, P)");
  c.io_dtype("x", a.x);
  c.unit_inner_stride("x", a.x);
  const DType io = a.x.dtype();
  const std::int64_t batch = a.x.size(0), len = a.x.size(1), heads = a.x.size(2), hdim = a.x.size(3);
  c.present("dt", a.dt);
  c.shape("dt", a.dt, {batch, len, heads});
  c.dtype("dt", a.dt, io);
  c.present("A", a.A);
  c.shape("A", a.A, {heads});
  c.dtype("A", a.A, DType::f32);
  c.present("B", a.B);
  c.dims("B", a.B, 4, "(batch, L, G, N)");
  const std::int64_t groups = a.B.size(2), n = a.B.size(3);
  c.shape("B", a.B, {batch, len, groups, n});
  if (heads % groups != 0)
    c.fail("B", std::to_string(groups) + " groups do not divide " + std::to_string(heads) + " heads");
  c.dtype("B", a.B, io);
  c.unit_inner_stride("B", a.B);
  c.present("C", a.C);
  c.shape("C", a.C, a.B.shape());
  c.dtype("C", a.C, io);
  c.unit_inner_stride("C", a.C);
  if (a.D.defined()) {
    c.present("D", a.D);
    if (a.D.shape() != Shape{heads} && a.D.shape() != Shape{heads, hdim})
      c.fail("D", "expected (H) or (H, P) = " + shape_str({heads, hdim}) + " but got " + shape_str(a.D.shape()));
    c.dtype("D", a.D, DType::f32);
  }
  if (a.z.defined()) {
    c.present("z", a.z);
    c.shape("z", a.z, a.x.shape());
    c.dtype("z", a.z, io);
    c.unit_inner_stride("z", a.z);
  }
  if (a.dt_bias.defined()) {
    c.present("dt_bias", a.dt_bias);
    c.shape("dt_bias", a.dt_bias, {heads});
    c.dtype("dt_bias", a.dt_bias, DType::f32);
  }
  const DtOptions& o = a.dt_options;
  if (std::isnan(o.dt_min) || std::isnan(o.dt_max) || o.dt_min > o.dt_max)
    c.fail("dt limits", "need dt_min <= dt_max (got " + std::to_string(o.dt_min) + ", " +
                            std::to_string(o.dt_max) + ")");
  const Shape state_shape{batch, heads, hdim, n};
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"initial_states", &a.initial_states},
                         {"final_states", &a.final_states}}) {
    if (!t->defined()) continue;
    c.present(name, *t);
    c.shape(name, *t, state_shape);
    c.dtype(name, *t, DType::f32);
    c.contiguous(name, *t);
  }
  if (a.chunk_size < 1 || a.chunk_size > kMaxChunk)
    c.fail("chunk_size", std::to_string(a.chunk_size) + " is outside [1, " + std::to_string(kMaxChunk) + "]");
  c.present("out", a.out);
  c.shape("out", a.out, a.x.shape());
  c.dtype("out", a.out, io);
  c.unit_inner_stride("out", a.out);
  const std::pair<const char*, const Tensor*> inputs[] = {
      {"x", &a.x}, {"dt", &a.dt}, {"A", &a.A}, {"B", &a.B}, {"C", &a.C},
      {"D", &a.D}, {"z", &a.z},   {"dt_bias", &a.dt_bias}, {"initial_states", &a.initial_states}};
  // final_states may be initial_states itself (an in-place cache update): each element is read
  // before it is written, by the same thread.
  const bool state_in_place = a.final_states.defined() && a.initial_states.defined() &&
                              a.final_states.raw_data() == a.initial_states.raw_data();
  for (auto [name, t] : inputs) {
    c.no_overlap("out", a.out, name, *t);
    if (t != &a.initial_states || !state_in_place) c.no_overlap("final_states", a.final_states, name, *t);
  }
  c.no_overlap("final_states", a.final_states, "out", a.out);

  ssd_detail::SsdParams p;
  p.io = io;
  p.batch = batch;
  p.len = len;
  p.heads = heads;
  p.headdim = hdim;
  p.dstate = n;
  p.ngroups = groups;
  p.chunk = a.chunk_size;
  p.x = a.x.raw_data();
  p.x_b = a.x.stride(0);
  p.x_t = a.x.stride(1);
  p.x_h = a.x.stride(2);
  p.dt = a.dt.raw_data();
  p.dt_b = a.dt.stride(0);
  p.dt_t = a.dt.stride(1);
  p.dt_h = a.dt.stride(2);
  p.A = a.A.data<float>();
  p.A_h = a.A.stride(0);
  p.B = a.B.raw_data();
  p.B_b = a.B.stride(0);
  p.B_t = a.B.stride(1);
  p.B_g = a.B.stride(2);
  p.C = a.C.raw_data();
  p.C_b = a.C.stride(0);
  p.C_t = a.C.stride(1);
  p.C_g = a.C.stride(2);
  if (a.D.defined()) {
    p.D = a.D.data<float>();
    p.D_h = a.D.stride(0);
    p.D_p = a.D.dim() == 2 ? a.D.stride(1) : 0;
  }
  if (a.z.defined()) {
    p.z = a.z.raw_data();
    p.z_b = a.z.stride(0);
    p.z_t = a.z.stride(1);
    p.z_h = a.z.stride(2);
  }
  if (a.dt_bias.defined()) {
    p.dt_bias = a.dt_bias.data<float>();
    p.db_h = a.dt_bias.stride(0);
  }
  p.softplus = o.softplus;
  p.clamp = o.dt_min > 0.0f || o.dt_max < INFINITY;  // mamba_ssm clamps only for a limit != (0, inf)
  p.dt_min = o.dt_min;
  p.dt_max = o.dt_max;
  if (a.initial_states.defined()) p.initial_states = a.initial_states.data<float>();
  if (a.final_states.defined()) p.final_states = a.final_states.data<float>();
  p.out = a.out.raw_data();
  p.o_b = a.out.stride(0);
  p.o_t = a.out.stride(1);
  p.o_h = a.out.stride(2);
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    ssd_detail::ssd_cuda(ctx, p);
#else
    c.no_cuda();
#endif
  } else {
    ssd_detail::ssd_cpu(ctx, p);
  }
}

}  // namespace mcv::kernels
