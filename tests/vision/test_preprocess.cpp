// The evaluation transform equals PIL/torchvision's to the pixel (fixtures made by
// tools/fixtures/make_preprocess_fixtures.py with Debian's PIL and torchvision).

#include <gtest/gtest.h>

#include <cstring>

#include "mcv/error.h"
#include "mcv/file.h"
#include "mcv/image.h"
#include "preprocess.h"
#include "test_support.h"

namespace mcv::vision::test_preprocess {
namespace {

std::filesystem::path fixture(const std::string& name) { return test::fixture_dir() / "preprocess" / name; }

TEST(Preprocess, PilResizeMatchesPillowExactly) {
  const Image input = load_image(fixture("input.png"));
  struct Case { int w, h; const char* filter; };
  for (const Case c : {Case{50, 31, "bicubic"}, Case{200, 150, "bicubic"}, Case{64, 64, "bilinear"}, Case{31, 90, "bicubic"}}) {
    const Image want = load_image(fixture("resize_" + std::to_string(c.w) + "x" + std::to_string(c.h) + "_" + c.filter + ".png"));
    const Image got = pil_resize(input, c.w, c.h, c.filter);
    ASSERT_EQ(got.width, want.width);
    ASSERT_EQ(got.height, want.height);
    int mismatches = 0;
    for (std::size_t i = 0; i < got.pixels.size(); ++i) mismatches += got.pixels[i] != want.pixels[i];
    EXPECT_EQ(mismatches, 0) << c.w << "x" << c.h << " " << c.filter;
  }
}

TEST(Preprocess, EvalTransformMatchesTorchvision) {
  const Image input = load_image(fixture("input.png"));
  Preprocess p;
  p.input_height = p.input_width = 32;
  p.crop_pct = 0.875;
  const Tensor got = preprocess_image(input, p);
  const std::string bytes = read_file_bytes(fixture("eval_32_crop0875.f32"));
  ASSERT_EQ(bytes.size(), static_cast<std::size_t>(got.numel()) * 4);
  std::vector<float> want(got.numel());
  std::memcpy(want.data(), bytes.data(), bytes.size());
  const test::Diff d = test::compare(got, Tensor::from_vector(want, got.shape()));
  EXPECT_LE(d.max_abs, 1e-6);
}

TEST(Preprocess, GrayAndRgbaBecomeRgbAndTinyImagesWork) {
  Image gray = Image::allocate(1, 1, 1);
  gray.pixels[0] = 200;
  Preprocess p;
  p.input_height = p.input_width = 8;
  const Tensor t = preprocess_image(gray, p);
  EXPECT_EQ(t.shape(), (Shape{3, 8, 8}));
  for (int c = 0; c < 3; ++c)
    EXPECT_NEAR(t.item(c * 64), (200 / 255.0 - p.mean[c]) / p.std[c], 1e-5);
  Image rgba = Image::allocate(5, 3, 4);
  EXPECT_EQ(preprocess_image(rgba, p).shape(), (Shape{3, 8, 8}));
  EXPECT_THROW(pil_resize(rgba, 0, 4, "bicubic"), Error);
  EXPECT_THROW(pil_resize(rgba, 4, 4, "lanczos7"), Error);
}

}  // namespace
}  // namespace mcv::vision::test_preprocess
