#pragma once
/// \file
/// Still images: decoding JPEG (libjpeg-turbo), PNG (libpng), BMP and TGA (stb), writing PNG, and
/// the conversions a model pipeline needs.
///
/// Decoding reproduces what PIL (and so the official PyTorch / timm pipelines) sees:
/// - JPEG: libjpeg-turbo with PIL's settings (accurate integer IDCT, fancy upsampling, no
///   dithering). Grayscale stays 1 channel. CMYK and YCCK JPEGs are converted to RGB exactly as
///   `Image.open(f).convert('RGB')` does (Adobe-inverted CMYK undone, no ICC colour management).
/// - PNG: every colour type at every bit depth; palettes expand to RGB, tRNS becomes an alpha
///   channel, 1/2/4-bit gray is scaled to 8 bits, 16-bit samples stay 16-bit. Gamma and ICC
///   chunks are ignored, as PIL ignores them.
/// - EXIF orientation is not applied (PIL's open does not apply it either).
/// The format is found from the content, never from the file name. Corrupt, truncated or
/// oversized input is an mcv::Error naming the file; nothing is decoded into a partial image.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mcv/tensor.h"

namespace mcv {

/// An 8- or 16-bit image in row-major, interleaved (HWC) order without row padding. 16-bit samples
/// are stored as native-endian std::uint16_t.
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;   ///< 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA
  int bit_depth = 8;  ///< 8 or 16
  std::vector<std::uint8_t> pixels;

  /// A zero-filled image; throws mcv::Error on a non-positive size, an unsupported channel count
  /// or bit depth, or a size that does not fit in memory.
  static Image allocate(int width, int height, int channels, int bit_depth = 8);

  bool empty() const { return pixels.empty(); }
  bool has_alpha() const { return channels == 2 || channels == 4; }
  int bytes_per_sample() const { return bit_depth / 8; }
  std::size_t row_bytes() const;
  std::size_t size_bytes() const;
  /// Largest sample value: 255 or 65535.
  int max_value() const { return bit_depth == 16 ? 65535 : 255; }

  std::uint8_t* row(int y) { return pixels.data() + static_cast<std::size_t>(y) * row_bytes(); }
  const std::uint8_t* row(int y) const { return pixels.data() + static_cast<std::size_t>(y) * row_bytes(); }
  /// Sample of channel `c` at column `x`, row `y` (bounds-checked; for tests and small tools).
  int sample(int x, int y, int c) const;
  void set_sample(int x, int y, int c, int value);

  /// Throws mcv::Error(subject, ...) unless the fields describe a consistent image.
  void validate(const std::string& subject) const;
};

/// Caps that protect against decompression bombs: checked against the dimensions a file declares,
/// before any pixel memory is allocated.
struct ImageLimits {
  std::int64_t max_pixels = std::int64_t(1) << 28;   ///< width * height (~268 megapixels)
  std::int64_t max_dimension = 1 << 20;              ///< width and height each
  std::int64_t max_file_bytes = std::int64_t(1) << 30;  ///< load_image reads at most this much
};

enum class ImageFormat { unknown, jpeg, png, bmp, tga };

/// "JPEG", "PNG", "BMP", "TGA" or "unknown".
const char* image_format_name(ImageFormat format);

/// Identifies the format from the leading bytes. TGA has no magic number: it is recognised by a
/// TGA 2.0 footer, or by a plausible TGA header when `name` ends in ".tga".
ImageFormat sniff_image_format(std::span<const std::uint8_t> bytes, std::string_view name = {});

/// Reads and decodes an image file. Missing files, directories, empty files, unknown formats and
/// every decoding failure are an mcv::Error naming `path`.
Image load_image(const std::filesystem::path& path, const ImageLimits& limits = {});

/// Decodes an image held in memory; `name` is the subject of error messages (and the TGA hint).
Image decode_image(std::span<const std::uint8_t> bytes, const std::string& name,
                   const ImageLimits& limits = {});

/// Encodes an image (any channel count, 8 or 16 bit) as a PNG file in memory.
std::string encode_png(const Image& image);

/// Writes a PNG atomically (temporary file, then rename): `path` is either the old file or the
/// complete new one.
void save_png(const std::filesystem::path& path, const Image& image);

/// How to_rgb8 reduces 16-bit gray images to 8 bits.
enum class Gray16ToRgb8 {
  /// As PIL: it opens 16-bit gray PNGs in its 32-bit integer mode "I", whose convert('RGB')
  /// clips at 255, so every value above 255 becomes white. Matches the official pipelines.
  pil_clip,
  /// value >> 8, as PIL does for 16-bit RGB, RGBA and gray + alpha PNGs.
  scale,
};

/// 8-bit RGB as PIL's `convert('RGB')` gives it: gray replicated, alpha dropped (not blended),
/// 16-bit samples reduced to their high byte (16-bit gray: see Gray16ToRgb8). The one known
/// difference from PIL: a 16-bit gray PNG with a tRNS chunk decodes to gray + alpha here, which is
/// scaled, where PIL would clip.
Image to_rgb8(const Image& image, Gray16ToRgb8 gray16 = Gray16ToRgb8::pil_clip);
/// As above; an image that already is 8-bit RGB is moved through without a copy.
Image to_rgb8(Image&& image, Gray16ToRgb8 gray16 = Gray16ToRgb8::pil_clip);

enum class TensorLayout { chw, hwc };

/// A CPU f32 tensor of the samples divided by max_value() (so in [0, 1], as torchvision's
/// ToTensor), shaped [C, H, W] or [H, W, C]. All channels are kept; call to_rgb8 first for a
/// model input.
Tensor image_to_tensor(const Image& image, TensorLayout layout = TensorLayout::chw);

}  // namespace mcv
