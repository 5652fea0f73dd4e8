#include "test_selective_scan_common.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <random>
#include <sstream>

#include <gtest/gtest.h>

#include "test_support.h"

namespace mcv::test::scan {

namespace {

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::channel_major: return "cm";
    case Layout::token_major: return "tm";
    case Layout::padded: return "pad";
    case Layout::gather: return "gather";
  }
  return "?";
}

/// Element of `t` at a logical index, as double (any dtype/strides; CPU).
double value_at(const Tensor& t, std::initializer_list<std::int64_t> idx) {
  std::int64_t off = 0;
  int i = 0;
  for (std::int64_t v : idx) off += v * t.stride(i++);
  const char* p = static_cast<const char*>(t.raw_data()) + off * static_cast<std::int64_t>(t.element_size());
  switch (t.dtype()) {
    case DType::f32: return *reinterpret_cast<const float*>(p);
    case DType::f16: return from_half(*reinterpret_cast<const Half*>(p));
    case DType::bf16: return from_bf16(*reinterpret_cast<const BFloat16*>(p));
    default: throw std::runtime_error("value_at: unsupported dtype");
  }
}

/// Random f32 values from a generator function, stored as `dtype` with shape `shape`.
Tensor fill(const Shape& shape, DType dtype, std::mt19937_64& rng,
            const std::function<float(std::mt19937_64&, const std::vector<std::int64_t>&)>& gen) {
  Tensor f = Tensor::empty(shape, DType::f32);
  float* p = f.data<float>();
  std::vector<std::int64_t> idx(shape.size(), 0);
  for (std::int64_t i = 0; i < f.numel(); ++i) {
    p[i] = gen(rng, idx);
    for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return dtype == DType::f32 ? f : f.to(dtype);
}

float normal(std::mt19937_64& rng) { return std::normal_distribution<float>(0.0f, 1.0f)(rng); }

}  // namespace

std::string ScanCase::name() const {
  std::ostringstream s;
  s << dtype_name(dtype) << "_" << kernels::scan_directions_name(dirs) << "_" << layout_name(layout) << "_b" << batch
    << "_D" << dim << "_L" << seqlen << "_N" << n_state << "_G" << groups;
  if (dirs == ScanDirections::cross2d) s << "_" << height << "x" << width << (grid_rank4 ? "r4" : "");
  s << (has_D ? "_Dskip" : "") << (has_z ? "_z" : "") << (has_bias ? "_bias" : "") << (softplus ? "_sp" : "")
    << (final_state ? "_hT" : "") << (initial_state ? "_h0" : "") << (fixed_B ? "_fixB" : "")
    << (fixed_C ? "_fixC" : "") << (rank3_bc ? "_bc3" : "") << (u_per_dir ? "_uK" : "") << (cols_transposed ? "_colT" : "");
  if (scale != 1.0f) s << "_s" << scale;
  if (a_scale != 1.0f) s << "_a" << a_scale;
  std::string out = s.str();
  for (char& ch : out)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return out;
}

