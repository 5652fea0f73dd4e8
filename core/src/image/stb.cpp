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
