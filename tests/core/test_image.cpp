// Image decoding against PIL (fixtures and expected pixels from tools/fixtures/make_image_fixtures.py),
// conversions, and PNG writing.

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "mcv/error.h"
#include "mcv/image.h"
#include "test_support.h"

namespace mcv::test_image {
namespace {

namespace fs = std::filesystem;

fs::path images_dir() { return test::fixture_dir() / "images"; }

std::string fnv1a64(const std::uint8_t* data, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= data[i];
    h *= 0x100000001b3ull;
  }
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(h));
  return text;
}
std::string fnv1a64(const std::vector<std::uint8_t>& v) { return fnv1a64(v.data(), v.size()); }

struct Fixture {
  std::string file;
  int width, height, channels, bit_depth;
  std::string raw_hash, rgb8_hash, rgb8_dump;
};

std::vector<Fixture> fixtures() {
  const auto manifest = nlohmann::json::parse(test::read_file(images_dir() / "expected.json"));
  std::vector<Fixture> out;
  for (const auto& e : manifest.at("images")) {
    out.push_back({e.at("file"), e.at("width"), e.at("height"), e.at("channels"), e.at("bit_depth"),
                   e.at("raw_fnv1a64"), e.at("rgb8_fnv1a64"), e.value("rgb8_dump", std::string())});
  }
  return out;
}

TEST(Image, FixturesCoverEveryFormatAndFlavour) {
  const auto all = fixtures();
  EXPECT_GE(all.size(), 30u);
  int jpeg = 0, png = 0, bmp = 0, tga = 0, png16 = 0;
  for (const auto& f : all) {
    jpeg += f.file.starts_with("jpeg_");
    png += f.file.starts_with("png_");
    png16 += f.file.starts_with("png_") && f.bit_depth == 16;
    bmp += f.file.starts_with("bmp_");
    tga += f.file.starts_with("tga_");
  }
  EXPECT_GE(jpeg, 8);
  EXPECT_GE(png, 15);
  EXPECT_GE(png16, 4);
  EXPECT_GE(bmp, 2);
  EXPECT_GE(tga, 3);
}

// The core promise: our pixels equal PIL's, byte for byte, for every flavour; and to_rgb8 equals
// PIL's convert('RGB'), which is what the official pipelines feed the model.
TEST(Image, DecodesEveryFixtureExactlyLikePil) {
  for (const auto& f : fixtures()) {
    SCOPED_TRACE(f.file);
    const Image image = load_image(images_dir() / f.file);
    EXPECT_EQ(image.width, f.width);
    EXPECT_EQ(image.height, f.height);
    EXPECT_EQ(image.channels, f.channels);
    EXPECT_EQ(image.bit_depth, f.bit_depth);
    EXPECT_EQ(fnv1a64(image.pixels), f.raw_hash) << "decoded samples differ from the expected ones";
    const Image rgb = to_rgb8(image);
    EXPECT_EQ(fnv1a64(rgb.pixels), f.rgb8_hash) << "to_rgb8 differs from PIL's convert('RGB')";
    if (!f.rgb8_dump.empty()) {
      const std::string want = test::read_file(images_dir() / f.rgb8_dump);
      ASSERT_EQ(want.size(), rgb.pixels.size());
      int mismatches = 0, max_diff = 0;
      for (std::size_t i = 0; i < want.size(); ++i) {
        const int d = std::abs(int(static_cast<std::uint8_t>(want[i])) - int(rgb.pixels[i]));
        mismatches += d != 0;
        max_diff = std::max(max_diff, d);
      }
      EXPECT_EQ(mismatches, 0) << "max difference " << max_diff;
    }
  }
}