namespace {

// Physical shape + view for a per-step stream of logical shape (batch, [K,] D, L).
Stored seq_stored(const ScanCase& c, std::int64_t k_axis, std::mt19937_64& rng,
                  const std::function<float(std::mt19937_64&)>& gen, bool grid4) {
  const std::int64_t b = c.batch, D = c.dim, L = c.seqlen, H = c.height, W = c.width;
  auto g = [&](std::mt19937_64& r, const std::vector<std::int64_t>&) { return gen(r); };
  const bool with_k = k_axis > 0;
  Stored s;
  switch (c.layout) {
    case Layout::channel_major:
      if (grid4) s.base = fill({b, D, H, W}, c.dtype, rng, g);
      else s.base = fill(with_k ? Shape{b, k_axis, D, L} : Shape{b, D, L}, c.dtype, rng, g);
      break;
    case Layout::token_major:
      if (grid4) {
        s.base = fill({b, H, W, D}, c.dtype, rng, g);
        s.view = [](const Tensor& t) { return t.permute({0, 3, 1, 2}); };
      } else if (with_k) {
        s.base = fill({b, L, k_axis, D}, c.dtype, rng, g);
        s.view = [](const Tensor& t) { return t.permute({0, 2, 3, 1}); };
      } else {
        s.base = fill({b, L, D}, c.dtype, rng, g);
        s.view = [](const Tensor& t) { return t.transpose(1, 2); };
      }
      break;
    case Layout::padded:
      if (grid4) {
        s.base = fill({b, D + 1, H, W}, c.dtype, rng, g);
        s.view = [D](const Tensor& t) { return t.slice(1, 0, D); };
      } else {
        s.base = fill(with_k ? Shape{b, k_axis, D, L + 3} : Shape{b, D, L + 3}, c.dtype, rng, g);
        s.view = [L](const Tensor& t) { return t.slice(-1, 1, L + 1); };
      }
      break;
    case Layout::gather:
      if (grid4) s.base = fill({b, D, H, W, 2}, c.dtype, rng, g);
      else s.base = fill(with_k ? Shape{b, k_axis, D, L, 2} : Shape{b, D, L, 2}, c.dtype, rng, g);
      s.view = [](const Tensor& t) { return t.select(-1, 0); };
      break;
  }
  return s;
}

// B or C (variable): logical (batch, KG, N, L) or (batch, N, L).
Stored bc_stored(const ScanCase& c, std::mt19937_64& rng) {
  const std::int64_t b = c.batch, N = c.n_state, L = c.seqlen, kg = c.dirs_count() * c.groups;
  auto g = [](std::mt19937_64& r, const std::vector<std::int64_t>&) { return normal(r); };
  Stored s;
  const bool r3 = c.rank3_bc;
  switch (c.layout) {
    case Layout::channel_major: s.base = fill(r3 ? Shape{b, N, L} : Shape{b, kg, N, L}, c.dtype, rng, g); break;
    case Layout::token_major:
      if (r3) {
        s.base = fill({b, L, N}, c.dtype, rng, g);
        s.view = [](const Tensor& t) { return t.transpose(1, 2); };
      } else {
        s.base = fill({b, L, kg, N}, c.dtype, rng, g);
        s.view = [](const Tensor& t) { return t.permute({0, 2, 3, 1}); };
      }
      break;
    case Layout::padded:
      if (r3) {
        s.base = fill({b, N, L + 2}, c.dtype, rng, g);
        s.view = [L](const Tensor& t) { return t.slice(-1, 2, L + 2); };
      } else {
        s.base = fill({b, N, kg, L}, c.dtype, rng, g);
        s.view = [](const Tensor& t) { return t.permute({0, 2, 1, 3}); };
      }
      break;
    case Layout::gather:
      s.base = fill(r3 ? Shape{b, N, L, 2} : Shape{b, kg, N, L, 2}, c.dtype, rng, g);
      s.view = [](const Tensor& t) { return t.select(-1, 0); };
      break;
  }
  return s;
}

// (K*D, N) matrix (A or a fixed B/C); the gather layout stores it transposed.
Stored mat_stored(const ScanCase& c, DType dtype, std::mt19937_64& rng,
                  const std::function<float(std::mt19937_64&, std::int64_t row, std::int64_t n)>& gen) {
  const std::int64_t kd = c.dirs_count() * c.dim, N = c.n_state;
  Stored s;
  if (c.layout == Layout::gather) {
    s.base = fill({N, kd}, dtype, rng, [&](std::mt19937_64& r, const std::vector<std::int64_t>& i) { return gen(r, i[1], i[0]); });
    s.view = [](const Tensor& t) { return t.transpose(0, 1); };
  } else {
    s.base = fill({kd, N}, dtype, rng, [&](std::mt19937_64& r, const std::vector<std::int64_t>& i) { return gen(r, i[0], i[1]); });
  }
  return s;
}

Stored vec_stored(const ScanCase& c, std::mt19937_64& rng, const std::function<float(std::mt19937_64&)>& gen) {
  const std::int64_t kd = c.dirs_count() * c.dim;
  auto g = [&](std::mt19937_64& r, const std::vector<std::int64_t>&) { return gen(r); };
  Stored s;
  if (c.layout == Layout::gather) {
    s.base = fill({kd, 2}, DType::f32, rng, g);
    s.view = [](const Tensor& t) { return t.select(1, 0); };
  } else if (c.dirs_count() > 1 && c.layout == Layout::padded) {
    s.base = fill({c.dirs_count(), c.dim}, DType::f32, rng, g);  // the (K, D) form
  } else {
    s.base = fill({kd}, DType::f32, rng, g);
  }
  return s;
}

Stored state_stored(const ScanCase& c, std::mt19937_64* rng) {
  const std::int64_t b = c.batch, K = c.dirs_count(), D = c.dim, N = c.n_state;
  auto g = [](std::mt19937_64& r, const std::vector<std::int64_t>&) { return 0.5f * normal(r); };
  std::mt19937_64 dummy(0);
  std::mt19937_64& r = rng ? *rng : dummy;
  Stored s;
  if (c.layout == Layout::gather) {
    s.base = fill(K == 1 ? Shape{b, N, D} : Shape{b, K, N, D}, DType::f32, r, g);
    s.view = [K](const Tensor& t) { return K == 1 ? t.transpose(1, 2) : t.permute({0, 1, 3, 2}); };
  } else {
    s.base = fill(K == 1 && c.layout != Layout::padded ? Shape{b, D, N} : Shape{b, K, D, N}, DType::f32, r, g);
  }
  return s;
}

}  // namespace

