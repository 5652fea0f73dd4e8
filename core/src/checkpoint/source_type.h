#pragma once
// Element types as files store them, and how each becomes a tensor of a supported DType.

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "mcv/dtype.h"
#include "mcv/tensor.h"

namespace mcv::checkpoint {

/// Stored element types we can read. Those without a DType of their own are widened losslessly
/// (bool -> u8, i8/i16 -> i32, u16 -> i32) or, for f64, rounded to f32 (the precision models run in).
enum class SourceType { f64, f32, f16, bf16, i64, i32, i16, i8, u8, u16, boolean };

std::size_t source_size(SourceType t);
DType target_dtype(SourceType t);
const char* source_name(SourceType t);
/// Same bytes, same meaning: the stored data can be viewed in place.
bool is_zero_copy(SourceType t);

/// safetensors dtype strings ("F32", "BF16", "BOOL", ...).
std::optional<SourceType> parse_safetensors_type(std::string_view text);
/// PyTorch storage classes ("FloatStorage", "BFloat16Storage", ...), without the "torch." part.
std::optional<SourceType> parse_torch_storage_type(std::string_view class_name);

/// A 1-D tensor of `count` elements made from little-endian bytes at `data`. Zero-copy (a view
/// kept alive by `owner`) when the type needs no conversion and `data` is aligned to the element
/// size; otherwise a converted copy.
Tensor storage_tensor(const std::uint8_t* data, std::int64_t count, SourceType type,
                      const std::shared_ptr<void>& owner);

}  // namespace mcv::checkpoint
