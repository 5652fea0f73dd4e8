#include "preprocess.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "mcv/error.h"

namespace mcv::vision {

namespace {

// PIL's 8-bit resampling keeps coefficients as fixed point with 22 fractional bits
// (32 - 8 bits of sample - 2 bits of headroom) and rounds by adding half before the shift.
constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}
double bilinear_filter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

struct Coefficients {
  int ksize = 0;
  std::vector<int> bounds;  // per output: first input index, count
  std::vector<int> weights; // per output: ksize fixed-point weights
};

// PIL's precompute_coeffs + normalize_coeffs_8bpc for one axis (box = the whole input).
Coefficients precompute(int in_size, int out_size, double (*filter)(double), double support_base) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = support_base * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(2 * out_size);
  c.weights.assign(static_cast<std::size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);  // truncation toward zero, as C does
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = filter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
      const double v = k[x] * (1 << kPrecisionBits);
      c.weights[static_cast<std::size_t>(xx) * c.ksize + x] = static_cast<int>(v < 0 ? v - 0.5 : v + 0.5);
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

inline std::uint8_t clip8(long long v) {
  v >>= kPrecisionBits;
  return static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

Image resample_horizontal(const Image& in, int out_w, const Coefficients& c) {
  Image out = Image::allocate(out_w, in.height, in.channels);
  const int ch = in.channels;
  for (int y = 0; y < in.height; ++y) {
    const std::uint8_t* src = in.row(y);
    std::uint8_t* dst = out.row(y);
    for (int xx = 0; xx < out_w; ++xx) {
      const int xmin = c.bounds[2 * xx], xcount = c.bounds[2 * xx + 1];
      const int* k = &c.weights[static_cast<std::size_t>(xx) * c.ksize];
      for (int b = 0; b < ch; ++b) {
        long long ss = 1LL << (kPrecisionBits - 1);
        for (int x = 0; x < xcount; ++x) ss += static_cast<long long>(src[(x + xmin) * ch + b]) * k[x];
        dst[xx * ch + b] = clip8(ss);
      }
    }
  }
  return out;
}

Image resample_vertical(const Image& in, int out_h, const Coefficients& c) {
  Image out = Image::allocate(in.width, out_h, in.channels);
  const std::size_t row = in.row_bytes();
  for (int yy = 0; yy < out_h; ++yy) {
    const int ymin = c.bounds[2 * yy], ycount = c.bounds[2 * yy + 1];
    const int* k = &c.weights[static_cast<std::size_t>(yy) * c.ksize];
    std::uint8_t* dst = out.row(yy);
    for (std::size_t i = 0; i < row; ++i) {
      long long ss = 1LL << (kPrecisionBits - 1);
      for (int y = 0; y < ycount; ++y) ss += static_cast<long long>(in.row(y + ymin)[i]) * k[y];
      dst[i] = clip8(ss);
    }
  }
  return out;
}

Image nearest_resize(const Image& in, int w, int h) {
  Image out = Image::allocate(w, h, in.channels);
  const int ch = in.channels;
  for (int y = 0; y < h; ++y) {
    // PIL's nearest: source coordinate of the pixel centre, truncated.
    const int sy = std::min(in.height - 1, static_cast<int>((y + 0.5) * in.height / h));
    for (int x = 0; x < w; ++x) {
      const int sx = std::min(in.width - 1, static_cast<int>((x + 0.5) * in.width / w));
      std::copy_n(in.row(sy) + sx * ch, ch, out.row(y) + x * ch);
    }
  }
  return out;
}

// Python's round(): halves go to the even neighbour (torchvision's CenterCrop uses it).
int round_half_even(double v) { return static_cast<int>(std::nearbyint(v)); }

}  // namespace

Image pil_resize(const Image& image, int width, int height, const std::string& filter) {
  MCV_CHECK(image.bit_depth == 8, "resize: only 8-bit images (convert first)");
  MCV_CHECK(width > 0 && height > 0, "resize: target size ", width, "x", height, " is not positive");
  if (filter == "nearest") return nearest_resize(image, width, height);
  double (*f)(double) = nullptr;
  double support = 0;
  if (filter == "bicubic") {
    f = bicubic_filter;
    support = 2.0;
  } else if (filter == "bilinear") {
    f = bilinear_filter;
    support = 1.0;
  } else {
    throw Error("interpolation " + filter, "unsupported (bicubic, bilinear or nearest)");
  }
  Image out = image;
  if (width != image.width) out = resample_horizontal(out, width, precompute(image.width, width, f, support));
  if (height != image.height) out = resample_vertical(out, height, precompute(image.height, height, f, support));
  return out;
}

Tensor preprocess_image(const Image& image, const Preprocess& p) {
  image.validate("image");
  const Image rgb = to_rgb8(image);
  // torchvision Resize(int): the shorter side becomes `size`, the longer keeps the aspect ratio
  // (truncated), where size = floor(input_size / crop_pct) as timm computes it.
  const int target = std::max(p.input_height, p.input_width);
  const int size = static_cast<int>(std::floor(target / p.crop_pct));
  int new_w, new_h;
  if (p.crop_mode == "squash") {
    new_w = static_cast<int>(std::floor(p.input_width / p.crop_pct));
    new_h = static_cast<int>(std::floor(p.input_height / p.crop_pct));
  } else if (p.crop_mode != "center") {
    throw Error("crop_mode " + p.crop_mode, "unsupported (center or squash)");
  } else if (rgb.width <= rgb.height) {
    new_w = size;
    new_h = static_cast<int>(static_cast<long long>(size) * rgb.height / rgb.width);
  } else {
    new_h = size;
    new_w = static_cast<int>(static_cast<long long>(size) * rgb.width / rgb.height);
  }
  const Image resized = (new_w == rgb.width && new_h == rgb.height) ? rgb : pil_resize(rgb, new_w, new_h, p.interpolation);
  // CenterCrop: offsets rounded half-to-even; a crop larger than the image pads with zeros.
  const int th = p.input_height, tw = p.input_width;
  const int top = round_half_even((resized.height - th) / 2.0);
  const int left = round_half_even((resized.width - tw) / 2.0);
  Tensor out = Tensor::empty({3, th, tw}, DType::f32);
  float* o = out.data<float>();
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < th; ++y) {
      const int sy = y + top;
      for (int x = 0; x < tw; ++x) {
        const int sx = x + left;
        const bool inside = sy >= 0 && sy < resized.height && sx >= 0 && sx < resized.width;
        const float v = inside ? resized.row(sy)[sx * 3 + c] : 0.0f;
        // (v / 255 - mean) / std, evaluated in the same order as ToTensor + Normalize.
        o[(static_cast<std::size_t>(c) * th + y) * tw + x] = (v / 255.0f - p.mean[c]) / p.std[c];
      }
    }
  }
  return out;
}

}  // namespace mcv::vision
