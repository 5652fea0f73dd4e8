#pragma once
// Device helpers shared by the nn CUDA files: activations (precise libm calls: the oracles are f32
// without fast math), warp reductions, the row-grid launch shape and the fused
// bias/activation/residual epilogue. Element conversion and the dtype switch are
// common/cuda_dtype.cuh's.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "common/cuda_dtype.cuh"
#include "common/cuda_math.cuh"
#include "mcv/cuda/context.cuh"
#include "nn/nn_internal.h"

namespace mcv::kernels::nn_detail::cu {

using cuda::from_float;
using cuda::grid_for;
using cuda::load_param;
using cuda::store_param;
using cuda::to_float;

__device__ __forceinline__ float activate(Activation a, float v) {
  switch (a) {
    case Activation::none: return v;
    case Activation::relu: return v > 0.0f ? v : 0.0f;
    case Activation::gelu: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case Activation::gelu_tanh: return 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    case Activation::silu: return cuda::silu(v);
  }
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/// Calls fn(T{}) with T the CUDA storage type of an I/O dtype.
template <typename Fn>
void dispatch(DType dtype, Fn&& fn) {
  cuda::dispatch_io(dtype, std::forward<Fn>(fn), "nn cuda");
}

/// Launch shape for row-wise elementwise kernels: 2^lanes_log2 threads share a row (a power of
/// two <= 256 covering the row when it is short), the rest of the block takes further rows. The
/// kernels then index (row, column) with no per-element division.
struct RowGrid {
  unsigned blocks = 1;
  int threads = 256;
  int lanes_log2 = 5;
};
inline RowGrid row_grid(std::int64_t rows, std::int64_t cols) {
  RowGrid g;
  int lanes = 32;
  while (lanes < cols && lanes < 256) lanes *= 2;
  g.lanes_log2 = 0;
  while ((1 << g.lanes_log2) < lanes) ++g.lanes_log2;
  const std::int64_t rows_per_block = g.threads / lanes;
  g.blocks = static_cast<unsigned>(std::clamp<std::int64_t>((rows + rows_per_block - 1) / rows_per_block, 1, 1 << 20));
  return g;
}
/// for (r, c) over rows x cols in a kernel launched with row_grid().
#define MCV_NN_FOR_ROWS_COLS(rows, cols, lanes_log2, r, c)                                                  \
  for (std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * (blockDim.x >> (lanes_log2)) +             \
                        (threadIdx.x >> (lanes_log2));                                                     \
       r < (rows); r += static_cast<std::int64_t>(gridDim.x) * (blockDim.x >> (lanes_log2)))               \
    for (std::int64_t c = threadIdx.x & ((1u << (lanes_log2)) - 1u); c < (cols); c += (1 << (lanes_log2)))

/// out[r, c] = act(src[r, c] + bias[c]) + residual[r, c] over rows x cols (src and out have the
/// I/O dtype; src may be out itself; residual f32 or I/O dtype, or null).
void launch_epilogue(cudaStream_t stream, DType dtype, std::int64_t rows, std::int64_t cols, const void* src,
                     std::int64_t lds, Vec bias, Activation act, const void* residual, bool residual_f32,
                     std::int64_t ldr, void* out, std::int64_t ldo);

/// Throws when n does not fit the int a library call takes.
inline int to_int(std::int64_t n, const char* what) {
  if (n < 0 || n > 0x7fffffff) throw Error(std::string("nn cuda: ") + what, std::to_string(n) + " does not fit in int");
  return static_cast<int>(n);
}

}  // namespace mcv::kernels::nn_detail::cu
