// selective_state_update / mamba2_state_update entry points: validate, map both onto one
// (batch, heads, headdim, dstate) description, route by device.

#include "mcv/kernels/ssm_step.h"

#include <cmath>
#include <string>

#include "common/op_checks.h"
#include "ssm_step/ssm_step_params.h"

namespace mcv::kernels {

namespace {

using op_checks::Checker;
using ssm_step_detail::StepParams;

void check_dt_options(const Checker& c, const DtOptions& o) {
  if (std::isnan(o.dt_min) || std::isnan(o.dt_max) || o.dt_min > o.dt_max)
    c.fail("dt limits", "need dt_min <= dt_max (got " + std::to_string(o.dt_min) + ", " +
                            std::to_string(o.dt_max) + ")");
}

void set_dt_options(StepParams& p, const DtOptions& o) {
  p.softplus = o.softplus;
  // mamba_ssm clamps only when the limit differs from (0, inf).
  p.clamp = o.dt_min > 0.0f || o.dt_max < INFINITY;
  p.dt_min = o.dt_min;
  p.dt_max = o.dt_max;
}

// out may be x or z itself (each row reads its own element before writing it) but must not
// overlap them otherwise, nor any other tensor.
void check_out_aliasing(const Checker& c, const Tensor& out, const Tensor& x, const Tensor& z) {
  auto same_view = [&](const Tensor& t) {
    return t.defined() && t.raw_data() == out.raw_data() && t.strides() == out.strides();
  };
  if (!same_view(x)) c.no_overlap("out", out, "x", x);
  if (!same_view(z)) c.no_overlap("out", out, "z", z);
}

void route(Context& ctx, const Checker& c, const StepParams& p) {
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    ssm_step_detail::state_update_cuda(ctx, p);
#else
    c.no_cuda();
#endif
  } else {
    (void)c;
    ssm_step_detail::state_update_cpu(ctx, p);
  }
}

}  // namespace

void selective_state_update(Context& ctx, const SelectiveStateUpdateArgs& a) {
  const Checker c("selective_state_update", ctx);
  c.present("state", a.state);
  c.dims("state", a.state, 3, "(batch, D, N)");
  c.dtype("state", a.state, DType::f32);
  const std::int64_t batch = a.state.size(0), dim = a.state.size(1), n = a.state.size(2);
  c.present("x", a.x);
  c.io_dtype("x", a.x);
  const DType io = a.x.dtype();
  c.shape("x", a.x, {batch, dim});
  c.present("dt", a.dt);
  c.shape("dt", a.dt, {batch, dim});
  c.dtype("dt", a.dt, io);
  c.present("A", a.A);
  c.shape("A", a.A, {dim, n});
  c.dtype("A", a.A, DType::f32);
  c.present("B", a.B);
  if (a.B.dim() != 2 && a.B.dim() != 3)
    c.fail("B", "expected (batch, N) or (batch, G, N) but got shape " + shape_str(a.B.shape()));
  const std::int64_t groups = a.B.dim() == 3 ? a.B.size(1) : 1;
  c.shape("B", a.B, a.B.dim() == 3 ? Shape{batch, groups, n} : Shape{batch, n});
  if (dim % groups != 0)
    c.fail("B", std::to_string(groups) + " groups do not divide " + std::to_string(dim) + " channels");
  c.dtype("B", a.B, io);
  c.present("C", a.C);
  c.shape("C", a.C, a.B.shape());
  c.dtype("C", a.C, io);
  if (a.D.defined()) {
    c.present("D", a.D);
    c.shape("D", a.D, {dim});
    c.dtype("D", a.D, DType::f32);
  }
  if (a.z.defined()) {
    c.present("z", a.z);
    c.shape("z", a.z, {batch, dim});
    c.dtype("z", a.z, io);
  }
  if (a.dt_bias.defined()) {
    c.present("dt_bias", a.dt_bias);
    c.shape("dt_bias", a.dt_bias, {dim});
    c.dtype("dt_bias", a.dt_bias, DType::f32);
  }
  check_dt_options(c, a.dt_options);
  c.present("out", a.out);
  c.shape("out", a.out, {batch, dim});
  c.dtype("out", a.out, io);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"x", &a.x}, {"dt", &a.dt}, {"A", &a.A},
                         {"B", &a.B}, {"C", &a.C}, {"D", &a.D}, {"z", &a.z}, {"dt_bias", &a.dt_bias},
                         {"out", &a.out}})
    c.no_overlap("state", a.state, name, *t);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"dt", &a.dt}, {"A", &a.A}, {"B", &a.B},
                         {"C", &a.C}, {"D", &a.D}, {"dt_bias", &a.dt_bias}})
    c.no_overlap("out", a.out, name, *t);
  check_out_aliasing(c, a.out, a.x, a.z);

  StepParams p;
  p.io = io;
  p.batch = batch;
  p.heads = dim;
  p.headdim = 1;
  p.dstate = n;
  p.ngroups = groups;
  p.state = a.state.data<float>();
  p.st_b = a.state.stride(0);
  p.st_h = a.state.stride(1);
  p.st_n = a.state.stride(2);
  p.x = a.x.raw_data();
  p.x_b = a.x.stride(0);
  p.x_h = a.x.stride(1);
  p.dt = a.dt.raw_data();
  p.dt_b = a.dt.stride(0);
  p.dt_h = a.dt.stride(1);
  p.A = a.A.data<float>();
  p.A_h = a.A.stride(0);
  p.A_n = a.A.stride(1);
  p.B = a.B.raw_data();
  p.B_b = a.B.stride(0);
  p.B_g = a.B.dim() == 3 ? a.B.stride(1) : 0;
  p.B_n = a.B.stride(-1);
  p.C = a.C.raw_data();
  p.C_b = a.C.stride(0);
  p.C_g = a.C.dim() == 3 ? a.C.stride(1) : 0;
  p.C_n = a.C.stride(-1);
  if (a.D.defined()) {
    p.D = a.D.data<float>();
    p.D_h = a.D.stride(0);
  }
  if (a.z.defined()) {
    p.z = a.z.raw_data();
    p.z_b = a.z.stride(0);
    p.z_h = a.z.stride(1);
  }
  if (a.dt_bias.defined()) {
    p.dt_bias = a.dt_bias.data<float>();
    p.db_h = a.dt_bias.stride(0);
  }
  set_dt_options(p, a.dt_options);
  p.out = a.out.raw_data();
  p.o_b = a.out.stride(0);
  p.o_h = a.out.stride(1);
  route(ctx, c, p);
}

