#include "mcv/image.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <limits>
#include <utility>

#include "codecs.h"
#include "mcv/error.h"
#include "mcv/file.h"

namespace mcv {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool starts_with(std::span<const std::uint8_t> bytes, std::string_view magic, std::size_t at = 0) {
  return bytes.size() >= at + magic.size() && std::memcmp(bytes.data() + at, magic.data(), magic.size()) == 0;
}

// TGA has no magic number; this accepts only headers whose every field has a legal value, so
// random bytes are rarely taken for a TGA (and then fail to decode rather than decode wrongly).
bool plausible_tga_header(std::span<const std::uint8_t> b) {
  if (b.size() < 18) return false;
  const int colormap_type = b[1], type = b[2];
  const int colormap_entry_bits = b[7];
  const int width = b[12] | (b[13] << 8), height = b[14] | (b[15] << 8), bits = b[16];
  if (colormap_type > 1 || width == 0 || height == 0) return false;
  const int base_type = type & ~8;
  if (type > 11 || base_type < 1 || base_type > 3) return false;
  if (base_type == 1) {
    if (colormap_type != 1 || (bits != 8 && bits != 16)) return false;
    if (colormap_entry_bits != 15 && colormap_entry_bits != 16 && colormap_entry_bits != 24 &&
        colormap_entry_bits != 32)
      return false;
  } else if (base_type == 2) {
    if (bits != 15 && bits != 16 && bits != 24 && bits != 32) return false;
  } else if (bits != 8 && bits != 16) {
    return false;
  }
  return true;
}

// Formats people will try that we do not decode, named in the error instead of "unknown".
const char* known_unsupported_format(std::span<const std::uint8_t> b) {
  if (starts_with(b, "GIF87a") || starts_with(b, "GIF89a")) return "GIF";
  if (starts_with(b, "RIFF") && starts_with(b, "WEBP", 8)) return "WebP";
  if (starts_with(b, std::string_view("II*\0", 4)) || starts_with(b, std::string_view("MM\0*", 4))) return "TIFF";
  if (starts_with(b, "ftyp", 4)) return "HEIF/AVIF";
  if (starts_with(b, std::string_view("\0\0\0\x0cjP  \r\n\x87\n", 12)) || starts_with(b, "\xff\x4f\xff\x51"))
    return "JPEG 2000";
  if (starts_with(b, "8BPS")) return "Photoshop";
  if (starts_with(b, "DICM", 128)) return "DICOM (use the medical image readers)";
  if (starts_with(b, std::string_view("\0\0\1\0", 4))) return "ICO";
  if (starts_with(b, "P1") || starts_with(b, "P2") || starts_with(b, "P3") || starts_with(b, "P4") ||
      starts_with(b, "P5") || starts_with(b, "P6"))
    return "PNM";
  return nullptr;
}

}  // namespace

// ---- Image ------------------------------------------------------------------------------------

Image Image::allocate(int width, int height, int channels, int bit_depth) {
  Image image;
  image.width = width;
  image.height = height;
  image.channels = channels;
  image.bit_depth = bit_depth;
  MCV_CHECK(width > 0 && height > 0, "image size ", width, " x ", height, " is empty or negative");
  MCV_CHECK(channels >= 1 && channels <= 4, "image channel count ", channels, " is not 1, 2, 3 or 4");
  MCV_CHECK(bit_depth == 8 || bit_depth == 16, "image bit depth ", bit_depth, " is not 8 or 16");
  const std::uint64_t bytes = static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height) *
                              static_cast<std::uint64_t>(channels) * static_cast<std::uint64_t>(bit_depth / 8);
  MCV_CHECK(bytes <= std::numeric_limits<std::size_t>::max() / 2, "image of ", width, " x ", height,
            " pixels is too large");
  image.pixels.assign(static_cast<std::size_t>(bytes), 0);
  return image;
}

std::size_t Image::row_bytes() const {
  return static_cast<std::size_t>(width) * static_cast<std::size_t>(channels) *
         static_cast<std::size_t>(bytes_per_sample());
}

std::size_t Image::size_bytes() const { return row_bytes() * static_cast<std::size_t>(height); }

int Image::sample(int x, int y, int c) const {
  MCV_CHECK(x >= 0 && x < width && y >= 0 && y < height && c >= 0 && c < channels, "image sample (", x,
            ", ", y, ", ", c, ") is outside a ", width, " x ", height, " x ", channels, " image");
  const std::size_t index = (static_cast<std::size_t>(y) * width + x) * channels + c;
  if (bit_depth == 8) return pixels[index];
  std::uint16_t v;
  std::memcpy(&v, pixels.data() + 2 * index, 2);
  return v;
}

