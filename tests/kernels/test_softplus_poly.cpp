// The softplus polynomials of the CPU and CUDA scans (selective_scan/softplus_poly.h): each degree
// within its stated relative-error bound, and the whole max(x, 0) + e q(e) form equal to torch's
// softplus, including x itself above the threshold of 20. Evaluated here as the kernels do it
// (f32, Horner by FMAs) with a correctly rounded exp standing in for the SFU's ex2.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "selective_scan/softplus_poly.h"

namespace mcv::kernels::scan {
namespace {

template <int kDegree>
float q_of(float e) {
  float q = softplus_q<kDegree>(0);
  for (int i = 1; i <= kDegree; ++i) q = std::fmaf(q, e, softplus_q<kDegree>(i));
  return q;
}

/// Largest relative error of e q(e) against log1p(e) over e in (0, 1].
template <int kDegree>
double log1p_rel_error() {
  constexpr long kPoints = 1 << 21;
  double worst = 0.0;
  auto at = [&](float e) {
    const double ref = std::log1p(static_cast<double>(e));
    worst = std::max(worst, std::fabs(static_cast<double>(e * q_of<kDegree>(e)) - ref) / ref);
  };
  for (long k = 1; k <= kPoints; ++k) at(static_cast<float>(k) / kPoints);
  for (float e = 1e-30f; e < 1.0f / kPoints; e *= 1.5f) at(e);  // the small-e end, where q(0) rules
  return worst;
}

/// The kernels' softplus: fma(e, q(e), max(x, 0)), e = exp(-|x|) rounded to f32.
template <int kDegree>
float softplus_poly(float x) {
  const float e = static_cast<float>(std::exp(-std::fabs(static_cast<double>(x))));
  return std::fmaf(e, q_of<kDegree>(e), std::max(x, 0.0f));
}

/// torch: x above 20, else log1p(exp(x)).
double softplus_torch(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

template <int kDegree>
void check_degree() {
  const double log1p_err = log1p_rel_error<kDegree>();
  EXPECT_LE(log1p_err, kSoftplusMaxRelErr<kDegree>) << "degree " << kDegree;
  // A bound that is far above the polynomial's error says nothing: keep it within 2x.
  EXPECT_GE(log1p_err, kSoftplusMaxRelErr<kDegree> / 2) << "degree " << kDegree;
  double worst = 0.0;
  for (int k = -60000; k <= 60000; ++k) {
    const float x = static_cast<float>(k) * 5e-4f;  // [-30, 30]
    const double ref = softplus_torch(x);
    // The bound of log1p's part plus the f32 rounding of the final FMA.
    worst = std::max(worst, std::fabs(softplus_poly<kDegree>(x) - ref) / ref);
  }
  EXPECT_LE(worst, kSoftplusMaxRelErr<kDegree> + 1.2e-7) << "degree " << kDegree;
  for (float x = 20.0f; x < 1e6f; x = std::nextafter(x * 1.001f, 2e6f))
    ASSERT_EQ(softplus_poly<kDegree>(x), x) << "degree " << kDegree << ", x " << x;
}

TEST(SoftplusPoly, Degree8WithinItsBound) { check_degree<8>(); }
TEST(SoftplusPoly, Degree7WithinItsBound) { check_degree<7>(); }
TEST(SoftplusPoly, Degree6WithinItsBound) { check_degree<6>(); }
TEST(SoftplusPoly, Degree5WithinItsBound) { check_degree<5>(); }

}  // namespace
}  // namespace mcv::kernels::scan
