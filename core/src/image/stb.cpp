// BMP and TGA through stb_image. The only translation unit that holds stb's implementation; its
// functions are static so they never clash with another copy of stb linked into the same program.

#include <algorithm>
#include <cstring>
#include <memory>

#include "codecs.h"
#include "mcv/error.h"

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_BMP
#define STBI_ONLY_TGA
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#include <stb_image.h>

namespace mcv::image_detail {

namespace {

// stb treats reading past the end of its input as reading zeros (and ignores short bulk reads), so
// a truncated BMP or TGA would decode "successfully" with black rows. Feeding it through callbacks
// lets us see every read past the end and reject the file instead. stb reads in two ways: refills
// of its own small buffer (always the same address, the first one it asks for; a short refill is
// normal near the end) and bulk reads straight into the image (which must be satisfied in full).
struct Reader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t pos;
  bool overrun;
  const char* refill_buffer;
};

int read_bytes(void* user, char* out, int n) {
  auto* r = static_cast<Reader*>(user);
  if (n <= 0) return 0;
  const std::size_t left = r->size - r->pos;
  if (left == 0) {
    r->overrun = true;
    return 0;
  }
  if (r->refill_buffer == nullptr) r->refill_buffer = out;
  const std::size_t k = std::min(static_cast<std::size_t>(n), left);
  if (k < static_cast<std::size_t>(n) && out != r->refill_buffer) r->overrun = true;
  std::memcpy(out, r->data + r->pos, k);
  r->pos += k;
  return static_cast<int>(k);
}

void skip_bytes(void* user, int n) {
  auto* r = static_cast<Reader*>(user);
  if (n < 0) {
    const auto back = static_cast<std::size_t>(-static_cast<std::int64_t>(n));
    r->pos = back > r->pos ? 0 : r->pos - back;
    return;
  }
  if (static_cast<std::size_t>(n) > r->size - r->pos) {
    r->overrun = true;
    r->pos = r->size;
    return;
  }
  r->pos += static_cast<std::size_t>(n);
}

int at_eof(void* user) {
  auto* r = static_cast<Reader*>(user);
  return r->pos >= r->size ? 1 : 0;
}

constexpr stbi_io_callbacks kCallbacks = {read_bytes, skip_bytes, at_eof};

unsigned le16(std::span<const std::uint8_t> b, std::size_t at) { return b[at] | (b[at + 1] << 8); }

// A lower bound on the bytes a BMP or TGA of the declared size must hold. stb would decode the
// whole declared image from zeros before we could see the overrun, so a 100-byte file declaring
// 60000 x 4000 pixels would cost a gigabyte and seconds; this rejects it first.
std::uint64_t minimum_size(std::span<const std::uint8_t> b, ImageFormat format, std::uint64_t w, std::uint64_t h) {
  if (format == ImageFormat::bmp) {
    if (b.size() < 30) return 30;
    const unsigned header = le16(b, 14);
    const unsigned bits = header == 12 ? le16(b, 24) : le16(b, 28);
    const std::uint64_t stride = (w * bits + 31) / 32 * 4;
    return stride * h;
  }
  if (b.size() < 18) return 18;
  const std::uint64_t bytes_per_pixel = (b[16] + 7u) / 8u;
  if (b[2] & 8) return 18 + (w * h + 127) / 128 * (1 + bytes_per_pixel);  // RLE: 128 pixels a packet at most
  return 18 + w * h * bytes_per_pixel;
}

}  // namespace

Image decode_stb(std::span<const std::uint8_t> bytes, const std::string& name, ImageFormat format,
                 const ImageLimits& limits) {
  const char* kind = image_format_name(format);
  Reader reader{bytes.data(), bytes.size(), 0, false, nullptr};
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_callbacks(&kCallbacks, &reader, &width, &height, &channels)) {
    if (reader.overrun) throw Error(name, detail::concat("truncated ", kind, ": the header is incomplete"));
    throw Error(name, detail::concat("invalid or unsupported ", kind, " header (", stbi_failure_reason(), ")"));
  }
  check_dimensions(name, kind, width, height, channels, limits);
  const std::uint64_t needed = minimum_size(bytes, format, static_cast<std::uint64_t>(width),
                                            static_cast<std::uint64_t>(height));
  if (bytes.size() < needed)
    throw Error(name, detail::concat("truncated ", kind, ": ", width, " x ", height, " pixels need at least ", needed,
                                     " bytes but the file has ", bytes.size()));

  reader = Reader{bytes.data(), bytes.size(), 0, false, nullptr};
  int w = 0, h = 0, c = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load_from_callbacks(&kCallbacks, &reader, &w, &h, &c, 0),
                                                   stbi_image_free);
  if (reader.overrun) throw Error(name, detail::concat("truncated ", kind, ": the data ends before the image is complete"));
  if (!pixels) throw Error(name, detail::concat("invalid ", kind, " (", stbi_failure_reason(), ")"));
  if (w != width || h != height || c != channels)
    throw Error(name, detail::concat(kind, " decoder produced ", w, " x ", h, " x ", c, " where the header declares ",
                                     width, " x ", height, " x ", channels));
  Image image = Image::allocate(w, h, c, 8);
  std::memcpy(image.pixels.data(), pixels.get(), image.pixels.size());
  return image;
}

}  // namespace mcv::image_detail
