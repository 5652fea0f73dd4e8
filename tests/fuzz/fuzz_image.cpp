// libFuzzer target for image decoding: any bytes must give an mcv::Error or a consistent image,
// never a crash, a sanitizer report, a hang or a runaway allocation. Inputs without a magic number
// are tried as TGA (the name says ".tga"), so that decoder is reached too. A decoded image is also
// written as PNG and read back, which must give the same pixels.
//
// Seeds: tests/fuzz/corpus/image (made by tools/fixtures/make_image_fixtures.py).
// Run: fuzz_image -max_total_time=60 -rss_limit_mb=2048 tests/fuzz/corpus/image

#include <cstddef>
#include <cstdint>
#include <string>

#include "mcv/error.h"
#include "mcv/image.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mcv::ImageLimits limits;
  limits.max_pixels = 1 << 20;  // small, so a large declared size is an error, not a slow run
  limits.max_dimension = 1 << 14;
  mcv::Image image;
  try {
    image = mcv::decode_image({data, size}, "fuzz.tga", limits);
  } catch (const mcv::Error&) {
    return 0;
  }
  image.validate("fuzz");  // throws (and so aborts the fuzzer) on an inconsistent result
  const mcv::Image rgb = mcv::to_rgb8(image);
  if (rgb.channels != 3 || rgb.width != image.width || rgb.height != image.height) __builtin_trap();
  if (image.size_bytes() <= (std::size_t(1) << 16)) {
    const std::string png = mcv::encode_png(image);
    const mcv::Image back =
        mcv::decode_image({reinterpret_cast<const std::uint8_t*>(png.data()), png.size()}, "roundtrip.png");
    if (back.pixels != image.pixels || back.channels != image.channels || back.bit_depth != image.bit_depth)
      __builtin_trap();
  }
  return 0;
}
