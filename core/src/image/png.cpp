// PNG decoding and encoding through libpng.

#include "codecs.h"
#include "mcv/error.h"

#ifdef MCV_HAVE_PNG

#include <png.h>

#include <bit>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

namespace mcv::image_detail {

namespace {

constexpr bool kLittleEndian = std::endian::native == std::endian::little;

// libpng reports errors through this callback, which must not return: it records the message and
// jumps back to the setjmp in the function that drives libpng.
struct PngState {
  std::jmp_buf jump;
  char message[256];
  bool truncated;
  // Reader.
  const std::uint8_t* data;
  std::size_t size;
  std::size_t pos;
  // Writer.
  std::string* output;
  // Row pointers for interlaced reads, owned here (not by the frame that may be longjmp'ed over).
  std::vector<png_bytep> rows;
};

[[noreturn]] void on_error(png_structp png, png_const_charp message) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof(s->message), "%s", message ? message : "unknown error");
  std::longjmp(s->jump, 1);
}

// Warnings are about ancillary data (bad gamma, sRGB profiles, extra bytes after the image), never
// the pixels, which libpng treats as errors; staying quiet keeps stderr clean in a batch.
void on_warning(png_structp, png_const_charp) {}

void read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  if (n > s->size - s->pos) {
    s->truncated = true;
    png_error(png, "unexpected end of data");
  }
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

void write_bytes(png_structp png, png_bytep in, png_size_t n) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  bool failed = false;
  try {
    s->output->append(reinterpret_cast<const char*>(in), n);
  } catch (const std::bad_alloc&) {
    failed = true;
  }
  if (failed) png_error(png, "out of memory");
}

void flush_bytes(png_structp) {}

struct ReadStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~ReadStructs() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

struct WriteStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~WriteStructs() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

// Drives libpng; returns false after a libpng error (message in s). This frame holds no objects with
// destructors across the libpng calls, so the longjmp skips only C frames.
bool run_read(ReadStructs& r, PngState& s, const std::string& name, const ImageLimits& limits, Image& out) {
  if (setjmp(s.jump)) return false;
  png_set_read_fn(r.png, &s, read_bytes);
  // Our own size check (below) gives the clearer message, so libpng's is opened to the format's
  // maximum; the cap on what ancillary chunks (ICC profiles, text) may inflate to stays.
  png_set_user_limits(r.png, 0x7fffffff, 0x7fffffff);
  png_set_chunk_malloc_max(r.png, std::size_t(16) << 20);
  png_read_info(r.png, r.info);

  png_uint_32 width = 0, height = 0;
  int depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(r.png, r.info, &width, &height, &depth, &color_type, &interlace, nullptr, nullptr);
  const bool trns = png_get_valid(r.png, r.info, PNG_INFO_tRNS) != 0;
  int channels = 0;
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: channels = trns ? 2 : 1; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: channels = 2; break;
    case PNG_COLOR_TYPE_RGB: channels = trns ? 4 : 3; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: channels = 4; break;
    case PNG_COLOR_TYPE_PALETTE: channels = trns ? 4 : 3; break;
    default: throw Error(name, detail::concat("PNG colour type ", color_type, " is not valid"));
  }
  check_dimensions(name, "PNG", width, height, channels, limits);

  // PIL's view of the file: palettes and low-bit gray expanded to 8 bits (gray scaled so 1 -> 255),
  // tRNS as alpha, 16-bit samples kept.
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r.png);
  if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(r.png);
  if (trns) png_set_tRNS_to_alpha(r.png);
  if (depth == 16 && kLittleEndian) png_set_swap(r.png);
  const int passes = png_set_interlace_handling(r.png);
  png_read_update_info(r.png, r.info);

  const int out_depth = png_get_bit_depth(r.png, r.info);
  const int out_channels = png_get_channels(r.png, r.info);
  if (out_channels != channels || (out_depth != 8 && out_depth != 16))
    throw Error(name, detail::concat("PNG decoder produced ", out_channels, " channels of ", out_depth,
                                     " bits where ", channels, " were expected"));
  out = Image::allocate(static_cast<int>(width), static_cast<int>(height), channels, out_depth);
  if (png_get_rowbytes(r.png, r.info) != out.row_bytes())
    throw Error(name, "PNG decoder produced rows of an unexpected size");

  if (passes > 1) {
    s.rows.resize(out.height);
    for (int y = 0; y < out.height; ++y) s.rows[y] = out.row(y);
    png_read_image(r.png, s.rows.data());
  } else {
    for (int y = 0; y < out.height; ++y) png_read_row(r.png, out.row(y), nullptr);
  }
  // Checks the rest of the file (the IDAT stream's end and checksum, the IEND chunk), so a file
  // cut short after the last row is reported rather than accepted.
  png_read_end(r.png, nullptr);
  return true;
}

bool run_write(WriteStructs& w, PngState& s, const Image& image) {
  if (setjmp(s.jump)) return false;
  png_set_write_fn(w.png, &s, write_bytes, flush_bytes);
  static constexpr int kColorTypes[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                        PNG_COLOR_TYPE_RGB_ALPHA};
  png_set_IHDR(w.png, w.info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height),
               image.bit_depth, kColorTypes[image.channels - 1], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(w.png, w.info);
  if (image.bit_depth == 16 && kLittleEndian) png_set_swap(w.png);
  for (int y = 0; y < image.height; ++y) png_write_row(w.png, const_cast<png_bytep>(image.row(y)));
  png_write_end(w.png, nullptr);
  return true;
}

}  // namespace

Image decode_png(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits) {
  PngState s{};
  s.data = bytes.data();
  s.size = bytes.size();
  ReadStructs r;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, on_error, on_warning);
  if (r.png) r.info = png_create_info_struct(r.png);
  if (!r.png || !r.info) throw Error(name, "cannot create a PNG decoder (out of memory)");
  Image image;
  if (!run_read(r, s, name, limits, image)) {
    if (s.truncated) throw Error(name, "truncated PNG: the data ends before the image is complete");
    throw Error(name, std::string("invalid PNG: ") + s.message);
  }
  return image;
}

}  // namespace mcv::image_detail

namespace mcv {

std::string encode_png(const Image& image) {
  using namespace image_detail;
  image.validate("encode_png");
  std::string output;
  output.reserve(image.size_bytes() / 2 + 1024);
  PngState s{};
  s.output = &output;
  WriteStructs w;
  w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s, on_error, on_warning);
  if (w.png) w.info = png_create_info_struct(w.png);
  if (!w.png || !w.info) throw Error("encode_png", "cannot create a PNG encoder (out of memory)");
  if (!run_write(w, s, image)) throw Error("encode_png", std::string("PNG encoding failed: ") + s.message);
  return output;
}

}  // namespace mcv

#else

namespace mcv::image_detail {

Image decode_png(std::span<const std::uint8_t>, const std::string& name, const ImageLimits&) {
  throw Error(name, "cannot decode PNG: mambacv was built without libpng");
}

}  // namespace mcv::image_detail

namespace mcv {
std::string encode_png(const Image&) { throw Error("encode_png", "mambacv was built without libpng"); }
}  // namespace mcv

#endif
