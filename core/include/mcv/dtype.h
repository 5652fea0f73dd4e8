#pragma once
/// \file
/// Element types and the f16/bf16 <-> f32 conversions (round to nearest, ties to even).

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace mcv {

enum class DType : std::uint8_t { f32, f16, bf16, i32, i64, u8 };

/// Bytes per element.
constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f16: return 2;
    case DType::bf16: return 2;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::u8: return 1;
  }
  return 0;
}

constexpr bool is_floating(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

/// Short lowercase name: "f32", "bf16", ...
const char* dtype_name(DType t);
/// Parses "f32"/"float32", "f16"/"float16"/"half", "bf16"/"bfloat16", "i32", "i64", "u8".
/// Throws mcv::Error naming the text when unknown.
DType parse_dtype(std::string_view text);

/// IEEE binary16 stored as its bit pattern.
struct Half { std::uint16_t bits; };
/// bfloat16 stored as its bit pattern (the high half of an f32).
struct BFloat16 { std::uint16_t bits; };

inline std::uint32_t f32_bits(float f) { std::uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float f32_from_bits(std::uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

/// f32 -> bf16, round to nearest even; NaN stays NaN (quiet), never rounds to Inf.
inline BFloat16 to_bf16(float f) {
  std::uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return BFloat16{static_cast<std::uint16_t>((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return BFloat16{static_cast<std::uint16_t>(u >> 16)};
}
inline float from_bf16(BFloat16 h) { return f32_from_bits(static_cast<std::uint32_t>(h.bits) << 16); }

/// f32 -> f16, round to nearest even, overflow to Inf, gradual underflow to subnormals.
Half to_half(float f);
float from_half(Half h);

}  // namespace mcv
