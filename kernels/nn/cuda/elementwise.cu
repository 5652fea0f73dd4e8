// CUDA elementwise ops, softmax, window partition / reverse and the token mean. All memory-bound,
// f32 arithmetic. The elementwise ops move 16 bytes per access where alignment allows (see
// common.cuh); the others are simple grid-stride kernels, one element (or one row per warp) at a
// time.

#include "nn/cuda/common.cuh"

namespace mcv::kernels::nn_detail {

namespace {

constexpr int kThreads = 256;

// kVec consecutive columns per thread over rows x cols (flat 32-bit loop, multiply-high division
// for the row and for the broadcast row r % b_rows of b). The add of Vim's two (B, L, D) scan
// outputs was bound by a 64-bit modulo per element before.
struct EwArgs {
  EwOp op = EwOp::activation;
  Activation act = Activation::none;
  std::uint32_t total = 0;  // rows * (cols / kVec)
  cu::FastDiv vcols;        // cols / kVec
  cu::FastDiv b_rows;
  const void* a = nullptr;
  std::int64_t lda = 0;
  const void* b = nullptr;
  std::int64_t ldb = 0;
  bool b_f32 = false;
  Vec gamma;
  float s = 1.0f;
  void* out = nullptr;
  std::int64_t ldo = 0;
};

template <typename T, int kVec>
__global__ void elementwise_kernel(EwArgs p) {
  const T* a = static_cast<const T*>(p.a);
  T* out = static_cast<T*>(p.out);
  for (std::uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < p.total; i += gridDim.x * blockDim.x) {
    const std::uint32_t r = p.vcols.div(i), c = (i - r * p.vcols.d) * kVec;
    float v[kVec], b[kVec];
    cu::load_vec<kVec>(a + r * p.lda + c, v);
    if (p.b) cu::load_vec<T, kVec>(p.b, p.b_f32, p.b_rows.mod(r) * p.ldb + c, b);
    switch (p.op) {
      case EwOp::activation:
#pragma unroll
        for (int k = 0; k < kVec; ++k) v[k] = cu::activate(p.act, v[k]);
        break;
      case EwOp::add:
        if (p.gamma.data) {
          float g[kVec];
          cu::load_vec<T, kVec>(p.gamma.data, p.gamma.f32, c, g);
#pragma unroll
          for (int k = 0; k < kVec; ++k) v[k] += b[k] * g[k];
        } else {
#pragma unroll
          for (int k = 0; k < kVec; ++k) v[k] += b[k];
        }
        break;
      case EwOp::mul:
#pragma unroll
        for (int k = 0; k < kVec; ++k) v[k] *= b[k];
        break;
      case EwOp::scale:
#pragma unroll
        for (int k = 0; k < kVec; ++k) v[k] *= p.s;
        break;
      case EwOp::mul_silu:
#pragma unroll
        for (int k = 0; k < kVec; ++k) v[k] *= cuda::silu(b[k]);
        break;
    }
    cu::store_vec<kVec>(out + r * p.ldo + c, v);
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
  if (p.rows <= 0 || p.cols <= 0) return;
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kT = static_cast<int>(sizeof(T));
    const int vec = cu::vec_width(cu::kVec16<T>, p.rows, p.cols,
                                  {{p.a, kT, p.lda},
                                   {p.out, kT, p.ldo},
                                   {p.b, p.b_f32 ? 4 : kT, p.b_rows > 1 ? p.ldb : 0},
                                   {p.gamma.data, p.gamma.f32 ? 4 : kT, 0}});
    // Row r of a pairs with row r % b_rows of b (b_rows divides rows). Row ranges hold multiples
    // of b_rows rows, or b is offset with a when b_rows == rows.
    const std::int64_t b_rows = p.b ? std::max<std::int64_t>(1, p.b_rows) : 1;
    const bool b_full = b_rows == p.rows;
    cu::for_row_ranges(p.rows, p.cols, vec, b_full ? 1 : b_rows, [&](std::int64_t r0, std::int64_t n) {
      EwArgs a;
      a.op = p.op;
      a.act = p.act;
      a.total = static_cast<std::uint32_t>(n * (p.cols / vec));
      a.vcols = cu::FastDiv(static_cast<std::uint32_t>(p.cols / vec));
      a.b_rows = cu::FastDiv(static_cast<std::uint32_t>(b_full ? n : b_rows));
      a.a = static_cast<const T*>(p.a) + r0 * p.lda;
      a.lda = p.lda;
      a.b = p.b && b_full ? static_cast<const char*>(p.b) + r0 * p.ldb * (p.b_f32 ? 4 : kT) : p.b;
      a.ldb = p.ldb;
      a.b_f32 = p.b_f32;
      a.gamma = p.gamma;
      a.s = p.s;
      a.out = static_cast<T*>(p.out) + r0 * p.ldo;
      a.ldo = p.ldo;
      const cu::FlatGrid g = cu::flat_grid(a.total);
      if (vec == cu::kVec16<T>)
        elementwise_kernel<T, cu::kVec16<T>><<<g.blocks, g.threads, 0, ctx.cuda().stream>>>(a);
      else
        elementwise_kernel<T, 1><<<g.blocks, g.threads, 0, ctx.cuda().stream>>>(a);
      cuda_check_launch("elementwise_kernel");
    });
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
