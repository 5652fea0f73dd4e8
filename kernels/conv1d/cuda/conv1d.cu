// CUDA depthwise conv1d and its single-step update. One thread per output element; consecutive
// threads take consecutive elements along the contiguous axis (t for channel-major, d for
// token-major), so loads and stores coalesce and the W-fold reuse of each input is served by L1.
// The op is memory-bound (a handful of FLOPs per element), so this simple form is what it needs.

#include <cstdlib>
#include <string>

#include "common/cuda_async.cuh"
#include "common/cuda_dtype.cuh"
#include "common/cuda_math.cuh"
#include "conv1d/conv1d_params.h"
#include "mcv/cuda/context.cuh"

namespace mcv::kernels::conv1d_detail {

namespace {

using cuda::from_float;
using cuda::load_param;
using cuda::store_vec;
using cuda::to_float;

constexpr int kThreads = 256;

template <typename T, int W>
__global__ void conv1d_kernel(Conv1dParams p) {
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const std::int64_t total = p.batch * p.dim * p.len;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    std::int64_t b, d, t;
    if (p.token_major) {
      d = i % p.dim;
      t = i / p.dim % p.len;
      b = i / (p.dim * p.len);
    } else {
      t = i % p.len;
      d = i / p.len % p.dim;
      b = i / (p.len * p.dim);
    }
    const T* xr = x + b * p.x_sb + d * p.x_sd;
    float acc = p.bias ? load_param<T>(p.bias, p.bias_f32, d * p.bias_sd) : 0.0f;
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const std::int64_t tk = t - p.left + k;
      if (tk >= 0 && tk < p.len) {
        const int src_k = p.flip ? W - 1 - k : k;
        acc += load_param<T>(p.w, p.w_f32, d * p.w_sd + src_k * p.w_sk) * to_float(xr[tk * p.x_st]);
      }
    }
    if (p.silu) acc = cuda::silu(acc);
    out[b * p.o_sb + d * p.o_sd + t * p.o_st] = from_float<T>(acc);
  }
}

// Token-major fast path (Vim: x is a strided slice of in_proj's (B, L, 2D) output): a thread owns
// kVec consecutive channels (16 bytes per step) and kSteps consecutive steps. All kSteps + W - 1
// input vectors of its strip are copied to shared memory at once (cp.async: in flight together,
// no registers held), while its kVec x W weights are loaded (as 16-byte words when they are f32
// and contiguous) and kept for the strip. One 64-bit index division per thread instead of three
// per element: the one-thread-per-element kernel above spent most of its time on index
// arithmetic, 2-byte loads and per-element weight loads (10x the bytes floor on the H100). The
// op waits on memory latency: with the inputs in registers instead (a sliding window, loads in
// groups of 4) the 16-bit kernel held ~128 registers, 16 warps per SM, and moved 1.1 TB/s.
template <typename T, int W, int kVec, int kSteps>
__global__ void __launch_bounds__(kThreads) conv1d_token_major_kernel(Conv1dParams p, int dvecs, int strips) {
  constexpr int kIn = kSteps + W - 1;
  using Vec = cuda::Pack<T, kVec>;
  // [input step][thread]: a warp's 16-byte reads of one step are 512 contiguous bytes.
  __shared__ Vec stage[kIn][kThreads];
  const std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= p.batch * strips * static_cast<std::int64_t>(dvecs)) return;
  const int dv = static_cast<int>(idx % dvecs);
  const std::int64_t rest = idx / dvecs;
  const int t0 = static_cast<int>(rest % strips) * kSteps;
  const std::int64_t b = rest / strips;
  const int d0 = dv * kVec;
  const int len = static_cast<int>(p.len);

  const T* xr = static_cast<const T*>(p.x) + b * p.x_sb + d0;
