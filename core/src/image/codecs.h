#pragma once
// Internal: one decoder per container format, and the checks they share. Each decoder throws
// mcv::Error(name, ...) and never returns a partial image.

#include <cstdint>
#include <span>
#include <string>

#include "mcv/image.h"

namespace mcv::image_detail {

Image decode_jpeg(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits);
Image decode_png(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits);
/// BMP and TGA through stb_image.
Image decode_stb(std::span<const std::uint8_t> bytes, const std::string& name, ImageFormat format,
                 const ImageLimits& limits);

/// Throws unless a declared width x height (from a file header) is non-empty and within `limits`;
/// called before any pixel memory is allocated.
void check_dimensions(const std::string& name, const char* format, std::int64_t width,
                      std::int64_t height, int channels, const ImageLimits& limits);

}  // namespace mcv::image_detail