void mamba2_state_update(Context& ctx, const Mamba2StateUpdateArgs& a) {
  const Checker c("mamba2_state_update", ctx);
  c.present("state", a.state);
  c.dims("state", a.state, 4, "(batch, H, P, N)");
  c.dtype("state", a.state, DType::f32);
  const std::int64_t batch = a.state.size(0), heads = a.state.size(1), hdim = a.state.size(2),
                     n = a.state.size(3);
  c.present("x", a.x);
  c.io_dtype("x", a.x);
  const DType io = a.x.dtype();
  c.shape("x", a.x, {batch, heads, hdim});
  c.present("dt", a.dt);
  c.shape("dt", a.dt, {batch, heads});
  c.dtype("dt", a.dt, io);
  c.present("A", a.A);
  c.shape("A", a.A, {heads});
  c.dtype("A", a.A, DType::f32);
  c.present("B", a.B);
  c.dims("B", a.B, 3, "(batch, G, N)");
  const std::int64_t groups = a.B.size(1);
  c.shape("B", a.B, {batch, groups, n});
  if (heads % groups != 0)
    c.fail("B", std::to_string(groups) + " groups do not divide " + std::to_string(heads) + " heads");
  c.dtype("B", a.B, io);
  c.present("C", a.C);
  c.shape("C", a.C, a.B.shape());
  c.dtype("C", a.C, io);
  if (a.D.defined()) {
    c.present("D", a.D);
    if (a.D.shape() != Shape{heads} && a.D.shape() != Shape{heads, hdim})
      c.fail("D", "expected (H) or (H, P) = " + shape_str({heads, hdim}) + " but got " + shape_str(a.D.shape()));
    c.dtype("D", a.D, DType::f32);
  }
  if (a.z.defined()) {
    c.present("z", a.z);
    c.shape("z", a.z, {batch, heads, hdim});
    c.dtype("z", a.z, io);
  }
  if (a.dt_bias.defined()) {
    c.present("dt_bias", a.dt_bias);
    c.shape("dt_bias", a.dt_bias, {heads});
    c.dtype("dt_bias", a.dt_bias, DType::f32);
  }
  check_dt_options(c, a.dt_options);
  c.present("out", a.out);
  c.shape("out", a.out, {batch, heads, hdim});
  c.dtype("out", a.out, io);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"x", &a.x}, {"dt", &a.dt}, {"A", &a.A},
                         {"B", &a.B}, {"C", &a.C}, {"D", &a.D}, {"z", &a.z}, {"dt_bias", &a.dt_bias},
                         {"out", &a.out}})
    c.no_overlap("state", a.state, name, *t);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"dt", &a.dt}, {"A", &a.A}, {"B", &a.B},
                         {"C", &a.C}, {"D", &a.D}, {"dt_bias", &a.dt_bias}})
    c.no_overlap("out", a.out, name, *t);
  check_out_aliasing(c, a.out, a.x, a.z);

  StepParams p;
  p.io = io;
  p.batch = batch;
  p.heads = heads;
  p.headdim = hdim;
  p.dstate = n;
  p.ngroups = groups;
  p.state = a.state.data<float>();
  p.st_b = a.state.stride(0);
  p.st_h = a.state.stride(1);
  p.st_p = a.state.stride(2);
  p.st_n = a.state.stride(3);
  p.x = a.x.raw_data();
  p.x_b = a.x.stride(0);
  p.x_h = a.x.stride(1);
  p.x_p = a.x.stride(2);
  p.dt = a.dt.raw_data();
  p.dt_b = a.dt.stride(0);
  p.dt_h = a.dt.stride(1);
  p.A = a.A.data<float>();
  p.A_h = a.A.stride(0);
  p.B = a.B.raw_data();
  p.B_b = a.B.stride(0);
  p.B_g = a.B.stride(1);
  p.B_n = a.B.stride(2);
  p.C = a.C.raw_data();
  p.C_b = a.C.stride(0);
  p.C_g = a.C.stride(1);
  p.C_n = a.C.stride(2);
  if (a.D.defined()) {
    p.D = a.D.data<float>();
    p.D_h = a.D.stride(0);
    p.D_p = a.D.dim() == 2 ? a.D.stride(1) : 0;
  }
  if (a.z.defined()) {
    p.z = a.z.raw_data();
    p.z_b = a.z.stride(0);
    p.z_h = a.z.stride(1);
    p.z_p = a.z.stride(2);
  }
  if (a.dt_bias.defined()) {
    p.dt_bias = a.dt_bias.data<float>();
    p.db_h = a.dt_bias.stride(0);
  }
  set_dt_options(p, a.dt_options);
  p.out = a.out.raw_data();
  p.o_b = a.out.stride(0);
  p.o_h = a.out.stride(1);
  p.o_p = a.out.stride(2);
  route(ctx, c, p);
}

}  // namespace mcv::kernels
