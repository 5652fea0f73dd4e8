// CUDA elementwise ops, softmax, window partition / reverse and the token mean. All memory-bound:
// simple grid-stride kernels, one element (or one row per warp) at a time, f32 arithmetic.

#include "nn/cuda/common.cuh"

namespace mcv::kernels::nn_detail {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void elementwise_kernel(EwParams p, int lanes_log2) {
  const T* a = static_cast<const T*>(p.a);
  T* out = static_cast<T*>(p.out);
  MCV_NN_FOR_ROWS_COLS(p.rows, p.cols, lanes_log2, r, c) {
    float v = cu::to_float(a[r * p.lda + c]);
    float b = 0.0f;
    if (p.b) b = cu::load_param<T>(p.b, p.b_f32, (r % p.b_rows) * p.ldb + c);
    switch (p.op) {
      case EwOp::activation: v = cu::activate(p.act, v); break;
      case EwOp::add: v += p.gamma.data ? b * cu::load_param<T>(p.gamma.data, p.gamma.f32, c) : b; break;
      case EwOp::mul: v *= b; break;
      case EwOp::scale: v *= p.s; break;
      case EwOp::mul_silu: v *= b / (1.0f + expf(-b)); break;
    }
    out[r * p.ldo + c] = cu::from_float<T>(v);
  }
}

// One warp per row: max, sum of exp, then exp / sum (as torch.softmax).
template <typename T>
__global__ void softmax_kernel(SoftmaxParams p) {
  const int lane = threadIdx.x & 31, warps = blockDim.x / 32;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + threadIdx.x / 32; row < p.rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    const T* x = static_cast<const T*>(p.x) + row * p.ldx;
    T* out = static_cast<T*>(p.out) + row * p.ldo;
    float mx = -INFINITY;
    for (std::int64_t i = lane; i < p.cols; i += 32) mx = fmaxf(mx, cu::to_float(x[i]));
    mx = cu::warp_max(mx);
    float sum = 0.0f;
    for (std::int64_t i = lane; i < p.cols; i += 32) sum += expf(cu::to_float(x[i]) - mx);
    sum = cu::warp_sum(sum);
    for (std::int64_t i = lane; i < p.cols; i += 32) out[i] = cu::from_float<T>(expf(cu::to_float(x[i]) - mx) / sum);
  }
}

// One thread per element of the windows tensor (B * nh * nw, ws * ws, C).
template <typename T>
__global__ void window_kernel(WindowParams p) {
  const std::int64_t ws = p.window;
  const std::int64_t total = p.batch * p.nh * p.nw * ws * ws * p.c;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t ch = i % p.c;
    std::int64_t t = i / p.c;
    const std::int64_t s = t % ws;
    t /= ws;
    const std::int64_t r = t % ws;
    t /= ws;
    const std::int64_t j = t % p.nw;
    t /= p.nw;
    const std::int64_t wi = t % p.nh, b = t / p.nh;
    const std::int64_t y = wi * ws + r, x = j * ws + s;
    const bool inside = y < p.h && x < p.w;
    const std::int64_t image = ((b * p.h + y) * p.w + x) * p.c + ch;
    if (p.reverse) {
      if (inside) static_cast<T*>(p.dst)[image] = static_cast<const T*>(p.src)[i];
    } else {
      static_cast<T*>(p.dst)[i] = inside ? static_cast<const T*>(p.src)[image] : cu::from_float<T>(0.0f);
    }
  }
}

// One thread per (batch, channel), summing over tokens: loads coalesce across channels.
template <typename T>
__global__ void mean_tokens_kernel(MeanTokensParams p) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  const std::int64_t b = blockIdx.y;
  if (c >= p.c) return;
  const T* x = static_cast<const T*>(p.x) + b * p.sb + c;
  float acc = 0.0f;
  for (std::int64_t l = 0; l < p.len; ++l) acc += cu::to_float(x[l * p.sl]);
  static_cast<T*>(p.out)[b * p.ldo + c] = cu::from_float<T>(acc / static_cast<float>(p.len));
}

}  // namespace

void cuda_elementwise(Context& ctx, const EwParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    const cu::RowGrid g = cu::row_grid(p.rows, p.cols);
    elementwise_kernel<T><<<g.blocks, g.threads, 0, ctx.cuda().stream>>>(p, g.lanes_log2);
    cuda_check_launch("elementwise_kernel");
  });
}

void cuda_softmax(Context& ctx, const SoftmaxParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kWarps = 4;
    softmax_kernel<T><<<cu::grid_for(p.rows, kWarps), kWarps * 32, 0, ctx.cuda().stream>>>(p);
    cuda_check_launch("softmax_kernel");
  });
}

void cuda_window(Context& ctx, const WindowParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t total = p.batch * p.nh * p.nw * p.window * p.window * p.c;
    window_kernel<T><<<cu::grid_for(total, kThreads), kThreads, 0, ctx.cuda().stream>>>(p);
    cuda_check_launch("window_kernel");
  });
}

void cuda_mean_tokens(Context& ctx, const MeanTokensParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    const dim3 grid(static_cast<unsigned>((p.c + kThreads - 1) / kThreads), static_cast<unsigned>(p.batch));
    mean_tokens_kernel<T><<<grid, kThreads, 0, ctx.cuda().stream>>>(p);
    cuda_check_launch("mean_tokens_kernel");
  });
}

}  // namespace mcv::kernels::nn_detail