ScanInputs make_inputs(const ScanCase& c) {
  std::mt19937_64 rng(c.seed * 7919 + 17);
  const int K = c.dirs_count();
  const bool grid4 = c.dirs == ScanDirections::cross2d && c.grid_rank4;
  ScanInputs in;
  in.u = seq_stored(c, c.u_per_dir ? K : 0, rng, normal, grid4);
  // dt: with softplus, raw values around the Mamba init (softplus(bias) in [1e-3, 1e-1]);
  // without, positive values used as they are.
  std::function<float(std::mt19937_64&)> delta_gen;
  if (!c.softplus) delta_gen = [](std::mt19937_64& r) { return 0.01f + 0.05f * std::abs(normal(r)); };
  else if (c.has_bias) delta_gen = [](std::mt19937_64& r) { return 0.5f * normal(r); };
  else delta_gen = [](std::mt19937_64& r) { return -3.0f + normal(r); };
  in.delta = seq_stored(c, K > 1 ? K : 0, rng, delta_gen, false);
  if (K == 1 && c.layout == Layout::channel_major && c.rank3_bc == false && c.initial_state) {
    // exercise the (batch, 1, D, L) form of delta once in a while
    in.delta.view = [](const Tensor& t) { return t.unsqueeze(1); };
  }
  const float a_scale = c.a_scale;
  in.A = mat_stored(c, DType::f32, rng, [a_scale](std::mt19937_64& r, std::int64_t, std::int64_t n) {
    return -a_scale * (0.5f + static_cast<float>(n % 16)) * std::exp(0.3f * normal(r));
  });
  auto normal_mat = [](std::mt19937_64& r, std::int64_t, std::int64_t) { return normal(r); };
  in.B = c.fixed_B ? mat_stored(c, c.dtype, rng, normal_mat) : bc_stored(c, rng);
  in.C = c.fixed_C ? mat_stored(c, c.dtype, rng, normal_mat) : bc_stored(c, rng);
  if (c.has_D) in.D = vec_stored(c, rng, normal);
  if (c.has_z) in.z = seq_stored(c, 0, rng, normal, grid4);
  if (c.has_bias && !c.softplus)
    in.bias = vec_stored(c, rng, [](std::mt19937_64& r) { return 0.01f * std::abs(normal(r)); });
  else if (c.has_bias)
    in.bias = vec_stored(c, rng, [](std::mt19937_64& r) {
      // inverse softplus of dt0, dt0 log-uniform in [1e-3, 1e-1]
      const float dt0 = std::exp(std::uniform_real_distribution<float>(std::log(1e-3f), std::log(1e-1f))(r));
      return dt0 + std::log(-std::expm1(-dt0));
    });
  if (c.initial_state) in.h0 = state_stored(c, &rng);
  return in;
}

Stored make_out(const ScanCase& c, Device device) {
  std::mt19937_64 rng(0);
  const bool grid4 = c.dirs == ScanDirections::cross2d && c.grid_rank4;
  Stored s = seq_stored(c, 0, rng, [](std::mt19937_64&) { return 0.0f; }, grid4);
  s.base = s.base.to(device);
  poison(s.base);
  return s;
}

Stored make_state(const ScanCase& c, Device device) {
  Stored s = state_stored(c, nullptr);
  s.base = s.base.to(device);
  poison(s.base);
  return s;
}

