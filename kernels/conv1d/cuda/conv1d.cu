// CUDA depthwise conv1d and its single-step update. One thread per output element; consecutive
// threads take consecutive elements along the contiguous axis (t for channel-major, d for
// token-major), so loads and stores coalesce and the W-fold reuse of each input is served by L1.
// The op is memory-bound (a handful of FLOPs per element), so this simple form is what it needs.

#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>

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
// kVec consecutive channels (16 bytes per step) and strips of kSteps consecutive steps. All
// kSteps + W - 1 input vectors of a strip are copied to shared memory at once (cp.async: in flight
// together, no registers held) and the thread's kVec x W weights are loaded once (as 16-byte words
// when they are f32 and contiguous) and kept for all its strips. One 64-bit index division per
// strip instead of three per element: the one-thread-per-element kernel above spent most of its
// time on index arithmetic, 2-byte loads and per-element weight loads (10x the bytes floor on the
// H100). With SiLU cheap (cuda::silu) the op waits on memory latency, so with kPipe the grid is
// one resident wave and each thread walks its channel vector's strips (b, strip) = row, row +
// groups, ... with the next strip's copies in flight during the current one's arithmetic and
// stores (two staging buffers).
// Without kPipe every thread takes one strip (a grid of all strips), all copies first.
// Blocks of the pipelined form are half as large, so that its two buffers stay within 48 KB of
// static shared memory per block.
constexpr int token_major_threads(bool pipe) { return pipe ? kThreads / 2 : kThreads; }

