// conv2d entry point and the load-time helpers (OHWI re-layout, batch-norm folding).

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "nn/nn_internal.h"

namespace mcv::kernels {

using nn_detail::Check;

std::int64_t conv_out_size(std::int64_t in, std::int64_t kernel, std::int64_t stride, std::int64_t pad,
                           std::int64_t dilation) {
  MCV_CHECK(in > 0 && kernel > 0 && stride > 0 && pad >= 0 && dilation > 0, "conv: invalid geometry (input ", in,
            ", kernel ", kernel, ", stride ", stride, ", padding ", pad, ", dilation ", dilation, ")");
  const std::int64_t span = dilation * (kernel - 1) + 1;
  MCV_CHECK(in + 2 * pad >= span, "conv: kernel extent ", span, " is larger than the padded input ", in + 2 * pad);
  return (in + 2 * pad - span) / stride + 1;
}

void conv2d(Context& ctx, const Conv2dArgs& a) {
  const Check c("conv2d", ctx);
  c.present("x", a.x);
  c.io_dtype("x", a.x);
  const DType io = a.x.dtype();
  if (a.x.dim() != 4) c.fail("x", "expected NHWC (N, H, W, Cin) but got shape " + shape_str(a.x.shape()));
  c.contiguous("x", a.x);
  c.present("weight", a.weight);
  c.dtype("weight", a.weight, io);
  if (a.weight.dim() != 4)
    c.fail("weight", "expected OHWI (Cout, kh, kw, Cin/groups) but got shape " + shape_str(a.weight.shape()));
  c.contiguous("weight", a.weight);
  constexpr std::int64_t kMaxGeom = 1 << 20;  // cuDNN and the kernels index geometry with int
  auto geom = [&](const char* name, int v, int lo) {
    if (v < lo || v > kMaxGeom) c.fail(name, "must be in [" + std::to_string(lo) + ", 2^20] (got " + std::to_string(v) + ")");
  };
  geom("stride_h", a.stride_h, 1);
  geom("stride_w", a.stride_w, 1);
  geom("pad_h", a.pad_h, 0);
  geom("pad_w", a.pad_w, 0);
  geom("dilation_h", a.dilation_h, 1);
  geom("dilation_w", a.dilation_w, 1);
  geom("groups", a.groups, 1);
  nn_detail::ConvParams p;
  p.dtype = io;
  p.n = a.x.size(0);
  p.h = a.x.size(1);
  p.w = a.x.size(2);
  p.cin = a.x.size(3);
  p.cout = a.weight.size(0);
  if (a.weight.size(1) > kMaxGeom || a.weight.size(2) > kMaxGeom)
    c.fail("weight", "kernel size " + shape_str(a.weight.shape()) + " is too large");
  p.kh = static_cast<int>(a.weight.size(1));
  p.kw = static_cast<int>(a.weight.size(2));
  p.groups = a.groups;
  if (p.cin % a.groups != 0 || p.cout % a.groups != 0)
    c.fail("groups", std::to_string(a.groups) + " does not divide Cin = " + std::to_string(p.cin) + " and Cout = " +
                         std::to_string(p.cout));
  if (a.weight.size(3) != p.cin / a.groups)
    c.fail("weight", "expected OHWI (Cout, kh, kw, Cin/groups = " + std::to_string(p.cin / a.groups) + ") but got shape " +
                         shape_str(a.weight.shape()) + " (an official OIHW weight needs conv_weight_ohwi())");
  p.sh = a.stride_h;
  p.sw = a.stride_w;
  p.ph = a.pad_h;
  p.pw = a.pad_w;
  p.dh = a.dilation_h;
  p.dw = a.dilation_w;
  try {
    p.oh = conv_out_size(p.h, p.kh, p.sh, p.ph, p.dh);
    p.ow = conv_out_size(p.w, p.kw, p.sw, p.pw, p.dw);
  } catch (const Error& e) {
    c.fail("x", std::string("spatial size ") + shape_str(a.x.shape()) + " does not fit the kernel: " + e.what());
  }
  constexpr std::int64_t kMaxElems = std::numeric_limits<int>::max();
  if (a.x.numel() > kMaxElems || p.n * p.oh * p.ow * p.cout > kMaxElems || a.weight.numel() > kMaxElems)
    c.fail("x", "tensors above 2^31 elements are not supported; split the batch");
  p.bias = c.vec("bias", a.bias, p.cout, io);
  const Shape out_shape{p.n, p.oh, p.ow, p.cout};
  c.present("out", a.out);
  c.dtype("out", a.out, io);
  c.shape("out", a.out, out_shape);
  c.contiguous("out", a.out);
  c.no_overlap("out", a.out, "x", a.x);
  c.no_overlap("out", a.out, "weight", a.weight);
  c.no_overlap("out", a.out, "bias", a.bias);
  if (a.residual.defined()) {
    c.present("residual", a.residual);
    c.dtype_f32_or("residual", a.residual, io);
    c.shape("residual", a.residual, out_shape);
    c.contiguous("residual", a.residual);
    p.residual_is_out = c.alias_or_disjoint("out", a.out, "residual", a.residual);
    p.residual = a.residual.raw_data();
    p.residual_f32 = a.residual.dtype() == DType::f32;
  }
  if (a.allow_tf32 && io != DType::f32) c.fail("allow_tf32", "applies to f32 only");
  p.x = a.x.raw_data();
  p.weight = a.weight.raw_data();
  p.out = a.out.raw_data();
  p.act = a.activation;
  p.allow_tf32 = a.allow_tf32;
  p.force_direct = a.force_direct;
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    nn_detail::cuda_conv2d(ctx, p);
#else
    nn_detail::no_cuda("conv2d");
#endif
  } else {
    nn_detail::cpu_conv2d(ctx, p);
  }
}

