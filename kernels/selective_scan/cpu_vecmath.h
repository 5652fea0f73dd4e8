// Vector exp / exp2 / softplus / silu over a SIMD wrapper `Vec`, included inside an anonymous
// namespace by the AVX2 and AVX-512 TUs (no include guard on purpose). Beyond the cpu_body.h
// interface, Vec provides: division, min_nan / max_nan (return the second operand when it is
// NaN, so NaN inputs propagate), round (to nearest), pow2i (2^k for integral k in [-126, 127]),
// scale_pow2i (x 2^k for integral k), and masks lt / gt with select(mask, if_true, if_false).
//
// Accuracy: exp within ~1 ulp on [-87.3, 88.3] (Cody-Waite reduction, degree-7 polynomial with
// 5e-9 truncation error); below -87.3 it returns 0 (the true value is < 1.2e-38), above 88.72
// +inf. The decays' exp2 and softplus: below.

Vec vexp(const Vec& x) {
  const Vec xc = Vec::max_nan(Vec::set1(-87.3365447f), Vec::min_nan(Vec::set1(88.37f), x));
  const Vec k = Vec::round(xc * Vec::set1(1.44269504088896341f));
  Vec r = fma(k, Vec::set1(-0.693359375f), xc);
  r = fma(k, Vec::set1(2.12194440e-4f), r);
  Vec q = Vec::set1(1.0f / 5040.0f);
  q = fma(q, r, Vec::set1(1.0f / 720.0f));
  q = fma(q, r, Vec::set1(1.0f / 120.0f));
  q = fma(q, r, Vec::set1(1.0f / 24.0f));
  q = fma(q, r, Vec::set1(1.0f / 6.0f));
  q = fma(q, r, Vec::set1(0.5f));
  q = fma(q, r, Vec::set1(1.0f));
  q = fma(q, r, Vec::set1(1.0f));
  Vec res = q * Vec::pow2i(k);
  res = Vec::select(Vec::lt(x, Vec::set1(-87.3365447f)), Vec::zero(), res);
  res = Vec::select(Vec::gt(x, Vec::set1(88.7228394f)), Vec::set1(INFINITY), res);
  return res;
}

// 2^x for x <= 0 (or NaN): the recurrence's decay exp(dt A) = 2^(dt A log2 e) when every A of
// the vector is <= 0 (the caller checks; A = -exp(A_log) in every Mamba model), as the CUDA
// kernels compute it. No overflow side, no clamp or selects: scale_pow2i takes the underflow
// (0 or a denormal far below any output's resolution); NaN propagates (as does -inf, to NaN,
// where dt is infinite and the state update non-finite anyway). 2^f on [-0.5, 0.5] by a
// degree-6 near-minimax polynomial (relative error 1.9e-9, 1.3 x 2^-24 after f32 rounding).
// About half the vector operations of vexp, which were most of a state update's (perf, S1 f32).
//
// q[i] = c[0] at x[i], then each Horner step q[i] = q[i] x[i] + c[k] for all kN vectors before the
// next step: kN polynomial chains interleaved.
template <int kN, std::size_t kC>
__attribute__((always_inline)) inline void horner_n(const float (&c)[kC], const Vec (&x)[kN], Vec (&q)[kN]) {
#pragma GCC unroll 8
  for (int i = 0; i < kN; ++i) q[i] = Vec::set1(c[0]);
#pragma GCC unroll 16
  for (std::size_t k = 1; k < kC; ++k) {
#pragma GCC unroll 8
    for (int i = 0; i < kN; ++i) q[i] = fma(q[i], x[i], Vec::set1(c[k]));
  }
}
// kN independent decays at once, their steps interleaved: each polynomial is a chain of six
// dependent FMAs (~30 cycles), and written one decay after the other the out-of-order window
// holds too few of them to overlap (a loop of 16 updates alone, Zen 2 class AVX2 core: ~13 ->
// ~8 cycles per update with four interleaved).
template <int kN>
__attribute__((always_inline)) inline void vexp2_decays(const Vec (&x)[kN], Vec (&out)[kN]) {
  static constexpr float kCoef[] = {1.534580515e-04f, 1.339993207e-03f, 9.618489072e-03f, 5.550328642e-02f,
                                    2.402264625e-01f, 6.931471825e-01f, 1.0f};
  Vec k[kN], f[kN], q[kN];
#pragma GCC unroll 8
  for (int i = 0; i < kN; ++i) k[i] = Vec::round(x[i]);
#pragma GCC unroll 8
  for (int i = 0; i < kN; ++i) f[i] = x[i] - k[i];
  horner_n(kCoef, f, q);
#pragma GCC unroll 8
  for (int i = 0; i < kN; ++i) out[i] = Vec::scale_pow2i(q[i], k[i]);
}
Vec vexp2_decay(const Vec& x) {
  const Vec in[1] = {x};
  Vec out[1];
  vexp2_decays<1>(in, out);
  return out[0];
}

// torch's softplus (x itself above 20) as max(x, 0) + log1p(e), e = exp(-|x|) in (0, 1], with
// log1p(e) = e q(e), q softplus_poly.h's degree 8 (relative error 2.2e-7): the CUDA kernels'
// form (scan_device.cuh, softplus_f). No division: the log form's two per step were a large part
// of the pre-pass.
// kN of them at once, interleaved as vexp2_decays (the pre-pass's steps are independent; one
// softplus alone is a chain of 14 dependent FMAs).
template <int kN>
__attribute__((always_inline)) inline void vsoftplus_n(Vec (&x)[kN]) {
  static constexpr SoftplusCoefs<8> kCoef = softplus_coefs<8>();
  Vec m[kN], e[kN], q[kN];
#pragma GCC unroll 8
  for (int i = 0; i < kN; ++i) m[i] = Vec::min_nan(Vec::zero() - x[i], x[i]) * Vec::set1(1.44269504088896341f);
  vexp2_decays<kN>(m, e);  // exp(-|x|)
  horner_n(kCoef.v, e, q);
#pragma GCC unroll 8
  for (int i = 0; i < kN; ++i)
    x[i] = Vec::select(Vec::gt(x[i], Vec::set1(20.0f)), x[i], fma(e[i], q[i], Vec::max_nan(Vec::zero(), x[i])));
}
Vec vsoftplus(const Vec& x) {
  Vec v[1] = {x};
  vsoftplus_n<1>(v);
  return v[0];
}

Vec vsilu(const Vec& x) { return x / (Vec::set1(1.0f) + vexp(Vec::zero() - x)); }