template <typename T, int W, int kVec, int kSteps, bool kPipe>
__global__ void __launch_bounds__(token_major_threads(kPipe))
    conv1d_token_major_kernel(Conv1dParams p, int dvecs, int strips) {
  constexpr int kIn = kSteps + W - 1;
  constexpr int kBlock = token_major_threads(kPipe);
  using Vec = cuda::Pack<T, kVec>;
  // [buffer][input step][thread]: a warp's 16-byte reads of one step are 512 contiguous bytes.
  __shared__ Vec stage[kPipe ? 2 : 1][kIn][kBlock];
  // Thread -> (channel vector, first row): consecutive threads take consecutive channel vectors
  // of one row, so a warp's copies and stores of a step are contiguous. The few threads past the
  // last whole group of dvecs idle.
  const std::int64_t tid = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  const std::int64_t groups = static_cast<std::int64_t>(gridDim.x) * blockDim.x / dvecs;
  const std::int64_t rows = p.batch * strips;
  std::int64_t row = tid / dvecs;
  if (row >= groups || row >= rows) return;
  const int d0 = static_cast<int>(tid % dvecs) * kVec;
  const int len = static_cast<int>(p.len);
  const T* x = static_cast<const T*>(p.x) + d0;
  T* out = static_cast<T*>(p.out) + d0;

  const auto issue = [&](std::int64_t r, int buf) {
    const int t0 = static_cast<int>(r % strips) * kSteps;
    const T* xr = x + r / strips * p.x_sb;
#pragma unroll
    for (int i = 0; i < kIn; ++i) {
      const int tk = t0 - static_cast<int>(p.left) + i;
      const bool ok = tk >= 0 && tk < len;
      cuda::cp_async16_or_zero(&stage[buf][i][threadIdx.x], ok ? xr + static_cast<std::int64_t>(tk) * p.x_st : xr, ok);
    }
    cuda::cp_async_commit();
  };
  issue(row, 0);

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

  // Without kPipe nothing issues a second strip's copies: the launcher gives that form a grid of
  // every strip, so its threads take one each (issuing them here cost 10 registers, cuobjdump).
  for (int buf = 0; row < rows; row += groups, buf ^= 1) {
    if (kPipe && row + groups < rows) {
      issue(row + groups, buf ^ 1);
      cuda::cp_async_wait_pending<1>();
    } else {
      cuda::cp_async_wait_pending<0>();
    }
    const Vec(&in)[kIn][kBlock] = stage[kPipe ? buf : 0];
    const int t0 = static_cast<int>(row % strips) * kSteps;
    T* orow = out + row / strips * p.o_sb;
#pragma unroll
    for (int r = 0; r < kSteps; ++r) {
      if (t0 + r < len) {
        float acc[kVec];
#pragma unroll
        for (int c = 0; c < kVec; ++c) acc[c] = bias[c];
#pragma unroll
        for (int k = 0; k < W; ++k) {
          const Vec v = in[r + k][threadIdx.x];
#pragma unroll
          for (int c = 0; c < kVec; ++c) acc[c] += w[k][c] * to_float(v.e[c]);
        }
#pragma unroll
        for (int c = 0; c < kVec; ++c) acc[c] = p.silu ? cuda::silu(acc[c]) : acc[c];
        store_vec<kVec>(orow + static_cast<std::int64_t>(t0 + r) * p.o_st, acc);
      }
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

template <typename T, int W, int kVec, int kSteps, bool kPipe>
void launch_token_major_width(const Conv1dParams& p, const cudaDeviceProp& props, cudaStream_t stream) {
  const auto kernel = conv1d_token_major_kernel<T, W, kVec, kSteps, kPipe>;
  constexpr int kBlock = token_major_threads(kPipe);
  const int dvecs = static_cast<int>(p.dim / kVec);
  const int strips = static_cast<int>((p.len + kSteps - 1) / kSteps);
  const std::int64_t threads = p.batch * strips * static_cast<std::int64_t>(dvecs);
  std::int64_t blocks = (threads + kBlock - 1) / kBlock;
  if constexpr (kPipe) {
    // One resident wave (the occupancy of this instantiation, the same on every device of one
    // architecture), each thread taking several strips.
    static const int per_sm = [&] {
      int n = 0;
      return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kBlock, 0) == cudaSuccess ? std::max(n, 1)
                                                                                                   : 1;
    }();
    // Enough threads for one whole group of channel vectors at least.
    const std::int64_t wave = std::max<std::int64_t>(std::int64_t{per_sm} * props.multiProcessorCount,
                                                     (dvecs + kBlock - 1) / kBlock);
    blocks = std::min(blocks, wave);
  }
  kernel<<<static_cast<unsigned>(blocks), kBlock, 0, stream>>>(p, dvecs, strips);
  cuda_check_launch("conv1d_token_major_kernel");
}

template <typename T, int kVec, int kSteps, bool kPipe>
void launch_token_major(const Conv1dParams& p, const cudaDeviceProp& props, cudaStream_t stream) {
  switch (p.width) {
    case 2: launch_token_major_width<T, 2, kVec, kSteps, kPipe>(p, props, stream); break;
    case 3: launch_token_major_width<T, 3, kVec, kSteps, kPipe>(p, props, stream); break;
    case 4: launch_token_major_width<T, 4, kVec, kSteps, kPipe>(p, props, stream); break;
    default: throw Error("conv1d", "unsupported width " + std::to_string(p.width));
  }
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
      // give more threads. H100 (session 17, MUFU SiLU), us, one strip per thread / pipelined:
      // Vim-Ti's conv (128 x 197 x 384, a token-major slice of in_proj's output) bf16 8 steps
      // 22.4 / 19.9, 4 steps 29.3 / 20.3, 2 steps - / 21.4; f32 8 steps 32.5 / 32.6, 4 steps
      // 31.9 / 32.7, 2 steps - / 33.4. MambaVision-T's (128 x 196 x 160) bf16 8 steps 12.3 / 12.1,
      // 4 steps 11.8 / 11.6. So 16-bit I/O takes 8-step strips pipelined, f32 4-step strips one per
      // thread (its bytes keep the copies busy without the second buffer, which costs occupancy);
      // 2 steps where that leaves fewer than ~250 threads per SM (batch 1). MCV_CONV1D_STEPS=8/4/2
      // and MCV_CONV1D_PIPE=0/1 force one (comparisons, tests).
      const std::int64_t rows = p.batch * (p.dim / kVec);
      const int preferred = sizeof(T) == 2 ? 8 : 4;
      int steps = rows * ((p.len + preferred - 1) / preferred) >= 32 * 1024 ? preferred : 2;
      if (const char* e = std::getenv("MCV_CONV1D_STEPS"))
        for (const int s : {8, 4, 2})
          if (std::string(e) == std::to_string(s)) steps = s;
      bool pipe = sizeof(T) == 2;
      if (const char* e = std::getenv("MCV_CONV1D_PIPE")) pipe = std::string(e) != "0";
      const auto launch = [&](auto steps_tag) {
        constexpr int kSteps = decltype(steps_tag)::value;
        if (pipe)
          launch_token_major<T, kVec, kSteps, true>(p, c.props, c.stream);
        else
          launch_token_major<T, kVec, kSteps, false>(p, c.props, c.stream);
      };
      switch (steps) {
        case 8: launch(std::integral_constant<int, 8>{}); break;
        case 4: launch(std::integral_constant<int, 4>{}); break;
        default: launch(std::integral_constant<int, 2>{}); break;
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
