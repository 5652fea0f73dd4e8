// CUDA depthwise conv1d and its single-step update. One thread per output element; consecutive
// threads take consecutive elements along the contiguous axis (t for channel-major, d for
// token-major), so loads and stores coalesce and the W-fold reuse of each input is served by L1.
// The op is memory-bound (a handful of FLOPs per element), so this simple form is what it needs.

#include "common/cuda_dtype.cuh"
#include "common/cuda_math.cuh"
#include "conv1d/conv1d_params.h"
#include "mcv/cuda/context.cuh"

namespace mcv::kernels::conv1d_detail {

namespace {

using cuda::from_float;
using cuda::load_param;
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

}  // namespace

void conv1d_cuda(Context& ctx, const Conv1dParams& p) {
  Context::Cuda& c = ctx.cuda();
  CudaDeviceGuard guard(c.device);
  const std::int64_t total = p.batch * p.dim * p.len;
  cuda::dispatch_io(p.io, [&](auto tag) {
    using T = decltype(tag);
    const unsigned blocks = cuda::grid_for(total, kThreads);
    switch (p.width) {
      case 2: conv1d_kernel<T, 2><<<blocks, kThreads, 0, c.stream>>>(p); break;
      case 3: conv1d_kernel<T, 3><<<blocks, kThreads, 0, c.stream>>>(p); break;
      case 4: conv1d_kernel<T, 4><<<blocks, kThreads, 0, c.stream>>>(p); break;
      default: throw Error("conv1d", "unsupported width " + std::to_string(p.width));
    }
    cuda_check_launch("conv1d_kernel");
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
