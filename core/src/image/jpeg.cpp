// JPEG decoding through libjpeg-turbo with the settings PIL uses, so pixels equal those of the
// official PyTorch pipelines byte for byte.

#include "codecs.h"
#include "mcv/error.h"

#ifdef MCV_HAVE_JPEG

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>

// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

namespace mcv::image_detail {

namespace {

// Real progressive files have about ten scans; a crafted file with thousands of scans over a large
// image costs minutes of CPU with almost no bytes.
constexpr int kMaxScans = 256;

struct ErrorManager {
  jpeg_error_mgr pub;  // first: libjpeg hands us a jpeg_error_mgr* that we cast back
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64];
  int code;
};

[[noreturn]] void fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  err->code = err->pub.msg_code;
  (*err->pub.format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// libjpeg's warnings mostly mean "corrupt data, I filled in gray and went on" (PIL hides them and
// returns the damaged image). Those become errors; only warnings that leave the pixels intact pass.
void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace output
  switch (cinfo->err->msg_code) {
    case JWRN_ADOBE_XFORM:      // unknown transform code: libjpeg falls back to the usual guess
    case JWRN_JFIF_MAJOR:       // newer JFIF version number
    case JWRN_BOGUS_ICC:        // broken ICC profile marker; we never use the profile
    case JWRN_EXTRANEOUS_DATA:  // junk between segments, skipped without touching entropy data
      return;
    default: fail(cinfo);
  }
}

void on_progress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) {
    auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
    err->code = -1;
    std::snprintf(err->message, sizeof(err->message), "more than %d progressive scans", kMaxScans);
    std::longjmp(err->jump, 1);
  }
}

struct Decompressor {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  jpeg_progress_mgr progress;
  bool created = false;

  Decompressor() {
    std::memset(&cinfo, 0, sizeof(cinfo));
    std::memset(&err, 0, sizeof(err));
    std::memset(&progress, 0, sizeof(progress));
  }
  ~Decompressor() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
};

// PIL's CMYK -> RGB (libImaging cmyk2rgb): each colour is (255 - K) scaled by (255 - C), with
// PIL's rounded division by 255.
inline std::uint8_t cmyk_channel(int c, int nk) {
  const int t = c * nk + 128;
  const int v = nk - (((t >> 8) + t) >> 8);
  return static_cast<std::uint8_t>(v < 0 ? 0 : v);
}

// Runs libjpeg. Returns false after a libjpeg error (message in d.err). Between setjmp and the
// calls into libjpeg this frame holds no object with a destructor, so the longjmp from the error
// handler skips only libjpeg's C frames (C++ allows that, and nothing leaks: d owns everything).
bool run(Decompressor& d, std::span<const std::uint8_t> bytes, const std::string& name,
         const ImageLimits& limits, Image& out) {
  d.cinfo.err = jpeg_std_error(&d.err.pub);
  d.err.pub.error_exit = fail;
  d.err.pub.emit_message = on_message;
  if (setjmp(d.err.jump)) return false;

  jpeg_create_decompress(&d.cinfo);
  d.created = true;
  d.progress.progress_monitor = on_progress;
  d.cinfo.progress = &d.progress;
  // Progressive images keep all coefficients (2 bytes per sample, plus MCU padding that a
  // degenerate 1-pixel-wide image with 4x4 sampling can make 16x larger): cap libjpeg's memory so
  // such a bomb fails instead of allocating tens of gigabytes. jmemnobs has no backing store, so
  // going over is a clean "backing store not supported" error.
  const std::int64_t pixels = std::clamp<std::int64_t>(limits.max_pixels, 0, std::int64_t(1) << 40);
  d.cinfo.mem->max_memory_to_use = static_cast<long>(pixels * 12 + (std::int64_t(64) << 20));
  jpeg_mem_src(&d.cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&d.cinfo, TRUE);

  const int components = d.cinfo.num_components;
  int channels = 0;
  if (components == 1) {
    d.cinfo.out_color_space = JCS_GRAYSCALE;
    channels = 1;
  } else if (components == 3) {
    d.cinfo.out_color_space = JCS_RGB;
    channels = 3;
  } else if (components == 4) {
    // libjpeg turns YCCK into CMYK; PIL then converts CMYK to RGB below.
    d.cinfo.out_color_space = JCS_CMYK;
    channels = 3;
  } else {
    throw Error(name, detail::concat("JPEG with ", components, " components is not supported (1, 3 or 4 are)"));
  }
  check_dimensions(name, "JPEG", d.cinfo.image_width, d.cinfo.image_height, channels, limits);
  // PIL's decode settings, spelled out rather than trusted to defaults.
  d.cinfo.dct_method = JDCT_ISLOW;
  d.cinfo.do_fancy_upsampling = TRUE;
  d.cinfo.dither_mode = JDITHER_NONE;
  d.cinfo.quantize_colors = FALSE;
  d.cinfo.scale_num = 1;
  d.cinfo.scale_denom = 1;

  jpeg_start_decompress(&d.cinfo);
  if (static_cast<int>(d.cinfo.output_components) != components ||
      static_cast<std::int64_t>(d.cinfo.output_width) != static_cast<std::int64_t>(d.cinfo.image_width) ||
      static_cast<std::int64_t>(d.cinfo.output_height) != static_cast<std::int64_t>(d.cinfo.image_height))
    throw Error(name, "JPEG decoder produced an unexpected output shape");
  out = Image::allocate(static_cast<int>(d.cinfo.output_width), static_cast<int>(d.cinfo.output_height), channels, 8);

  const int width = out.width;
  JSAMPARRAY cmyk_row = nullptr;
  if (components == 4)
    cmyk_row = (*d.cinfo.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&d.cinfo), JPOOL_IMAGE,
                                            static_cast<JDIMENSION>(width) * 4, 1);
  while (d.cinfo.output_scanline < d.cinfo.output_height) {
    const int y = static_cast<int>(d.cinfo.output_scanline);
    JSAMPROW row = components == 4 ? cmyk_row[0] : out.row(y);
    if (jpeg_read_scanlines(&d.cinfo, &row, 1) != 1)
      throw Error(name, "JPEG decoder returned no scanline");
    if (components == 4) {
      std::uint8_t* dst = out.row(y);
      for (int x = 0; x < width; ++x) {
        // PIL reads every 4-component JPEG as Adobe-inverted CMYK ("CMYK;I"), whatever its markers.
        const std::uint8_t* s = row + 4 * x;
        const int nk = s[3];  // 255 - (255 - stored K)
        dst[3 * x + 0] = cmyk_channel(255 - s[0], nk);
        dst[3 * x + 1] = cmyk_channel(255 - s[1], nk);
        dst[3 * x + 2] = cmyk_channel(255 - s[2], nk);
      }
    }
  }
  // Reads to the EOI marker, so a file cut after the last scan line is still reported as truncated.
  jpeg_finish_decompress(&d.cinfo);
  return true;
}

}  // namespace

Image decode_jpeg(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits) {
  Decompressor d;
  Image image;
  if (!run(d, bytes, name, limits, image)) {
    if (d.err.code == JWRN_JPEG_EOF) throw Error(name, "truncated JPEG: the data ends before the image is complete");
    throw Error(name, std::string("invalid JPEG: ") + d.err.message);
  }
  return image;
}

}  // namespace mcv::image_detail

#else

namespace mcv::image_detail {

Image decode_jpeg(std::span<const std::uint8_t>, const std::string& name, const ImageLimits&) {
  throw Error(name, "cannot decode JPEG: mambacv was built without libjpeg");
}

}  // namespace mcv::image_detail

#endif
