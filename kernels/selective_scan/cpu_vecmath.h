// Vector exp / log1p-based softplus / silu over a SIMD wrapper `Vec`, included inside an
// anonymous namespace by the AVX2 and AVX-512 TUs (no include guard on purpose). Beyond the
// cpu_body.h interface, Vec provides: division, min_nan / max_nan (return the second operand when
// it is NaN, so NaN inputs propagate), round (to nearest), pow2i (2^k for integral k in
// [-126, 127]) and scale_pow2i (x 2^k for such k), split_exponent (u = m * 2^e with m in [1, 2) for positive normal u), and masks
// lt / gt / eq with select(mask, if_true, if_false).
//
// Accuracy: exp within ~1 ulp on [-87.3, 88.3] (Cody-Waite reduction, degree-7 polynomial with
// 5e-9 truncation error); below -87.3 it returns 0 (the true value is < 1.2e-38), above 88.72
// +inf. log within ~1-2 ulp (atanh series, |s| <= 0.172). softplus uses log1p(e) =
// log(1+e) * e / ((1+e) - 1), which keeps full relative accuracy for tiny e.

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
// kernels compute it. No overflow side and no selects: below -126 it returns 2^-126 (the true
// value is < 1.2e-38 there, which changes no output); NaN propagates. 2^f on [-0.5, 0.5] by its
// degree-7 Taylor polynomial (truncation < 6e-9 relative). About half the vector operations of
// vexp, which were most of a state update's (perf, S1 f32).
Vec vexp2_decay(const Vec& x) {
  const Vec xc = Vec::max_nan(Vec::set1(-126.0f), x);
  const Vec k = Vec::round(xc);
  const Vec f = xc - k;
  Vec q = Vec::set1(1.5252734e-5f);  // ln2^7 / 7!
  q = fma(q, f, Vec::set1(1.5403530e-4f));
  q = fma(q, f, Vec::set1(1.3333558e-3f));
  q = fma(q, f, Vec::set1(9.6181291e-3f));
  q = fma(q, f, Vec::set1(5.5504109e-2f));
  q = fma(q, f, Vec::set1(2.4022651e-1f));
  q = fma(q, f, Vec::set1(6.9314718e-1f));
  q = fma(q, f, Vec::set1(1.0f));
  return Vec::scale_pow2i(q, k);
}

// Natural log of u >= 1 (finite or NaN).
Vec vlog_ge1(const Vec& u) {
  Vec m, e;
  Vec::split_exponent(u, m, e);
  const auto big = Vec::gt(m, Vec::set1(1.41421356f));
  m = Vec::select(big, m * Vec::set1(0.5f), m);
  e = Vec::select(big, e + Vec::set1(1.0f), e);
  const Vec f = m - Vec::set1(1.0f);  // exact: m in [0.707, 1.414]
  const Vec s = f / (f + Vec::set1(2.0f));
  const Vec s2 = s * s;
  Vec q = Vec::set1(2.0f / 11.0f);
  q = fma(q, s2, Vec::set1(2.0f / 9.0f));
  q = fma(q, s2, Vec::set1(2.0f / 7.0f));
  q = fma(q, s2, Vec::set1(2.0f / 5.0f));
  q = fma(q, s2, Vec::set1(2.0f / 3.0f));
  const Vec logm = fma(s * s2, q, s + s);
  return fma(e, Vec::set1(0.693359375f), fma(e, Vec::set1(-2.12194440e-4f), logm));
}

Vec vsoftplus(const Vec& x) {
  const Vec e = vexp(x);
  const Vec u = e + Vec::set1(1.0f);
  const Vec d = u - Vec::set1(1.0f);
  const Vec l1p = Vec::select(Vec::eq(d, Vec::zero()), e, vlog_ge1(u) * e / d);
  return Vec::select(Vec::gt(x, Vec::set1(20.0f)), x, l1p);
}

Vec vsilu(const Vec& x) { return x / (Vec::set1(1.0f) + vexp(Vec::zero() - x)); }
