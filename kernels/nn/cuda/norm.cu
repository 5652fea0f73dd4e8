// CUDA layer / RMS norm (with the fused residual add), LayerNorm2d and eval batch norm.
//
// Norms: one warp per row. Passes over the row re-read x (and the residual) from global memory
// rather than staging the row: rows are a few hundred to a few thousand elements, the re-reads
// hit L1/L2, and no shared memory or register budget limits C. The last pass reads every input
// element before writing the outputs of that element from the same lane, which is what makes the
// documented in-place uses (out = x, residual_out = residual) safe.

#include "nn/cuda/common.cuh"

namespace mcv::kernels::nn_detail {

namespace {

constexpr int kWarpsPerBlock = 4;

template <typename T>
__global__ void norm_kernel(NormParams p) {
  const int lane = threadIdx.x & 31;
  const bool res_f32 = p.residual_dtype == DType::f32;
  const bool out_f32 = p.out_dtype == DType::f32, ro_f32 = p.residual_out_dtype == DType::f32;
  const std::int64_t C = p.cols;
  // Whole warps share a row, so the loop condition is warp-uniform (the shuffles need that).
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32; row < p.rows;
       row += static_cast<std::int64_t>(gridDim.x) * kWarpsPerBlock) {
    const T* x = static_cast<const T*>(p.x) + row * p.ldx;
    const std::int64_t res_off = row * p.ldr;
    auto value = [&](std::int64_t i) {
      float v = cu::to_float(x[i]);
      if (p.residual) v += cu::load_param<T>(p.residual, res_f32, res_off + i);
      return v;
    };
    float mean = 0.0f;
    if (!p.rms) {
      float s = 0.0f;
      for (std::int64_t i = lane; i < C; i += 32) s += value(i);
      mean = cu::warp_sum(s) / static_cast<float>(C);
    }
    float q = 0.0f;
    for (std::int64_t i = lane; i < C; i += 32) {
      const float d = value(i) - mean;
      q += d * d;
    }
    const float rstd = 1.0f / sqrtf(cu::warp_sum(q) / static_cast<float>(C) + p.eps);
    for (std::int64_t i = lane; i < C; i += 32) {
      const float v = value(i);
      float y = (v - mean) * rstd;
      if (p.weight.data) y *= cu::load_param<T>(p.weight.data, p.weight.f32, i);
      if (p.bias.data) y += cu::load_param<T>(p.bias.data, p.bias.f32, i);
      if (p.residual_out) cu::store_param<T>(p.residual_out, ro_f32, row * p.ldro + i, v);
      cu::store_param<T>(p.out, out_f32, row * p.ldo + i, y);
    }
  }
}

// One thread per (image, pixel), looping over channels (stride H*W): loads coalesce across
// neighbouring pixels.
template <typename T>
__global__ void layer_norm_2d_kernel(LayerNorm2dParams p) {
  const std::int64_t total = p.n * p.hw;
  for (std::int64_t t = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t n = t / p.hw, q = t % p.hw;
    const T* x = static_cast<const T*>(p.x) + n * p.c * p.hw + q;
    T* out = static_cast<T*>(p.out) + n * p.c * p.hw + q;
    float s = 0.0f;
    for (std::int64_t c = 0; c < p.c; ++c) s += cu::to_float(x[c * p.hw]);
    const float mean = s / static_cast<float>(p.c);
    float m2 = 0.0f;
    for (std::int64_t c = 0; c < p.c; ++c) {
      const float d = cu::to_float(x[c * p.hw]) - mean;
      m2 += d * d;
    }
    const float rstd = 1.0f / sqrtf(m2 / static_cast<float>(p.c) + p.eps);
    for (std::int64_t c = 0; c < p.c; ++c) {
      float y = (cu::to_float(x[c * p.hw]) - mean) * rstd;
      if (p.weight.data) y *= cu::load_param<T>(p.weight.data, p.weight.f32, c);
      if (p.bias.data) y += cu::load_param<T>(p.bias.data, p.bias.f32, c);
      out[c * p.hw] = cu::from_float<T>(y);
    }
  }
}

template <typename T>
__global__ void batch_norm_kernel(BatchNormParams p, int lanes_log2) {
  MCV_NN_FOR_ROWS_COLS(p.rows, p.cols, lanes_log2, r, c) {
    // Same scale/shift form as the CPU path (and PyTorch's CPU eval kernel).
    const float w = p.weight.data ? cu::load_param<T>(p.weight.data, p.weight.f32, c) : 1.0f;
    const float b = p.bias.data ? cu::load_param<T>(p.bias.data, p.bias.f32, c) : 0.0f;
    const float s = w * (1.0f / sqrtf(cu::load_param<T>(p.var.data, p.var.f32, c) + p.eps));
    const float shift = b - cu::load_param<T>(p.mean.data, p.mean.f32, c) * s;
    const float v = cu::to_float(static_cast<const T*>(p.x)[r * p.ldx + c]);
    static_cast<T*>(p.out)[r * p.ldo + c] = cu::from_float<T>(cu::activate(p.act, v * s + shift));
  }
}

}  // namespace

void cuda_norm(Context& ctx, const NormParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    norm_kernel<T><<<cu::grid_for(p.rows, kWarpsPerBlock), kWarpsPerBlock * 32, 0, ctx.cuda().stream>>>(p);
    cuda_check_launch("norm_kernel");
  });
}

void cuda_layer_norm_2d(Context& ctx, const LayerNorm2dParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kThreads = 256;
    layer_norm_2d_kernel<T><<<cu::grid_for(p.n * p.hw, kThreads), kThreads, 0, ctx.cuda().stream>>>(p);
    cuda_check_launch("layer_norm_2d_kernel");
  });
}

void cuda_batch_norm(Context& ctx, const BatchNormParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    const cu::RowGrid g = cu::row_grid(p.rows, p.cols);
    batch_norm_kernel<T><<<g.blocks, g.threads, 0, ctx.cuda().stream>>>(p, g.lanes_log2);
    cuda_check_launch("batch_norm_kernel");
  });
}

}  // namespace mcv::kernels::nn_detail