#pragma unroll
  for (int i = 0; i < kIn; ++i) {
    const int tk = t0 - static_cast<int>(p.left) + i;
    const bool ok = tk >= 0 && tk < len;
    cuda::cp_async16_or_zero(&stage[i][threadIdx.x], ok ? xr + static_cast<std::int64_t>(tk) * p.x_st : xr, ok);
  }

  float w[W][kVec], bias[kVec];
  const bool w_packed = p.w_f32 && p.w_sk == 1 && p.w_sd == W && (reinterpret_cast<std::uintptr_t>(p.w) & 15) == 0;
  if (w_packed) {
    // kVec * W consecutive floats, a multiple of 4 starting at a multiple of 16 bytes. Every
    // register index stays a compile-time constant (a run-time flip index put w in local memory).
    const float4* src = reinterpret_cast<const float4*>(static_cast<const float*>(p.w) + d0 * W);
    float raw[W][kVec];
#pragma unroll
    for (int q = 0; q < kVec * W / 4; ++q) {
      const float4 v = src[q];
      const float e[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int r = 0; r < 4; ++r) raw[(q * 4 + r) % W][(q * 4 + r) / W] = e[r];
    }
#pragma unroll
    for (int k = 0; k < W; ++k)
#pragma unroll
      for (int c = 0; c < kVec; ++c) w[k][c] = p.flip ? raw[W - 1 - k][c] : raw[k][c];
  } else {
#pragma unroll
    for (int c = 0; c < kVec; ++c)
#pragma unroll
      for (int k = 0; k < W; ++k)
        w[k][c] = load_param<T>(p.w, p.w_f32, (d0 + c) * p.w_sd + (p.flip ? W - 1 - k : k) * p.w_sk);
  }
#pragma unroll
  for (int c = 0; c < kVec; ++c) bias[c] = p.bias ? load_param<T>(p.bias, p.bias_f32, (d0 + c) * p.bias_sd) : 0.0f;

  cuda::cp_async_wait_all();
  T* orow = static_cast<T*>(p.out) + b * p.o_sb + d0;
#pragma unroll
  for (int r = 0; r < kSteps; ++r) {
    if (t0 + r < len) {
      float acc[kVec];
#pragma unroll
      for (int c = 0; c < kVec; ++c) acc[c] = bias[c];
#pragma unroll
      for (int k = 0; k < W; ++k) {
        const Vec v = stage[r + k][threadIdx.x];
#pragma unroll
        for (int c = 0; c < kVec; ++c) acc[c] += w[k][c] * to_float(v.e[c]);
      }
#pragma unroll
      for (int c = 0; c < kVec; ++c) acc[c] = p.silu ? cuda::silu(acc[c]) : acc[c];
      store_vec<kVec>(orow + static_cast<std::int64_t>(t0 + r) * p.o_st, acc);
    }
  }
}

// state[b, d, s] = x[b, d, L - S + s], zero before the sequence start.
template <typename T>
__global__ void final_state_kernel(Conv1dParams p) {
  const T* x = static_cast<const T*>(p.x);
  T* state = static_cast<T*>(p.state);
  const std::int64_t total = p.batch * p.dim * p.state_len;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t s = i % p.state_len, d = i / p.state_len % p.dim, b = i / (p.state_len * p.dim);
    const std::int64_t t = p.len - p.state_len + s;
    state[b * p.s_sb + d * p.s_sd + s * p.s_ss] =
        t >= 0 ? x[b * p.x_sb + d * p.x_sd + t * p.x_st] : from_float<T>(0.0f);
  }
}

// One thread per (b, d): reads the whole window before shifting, so in-place is safe.
template <typename T>
__global__ void conv1d_update_kernel(Conv1dUpdateParams p) {
  const T* x = static_cast<const T*>(p.x);
  T* state = static_cast<T*>(p.state);
  T* out = static_cast<T*>(p.out);
  const std::int64_t total = p.batch * p.dim;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t b = i / p.dim, d = i % p.dim;
    T* s = state + b * p.s_sb + d * p.s_sd;
    const T xv = x[b * p.x_sb + d * p.x_sd];
    float acc = p.bias ? load_param<T>(p.bias, p.bias_f32, d * p.bias_sd) : 0.0f;
    for (int k = 0; k < p.width; ++k) {
      const std::int64_t j = p.state_len + 1 - p.width + k;  // index into [state, x]
      const float v = j == p.state_len ? to_float(xv) : to_float(s[j * p.s_ss]);
      acc += load_param<T>(p.w, p.w_f32, d * p.w_sd + k * p.w_sk) * v;
    }
    for (std::int64_t j = 0; j + 1 < p.state_len; ++j) s[j * p.s_ss] = s[(j + 1) * p.s_ss];
    s[(p.state_len - 1) * p.s_ss] = xv;
    out[b * p.o_sb + d * p.o_sd] = from_float<T>(p.silu ? cuda::silu(acc) : acc);
  }
}

// The fast path needs channel-contiguous x and out with every row start aligned for a 16-byte
// access, and sizes that fit its 32-bit step and grid arithmetic.
template <typename T, int kVec>
bool token_major_vectorisable(const Conv1dParams& p) {
  const auto mult = [](std::int64_t s) { return s % kVec == 0; };
  const std::int64_t threads = p.batch * ((p.len + 1) / 2) * (p.dim / kVec);
  return p.token_major && p.x_sd == 1 && p.o_sd == 1 && p.dim % kVec == 0 && mult(p.x_st) && mult(p.x_sb) &&
         mult(p.o_st) && mult(p.o_sb) && cuda::vec_aligned<T, kVec>(p.x) && cuda::vec_aligned<T, kVec>(p.out) &&
         p.len < (1 << 30) && threads < (std::int64_t{1} << 40);
}