TEST(Image, FormatComesFromContentNotName) {
  const fs::path dir = test::temp_dir();
  const std::string png = test::read_file(images_dir() / "png_rgb8.png");
  test::write_file(dir / "photo.JPEG", png);  // as some ImageNet files are
  const Image a = load_image(dir / "photo.JPEG");
  const Image b = load_image(images_dir() / "png_rgb8.png");
  EXPECT_EQ(a.pixels, b.pixels);
  const std::string jpg = test::read_file(images_dir() / "jpeg_baseline_420.jpg");
  test::write_file(dir / "x.png", jpg);
  EXPECT_EQ(load_image(dir / "x.png").pixels, load_image(images_dir() / "jpeg_baseline_420.jpg").pixels);

  auto sniff = [](const std::string& bytes, std::string_view name = {}) {
    return sniff_image_format({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, name);
  };
  EXPECT_EQ(sniff(png), ImageFormat::png);
  EXPECT_EQ(sniff(jpg), ImageFormat::jpeg);
  EXPECT_EQ(sniff(test::read_file(images_dir() / "bmp_rgb24.bmp")), ImageFormat::bmp);
  // TGA has no magic number: the 2.0 footer identifies it, or a valid header plus the extension.
  const std::string tga = test::read_file(images_dir() / "tga_rgb.tga");
  EXPECT_EQ(sniff(tga), ImageFormat::tga);
  const std::string tga_no_footer = tga.substr(0, tga.size() - 26);
  EXPECT_EQ(sniff(tga_no_footer), ImageFormat::unknown);
  EXPECT_EQ(sniff(tga_no_footer, "a.TGA"), ImageFormat::tga);
  EXPECT_EQ(sniff("hello world, this is not an image at all", "notes.tga"), ImageFormat::unknown);
  EXPECT_STREQ(image_format_name(ImageFormat::png), "PNG");
}

TEST(Image, SixteenBitSamplesAreKept) {
  const Image image = load_image(images_dir() / "png_rgb16.png");
  ASSERT_EQ(image.bit_depth, 16);
  // Values the fixture script writes at the first pixels, chosen at the 16 -> 8 bit edges.
  EXPECT_EQ(image.sample(0, 0, 0), 0);
  EXPECT_EQ(image.sample(0, 0, 1), 65535);
  EXPECT_EQ(image.sample(0, 0, 2), 256);
  EXPECT_EQ(image.sample(1, 0, 0), 255);
  EXPECT_EQ(image.sample(1, 0, 1), 257);
  EXPECT_EQ(image.sample(1, 0, 2), 65280);
  const Image rgb = to_rgb8(image);  // PIL keeps the high byte
  EXPECT_EQ(rgb.sample(0, 0, 0), 0);
  EXPECT_EQ(rgb.sample(0, 0, 1), 255);
  EXPECT_EQ(rgb.sample(0, 0, 2), 1);
  EXPECT_EQ(rgb.sample(1, 0, 0), 0);
  EXPECT_EQ(rgb.sample(1, 0, 1), 1);
  EXPECT_EQ(rgb.sample(1, 0, 2), 255);
}

TEST(Image, Gray16ToRgb8ClipsLikePilOrScales) {
  const Image image = load_image(images_dir() / "png_gray16.png");
  ASSERT_EQ(image.channels, 1);
  ASSERT_EQ(image.bit_depth, 16);
  const int values[] = {0, 200, 255, 256};  // written by the fixture script
  const Image pil = to_rgb8(image);
  const Image scaled = to_rgb8(image, Gray16ToRgb8::scale);
  for (int x = 0; x < 4; ++x) {
    EXPECT_EQ(image.sample(x, 0, 0), values[x]);
    EXPECT_EQ(pil.sample(x, 0, 0), std::min(values[x], 255));
    EXPECT_EQ(pil.sample(x, 0, 2), std::min(values[x], 255));
    EXPECT_EQ(scaled.sample(x, 0, 1), values[x] >> 8);
  }
}

TEST(Image, TransparencyBecomesAlphaAndToRgb8DropsIt) {
  const Image pal = load_image(images_dir() / "png_palette_trns.png");
  EXPECT_EQ(pal.channels, 4);
  const Image gray = load_image(images_dir() / "png_gray_trns.png");
  ASSERT_EQ(gray.channels, 2);
  EXPECT_EQ(gray.sample(0, 0, 0), 77);
  EXPECT_EQ(gray.sample(0, 0, 1), 0);
  const Image rgb = to_rgb8(gray);
  EXPECT_EQ(rgb.sample(0, 0, 0), 77);
  EXPECT_EQ(rgb.sample(0, 0, 2), 77);
}

TEST(Image, JpegGrayStaysOneChannelAndCmykBecomesRgb) {
  EXPECT_EQ(load_image(images_dir() / "jpeg_gray.jpg").channels, 1);
  EXPECT_EQ(load_image(images_dir() / "jpeg_cmyk.jpg").channels, 3);
}

TEST(Image, ToRgb8MovesAnRgbImageThrough) {
  Image image = load_image(images_dir() / "jpeg_baseline_420.jpg");
  const Image copy = to_rgb8(image);
  EXPECT_EQ(copy.pixels, image.pixels);
  const std::uint8_t* data = image.pixels.data();
  const Image moved = to_rgb8(std::move(image));
  EXPECT_EQ(moved.pixels.data(), data);
  EXPECT_EQ(moved.pixels, copy.pixels);
  // Other layouts are converted, moved or not.
  EXPECT_EQ(to_rgb8(load_image(images_dir() / "png_rgba8.png")).channels, 3);
}

TEST(Image, ToTensorDividesByTheMaximum) {
  Image image = Image::allocate(3, 2, 3);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c) image.set_sample(x, y, c, (y * 3 + x) * 40 + c);
  const Tensor chw = image_to_tensor(image);
  ASSERT_EQ(chw.shape(), (Shape{3, 2, 3}));
  EXPECT_EQ(chw.dtype(), DType::f32);
  const Tensor hwc = image_to_tensor(image, TensorLayout::hwc);
  ASSERT_EQ(hwc.shape(), (Shape{2, 3, 3}));
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c) {
        const float want = static_cast<float>(image.sample(x, y, c)) / 255.0f;
        EXPECT_EQ(chw.data<float>()[(c * 2 + y) * 3 + x], want);
        EXPECT_EQ(hwc.data<float>()[(y * 3 + x) * 3 + c], want);
      }
  Image deep = Image::allocate(1, 1, 1, 16);
  deep.set_sample(0, 0, 0, 65535);
  EXPECT_EQ(image_to_tensor(deep).data<float>()[0], 1.0f);
}