SelectiveScanArgs make_args(const ScanCase& c, const ScanInputs& in, const Tensor& out, const Tensor& final_state) {
  SelectiveScanArgs a;
  a.u = in.u.get();
  a.delta = in.delta.get();
  a.A = in.A.get();
  a.B = in.B.get();
  a.C = in.C.get();
  a.D = in.D.get();
  a.z = in.z.get();
  a.delta_bias = in.bias.get();
  a.initial_state = in.h0.get();
  a.delta_softplus = c.softplus;
  a.directions = c.dirs;
  if (c.dirs == ScanDirections::cross2d && !c.grid_rank4) {
    a.height = c.height;
    a.width = c.width;
  }
  a.out_scale = c.scale;
  a.column_inputs_transposed = c.cols_transposed;
  a.out = out;
  a.final_state = final_state;
  return a;
}

Reference reference_scan(const SelectiveScanArgs& a) {
  const int K = kernels::scan_direction_count(a.directions);
  const bool u_per_dir = a.u.dim() == 4 && a.directions == ScanDirections::bidirectional;
  const bool grid4 = a.u.dim() == 4 && !u_per_dir;
  const std::int64_t batch = a.u.size(0), D = a.u.size(u_per_dir ? 2 : 1);
  const std::int64_t H = grid4 ? a.u.size(2) : a.height, W = grid4 ? a.u.size(3) : a.width;
  const std::int64_t L = grid4 ? H * W : a.u.size(u_per_dir ? 3 : 2);
  const std::int64_t N = a.A.size(-1);
  const bool a3 = a.A.dim() == 3;
  auto seq = [&](const Tensor& t, std::int64_t b, std::int64_t d, std::int64_t q) {
    return t.dim() == 4 ? value_at(t, {b, d, q / W, q % W}) : value_at(t, {b, d, q});
  };
  auto param = [&](const Tensor& t, std::int64_t row) {
    return t.dim() == 2 ? value_at(t, {row / D, row % D}) : value_at(t, {row});
  };
  auto a_at = [&](std::int64_t row, std::int64_t n) {
    return a3 ? value_at(a.A, {row / D, row % D, n}) : value_at(a.A, {row, n});
  };
  std::int64_t G = 1;
  for (const Tensor* t : {&a.B, &a.C})
    if (t->dim() == 4) G = t->size(1) / K;
  auto bc = [&](const Tensor& t, std::int64_t b, std::int64_t k, std::int64_t d, std::int64_t n, std::int64_t q) {
    if (t.dim() == 2) return value_at(t, {k * D + d, n});
    if (t.dim() == 3) return value_at(t, {b, n, q});
    return value_at(t, {b, k * G + d / (D / G), n, q});
  };
  auto state = [&](const Tensor& t, std::int64_t b, std::int64_t k, std::int64_t d, std::int64_t n) {
    return t.dim() == 3 ? value_at(t, {b, d, n}) : value_at(t, {b, k, d, n});
  };
  Reference r;
  r.out.assign(batch * D * L, 0.0);
  r.state.assign(batch * K * D * N, 0.0);
  std::vector<double> h(N);
  for (std::int64_t b = 0; b < batch; ++b)
    for (int k = 0; k < K; ++k)
      for (std::int64_t d = 0; d < D; ++d) {
        const std::int64_t row = k * D + d;
        for (std::int64_t n = 0; n < N; ++n) h[n] = a.initial_state.defined() ? state(a.initial_state, b, k, d, n) : 0.0;
        const bool flip = a.directions == ScanDirections::reverse ||
                          (a.directions == ScanDirections::bidirectional && k == 1) ||
                          (a.directions == ScanDirections::cross2d && k >= 2);
        const bool column = a.directions == ScanDirections::cross2d && (k % 2 == 1);
        for (std::int64_t t = 0; t < L; ++t) {
          const std::int64_t s = flip ? L - 1 - t : t;
          const std::int64_t q = column ? (s % H) * W + s / H : s;
          // delta, B and C of a column direction given column-major: index s along L.
          const std::int64_t qi = column && a.column_inputs_transposed ? s : q;
          const double u = u_per_dir ? value_at(a.u, {b, k, d, q}) : seq(a.u, b, d, q);
          double dt = (a.delta.dim() == 4 ? value_at(a.delta, {b, k, d, qi}) : value_at(a.delta, {b, d, qi}));
          if (a.delta_bias.defined()) dt += param(a.delta_bias, row);
          if (a.delta_softplus) dt = dt > 20.0 ? dt : std::log1p(std::exp(dt));
          double y = 0;
          for (std::int64_t n = 0; n < N; ++n) {
            h[n] = std::exp(dt * a_at(row, n)) * h[n] + dt * bc(a.B, b, k, d, n, qi) * u;
            y += bc(a.C, b, k, d, n, qi) * h[n];
          }
          if (a.D.defined()) y += param(a.D, row) * u;
          r.out[(b * D + d) * L + q] += y;
        }
        for (std::int64_t n = 0; n < N; ++n) r.state[((b * K + k) * D + d) * N + n] = h[n];
      }
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t d = 0; d < D; ++d)
      for (std::int64_t q = 0; q < L; ++q) {
        double& o = r.out[(b * D + d) * L + q];
        o *= a.out_scale;
        if (a.z.defined()) {
          const double z = seq(a.z, b, d, q);
          o *= z / (1.0 + std::exp(-z));
        }
      }
  return r;
}

