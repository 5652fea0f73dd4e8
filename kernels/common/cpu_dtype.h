#pragma once
// Host element conversion shared by the CPU paths of the ops: I/O elements (f32, f16, bf16) to
// and from f32, parameters stored as f32 or as the I/O type, elements of a dtype known only at run
// time, and the dtype switch. Private to the kernels library; written so that the selective-scan
// CPU body (which has its own copies for now) can use it as it is.

#include <cstdint>
#include <string>

#include "mcv/dtype.h"
#include "mcv/error.h"

namespace mcv::kernels::cpu {

inline float to_f32(float v) { return v; }
inline float to_f32(Half v) { return from_half(v); }
inline float to_f32(BFloat16 v) { return from_bf16(v); }

/// Round to nearest even, as PyTorch's casts do.
template <typename T>
inline T from_f32(float v);
template <>
inline float from_f32<float>(float v) { return v; }
template <>
inline Half from_f32<Half>(float v) { return to_half(v); }
template <>
inline BFloat16 from_f32<BFloat16>(float v) { return to_bf16(v); }

/// Reads element i of a parameter stored as f32 (is_f32) or as T.
template <typename T>
inline float load_param(const void* p, bool is_f32, std::int64_t i) {
  return is_f32 ? static_cast<const float*>(p)[i] : to_f32(static_cast<const T*>(p)[i]);
}

/// Calls fn(T{}) with T the storage type of an I/O dtype (f32, f16, bf16).
template <typename Fn>
void dispatch_io(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f32: fn(float{}); return;
    case DType::f16: fn(Half{}); return;
    case DType::bf16: fn(BFloat16{}); return;
    default: throw Error("cpu kernel", std::string("unsupported dtype ") + dtype_name(dtype));
  }
}

/// Address of element i of an array of dtype t.
inline const void* element_ptr(const void* base, DType t, std::int64_t i) {
  return static_cast<const char*>(base) + i * static_cast<std::int64_t>(dtype_size(t));
}
inline void* element_ptr(void* base, DType t, std::int64_t i) {
  return static_cast<char*>(base) + i * static_cast<std::int64_t>(dtype_size(t));
}

/// Element i of an I/O-dtype array (f16, bf16, else f32) as float; for loops whose dtype is a
/// run-time value.
inline float load_element(const void* base, DType t, std::int64_t i = 0) {
  switch (t) {
    case DType::f16: return from_half(static_cast<const Half*>(base)[i]);
    case DType::bf16: return from_bf16(static_cast<const BFloat16*>(base)[i]);
    default: return static_cast<const float*>(base)[i];
  }
}
/// Stores v as element i of an I/O-dtype array (f16, bf16, else f32), rounding to nearest even.
inline void store_element(void* base, DType t, std::int64_t i, float v) {
  switch (t) {
    case DType::f16: static_cast<Half*>(base)[i] = to_half(v); break;
    case DType::bf16: static_cast<BFloat16*>(base)[i] = to_bf16(v); break;
    default: static_cast<float*>(base)[i] = v; break;
  }
}

}  // namespace mcv::kernels::cpu
