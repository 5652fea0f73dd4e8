#pragma once
// Device helpers shared by the nn CUDA files: activations (GELU by precise libm calls, the oracles
// being f32 without fast math; SiLU is common/cuda_math.cuh's MUFU form), warp reductions, the
// vector accesses and flat launch shape of the memory-bound rows x cols kernels, and the fused
// bias/activation/residual epilogue. Element conversion and the dtype switch are
// common/cuda_dtype.cuh's.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "common/cuda_dtype.cuh"
#include "common/cuda_math.cuh"
#include "mcv/cuda/context.cuh"
#include "nn/nn_internal.h"

namespace mcv::kernels::nn_detail::cu {

using cuda::FastDiv;
using cuda::from_float;
using cuda::grid_for;
using cuda::load_param;
using cuda::load_vec;
using cuda::pack2;
using cuda::Pack;
using cuda::store_vec;
using cuda::store_param;
using cuda::vec_aligned;
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

// ---- Memory-bound row kernels ---------------------------------------------------------------
//
// The rows x cols kernels (epilogue, elementwise, batch norm, the norms) move kVec elements per
// access: 16 bytes of the I/O type (8 halves or 4 floats) when every pointer, leading dimension
// and the column count allow it, one element otherwise (vec_width decides at run time). A
// parameter or residual stored as f32 beside 16-bit I/O is then read as two 16-byte words.

/// Streaming multiprocessors of the current device (cached per device: grid sizes need it on
/// every launch).
inline int sm_count() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) return 132;
  int n = cache[dev].load(std::memory_order_relaxed);
  if (n <= 0) {
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) n = 132;
    cache[dev].store(n, std::memory_order_relaxed);  // every writer stores the same value
  }
  return n;
}

/// load_vec / store_vec of a tensor stored as f32 (is_f32) or as T, at element offset i.
template <typename T, int kN>
__device__ __forceinline__ void load_vec(const void* p, bool is_f32, std::int64_t i, float (&v)[kN]) {
  if (is_f32)
    load_vec<kN>(static_cast<const float*>(p) + i, v);
  else
    load_vec<kN>(static_cast<const T*>(p) + i, v);
}
template <typename T, int kN>
__device__ __forceinline__ void store_vec(void* p, bool is_f32, std::int64_t i, const float (&v)[kN]) {
  if (is_f32)
    store_vec<kN>(static_cast<float*>(p) + i, v);
  else
    store_vec<kN>(static_cast<T*>(p) + i, v);
}

/// One operand of a rows x cols kernel, for the vector-width check: base pointer, element size
/// in bytes, row stride in elements. A null pointer is no constraint.
struct VecOperand {
  const void* data = nullptr;
  int elem_size = 0;
  std::int64_t ld = 0;
};

/// `vec` (elements per access) when cols and every operand allow it, else 1: each operand's
/// pointer aligned to min(16, vec * elem_size) bytes and, when there is more than one row, its
/// row stride a multiple of vec.
inline int vec_width(int vec, std::int64_t rows, std::int64_t cols, std::initializer_list<VecOperand> ops) {
  if (cols % vec != 0) return 1;
  for (const VecOperand& o : ops) {
    if (!o.data) continue;
    const std::uintptr_t align = static_cast<std::uintptr_t>(std::min(16, vec * o.elem_size));
    if (reinterpret_cast<std::uintptr_t>(o.data) % align != 0) return 1;
    if (rows > 1 && o.ld % vec != 0) return 1;
  }
  return vec;
}

/// Elements of I/O type T in 16 bytes.
template <typename T>
constexpr int kVec16 = 16 / static_cast<int>(sizeof(T));

/// Launch shape of a flat loop over rows x (cols / vec) vectors with 32-bit indices (the
/// launchers split larger problems into row ranges below 2^31 vectors): 256-thread blocks, fewer
/// threads when that leaves SMs idle (batch 1), and at most 16 blocks per SM (grid-stride loops
/// take the rest).
struct FlatGrid {
  unsigned blocks = 1;
  int threads = 256;
};
inline FlatGrid flat_grid(std::int64_t total) {
  const int sms = sm_count();
  FlatGrid g;
  while (g.threads > 64 && (total + g.threads - 1) / g.threads < 2 * sms) g.threads /= 2;
  g.blocks = static_cast<unsigned>(std::clamp<std::int64_t>((total + g.threads - 1) / g.threads, 1, 16 * sms));
  return g;
}

/// Calls fn(first_row, rows_here) over consecutive row ranges each holding fewer than 2^31
/// vectors of `vec` elements, so kernels index one range with 32-bit arithmetic. Ranges other
/// than the last hold a multiple of `row_multiple` rows (a broadcast period).
template <typename Fn>
void for_row_ranges(std::int64_t rows, std::int64_t cols, int vec, std::int64_t row_multiple, Fn&& fn) {
  const std::int64_t per_row = std::max<std::int64_t>(1, cols / vec);
  std::int64_t max_rows = std::max<std::int64_t>(1, ((std::int64_t{1} << 31) - 1) / per_row);
  if (row_multiple > max_rows) throw Error("nn cuda", "rows x cols too large for 32-bit indexing");
  max_rows -= max_rows % row_multiple;
  for (std::int64_t r0 = 0; r0 < rows; r0 += max_rows) fn(r0, std::min(max_rows, rows - r0));
}

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