Tensor conv_weight_ohwi(const Tensor& w) {
  MCV_CHECK(w.defined(), "conv_weight_ohwi: weight is undefined");
  if (w.dim() != 4)
    throw Error("conv_weight_ohwi: weight", "expected OIHW (Cout, Cin/groups, kh, kw) but got shape " + shape_str(w.shape()));
  return w.permute({0, 2, 3, 1}).contiguous();
}

FoldedConv fold_batch_norm(const Tensor& conv_weight, const Tensor& conv_bias, const Tensor& bn_weight,
                           const Tensor& bn_bias, const Tensor& running_mean, const Tensor& running_var,
                           double eps) {
  const char* op = "fold_batch_norm";
  auto need = [&](const char* name, const Tensor& t) {
    if (!t.defined()) throw Error(std::string(op) + ": " + name, "is required but was not given");
    if (!t.device().is_cpu()) throw Error(std::string(op) + ": " + name, "must be a CPU tensor (fold at load time)");
    if (!is_floating(t.dtype()))
      throw Error(std::string(op) + ": " + name, std::string("dtype ") + dtype_name(t.dtype()) + " is not a float type");
  };
  need("conv_weight", conv_weight);
  if (conv_weight.dim() < 2) throw Error(std::string(op) + ": conv_weight", "expected (Cout, ...) but got " + shape_str(conv_weight.shape()));
  const std::int64_t cout = conv_weight.size(0);
  auto vec = [&](const char* name, const Tensor& t) {
    need(name, t);
    if (t.shape() != Shape{cout})
      throw Error(std::string(op) + ": " + name, "expected shape " + shape_str({cout}) + " but got " + shape_str(t.shape()));
  };
  if (conv_bias.defined()) vec("conv_bias", conv_bias);
  vec("bn_weight", bn_weight);
  vec("bn_bias", bn_bias);
  vec("running_mean", running_mean);
  vec("running_var", running_var);
  if (!(eps >= 0)) throw Error(std::string(op) + ": eps", "must be >= 0");
  FoldedConv f;
  f.weight = conv_weight.to(DType::f32);  // contiguous f32 copy
  f.bias = Tensor::empty({cout}, DType::f32);
  const std::int64_t per = conv_weight.numel() / cout;
  float* w = f.weight.data<float>();
  float* b = f.bias.data<float>();
  for (std::int64_t o = 0; o < cout; ++o) {
    const double var = running_var.item(o);
    if (!(var + eps > 0))
      throw Error(std::string(op) + ": running_var", "entry " + std::to_string(o) + " gives var + eps <= 0");
    const double s = bn_weight.item(o) / std::sqrt(var + eps);
    for (std::int64_t i = 0; i < per; ++i) w[o * per + i] = static_cast<float>(static_cast<double>(w[o * per + i]) * s);
    const double cb = conv_bias.defined() ? conv_bias.item(o) : 0.0;
    b[o] = static_cast<float>((cb - running_mean.item(o)) * s + bn_bias.item(o));
  }
  return f;
}

}  // namespace mcv::kernels
