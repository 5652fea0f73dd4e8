#pragma once
// The core's private door to the CUDA runtime. Implemented by core/cuda/runtime.cu when the
// library is built with CUDA, and by core/src/no_cuda.cpp (clear errors) otherwise, so tensor.cpp
// and friends compile without CUDA headers.

#include <cstddef>
#include <cstdint>

#include "mcv/dtype.h"

namespace mcv::cuda_bridge {

void* device_alloc(std::size_t bytes, int device);
void device_free(void* ptr, int device);
/// Synchronous copy; `dst_device` / `src_device` < 0 mean host memory.
void memcpy(void* dst, int dst_device, const void* src, int src_device, std::size_t bytes);
void memset_zero(void* dst, int device, std::size_t bytes);

/// Strided copy with dtype conversion entirely on one device (rank <= 8, element strides).
void strided_copy(void* dst, DType dst_dtype, const std::int64_t* dst_strides, const void* src,
                  DType src_dtype, const std::int64_t* src_strides, const std::int64_t* shape,
                  int rank, int device);

}  // namespace mcv::cuda_bridge
