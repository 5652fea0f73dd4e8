// conv1d / conv1d_update entry points: validate everything, describe the call as plain params,
// route by device.

#include "mcv/kernels/conv1d.h"

#include <string>

#include "common/op_checks.h"
#include "conv1d/conv1d_params.h"

namespace mcv::kernels {

namespace {

using conv1d_detail::Conv1dParams;
using conv1d_detail::Conv1dUpdateParams;
using op_checks::Checker;

constexpr int kMinWidth = 2, kMaxWidth = 4;

// Validates weight ((D, W) or (D, 1, W)) and bias ((D)); returns W.
int check_weight_and_bias(const Checker& c, const Tensor& weight, const Tensor& bias, std::int64_t dim,
                          DType io) {
  c.present("weight", weight);
  if (weight.dim() != 2 && !(weight.dim() == 3 && weight.size(1) == 1))
    c.fail("weight", "expected (D, W) or (D, 1, W) but got shape " + shape_str(weight.shape()));
  const std::int64_t width = weight.size(-1);
  if (weight.size(0) != dim)
    c.fail("weight", "has " + std::to_string(weight.size(0)) + " channels but x has " + std::to_string(dim));
  if (width < kMinWidth || width > kMaxWidth)
    c.fail("weight", "width " + std::to_string(width) + " is not supported (2 to 4)");
  c.dtype_f32_or("weight", weight, io);
  if (bias.defined()) {
    c.present("bias", bias);
    c.shape("bias", bias, {dim});
    c.dtype_f32_or("bias", bias, io);
  }
  return static_cast<int>(width);
}

template <typename P>
void fill_weight_params(P& p, const Tensor& weight, const Tensor& bias) {
  p.w = weight.raw_data();
  p.w_f32 = weight.dtype() == DType::f32;
  p.w_sd = weight.stride(0);
  p.w_sk = weight.stride(-1);
  if (bias.defined()) {
    p.bias = bias.raw_data();
    p.bias_f32 = bias.dtype() == DType::f32;
    p.bias_sd = bias.stride(0);
  }
}

}  // namespace

void conv1d(Context& ctx, const Conv1dArgs& a) {
  const Checker c("conv1d", ctx);
  const bool token_major = a.layout == Conv1dLayout::token_major;
  c.present("x", a.x);
  c.dims("x", a.x, 3, token_major ? "(batch, L, D)" : "(batch, D, L)");
  c.io_dtype("x", a.x);
  c.unit_inner_stride("x", a.x);
  const DType io = a.x.dtype();
  const int d_axis = token_major ? 2 : 1, t_axis = token_major ? 1 : 2;
  const std::int64_t batch = a.x.size(0), dim = a.x.size(d_axis), len = a.x.size(t_axis);
  const int width = check_weight_and_bias(c, a.weight, a.bias, dim, io);
  c.present("out", a.out);
  c.shape("out", a.out, a.x.shape());
  c.dtype("out", a.out, io);
  c.unit_inner_stride("out", a.out);
  c.no_overlap("out", a.out, "x", a.x);
  if (a.reverse && a.padding != Conv1dPadding::causal)
    c.fail("reverse", "only the causal convolution has a reverse direction");
  if (a.final_state.defined()) {
    if (a.padding != Conv1dPadding::causal || a.reverse)
      c.fail("final_state", "only the forward causal convolution has a conv state");
    c.present("final_state", a.final_state);
    c.dims("final_state", a.final_state, 3, "(batch, D, S)");
    if (a.final_state.size(0) != batch || a.final_state.size(1) != dim || a.final_state.size(2) < width - 1)
      c.fail("final_state", "expected (" + std::to_string(batch) + ", " + std::to_string(dim) + ", S >= " +
                                std::to_string(width - 1) + ") but got " + shape_str(a.final_state.shape()));
    c.dtype("final_state", a.final_state, io);
    c.no_overlap("final_state", a.final_state, "x", a.x);
    c.no_overlap("final_state", a.final_state, "out", a.out);
  }

  Conv1dParams p;
  p.io = io;
  p.batch = batch;
  p.dim = dim;
  p.len = len;
  p.width = width;
  p.left = a.padding == Conv1dPadding::same ? (width - 1) / 2 : a.reverse ? 0 : width - 1;
  p.flip = a.reverse;
  p.silu = a.silu;
  p.token_major = token_major;
  p.x = a.x.raw_data();
  p.x_sb = a.x.stride(0);
  p.x_sd = a.x.stride(d_axis);
  p.x_st = a.x.stride(t_axis);
  p.out = a.out.raw_data();
  p.o_sb = a.out.stride(0);
  p.o_sd = a.out.stride(d_axis);
  p.o_st = a.out.stride(t_axis);
  fill_weight_params(p, a.weight, a.bias);
  if (a.final_state.defined()) {
    p.state = a.final_state.raw_data();
    p.state_len = a.final_state.size(2);
    p.s_sb = a.final_state.stride(0);
    p.s_sd = a.final_state.stride(1);
    p.s_ss = a.final_state.stride(2);
  }
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    conv1d_detail::conv1d_cuda(ctx, p);
#else
    c.no_cuda();
#endif
  } else {
    conv1d_detail::conv1d_cpu(ctx, p);
  }
}

void conv1d_update(Context& ctx, const Conv1dUpdateArgs& a) {
  const Checker c("conv1d_update", ctx);
  c.present("x", a.x);
  c.dims("x", a.x, 2, "(batch, D)");
  c.io_dtype("x", a.x);
  const DType io = a.x.dtype();
  const std::int64_t batch = a.x.size(0), dim = a.x.size(1);
  const int width = check_weight_and_bias(c, a.weight, a.bias, dim, io);
  c.present("conv_state", a.conv_state);
  c.dims("conv_state", a.conv_state, 3, "(batch, D, S)");
  if (a.conv_state.size(0) != batch || a.conv_state.size(1) != dim || a.conv_state.size(2) < width - 1)
    c.fail("conv_state", "expected (" + std::to_string(batch) + ", " + std::to_string(dim) + ", S >= " +
                             std::to_string(width - 1) + ") but got " + shape_str(a.conv_state.shape()));
  c.dtype("conv_state", a.conv_state, io);
  c.present("out", a.out);
  c.shape("out", a.out, a.x.shape());
  c.dtype("out", a.out, io);
  c.no_overlap("out", a.out, "conv_state", a.conv_state);
  c.no_overlap("x", a.x, "conv_state", a.conv_state);

  Conv1dUpdateParams p;
  p.io = io;
  p.batch = batch;
  p.dim = dim;
  p.state_len = a.conv_state.size(2);
  p.width = width;
  p.silu = a.silu;
  p.x = a.x.raw_data();
  p.x_sb = a.x.stride(0);
  p.x_sd = a.x.stride(1);
  p.state = a.conv_state.raw_data();
  p.s_sb = a.conv_state.stride(0);
  p.s_sd = a.conv_state.stride(1);
  p.s_ss = a.conv_state.stride(2);
  fill_weight_params(p, a.weight, a.bias);
  p.out = a.out.raw_data();
  p.o_sb = a.out.stride(0);
  p.o_sd = a.out.stride(1);
  if (ctx.is_cuda()) {
#ifdef MCV_HAVE_CUDA
    conv1d_detail::conv1d_update_cuda(ctx, p);
#else
    c.no_cuda();
#endif
  } else {
    conv1d_detail::conv1d_update_cpu(ctx, p);
  }
}

}  // namespace mcv::kernels