std::vector<double> logical_values(const Tensor& t) {
  const Tensor c = t.device().is_cpu() ? t : t.to(Device::cpu());
  std::vector<double> v;
  v.reserve(c.numel());
  if (c.dim() == 3) {
    for (std::int64_t b = 0; b < c.size(0); ++b)
      for (std::int64_t d = 0; d < c.size(1); ++d)
        for (std::int64_t l = 0; l < c.size(2); ++l) v.push_back(value_at(c, {b, d, l}));
  } else if (c.dim() == 4) {
    for (std::int64_t b = 0; b < c.size(0); ++b)
      for (std::int64_t d = 0; d < c.size(1); ++d)
        for (std::int64_t x = 0; x < c.size(2); ++x)
          for (std::int64_t y = 0; y < c.size(3); ++y) v.push_back(value_at(c, {b, d, x, y}));
  } else {
    throw std::runtime_error("logical_values: rank 3 or 4 expected");
  }
  return v;
}

Error compare(const std::vector<double>& got, const std::vector<double>& want) {
  Error e;
  if (got.size() != want.size()) {
    e.bad = -1;
    return e;
  }
  double num = 0, den = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]) && std::isfinite(want[i])) {
      ++e.bad;
      continue;
    }
    const double diff = std::abs(got[i] - want[i]);
    e.max_abs = std::max(e.max_abs, diff);
    e.ref_max = std::max(e.ref_max, std::abs(want[i]));
    num += diff * diff;
    den += want[i] * want[i];
  }
  e.rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return e;
}

double tolerance(DType dtype) {
  switch (dtype) {
    case DType::f32: return 1e-5;
    case DType::f16: return 4e-3;
    default: return 2e-2;
  }
}

void set_extreme_z(ScanInputs& in, DType dtype) {
  const float extremes[] = {INFINITY, -INFINITY, NAN, -1e30f, 1e30f, -100.0f, -88.5f, -88.0f, -87.5f, -50.0f, -20.0f,
                            -1.0f, -1e-3f, 0.0f, 1e-3f, 1.0f, 20.0f, 50.0f, 88.5f, 100.0f, -3e38f};
  std::vector<float> z(static_cast<std::size_t>(in.z.base.numel()));
  for (std::size_t i = 0; i < z.size(); ++i) z[i] = extremes[(i * 5) % std::size(extremes)];
  in.z.base = Tensor::from_vector(z, in.z.base.shape()).to(dtype);
}

void expect_same_values(const std::vector<double>& got, const std::vector<double>& want, double tol,
                        NonFinite non_finite, const std::vector<double>& scale) {
  ASSERT_TRUE(scale.empty() || scale.size() == want.size());
  ASSERT_EQ(got.size(), want.size());
  int nan = 0, inf = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    nan += std::isnan(want[i]);
    inf += std::isinf(want[i]);
    if (!std::isfinite(want[i])) {
      if (non_finite == NonFinite::exact)
        EXPECT_TRUE(std::isnan(want[i]) ? std::isnan(got[i]) : got[i] == want[i]) << i << ": " << got[i] << " vs " << want[i];
      else
        EXPECT_FALSE(std::isfinite(got[i])) << i << ": " << got[i] << " vs " << want[i];
    } else {
      EXPECT_NEAR(got[i], want[i], tol * std::max({1.0, std::fabs(want[i]), scale.empty() ? 0.0 : scale[i]})) << i;
    }
  }
  EXPECT_GT(nan, 0);
  EXPECT_GT(inf, 0);
}

}  // namespace mcv::test::scan
