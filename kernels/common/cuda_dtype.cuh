#pragma once
// Device element conversion shared by the CUDA ops: I/O elements (f32, f16, bf16) to and from f32,
// parameters stored as f32 or as the I/O type, the dtype switch, and the grid-stride launch size.
// Private to the kernels library. to_float / from_float are templates with one specialisation per
// storage type, so both to_float(v) and to_float<T>(v) work (the selective-scan kernels use the
// explicit form).

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "mcv/dtype.h"
#include "mcv/error.h"

namespace mcv::kernels::cuda {

template <typename T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

/// Round to nearest even, as PyTorch's casts do.
template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

/// Two f32 values rounded (to nearest even) to a 16-bit T by one packed conversion, as one 32-bit
/// word with lo in the low half: an mma operand register, or two adjacent elements.
template <typename T>
__device__ __forceinline__ std::uint32_t pack2(float lo, float hi) {
  static_assert(std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>, "pack2: 16-bit types");
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&v);
  } else {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const std::uint32_t*>(&v);
  }
}

/// kN elements of U, aligned so that the compiler emits one vector access per 16 bytes:
/// memory-bound kernels issue an eighth of the load instructions of 16-bit scalar code.
template <typename U, int kN>
struct alignas(sizeof(U) * kN < 16 ? sizeof(U) * kN : 16) Pack {
  U e[kN];
};

/// v[i] = float(p[i]) for i < kN; p aligned to min(16, kN * sizeof(U)) bytes (callers check). An
/// f32 parameter beside 16-bit data (kN = 8) reads as two 16-byte words.
template <int kN, typename U>
__device__ __forceinline__ void load_vec(const U* p, float (&v)[kN]) {
  constexpr int kPer = sizeof(U) * kN < 16 ? kN : 16 / static_cast<int>(sizeof(U));
#pragma unroll
  for (int j = 0; j < kN; j += kPer) {
    const Pack<U, kPer> w = *reinterpret_cast<const Pack<U, kPer>*>(p + j);
#pragma unroll
    for (int k = 0; k < kPer; ++k) v[j + k] = to_float(w.e[k]);
  }
}

/// p[i] = v[i] rounded to U for i < kN; same alignment as load_vec.
template <int kN, typename U>
__device__ __forceinline__ void store_vec(U* p, const float (&v)[kN]) {
  constexpr int kPer = sizeof(U) * kN < 16 ? kN : 16 / static_cast<int>(sizeof(U));
#pragma unroll
  for (int j = 0; j < kN; j += kPer) {
    Pack<U, kPer> w;
#pragma unroll
    for (int k = 0; k < kPer; ++k) w.e[k] = from_float<U>(v[j + k]);
    *reinterpret_cast<Pack<U, kPer>*>(p + j) = w;
  }
}

/// Whether p is aligned for load_vec / store_vec of kN elements of U.
template <typename U, int kN>
inline bool vec_aligned(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % std::min<std::size_t>(16, sizeof(U) * kN) == 0;
}

/// Element i of a tensor stored as f32 (is_f32) or as T.
template <typename T>
__device__ __forceinline__ float load_param(const void* p, bool is_f32, std::int64_t i) {
  return is_f32 ? static_cast<const float*>(p)[i] : to_float(static_cast<const T*>(p)[i]);
}
/// Stores v as element i of a tensor stored as f32 (is_f32) or as T.
template <typename T>
__device__ __forceinline__ void store_param(void* p, bool is_f32, std::int64_t i, float v) {
  if (is_f32)
    static_cast<float*>(p)[i] = v;
  else
    static_cast<T*>(p)[i] = from_float<T>(v);
}

/// Calls fn(T{}) with T the CUDA storage type of an I/O dtype; other dtypes throw with `subject`
/// (the ops validate dtypes first, so that is a library bug, not a user error).
template <typename Fn>
void dispatch_io(DType dtype, Fn&& fn, const char* subject = "cuda kernel") {
  switch (dtype) {
    case DType::f32: fn(float{}); return;
    case DType::f16: fn(__half{}); return;
    case DType::bf16: fn(__nv_bfloat16{}); return;
    default: throw Error(subject, std::string("unsupported dtype ") + dtype_name(dtype));
  }
}

/// Blocks for a grid-stride loop over n elements: at least 1, at most 2^20 (the loop covers the
/// rest).
inline unsigned grid_for(std::int64_t n, int threads) {
  const std::int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, 1 << 20));
}

}  // namespace mcv::kernels::cuda
