#pragma once
// Device helpers shared by the conv1d, ssm_step and ssd CUDA paths: element conversion to and
// from f32, parameters stored as f32 or the I/O type, PyTorch's softplus, and the dtype switch.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "mcv/dtype.h"
#include "mcv/error.h"

namespace mcv::kernels::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

/// Element i of a parameter stored as f32 or as T.
template <typename T>
__device__ __forceinline__ float load_param(const void* p, bool is_f32, std::int64_t i) {
  return is_f32 ? static_cast<const float*>(p)[i] : to_float(static_cast<const T*>(p)[i]);
}

/// PyTorch's softplus (beta 1, threshold 20); precise log1pf/expf, as the oracles use no fast math.
__device__ __forceinline__ float softplus(float v) { return v <= 20.0f ? log1pf(expf(v)) : v; }
__device__ __forceinline__ float silu(float v) { return v / (1.0f + expf(-v)); }

/// Calls fn(T{}) with T the CUDA storage type of an I/O dtype.
template <typename Fn>
void dispatch_io(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f32: fn(float{}); return;
    case DType::f16: fn(__half{}); return;
    case DType::bf16: fn(__nv_bfloat16{}); return;
    default: throw Error("cuda kernel", std::string("unsupported dtype ") + dtype_name(dtype));
  }
}

/// Blocks for a grid-stride loop over n elements.
inline unsigned grid_for(std::int64_t n, int threads) {
  const std::int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, 1 << 20));
}

}  // namespace mcv::kernels::cuda
