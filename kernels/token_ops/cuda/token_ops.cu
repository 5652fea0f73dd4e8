// CUDA token ops. embed_tokens: one thread per output element, consecutive threads along C, so
// loads and stores coalesce (memory-bound: one read and one write per element). max_tokens: one
// thread per (batch, channel) column walking the tokens; consecutive threads read consecutive
// channels of one token row, so each step of the walk is one coalesced row read.

#include "common/cuda_dtype.cuh"
#include "mcv/cuda/context.cuh"
#include "token_ops/token_ops_params.h"

namespace mcv::kernels::token_ops_detail {

namespace {

using cuda::from_float;
using cuda::load_param;
using cuda::to_float;

constexpr int kThreads = 256;

template <typename T>
__global__ void embed_kernel(EmbedParams p) {
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const std::int64_t total = p.batch * p.len * p.channels;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t c = i % p.channels, t = i / p.channels % p.len, b = i / (p.channels * p.len);
    const std::int64_t src = embed_source(p, t);
    float v = src >= 0 ? load_param<T>(p.tok, p.tok_f32, src * p.tok_sr + c)
                       : to_float(x[b * p.x_sb + (-1 - src) * p.x_st + c]);
    if (p.pos) v += load_param<T>(p.pos, p.pos_f32, t * p.pos_sr + c);
    out[b * p.o_sb + t * p.o_st + c] = from_float<T>(v);
  }
}

template <typename T>
__global__ void max_kernel(MaxParams p) {
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  const std::int64_t total = p.batch * p.channels;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t c = i % p.channels, b = i / p.channels;
    const T* col = x + b * p.x_sb + c;
    float acc = to_float(col[0]);
    for (std::int64_t t = 1; t < p.len; ++t) {
      const float v = to_float(col[t * p.x_st]);
      // NaN wins, as in torch.max.
      if (isnan(v) || (!isnan(acc) && v > acc)) acc = v;
    }
    out[b * p.o_sb + c] = from_float<T>(acc);
  }
}

}  // namespace

void embed_tokens_cuda(Context& ctx, const EmbedParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  const cudaStream_t stream = ctx.cuda().stream;
  cuda::dispatch_io(p.io, [&](auto tag) {
    using T = decltype(tag);
    embed_kernel<T><<<cuda::grid_for(p.batch * p.len * p.channels, kThreads), kThreads, 0, stream>>>(p);
  });
  cuda_check_launch("embed_tokens");
}

void max_tokens_cuda(Context& ctx, const MaxParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  const cudaStream_t stream = ctx.cuda().stream;
  cuda::dispatch_io(p.io, [&](auto tag) {
    using T = decltype(tag);
    max_kernel<T><<<cuda::grid_for(p.batch * p.channels, kThreads), kThreads, 0, stream>>>(p);
  });
  cuda_check_launch("max_tokens");
}

}  // namespace mcv::kernels::token_ops_detail
