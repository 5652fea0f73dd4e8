#include "source_type.h"

#include <cstring>

namespace mcv::checkpoint {

std::size_t source_size(SourceType t) {
  switch (t) {
    case SourceType::f64: case SourceType::i64: return 8;
    case SourceType::f32: case SourceType::i32: return 4;
    case SourceType::f16: case SourceType::bf16: case SourceType::i16: case SourceType::u16: return 2;
    case SourceType::i8: case SourceType::u8: case SourceType::boolean: return 1;
  }
  return 1;
}

DType target_dtype(SourceType t) {
  switch (t) {
    case SourceType::f64: case SourceType::f32: return DType::f32;
    case SourceType::f16: return DType::f16;
    case SourceType::bf16: return DType::bf16;
    case SourceType::i64: return DType::i64;
    case SourceType::i32: case SourceType::i16: case SourceType::i8: case SourceType::u16: return DType::i32;
    case SourceType::u8: case SourceType::boolean: return DType::u8;
  }
  return DType::u8;
}

const char* source_name(SourceType t) {
  switch (t) {
    case SourceType::f64: return "f64";
    case SourceType::f32: return "f32";
    case SourceType::f16: return "f16";
    case SourceType::bf16: return "bf16";
    case SourceType::i64: return "i64";
    case SourceType::i32: return "i32";
    case SourceType::i16: return "i16";
    case SourceType::i8: return "i8";
    case SourceType::u8: return "u8";
    case SourceType::u16: return "u16";
    case SourceType::boolean: return "bool";
  }
  return "?";
}

bool is_zero_copy(SourceType t) {
  return source_size(t) == dtype_size(target_dtype(t));
}

std::optional<SourceType> parse_safetensors_type(std::string_view s) {
  if (s == "F64") return SourceType::f64;
  if (s == "F32") return SourceType::f32;
  if (s == "F16") return SourceType::f16;
  if (s == "BF16") return SourceType::bf16;
  if (s == "I64") return SourceType::i64;
  if (s == "I32") return SourceType::i32;
  if (s == "I16") return SourceType::i16;
  if (s == "I8") return SourceType::i8;
  if (s == "U8") return SourceType::u8;
  if (s == "U16") return SourceType::u16;
  if (s == "BOOL") return SourceType::boolean;
  return std::nullopt;
}

std::optional<SourceType> parse_torch_storage_type(std::string_view s) {
  if (s == "DoubleStorage") return SourceType::f64;
  if (s == "FloatStorage") return SourceType::f32;
  if (s == "HalfStorage") return SourceType::f16;
  if (s == "BFloat16Storage") return SourceType::bf16;
  if (s == "LongStorage") return SourceType::i64;
  if (s == "IntStorage") return SourceType::i32;
  if (s == "ShortStorage") return SourceType::i16;
  if (s == "CharStorage") return SourceType::i8;
  if (s == "ByteStorage") return SourceType::u8;
  if (s == "BoolStorage") return SourceType::boolean;
  return std::nullopt;
}

namespace {

template <typename Src, typename Dst>
void convert(const std::uint8_t* src, Dst* dst, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i) {
    Src v;
    std::memcpy(&v, src + i * static_cast<std::int64_t>(sizeof(Src)), sizeof(Src));
    dst[i] = static_cast<Dst>(v);
  }
}

}  // namespace

Tensor storage_tensor(const std::uint8_t* data, std::int64_t count, SourceType type,
                      const std::shared_ptr<void>& owner) {
  const DType dtype = target_dtype(type);
  const std::size_t es = source_size(type);
  if (is_zero_copy(type)) {
    if (reinterpret_cast<std::uintptr_t>(data) % es == 0)
      return Tensor::from_blob(const_cast<std::uint8_t*>(data), {count}, dtype, Device::cpu(), owner);
    Tensor copy = Tensor::empty({count}, dtype);
    if (count) std::memcpy(copy.raw_data(), data, static_cast<std::size_t>(count) * es);
    return copy;
  }
  Tensor out = Tensor::empty({count}, dtype);
  switch (type) {
    case SourceType::f64: convert<double>(data, out.data<float>(), count); break;
    case SourceType::i16: convert<std::int16_t>(data, out.data<std::int32_t>(), count); break;
    case SourceType::i8: convert<std::int8_t>(data, out.data<std::int32_t>(), count); break;
    case SourceType::u16: convert<std::uint16_t>(data, out.data<std::int32_t>(), count); break;
    default: break;  // every other type is zero-copy
  }
  return out;
}

}  // namespace mcv::checkpoint