void Image::set_sample(int x, int y, int c, int value) {
  MCV_CHECK(x >= 0 && x < width && y >= 0 && y < height && c >= 0 && c < channels, "image sample (", x,
            ", ", y, ", ", c, ") is outside a ", width, " x ", height, " x ", channels, " image");
  MCV_CHECK(value >= 0 && value <= max_value(), "image sample value ", value, " is outside [0, ",
            max_value(), "]");
  const std::size_t index = (static_cast<std::size_t>(y) * width + x) * channels + c;
  if (bit_depth == 8) {
    pixels[index] = static_cast<std::uint8_t>(value);
  } else {
    const auto v = static_cast<std::uint16_t>(value);
    std::memcpy(pixels.data() + 2 * index, &v, 2);
  }
}

void Image::validate(const std::string& subject) const {
  if (width <= 0 || height <= 0) throw Error(subject, detail::concat("image size ", width, " x ", height, " is empty"));
  if (channels < 1 || channels > 4)
    throw Error(subject, detail::concat("image channel count ", channels, " is not 1, 2, 3 or 4"));
  if (bit_depth != 8 && bit_depth != 16)
    throw Error(subject, detail::concat("image bit depth ", bit_depth, " is not 8 or 16"));
  const std::uint64_t want = static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height) *
                             static_cast<std::uint64_t>(channels) * static_cast<std::uint64_t>(bit_depth / 8);
  if (pixels.size() != want)
    throw Error(subject, detail::concat("image of ", width, " x ", height, " x ", channels, " at ", bit_depth,
                                        " bits needs ", want, " bytes of pixels but holds ", pixels.size()));
}

// ---- Formats ----------------------------------------------------------------------------------

const char* image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::jpeg: return "JPEG";
    case ImageFormat::png: return "PNG";
    case ImageFormat::bmp: return "BMP";
    case ImageFormat::tga: return "TGA";
    case ImageFormat::unknown: break;
  }
  return "unknown";
}

ImageFormat sniff_image_format(std::span<const std::uint8_t> bytes, std::string_view name) {
  if (starts_with(bytes, "\xff\xd8\xff")) return ImageFormat::jpeg;
  if (starts_with(bytes, "\x89PNG\r\n\x1a\n")) return ImageFormat::png;
  if (starts_with(bytes, "BM")) return ImageFormat::bmp;
  if (!plausible_tga_header(bytes)) return ImageFormat::unknown;
  static constexpr std::string_view kTgaFooter("TRUEVISION-XFILE.\0", 18);
  if (bytes.size() >= 18 + 26 && starts_with(bytes, kTgaFooter, bytes.size() - kTgaFooter.size()))
    return ImageFormat::tga;
  const std::string lname = lower(name);
  if (lname.size() >= 4 && lname.compare(lname.size() - 4, 4, ".tga") == 0) return ImageFormat::tga;
  return ImageFormat::unknown;
}

namespace image_detail {

void check_dimensions(const std::string& name, const char* format, std::int64_t width, std::int64_t height,
                      int channels, const ImageLimits& limits) {
  if (width <= 0 || height <= 0)
    throw Error(name, detail::concat(format, " image declares an empty size of ", width, " x ", height, " pixels"));
  if (width > limits.max_dimension || height > limits.max_dimension)
    throw Error(name, detail::concat(format, " image declares ", width, " x ", height,
                                     " pixels, beyond the limit of ", limits.max_dimension, " per side"));
  if (width * height > limits.max_pixels)
    throw Error(name, detail::concat(format, " image declares ", width, " x ", height, " = ", width * height,
                                     " pixels, beyond the limit of ", limits.max_pixels));
  if (channels < 1 || channels > 4)
    throw Error(name, detail::concat(format, " image has ", channels, " channels; 1 to 4 are supported"));
}

}  // namespace image_detail

Image decode_image(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits) {
  if (bytes.empty()) throw Error(name, "empty file, not an image");
  Image image;
  switch (sniff_image_format(bytes, name)) {
    case ImageFormat::jpeg: image = image_detail::decode_jpeg(bytes, name, limits); break;
    case ImageFormat::png: image = image_detail::decode_png(bytes, name, limits); break;
    case ImageFormat::bmp: image = image_detail::decode_stb(bytes, name, ImageFormat::bmp, limits); break;
    case ImageFormat::tga: image = image_detail::decode_stb(bytes, name, ImageFormat::tga, limits); break;
    case ImageFormat::unknown: {
      if (const char* other = known_unsupported_format(bytes))
        throw Error(name, std::string(other) + " images are not supported (JPEG, PNG, BMP and TGA are)");
      throw Error(name, "not a recognised image (JPEG, PNG, BMP or TGA): unknown content");
    }
  }
  // Every decoder fills a fresh Image::allocate'd buffer; a mismatch here would be our bug.
  image.validate(name);
  return image;
}