TEST(Image, AccessorsCheckTheirArguments) {
  EXPECT_THROW(Image::allocate(0, 5, 3), Error);
  EXPECT_THROW(Image::allocate(5, -1, 3), Error);
  EXPECT_THROW(Image::allocate(5, 5, 5), Error);
  EXPECT_THROW(Image::allocate(5, 5, 3, 12), Error);
  Image image = Image::allocate(4, 3, 2, 16);
  EXPECT_EQ(image.row_bytes(), 16u);
  EXPECT_EQ(image.size_bytes(), 48u);
  EXPECT_TRUE(image.has_alpha());
  EXPECT_THROW(image.sample(4, 0, 0), Error);
  EXPECT_THROW(image.sample(0, 0, 2), Error);
  EXPECT_THROW(image.set_sample(0, 0, 0, 65536), Error);
  image.pixels.pop_back();
  EXPECT_THROW(image.validate("x"), Error);
  EXPECT_THROW(to_rgb8(image), Error);
  EXPECT_THROW(save_png(test::temp_dir() / "bad.png", image), Error);
}

Image random_image(int w, int h, int channels, int depth, std::uint32_t seed) {
  Image image = Image::allocate(w, h, channels, depth);
  std::mt19937 rng(seed);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c)
        image.set_sample(x, y, c, static_cast<int>(rng() % (image.max_value() + 1)));
  return image;
}

TEST(Image, PngRoundTripsEveryChannelCountAndDepth) {
  const fs::path dir = test::temp_dir();
  for (int depth : {8, 16}) {
    for (int channels = 1; channels <= 4; ++channels) {
      SCOPED_TRACE(testing::Message() << channels << " channels, " << depth << " bits");
      const Image image = random_image(13, 7, channels, depth, channels * 100 + depth);
      const fs::path path = dir / ("rt_" + std::to_string(channels) + "_" + std::to_string(depth) + ".png");
      save_png(path, image);
      const Image back = load_image(path);
      EXPECT_EQ(back.width, 13);
      EXPECT_EQ(back.height, 7);
      EXPECT_EQ(back.channels, channels);
      EXPECT_EQ(back.bit_depth, depth);
      EXPECT_EQ(back.pixels, image.pixels);
    }
  }
  // Only the outputs are left: the atomic writer's temporaries are gone.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().extension(), ".png") << entry.path();
    ++files;
  }
  EXPECT_EQ(files, 8);
}

TEST(Image, SavePngReplacesAtomicallyAndReportsBadPaths) {
  const fs::path dir = test::temp_dir();
  save_png(dir / "a.png", random_image(5, 5, 3, 8, 1));
  const Image second = random_image(6, 4, 1, 16, 2);
  save_png(dir / "a.png", second);
  EXPECT_EQ(load_image(dir / "a.png").pixels, second.pixels);
  try {
    save_png(dir / "missing" / "b.png", second);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("b.png"), std::string::npos) << e.what();
  }
}

TEST(Image, DecodesConcurrently) {
  const auto all = fixtures();
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (const auto& f : all) {
          try {
            if (fnv1a64(load_image(images_dir() / f.file).pixels) != f.raw_hash) ++failures[t];
          } catch (...) {
            ++failures[t];
          }
          try {
            load_image(images_dir() / "bad_png_huge.png");
            ++failures[t];
          } catch (const Error&) {
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace mcv::test_image
