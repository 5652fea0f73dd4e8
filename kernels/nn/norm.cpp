// layer_norm / rms_norm / layer_norm_2d / batch_norm entry points.

#include <string>

#include "nn/nn_internal.h"

namespace mcv::kernels {

using nn_detail::Check;

namespace {

void run_norm(Context& ctx, const NormArgs& a, bool rms, const char* op) {
  const Check c(op, ctx);
  c.present("x", a.x);
  c.io_dtype("x", a.x);
  const DType io = a.x.dtype();
  const nn_detail::Rows x = c.rows("x", a.x);
  nn_detail::NormParams p;
  p.dtype = io;
  p.rows = x.rows;
  p.cols = x.cols;
  p.x = x.data;
  p.ldx = x.ld;
  p.rms = rms;
  p.eps = a.eps;
  if (!(a.eps >= 0.0f)) c.fail("eps", "must be >= 0 (got " + std::to_string(a.eps) + ")");
  p.weight = c.vec("weight", a.weight, x.cols, io);
  p.bias = c.vec("bias", a.bias, x.cols, io);
  if (a.residual.defined()) {
    c.present("residual", a.residual);
    c.dtype_f32_or("residual", a.residual, io);
    c.shape("residual", a.residual, a.x.shape());
    const nn_detail::Rows r = c.rows("residual", a.residual);
    p.residual = r.data;
    p.residual_dtype = r.dtype;
    p.ldr = r.ld;
  }
  c.present("out", a.out);
  c.dtype_f32_or("out", a.out, io);
  c.shape("out", a.out, a.x.shape());
  const nn_detail::Rows o = c.rows("out", a.out);
  p.out = o.data;
  p.out_dtype = o.dtype;
  p.ldo = o.ld;
  // Every element is read (x, residual) before it is written (out, residual_out) by the same
  // thread, so identical views are safe; partial overlaps are not.
  c.alias_or_disjoint("out", a.out, "x", a.x);
  c.alias_or_disjoint("out", a.out, "residual", a.residual);
  c.no_overlap("out", a.out, "weight", a.weight);
  c.no_overlap("out", a.out, "bias", a.bias);
  if (a.residual_out.defined()) {
    c.present("residual_out", a.residual_out);
    c.dtype_f32_or("residual_out", a.residual_out, io);
    c.shape("residual_out", a.residual_out, a.x.shape());
    const nn_detail::Rows ro = c.rows("residual_out", a.residual_out);
    c.alias_or_disjoint("residual_out", a.residual_out, "x", a.x);
    c.alias_or_disjoint("residual_out", a.residual_out, "residual", a.residual);
    c.no_overlap("residual_out", a.residual_out, "out", a.out);
    c.no_overlap("residual_out", a.residual_out, "weight", a.weight);
    c.no_overlap("residual_out", a.residual_out, "bias", a.bias);
    p.residual_out = ro.data;
    p.residual_out_dtype = ro.dtype;
    p.ldro = ro.ld;
  }
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    nn_detail::cuda_norm(ctx, p);
#else
    nn_detail::no_cuda(op);
#endif
  } else {
    nn_detail::cpu_norm(ctx, p);
  }
}

}  // namespace

void layer_norm(Context& ctx, const NormArgs& args) { run_norm(ctx, args, false, "layer_norm"); }
void rms_norm(Context& ctx, const NormArgs& args) { run_norm(ctx, args, true, "rms_norm"); }

void layer_norm_2d(Context& ctx, const LayerNorm2dArgs& a) {
  const Check c("layer_norm_2d", ctx);
  c.present("x", a.x);
  c.io_dtype("x", a.x);
  if (a.x.dim() != 4) c.fail("x", "expected (N, C, H, W) but got shape " + shape_str(a.x.shape()));
  c.contiguous("x", a.x);
  const DType io = a.x.dtype();
  nn_detail::LayerNorm2dParams p;
  p.dtype = io;
  p.n = a.x.size(0);
  p.c = a.x.size(1);
  p.hw = a.x.size(2) * a.x.size(3);
  p.x = a.x.raw_data();
  if (!(a.eps >= 0.0f)) c.fail("eps", "must be >= 0 (got " + std::to_string(a.eps) + ")");
  p.eps = a.eps;
  p.weight = c.vec("weight", a.weight, p.c, io);
  p.bias = c.vec("bias", a.bias, p.c, io);
  c.present("out", a.out);
  c.dtype("out", a.out, io);
  c.shape("out", a.out, a.x.shape());
  c.contiguous("out", a.out);
  // The CUDA kernel reads a whole column before writing it, the CPU path a whole pixel: in place
  // is fine, a shifted overlap is not.
  c.alias_or_disjoint("out", a.out, "x", a.x);
  p.out = a.out.raw_data();
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    nn_detail::cuda_layer_norm_2d(ctx, p);
#else
    nn_detail::no_cuda("layer_norm_2d");
#endif
  } else {
    nn_detail::cpu_layer_norm_2d(ctx, p);
  }
}

void batch_norm(Context& ctx, const BatchNormArgs& a) {
  const Check c("batch_norm", ctx);
  c.present("x", a.x);
  c.io_dtype("x", a.x);
  const DType io = a.x.dtype();
  const nn_detail::Rows x = c.rows("x", a.x);
  nn_detail::BatchNormParams p;
  p.dtype = io;
  p.rows = x.rows;
  p.cols = x.cols;
  p.x = x.data;
  p.ldx = x.ld;
  p.weight = c.vec("weight", a.weight, x.cols, io);
  p.bias = c.vec("bias", a.bias, x.cols, io);
  p.mean = c.vec("running_mean", a.running_mean, x.cols, io, true);
  p.var = c.vec("running_var", a.running_var, x.cols, io, true);
  if (!(a.eps >= 0.0f)) c.fail("eps", "must be >= 0 (got " + std::to_string(a.eps) + ")");
  p.eps = a.eps;
  p.act = a.activation;
  c.present("out", a.out);
  c.dtype("out", a.out, io);
  c.shape("out", a.out, a.x.shape());
  const nn_detail::Rows o = c.rows("out", a.out);
  c.alias_or_disjoint("out", a.out, "x", a.x);
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"weight", &a.weight},
                                {"bias", &a.bias}, {"running_mean", &a.running_mean},
                                {"running_var", &a.running_var}})
    c.no_overlap("out", a.out, name, *t);
  p.out = o.data;
  p.ldo = o.ld;
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    nn_detail::cuda_batch_norm(ctx, p);
#else
    nn_detail::no_cuda("batch_norm");
#endif
  } else {
    nn_detail::cpu_batch_norm(ctx, p);
  }
}

}  // namespace mcv::kernels
