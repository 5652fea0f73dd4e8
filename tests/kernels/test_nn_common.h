#pragma once
// Helpers shared by the nn op tests: double-precision views of tensors, per-dtype tolerances,
// poisoned outputs, and moving a whole argument set to the GPU.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "mcv/context.h"
#include "mcv/error.h"
#include "mcv/kernels/nn.h"
#include "mcv/tensor.h"
#include "test_support.h"

namespace mcv::nn_test {

using kernels::Activation;

inline const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

/// Relative-L2 tolerance of an op's output against a double reference computed from the same
/// (already rounded) inputs: f32 accumulation error, or the output rounding of 16-bit types.
inline double tolerance(DType t) { return t == DType::f32 ? 3e-6 : t == DType::f16 ? 3e-3 : 1e-2; }
/// CUDA against the CPU path: different summation orders (and cuDNN algorithms) on top.
inline double cuda_tolerance(DType t) { return t == DType::f32 ? 2e-5 : t == DType::f16 ? 5e-3 : 2e-2; }

/// Every element as double (any device / dtype / strides).
inline std::vector<double> values(const Tensor& t) {
  const Tensor c = t.device().is_cpu() ? t : t.to(Device::cpu());
  std::vector<double> v(static_cast<std::size_t>(c.numel()));
  for (std::int64_t i = 0; i < c.numel(); ++i) v[static_cast<std::size_t>(i)] = c.item(i);
  return v;
}

/// An f32 CPU tensor holding `v`.
inline Tensor from_doubles(const std::vector<double>& v, const Shape& shape) {
  std::vector<float> f(v.begin(), v.end());
  return Tensor::from_vector(f, shape);
}

/// Uninitialised output filled with NaN, so an element the op forgets fails the comparison.
inline Tensor poisoned(const Shape& shape, DType dtype, Device device = Device::cpu()) {
  Tensor t = Tensor::empty(shape, dtype, device);
  test::poison(t);
  return t;
}

inline Tensor rnd(const Shape& shape, DType dtype, std::uint64_t seed, float scale = 1.0f, float offset = 0.0f) {
  return test::random_tensor(shape, dtype, seed, scale, offset);
}

/// Asserts got ~ want within rel_l2 `tol`, no non-finite values.
inline void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  const test::Diff d = test::compare(got, want);
  EXPECT_EQ(d.non_finite, 0) << what << ": non-finite (unwritten?) elements";
  EXPECT_LE(d.rel_l2, tol) << what << ": rel_l2 " << d.rel_l2 << " max_abs " << d.max_abs;
}

inline Tensor to_cuda(const Tensor& t) { return t.defined() ? t.to(Device::cuda()) : Tensor(); }

/// Runs `fn` and checks it throws mcv::Error whose message contains `needle`.
template <typename Fn>
void expect_error(Fn&& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected mcv::Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  }
}

inline double act_ref(Activation a, double x) {
  switch (a) {
    case Activation::none: return x;
    case Activation::relu: return x > 0 ? x : 0;
    case Activation::gelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case Activation::gelu_tanh:
      return 0.5 * x * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case Activation::silu: return x / (1 + std::exp(-x));
  }
  return x;
}

inline const char* dtype_label(DType t) { return dtype_name(t); }

inline Shape with_last(Shape s, std::int64_t c) {
  s.push_back(c);
  return s;
}

/// A poisoned (lead..., C) output view inside a wider buffer (offset 1 and 3 extra columns when
/// misaligned); expect_pads_untouched checks nothing outside the view was written.
struct Output {
  Tensor wide, view;
  std::int64_t c0 = 0, C = 0;
  Output(const Shape& lead, std::int64_t C_, DType dt, Device d, bool misaligned)
      : wide(poisoned(with_last(lead, C_ + (misaligned ? 3 : 0)), dt, d)), c0(misaligned ? 1 : 0), C(C_) {
    view = wide.slice(-1, c0, c0 + C);
  }
  void expect_pads_untouched(const std::string& what) const {
    const std::int64_t width = wide.size(-1);
    if (width == C) return;
    const Tensor w = wide.to(Device::cpu());
    for (const auto& [a, b] : {std::pair<std::int64_t, std::int64_t>{0, c0}, {c0 + C, width}}) {
      if (a == b) continue;
      const Tensor pad = w.slice(-1, a, b);
      EXPECT_EQ(test::compare(pad, pad).non_finite, pad.numel()) << what << ": wrote outside the view";
    }
  }
};

/// rel_l2 as expect_close, plus every element within `rel_max` of the largest |want| (a single
/// wrong row of a large tensor can hide inside the L2 norm).
inline void expect_close_max(const Tensor& got, const Tensor& want, DType dt, const std::string& what) {
  expect_close(got, want, cuda_tolerance(dt), what);
  const std::vector<double> w = values(want);
  double peak = 0;
  for (double v : w) peak = std::max(peak, std::abs(v));
  const double rel_max = dt == DType::f32 ? 2e-5 : dt == DType::f16 ? 2.5e-3 : 1.6e-2;
  EXPECT_LE(test::compare(got, want).max_abs, rel_max * std::max(peak, 1.0)) << what;
}

/// A (..., C) operand: all of `wide` (aligned), or columns [1, C + 1) of a wider (..., C + 3)
/// tensor (misaligned: a 1-element offset and an odd row stride for even C, so the kernels take
/// their scalar path); `on` gives the view on a device.
struct Operand {
  Tensor wide;
  std::int64_t c0 = 0, C = 0;
  Tensor on(Device d) const {
    if (!wide.defined()) return Tensor();
    const Tensor w = d.is_cpu() ? wide : wide.to(d);
    return w.slice(-1, c0, c0 + C);
  }
};

}  // namespace mcv::nn_test