template <typename T, int kVec, int kSteps>
void launch_token_major(const Conv1dParams& p, cudaStream_t stream) {
  const int dvecs = static_cast<int>(p.dim / kVec);
  const int strips = static_cast<int>((p.len + kSteps - 1) / kSteps);
  const unsigned blocks = static_cast<unsigned>((p.batch * strips * dvecs + kThreads - 1) / kThreads);
  switch (p.width) {
    case 2: conv1d_token_major_kernel<T, 2, kVec, kSteps><<<blocks, kThreads, 0, stream>>>(p, dvecs, strips); break;
    case 3: conv1d_token_major_kernel<T, 3, kVec, kSteps><<<blocks, kThreads, 0, stream>>>(p, dvecs, strips); break;
    case 4: conv1d_token_major_kernel<T, 4, kVec, kSteps><<<blocks, kThreads, 0, stream>>>(p, dvecs, strips); break;
    default: throw Error("conv1d", "unsupported width " + std::to_string(p.width));
  }
  cuda_check_launch("conv1d_token_major_kernel");
}

}  // namespace

void conv1d_cuda(Context& ctx, const Conv1dParams& p) {
  Context::Cuda& c = ctx.cuda();
  CudaDeviceGuard guard(c.device);
  const std::int64_t total = p.batch * p.dim * p.len;
  cuda::dispatch_io(p.io, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kVec = 16 / sizeof(T);
    if (token_major_vectorisable<T, kVec>(p)) {
      // Steps per thread: long strips amortise the weights and the W - 1 halo copies, short ones
      // give more threads. H100, us for 8 / 4 / 2 steps: Vim-Ti's conv (128 x 197 x 384, a
      // token-major slice of in_proj's output) bf16 29.1 / 33.5 / 44.6, f32 33.3 / 32.4 / 33.4;
      // MambaVision-T's (128 x 196 x 160) bf16 15.6 / 14.3 / 13.2, f32 17.2 / 16.9 / 16.3. So 8
      // for 16-bit I/O, 4 for f32, 2 where that leaves fewer than ~250 threads per SM (batch 1).
      // MCV_CONV1D_STEPS=8/4/2 forces one (comparisons, tests).
      const std::int64_t rows = p.batch * (p.dim / kVec);
      const int preferred = sizeof(T) == 2 ? 8 : 4;
      int steps = rows * ((p.len + preferred - 1) / preferred) >= 32 * 1024 ? preferred : 2;
      if (const char* e = std::getenv("MCV_CONV1D_STEPS"))
        for (const int s : {8, 4, 2})
          if (std::string(e) == std::to_string(s)) steps = s;
      switch (steps) {
        case 8: launch_token_major<T, kVec, 8>(p, c.stream); break;
        case 4: launch_token_major<T, kVec, 4>(p, c.stream); break;
        default: launch_token_major<T, kVec, 2>(p, c.stream); break;
      }
    } else {
    const unsigned blocks = cuda::grid_for(total, kThreads);
    switch (p.width) {
      case 2: conv1d_kernel<T, 2><<<blocks, kThreads, 0, c.stream>>>(p); break;
      case 3: conv1d_kernel<T, 3><<<blocks, kThreads, 0, c.stream>>>(p); break;
      case 4: conv1d_kernel<T, 4><<<blocks, kThreads, 0, c.stream>>>(p); break;
      default: throw Error("conv1d", "unsupported width " + std::to_string(p.width));
    }
    cuda_check_launch("conv1d_kernel");
    }
    if (p.state) {
      final_state_kernel<T><<<cuda::grid_for(p.batch * p.dim * p.state_len, kThreads), kThreads, 0, c.stream>>>(p);
      cuda_check_launch("conv1d final_state_kernel");
    }
  });
}

void conv1d_update_cuda(Context& ctx, const Conv1dUpdateParams& p) {
  Context::Cuda& c = ctx.cuda();
  CudaDeviceGuard guard(c.device);
  cuda::dispatch_io(p.io, [&](auto tag) {
    using T = decltype(tag);
    conv1d_update_kernel<T><<<cuda::grid_for(p.batch * p.dim, kThreads), kThreads, 0, c.stream>>>(p);
    cuda_check_launch("conv1d_update_kernel");
  });
}

}  // namespace mcv::kernels::conv1d_detail
