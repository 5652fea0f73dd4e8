// Bad image input: every case is one mcv::Error naming the file, never a crash, hang or a
// silently damaged image.

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "mcv/error.h"
#include "mcv/image.h"
#include "test_support.h"

namespace mcv::test_image_errors {
namespace {

namespace fs = std::filesystem;

fs::path images_dir() { return test::fixture_dir() / "images"; }

std::span<const std::uint8_t> as_span(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// The error message of decoding `bytes`, or "" when it decoded.
std::string decode_error(const std::string& bytes, const std::string& name, const ImageLimits& limits = {}) {
  try {
    const Image image = decode_image(as_span(bytes), name, limits);
    image.validate(name);  // whatever decodes must at least be a consistent image
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

void expect_error(const std::string& bytes, const std::string& name, const std::string& fragment,
                  const ImageLimits& limits = {}) {
  const std::string message = decode_error(bytes, name, limits);
  ASSERT_FALSE(message.empty()) << name << " decoded but should not have";
  EXPECT_EQ(message.rfind(name + ": ", 0), 0u) << "message does not start with the name: " << message;
  EXPECT_NE(message.find(fragment), std::string::npos) << "message lacks '" << fragment << "': " << message;
}

const char* kGoodFiles[] = {
    "jpeg_baseline_420.jpg", "jpeg_progressive_420.jpg", "jpeg_progressive_444.jpg", "jpeg_restart_420.jpg",
    "jpeg_gray.jpg",         "jpeg_cmyk.jpg",            "png_rgb8.png",             "png_rgba16_interlaced.png",
    "png_palette_trns.png",  "png_gray2.png",            "png_gray16.png",           "bmp_rgb24.bmp",
    "bmp_palette8.bmp",      "tga_rgb.tga",              "tga_rgba_rle.tga",         "tga_gray.tga",
};

TEST(ImageErrors, FileSystemProblemsNameThePath) {
  const fs::path dir = test::temp_dir();
  for (const fs::path& path : {dir / "missing.png", dir}) {
    try {
      load_image(path);
      FAIL() << path;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path.string(), 0), 0u) << e.what();
    }
  }
  test::write_file(dir / "empty.jpg", "");
  try {
    load_image(dir / "empty.jpg");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
  ImageLimits small;
  small.max_file_bytes = 100;
  EXPECT_THROW(load_image(images_dir() / "png_rgb8.png", small), Error);
}

TEST(ImageErrors, UnknownAndUnsupportedFormatsAreNamed) {
  expect_error("just some text, not an image\n", "notes.txt", "not a recognised image");
  expect_error(std::string("GIF89a\x01\x00\x01\x00\x00\x00\x00;", 13), "a.gif", "GIF");
  expect_error(std::string("II*\0\x08\0\0\0", 8) + std::string(64, '\0'), "a.tif", "TIFF");
  expect_error(std::string("RIFF\x10\0\0\0WEBPVP8 ", 16), "a.webp", "WebP");
  expect_error(std::string(1, '\xff'), "one_byte.jpg", "not a recognised image");
}

// Cutting a file anywhere must give an error, never a partly black or gray image.
TEST(ImageErrors, TruncatedFilesFailAtEveryOffset) {
  for (const char* file : kGoodFiles) {
    SCOPED_TRACE(file);
    const std::string bytes = test::read_file(images_dir() / file);
    std::size_t end = bytes.size();
    // A TGA 2.0 footer (26 bytes) is optional: a file cut inside it still holds the whole image.
    if (std::string(file).starts_with("tga_")) end -= 26;
    std::set<std::size_t> cuts;
    for (std::size_t n = 1; n < std::min<std::size_t>(end, 80); ++n) cuts.insert(n);
    for (std::size_t n = 80; n < end; n += 7) cuts.insert(n);
    for (std::size_t n = end > 40 ? end - 40 : 1; n < end; ++n) cuts.insert(n);
    int decoded = 0;
    for (const std::size_t n : cuts) {
      const std::string message = decode_error(bytes.substr(0, n), file);
      if (message.empty()) {
        ADD_FAILURE() << "cut at " << n << " of " << bytes.size() << " decoded";
        if (++decoded > 3) break;
      } else {
        EXPECT_EQ(message.rfind(std::string(file) + ": ", 0), 0u) << message;
      }
    }
  }
}

TEST(ImageErrors, TruncationIsReportedAsSuch) {
  for (const char* file : {"jpeg_baseline_420.jpg", "jpeg_progressive_420.jpg", "png_rgb8.png", "bmp_rgb24.bmp",
                           "tga_rgb.tga"}) {
    const std::string bytes = test::read_file(images_dir() / file);
    expect_error(bytes.substr(0, bytes.size() * 2 / 3), file, "truncated");
  }
  // Small files declaring sizes within the limits but far beyond their data fail at once (stb
  // would otherwise decode 16 million pixels of zeros before the overrun shows).
  std::string tga = test::read_file(images_dir() / "tga_rgba_rle.tga");
  tga[12] = tga[14] = static_cast<char>(0xa0);
  tga[13] = tga[15] = 0x0f;  // 4000 x 4000
  expect_error(tga, "big.tga", "truncated");
  std::string bmp = test::read_file(images_dir() / "bmp_rgb24.bmp");
  bmp[18] = bmp[22] = static_cast<char>(0xa0);
  bmp[19] = bmp[23] = 0x0f;
  expect_error(bmp, "big.bmp", "truncated");
}

// Flipping bytes may give an error or (where the byte did not matter) an image; never a crash.
// Run under the sanitizers, this is a deterministic small fuzzer over every header byte.
TEST(ImageErrors, CorruptedBytesNeverCrash) {
  for (const char* file : kGoodFiles) {
    SCOPED_TRACE(file);
    const std::string good = test::read_file(images_dir() / file);
    const std::size_t header = std::min<std::size_t>(good.size(), 200);
    for (std::size_t i = 0; i < good.size(); i += (i < header ? 1 : 13)) {
      for (const unsigned char mask : {0x01, 0x80, 0xff}) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ mask);
        decode_error(bad, file);
      }
    }
  }
}

TEST(ImageErrors, CorruptJpegDataIsAnErrorNotGrayBlocks) {
  const std::string good = test::read_file(images_dir() / "jpeg_baseline_444.jpg");
  const std::size_t sos = good.find("\xff\xda");
  ASSERT_NE(sos, std::string::npos);
  // An early EOI in the middle of the entropy-coded data: libjpeg would warn and pad with gray.
  std::string early_eoi = good;
  early_eoi.replace(sos + 200, 2, "\xff\xd9");
  expect_error(early_eoi, "early_eoi.jpg", "JPEG");
  // An unexpected restart marker inside the scan.
  std::string bad_rst = good;
  bad_rst.replace(sos + 300, 2, "\xff\xd3");
  expect_error(bad_rst, "bad_rst.jpg", "JPEG");
  // The whole image but no EOI marker.
  expect_error(good.substr(0, good.size() - 2), "no_eoi.jpg", "truncated");
}

TEST(ImageErrors, DeclaredSizesBeyondTheLimitsFailBeforeAllocating) {
  // Each declares 100000 x 100000 (JPEG: 65000 x 65000, its maximum) in a file of a few bytes.
  for (const char* file : {"bad_png_huge.png", "bad_jpeg_huge.jpg", "bad_bmp_huge.bmp", "bad_tga_huge.tga"}) {
    SCOPED_TRACE(file);
    const std::string message = decode_error(test::read_file(images_dir() / file), file);
    ASSERT_FALSE(message.empty());
    EXPECT_NE(message.find("limit"), std::string::npos) << message;
  }
  const std::string png = test::read_file(images_dir() / "png_rgb8.png");  // 37 x 29
  ImageLimits limits;
  limits.max_pixels = 37 * 29 - 1;
  expect_error(png, "small.png", "limit", limits);
  limits = {};
  limits.max_dimension = 36;
  expect_error(png, "small.png", "limit", limits);
  limits = {};
  limits.max_pixels = 37 * 29;
  EXPECT_EQ(decode_error(png, "ok.png", limits), "");
  for (const char* file : {"jpeg_baseline_420.jpg", "bmp_rgb24.bmp", "tga_rgb.tga"}) {
    limits.max_pixels = 100;
    expect_error(test::read_file(images_dir() / file), file, "limit", limits);
  }
}

std::uint32_t crc32(const std::string& bytes) {
  std::uint32_t crc = 0xffffffffu;
  for (const char ch : bytes) {
    crc ^= static_cast<std::uint8_t>(ch);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_be32(std::string& s, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

TEST(ImageErrors, ZeroSizedImagesAreErrors) {
  // PNG with a zero width and a valid CRC.
  std::string png = test::read_file(images_dir() / "png_gray8.png");
  put_be32(png, 16, 0);
  put_be32(png, 29, crc32(png.substr(12, 17)));
  expect_error(png, "zero.png", "PNG");
  // JPEG with zero height in its SOF.
  std::string jpg = test::read_file(images_dir() / "jpeg_gray.jpg");
  const std::size_t sof = jpg.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  jpg[sof + 5] = 0;
  jpg[sof + 6] = 0;
  expect_error(jpg, "zero.jpg", "JPEG");
  // BMP with zero width.
  std::string bmp = test::read_file(images_dir() / "bmp_rgb24.bmp");
  for (int i = 18; i < 22; ++i) bmp[i] = 0;
  EXPECT_NE(decode_error(bmp, "zero.bmp"), "");
  // TGA with zero height is no longer a plausible TGA at all.
  std::string tga = test::read_file(images_dir() / "tga_rgb.tga");
  tga[14] = tga[15] = 0;
  EXPECT_NE(decode_error(tga, "zero.tga"), "");
}

TEST(ImageErrors, PngChecksumsAreVerified) {
  std::string png = test::read_file(images_dir() / "png_rgb8.png");
  const std::size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  png[idat + 40] = static_cast<char>(png[idat + 40] ^ 0x10);
  expect_error(png, "crc.png", "PNG");
}

}  // namespace
}  // namespace mcv::test_image_errors