Image load_image(const std::filesystem::path& path, const ImageLimits& limits) {
  const std::string bytes = read_file_bytes(path, static_cast<std::size_t>(std::max<std::int64_t>(0, limits.max_file_bytes)));
  return decode_image({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, path.string(), limits);
}

void save_png(const std::filesystem::path& path, const Image& image) {
  image.validate(path.string());
  write_file_atomic(path, encode_png(image));
}

// ---- Conversions ------------------------------------------------------------------------------

namespace {

// One loop per source layout, so the compiler can vectorise each.
template <typename Sample, typename Reduce>
void rgb_from(const Sample* src, std::uint8_t* dst, std::size_t n, int channels, Reduce reduce) {
  switch (channels) {
    case 1:
      for (std::size_t i = 0; i < n; ++i) dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = reduce(src[i]);
      break;
    case 2:
      for (std::size_t i = 0; i < n; ++i) dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = reduce(src[2 * i]);
      break;
    case 3:
      for (std::size_t i = 0; i < 3 * n; ++i) dst[i] = reduce(src[i]);
      break;
    default:
      for (std::size_t i = 0; i < n; ++i) {
        dst[3 * i] = reduce(src[4 * i]);
        dst[3 * i + 1] = reduce(src[4 * i + 1]);
        dst[3 * i + 2] = reduce(src[4 * i + 2]);
      }
  }
}

}  // namespace

Image to_rgb8(const Image& image, Gray16ToRgb8 gray16) {
  image.validate("to_rgb8");
  if (image.channels == 3 && image.bit_depth == 8) return image;
  Image out = Image::allocate(image.width, image.height, 3, 8);
  const std::size_t n = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
  if (image.bit_depth == 8) {
    rgb_from(image.pixels.data(), out.pixels.data(), n, image.channels, [](std::uint8_t v) { return v; });
    return out;
  }
  // 16-bit samples are stored native-endian in a byte vector; copy them out rather than alias.
  std::vector<std::uint16_t> samples(n * static_cast<std::size_t>(image.channels));
  std::memcpy(samples.data(), image.pixels.data(), image.pixels.size());
  if (image.channels == 1 && gray16 == Gray16ToRgb8::pil_clip) {
    rgb_from(samples.data(), out.pixels.data(), n, 1,
             [](std::uint16_t v) { return static_cast<std::uint8_t>(v > 255 ? 255 : v); });
  } else {
    rgb_from(samples.data(), out.pixels.data(), n, image.channels,
             [](std::uint16_t v) { return static_cast<std::uint8_t>(v >> 8); });
  }
  return out;
}

Image to_rgb8(Image&& image, Gray16ToRgb8 gray16) {
  if (image.channels == 3 && image.bit_depth == 8) {
    image.validate("to_rgb8");
    return std::move(image);
  }
  return to_rgb8(static_cast<const Image&>(image), gray16);
}

Tensor image_to_tensor(const Image& image, TensorLayout layout) {
  image.validate("image_to_tensor");
  const std::int64_t h = image.height, w = image.width, c = image.channels;
  Tensor t = layout == TensorLayout::chw ? Tensor::empty({c, h, w}, DType::f32) : Tensor::empty({h, w, c}, DType::f32);
  float* out = t.data<float>();
  // Division (not multiplication by the reciprocal) so values equal torchvision's ToTensor bit for bit.
  const float max = static_cast<float>(image.max_value());
  const std::int64_t hw = h * w;
  for (std::int64_t p = 0; p < hw; ++p) {
    for (std::int64_t k = 0; k < c; ++k) {
      const std::size_t index = static_cast<std::size_t>(p * c + k);
      float v;
      if (image.bit_depth == 8) {
        v = static_cast<float>(image.pixels[index]);
      } else {
        std::uint16_t s;
        std::memcpy(&s, image.pixels.data() + 2 * index, 2);
        v = static_cast<float>(s);
      }
      out[layout == TensorLayout::chw ? k * hw + p : p * c + k] = v / max;
    }
  }
  return t;
}

}  // namespace mcv
