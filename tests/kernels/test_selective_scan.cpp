// Selective scan on the CPU: every case against a float64 reference written from the math
// (lengths, state sizes, dtypes, groups, options, directions, layouts, instruction sets); fused
// directions against explicit flip / transpose compositions of 1-D scans (the way Vim and
// VMamba run them); every validation error, raised before anything is written.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "mcv/context.h"
#include "mcv/error.h"
#include "mcv/kernels/selective_scan.h"
#include "selective_scan/chunking.h"
#include "selective_scan/cpu.h"
#include "test_selective_scan_common.h"
#include "test_support.h"

namespace mcv::test::scan {
namespace {

using kernels::scan::CpuIsa;

std::vector<double> state_values(const Tensor& t) {
  const Tensor c = t.to(Device::cpu());  // contiguous logical order
  const std::vector<float> f = c.to_vector();
  return std::vector<double>(f.begin(), f.end());
}

void check_against_reference(const ScanCase& c, CpuIsa isa) {
  Context ctx(Device::cpu());
  const ScanInputs in = make_inputs(c);
  const Stored out = make_out(c, Device::cpu());
  const Stored st = c.final_state ? make_state(c, Device::cpu()) : Stored{};
  const SelectiveScanArgs args = make_args(c, in, out.get(), st.get());
  kernels::scan::selective_scan_with_isa(ctx, args, isa);
  const Reference ref = reference_scan(args);
  const Error e = compare(logical_values(out.get()), ref.out);
  const double tol = tolerance(c.dtype);
  if (std::getenv("MCV_SCAN_VERBOSE"))
    std::printf("%s: rel_l2 %.3g max_abs %.3g ref_max %.3g\n", c.name().c_str(), e.rel_l2, e.max_abs, e.ref_max);
  EXPECT_EQ(e.bad, 0) << "unwritten or non-finite outputs";
  EXPECT_LE(e.rel_l2, tol) << "max_abs " << e.max_abs << " ref_max " << e.ref_max;
  EXPECT_LE(e.max_abs, 20 * tol * std::max(1.0, e.ref_max));
  if (c.final_state) {
    const Error s = compare(state_values(st.get()), ref.state);
    EXPECT_EQ(s.bad, 0);
    EXPECT_LE(s.rel_l2, 2e-5) << "final state, max_abs " << s.max_abs;
  }
}

std::vector<ScanCase> sweep_cases() {
  std::vector<ScanCase> cases;
  // Lengths x state sizes (f32 full grid, 16-bit dtypes on a subset). D = 5: odd, not a
  // multiple of any vector width.
  for (std::int64_t L : {1, 2, 7, 197, 1000, 3136})
    for (std::int64_t N : {1, 4, 16, 64, 128})
      for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
        if (dt != DType::f32 && (L == 2 || L == 1000 || N == 4 || N == 128)) continue;
        ScanCase c;
        c.dim = 5;
        c.seqlen = L;
        c.n_state = N;
        c.dtype = dt;
        c.seed = static_cast<std::uint64_t>(L * 131 + N);
        cases.push_back(c);
      }
  // Groups.
  for (auto [D, G] : {std::pair<std::int64_t, std::int64_t>{9, 3}, {8, 4}, {40, 2}})
    for (Layout lay : {Layout::channel_major, Layout::token_major}) {
      ScanCase c;
      c.dim = D;
      c.groups = G;
      c.seqlen = 197;
      c.layout = lay;
      c.dtype = lay == Layout::token_major ? DType::bf16 : DType::f32;
      cases.push_back(c);
    }
  // Options, one at a time and all off.
  for (int opt = 0; opt < 12; ++opt) {
    ScanCase c;
    c.seqlen = 197;
    c.dim = 7;
    c.seed = 100 + opt;
    switch (opt) {
      case 0: c.has_D = false; break;
      case 1: c.has_z = false; break;
      case 2: c.has_bias = false; break;
      case 3: c.softplus = false; break;
      case 4: c.final_state = false; break;
      case 5: c.initial_state = true; break;
      case 6: c.fixed_B = true; break;
      case 7: c.fixed_C = true; c.dtype = DType::bf16; break;
      case 8: c.fixed_B = c.fixed_C = true; c.initial_state = true; break;
      case 9: c.rank3_bc = true; break;
      case 10: c.scale = 0.5f; break;
      case 11: c.has_D = c.has_z = c.has_bias = c.softplus = c.final_state = false; break;
    }
    cases.push_back(c);
  }
  // Directions x layouts x dtypes.
  for (ScanDirections dir : {ScanDirections::forward, ScanDirections::reverse, ScanDirections::bidirectional,
                             ScanDirections::cross2d})
    for (Layout lay : {Layout::channel_major, Layout::token_major, Layout::padded, Layout::gather})
      for (DType dt : {DType::f32, DType::bf16}) {
        ScanCase c;
        c.dirs = dir;
        c.layout = lay;
        c.dtype = dt;
        c.dim = 6;
        c.groups = lay == Layout::padded ? 2 : 1;
        c.initial_state = lay == Layout::gather;
        if (dir == ScanDirections::cross2d) {
          c.height = 7;
          c.width = 9;
          c.grid_rank4 = lay != Layout::padded && dt == DType::f32;
          c.has_z = lay == Layout::token_major;
        }
        c.seqlen = dir == ScanDirections::cross2d ? 63 : 50;
        if (dir == ScanDirections::bidirectional) c.scale = 0.5f;
        cases.push_back(c);
        if (dir == ScanDirections::bidirectional) {  // and with one u per direction (Vim)
          c.u_per_dir = true;
          c.seed += 100;
          cases.push_back(c);
        }
        if (dir == ScanDirections::cross2d) {  // and with the column directions' inputs column-major
          c.cols_transposed = true;
          c.seed += 200;
          cases.push_back(c);
        }
      }
  {  // column-major column inputs with a fixed B (only delta and C are per position)
    ScanCase c;
    c.dirs = ScanDirections::cross2d;
    c.height = 4;
    c.width = 6;
    c.seqlen = 24;
    c.fixed_B = true;
    c.cols_transposed = true;
    cases.push_back(c);
  }
  // Square grid, VMamba-like (no z, D and bias on), both layouts.
  for (Layout lay : {Layout::channel_major, Layout::token_major}) {
    ScanCase c;
    c.dirs = ScanDirections::cross2d;
    c.layout = lay;
    c.height = c.width = 14;
    c.seqlen = 196;
    c.dim = 8;
    c.n_state = 1;
    c.has_z = false;
    c.grid_rank4 = true;
    cases.push_back(c);
  }
  // Long sequence, small problem; slow decay (long memory) at a vision length.
  {
    ScanCase c;
    c.batch = 1;
    c.dim = 3;
    c.n_state = 4;
    c.seqlen = 65536;
    cases.push_back(c);
    ScanCase s;
    s.seqlen = 3136;
    s.a_scale = 0.001f;
    s.initial_state = true;
    cases.push_back(s);
  }
  return cases;
}

class SelectiveScanCpu : public ::testing::TestWithParam<ScanCase> {};

TEST_P(SelectiveScanCpu, MatchesFloat64Reference) { check_against_reference(GetParam(), kernels::scan::default_cpu_isa()); }

INSTANTIATE_TEST_SUITE_P(Sweep, SelectiveScanCpu, ::testing::ValuesIn(sweep_cases()),
                         [](const ::testing::TestParamInfo<ScanCase>& i) { return i.param.name(); });

// Every instruction-set path on a few shapes (the CPU may lack some: the op falls back).
TEST(SelectiveScanCpuIsa, EveryPathMatchesReference) {
  std::vector<ScanCase> cases(7);
  cases[0].dirs = ScanDirections::bidirectional;
  cases[0].layout = Layout::token_major;
  cases[0].dtype = DType::bf16;
  cases[0].dim = 19;
  cases[1].dirs = ScanDirections::cross2d;
  cases[1].height = 5;
  cases[1].width = 8;
  cases[1].seqlen = 40;
  cases[1].n_state = 1;
  cases[2].fixed_B = true;
  cases[2].dim = 17;
  cases[2].n_state = 64;
  cases[3].softplus = true;
  cases[3].has_bias = false;
  cases[3].seqlen = 300;
  cases[3].dtype = DType::f16;
  cases[4].a_scale = -0.05f;  // A > 0 (growing states): the general exp, not the decays' 2^x
  cases[4].dim = 19;
  // Channel rows of full vectors (W = 8 and 16): the W x W block gathers and stores, forward and
  // reversed, with the conversions of each I/O type, and a partial block of steps after them.
  cases[5].dirs = ScanDirections::bidirectional;
  cases[5].dtype = DType::bf16;
  cases[5].dim = 32;
  cases[5].seqlen = 70;
  cases[6].dtype = DType::f16;
  cases[6].dim = 48;
  cases[6].seqlen = 37;
  cases[6].dirs = ScanDirections::reverse;
  for (const ScanCase& c : cases)
    for (CpuIsa isa : {CpuIsa::scalar, CpuIsa::avx2, CpuIsa::avx512}) {
      SCOPED_TRACE(c.name() + " " + kernels::scan::cpu_isa_label(isa));
      check_against_reference(c, isa);
    }
}

// The z gate at the ends of its range on every path, against the scalar one (z / (1 + exp(-z))
// in libm): the vector paths' exp clamps and guards its argument, and whatever form a path
// takes, it must give the same -0 / inf / NaN and the same finite values. (A sigmoid from
// exp(-|z|) instead - about half the vector operations - measured no faster on S1, S5 or the
// Vim composition: the gate is one of ~17 exponentials per step there. It first turned z = inf
// into NaN, which this test caught.)
TEST(SelectiveScanCpuIsa, GateAtExtremeZMatchesScalar) {
  ScanCase c;
  c.dim = 32;  // whole vectors on every path
  c.seqlen = 24;
  c.batch = 1;
  ScanInputs in = make_inputs(c);
  set_extreme_z(in, c.dtype);
  auto run = [&](CpuIsa isa) {
    Context ctx(Device::cpu());
    const Stored out = make_out(c, Device::cpu());
    kernels::scan::selective_scan_with_isa(ctx, make_args(c, in, out.get(), Tensor()), isa);
    return logical_values(out.get());
  };
  const std::vector<double> want = run(CpuIsa::scalar);
  for (CpuIsa isa : {CpuIsa::avx2, CpuIsa::avx512}) {
    SCOPED_TRACE(kernels::scan::cpu_isa_label(isa));
    expect_same_values(run(isa), want, 1e-4);  // the scans themselves differ by ~1e-5 (their exps)
  }
}

// The CPU benchmark's peak FMA rate: measured on every path (a path the CPU lacks falls back to
// a narrower one: runnable_isa) as a plausible positive rate. (Rates are not compared between
// paths: where the wider path has no more FMA throughput, e.g. one 512-bit FMA unit per core,
// they are equal and a loaded machine's noise decides - a 1.5x bound failed under ctest -j.)
// The bounds catch a wrong unit or a broken timer, not a slow machine: the scalar path under
// AddressSanitizer at -O1 (std::fma through libm) beside another test and tools/test's background
// build measured 63 M FMA/s on the 2-core development machine, so the floor is 10 M; the ceiling,
// 10^14, is over 100 cores' worth of 512-bit FMAs.
TEST(SelectiveScanCpuIsa, PeakFmaRateIsMeasured) {
  Context ctx(Device::cpu());
  for (CpuIsa isa : {CpuIsa::scalar, CpuIsa::avx2, CpuIsa::avx512}) {
    const double rate = kernels::scan::peak_fma_rate(ctx, isa);
    SCOPED_TRACE(kernels::scan::cpu_isa_label(isa));
    EXPECT_TRUE(std::isfinite(rate));
    EXPECT_GT(rate, 1e7);
    EXPECT_LT(rate, 1e14);
  }
  using kernels::scan::runnable_isa;
  EXPECT_EQ(runnable_isa(CpuIsa::scalar), CpuIsa::scalar);
  const CpuIsa widest = runnable_isa(CpuIsa::avx512);
  EXPECT_EQ(runnable_isa(CpuIsa::avx2), widest == CpuIsa::avx512 ? CpuIsa::avx2 : widest);
}

// ---- Fused directions against explicit compositions -------------------------------------

/// Copy of a (batch, R, L) tensor (any dtype) with the last axis reversed.
Tensor flip_last(const Tensor& t) {
  const Tensor c = t.contiguous();
  Tensor out = Tensor::empty(c.shape(), c.dtype());
  const std::int64_t L = c.size(-1), rows = c.numel() / L, es = static_cast<std::int64_t>(c.element_size());
  const char* src = static_cast<const char*>(c.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t l = 0; l < L; ++l)
      std::memcpy(dst + (r * L + (L - 1 - l)) * es, src + (r * L + l) * es, es);
  return out;
}

std::vector<double> values_f64(const Tensor& t) {
  const std::vector<float> f = t.contiguous().to_vector();
  return std::vector<double>(f.begin(), f.end());
}

void expect_same(const std::vector<double>& fused, const std::vector<double>& composed, double tol) {
  const Error e = compare(fused, composed);
  EXPECT_EQ(e.bad, 0);
  EXPECT_LE(e.rel_l2, tol) << "max_abs " << e.max_abs;
}

SelectiveScanArgs plain_args(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                             const Tensor& D, const Tensor& z, const Tensor& bias, const Tensor& out) {
  SelectiveScanArgs a;
  a.u = u;
  a.delta = delta;
  a.A = A;
  a.B = B;
  a.C = C;
  a.D = D;
  a.z = z;
  a.delta_bias = bias;
  a.delta_softplus = true;
  a.out = out;
  return a;
}

TEST(SelectiveScanComposition, ReverseIsFlipScanFlip) {
  Context ctx;
  ScanCase c;
  c.dim = 6;
  c.seqlen = 77;
  c.dirs = ScanDirections::reverse;
  const ScanInputs in = make_inputs(c);
  Tensor fused = Tensor::empty({c.batch, c.dim, c.seqlen}, DType::f32);
  Tensor fused_state = Tensor::empty({c.batch, c.dim, c.n_state}, DType::f32);
  poison(fused);
  kernels::selective_scan(ctx, make_args(c, in, fused, fused_state));

  Tensor out = Tensor::empty(fused.shape(), DType::f32), state = Tensor::empty(fused_state.shape(), DType::f32);
  SelectiveScanArgs a = plain_args(flip_last(in.u.get()), flip_last(in.delta.get()), in.A.get(),
                                   flip_last(in.B.get()), flip_last(in.C.get()), in.D.get(),
                                   flip_last(in.z.get()), in.bias.get(), out);
  a.final_state = state;
  kernels::selective_scan(ctx, a);
  expect_same(values_f64(fused), values_f64(flip_last(out)), 1e-6);
  expect_same(values_f64(fused_state), values_f64(state), 1e-6);
}

// Vim v2: out_proj((y_f + flip(y_b)) / 2) with y_b the scan of the flipped sequence with the
// backward parameters (and the flipped gate), as mamba_inner_fn_no_out_proj runs it.
TEST(SelectiveScanComposition, BidirectionalIsVimFlipComposition) {
  Context ctx;
  ScanCase c;
  c.dim = 6;
  c.seqlen = 65;
  c.dirs = ScanDirections::bidirectional;
  c.scale = 0.5f;
  const ScanInputs in = make_inputs(c);
  Tensor fused = Tensor::empty({c.batch, c.dim, c.seqlen}, DType::f32);
  poison(fused);
  kernels::selective_scan(ctx, make_args(c, in, fused, Tensor()));

  const std::int64_t D = c.dim;
  const Tensor delta = in.delta.get(), B = in.B.get(), C = in.C.get(), A = in.A.get(), Dv = in.D.get(),
               bias = in.bias.get();
  Tensor out_f = Tensor::empty(fused.shape(), DType::f32), out_b = Tensor::empty(fused.shape(), DType::f32);
  kernels::selective_scan(ctx, plain_args(in.u.get(), delta.select(1, 0), A.slice(0, 0, D), B.slice(1, 0, 1),
                                          C.slice(1, 0, 1), Dv.slice(0, 0, D), in.z.get(), bias.slice(0, 0, D), out_f));
  kernels::selective_scan(ctx, plain_args(flip_last(in.u.get()), flip_last(delta.select(1, 1)), A.slice(0, D, 2 * D),
                                          flip_last(B.slice(1, 1, 2)), flip_last(C.slice(1, 1, 2)),
                                          Dv.slice(0, D, 2 * D), flip_last(in.z.get()), bias.slice(0, D, 2 * D), out_b));
  const std::vector<double> f = values_f64(out_f), b = values_f64(flip_last(out_b));
  std::vector<double> composed(f.size());
  for (std::size_t i = 0; i < f.size(); ++i) composed[i] = (f[i] + b[i]) / 2;
  expect_same(values_f64(fused), composed, 1e-6);
}

/// VMamba CrossScan of a grid-ordered (batch, R, H*W) tensor for direction k: 0 row-major,
/// 1 column-major (x.transpose(H, W).flatten), 2 and 3 their flips.
Tensor cross_scan_k(const Tensor& grid, std::int64_t H, std::int64_t W, int k) {
  const std::int64_t b = grid.size(0), r = grid.size(1);
  Tensor t = grid.contiguous();
  if (k % 2 == 1) t = t.view({b, r, H, W}).transpose(2, 3).contiguous().view({b, r, H * W});
  return k >= 2 ? flip_last(t) : t;
}

/// VMamba CrossMerge: y = ys0 + flip(ys2) + untranspose(ys1 + flip(ys3)); ys (batch, 4, R, L).
std::vector<double> cross_merge(const Tensor& ys, std::int64_t H, std::int64_t W) {
  const std::int64_t b = ys.size(0), r = ys.size(2), L = H * W;
  auto part = [&](int k) { return values_f64(ys.select(1, k)); };
  const std::vector<double> y0 = part(0), y1 = part(1), y2 = values_f64(flip_last(ys.select(1, 2).contiguous())),
                            y3 = values_f64(flip_last(ys.select(1, 3).contiguous()));
  std::vector<double> out(b * r * L);
  for (std::int64_t i = 0; i < b * r; ++i)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t w = 0; w < W; ++w) {
        const std::int64_t grid = i * L + h * W + w, col = i * L + w * H + h;  // column-major slot
        out[grid] = y0[grid] + y2[grid] + y1[col] + y3[col];
      }
  return out;
}

// VMamba SS2D forward_corev2: xs = CrossScan(x); per-direction projections of xs; one grouped
// selective scan over K*D channels (G = K); CrossMerge. The fused op takes the projections in
// grid order, so the composition cross-scans them like x; with `column_inputs` it takes the
// column directions' projections column-major (xs[1]'s order, for k = 3 too).
void check_cross2d_composition(Layout layout, std::int64_t H, std::int64_t W, std::int64_t N, bool with_z,
                               bool column_inputs = false) {
  Context ctx;
  ScanCase c;
  c.dim = 4;
  c.n_state = N;
  c.dirs = ScanDirections::cross2d;
  c.height = H;
  c.width = W;
  c.seqlen = H * W;
  c.grid_rank4 = true;
  c.layout = layout;
  c.has_z = with_z;
  const ScanInputs in = make_inputs(c);
  const Stored fused = make_out(c, Device::cpu());
  const std::int64_t b = c.batch, D = c.dim, L = c.seqlen;
  SelectiveScanArgs fused_args = make_args(c, in, fused.get(), Tensor());
  if (column_inputs) {
    // Contiguous (batch, K, D, L) / (batch, K, N, L) copies whose odd slices are column-major.
    Tensor delta = Tensor::empty({b, 4, D, L}, DType::f32), Bc = Tensor::empty({b, 4, N, L}, DType::f32),
           Cc = Tensor::empty({b, 4, N, L}, DType::f32);
    for (int k = 0; k < 4; ++k) {
      delta.select(1, k).copy_from(cross_scan_k(in.delta.get().select(1, k), H, W, k & 1));
      Bc.select(1, k).copy_from(cross_scan_k(in.B.get().select(1, k), H, W, k & 1));
      Cc.select(1, k).copy_from(cross_scan_k(in.C.get().select(1, k), H, W, k & 1));
    }
    fused_args.delta = delta;
    fused_args.B = Bc;
    fused_args.C = Cc;
    fused_args.column_inputs_transposed = true;
  }
  kernels::selective_scan(ctx, fused_args);

  const Tensor x = in.u.get().contiguous().view({b, D, L});
  Tensor xs = Tensor::empty({b, 4 * D, L}, DType::f32), ds = Tensor::empty({b, 4 * D, L}, DType::f32);
  Tensor Bs = Tensor::empty({b, 4, N, L}, DType::f32), Cs = Tensor::empty({b, 4, N, L}, DType::f32);
  for (int k = 0; k < 4; ++k) {
    xs.slice(1, k * D, (k + 1) * D).copy_from(cross_scan_k(x, H, W, k));
    ds.slice(1, k * D, (k + 1) * D).copy_from(cross_scan_k(in.delta.get().select(1, k), H, W, k));
    Bs.select(1, k).copy_from(cross_scan_k(in.B.get().select(1, k), H, W, k));
    Cs.select(1, k).copy_from(cross_scan_k(in.C.get().select(1, k), H, W, k));
  }
  Tensor ys = Tensor::empty({b, 4 * D, L}, DType::f32);
  kernels::selective_scan(ctx, plain_args(xs, ds, in.A.get(), Bs, Cs, in.D.get(), Tensor(), in.bias.get(), ys));
  std::vector<double> composed = cross_merge(ys.view({b, 4, D, L}), H, W);
  if (with_z) {
    const std::vector<double> z = values_f64(in.z.get().contiguous().view({b, D, L}));
    for (std::size_t i = 0; i < composed.size(); ++i) composed[i] *= z[i] / (1 + std::exp(-z[i]));
  }
  expect_same(logical_values(fused.get()), composed, 1e-6);
}

TEST(SelectiveScanComposition, Cross2dIsVMambaCrossScanScanMerge) {
  check_cross2d_composition(Layout::channel_major, 6, 10, 16, false);
  check_cross2d_composition(Layout::token_major, 14, 14, 1, false);
  check_cross2d_composition(Layout::token_major, 5, 3, 4, true);
}

TEST(SelectiveScanComposition, Cross2dColumnInputsAreCrossScannedProjections) {
  check_cross2d_composition(Layout::channel_major, 6, 10, 16, false, true);
  check_cross2d_composition(Layout::token_major, 5, 3, 4, true, true);
}

// ---- Validation -------------------------------------------------------------------------

struct BadCase {
  std::string name, expect;
  std::function<void(SelectiveScanArgs&, const ScanCase&)> mutate;
};

TEST(SelectiveScanValidation, RejectsBadArgumentsBeforeWriting) {
  ScanCase base;
  base.dim = 4;
  base.seqlen = 9;
  base.n_state = 4;
  const std::vector<BadCase> cases = {
      {"no u", "u: is required", [](SelectiveScanArgs& a, const ScanCase&) { a.u = Tensor(); }},
      {"int u", "dtype", [](SelectiveScanArgs& a, const ScanCase&) { a.u = Tensor::zeros(a.u.shape(), DType::i32); }},
      {"rank 2 u", "expected (batch, D, L)", [](SelectiveScanArgs& a, const ScanCase&) { a.u = a.u.select(0, 0); }},
      {"empty", "empty", [](SelectiveScanArgs& a, const ScanCase&) { a.u = a.u.slice(2, 0, 0); }},
      {"delta dtype", "delta: has dtype", [](SelectiveScanArgs& a, const ScanCase&) { a.delta = a.delta.to(DType::bf16); }},
      {"delta shape", "delta: has shape", [](SelectiveScanArgs& a, const ScanCase&) { a.delta = a.delta.slice(2, 0, 5); }},
      {"A shape", "A: has shape", [](SelectiveScanArgs& a, const ScanCase&) { a.A = a.A.slice(0, 0, 3); }},
      {"A dtype", "A: has dtype", [](SelectiveScanArgs& a, const ScanCase&) { a.A = a.A.to(DType::bf16); }},
      {"N too big", "outside 1..256", [](SelectiveScanArgs& a, const ScanCase& c) {
         a.A = Tensor::zeros({c.dim, 300}, DType::f32);
       }},
      {"B groups", "do not divide", [](SelectiveScanArgs& a, const ScanCase& c) {
         a.B = Tensor::zeros({c.batch, 3, c.n_state, c.seqlen}, DType::f32);
       }},
      {"B/C groups differ", "different group counts", [](SelectiveScanArgs& a, const ScanCase& c) {
         a.B = Tensor::zeros({c.batch, 2, c.n_state, c.seqlen}, DType::f32);
       }},
      {"B rank 3 with 2 directions", "direction axis", [](SelectiveScanArgs& a, const ScanCase& c) {
         a.directions = ScanDirections::bidirectional;
         a.delta = Tensor::zeros({c.batch, 2, c.dim, c.seqlen}, DType::f32);
         a.A = Tensor::zeros({2 * c.dim, c.n_state}, DType::f32);
         a.B = Tensor::zeros({c.batch, c.n_state, c.seqlen}, DType::f32);
       }},
      {"B length", "B: has shape", [](SelectiveScanArgs& a, const ScanCase&) { a.B = a.B.slice(3, 0, 2); }},
      {"D size", "D: has shape", [](SelectiveScanArgs& a, const ScanCase&) { a.D = a.D.slice(0, 0, 2); }},
      {"bias dtype", "delta_bias: has dtype", [](SelectiveScanArgs& a, const ScanCase&) { a.delta_bias = a.delta_bias.to(DType::f16); }},
      {"z shape", "z: has shape", [](SelectiveScanArgs& a, const ScanCase&) { a.z = a.z.slice(1, 0, 2); }},
      {"out dtype", "out: has dtype", [](SelectiveScanArgs& a, const ScanCase&) { a.out = Tensor::zeros(a.u.shape(), DType::bf16); }},
      {"no out", "out: is required", [](SelectiveScanArgs& a, const ScanCase&) { a.out = Tensor(); }},
      {"out aliases u", "overlaps input u", [](SelectiveScanArgs& a, const ScanCase&) { a.out = a.u; }},
      {"final state shape", "final_state: has shape", [](SelectiveScanArgs& a, const ScanCase& c) {
         a.final_state = Tensor::zeros({c.batch, c.dim, c.n_state + 1}, DType::f32);
       }},
      {"initial state dtype", "initial_state: has dtype", [](SelectiveScanArgs& a, const ScanCase& c) {
         a.initial_state = Tensor::zeros({c.batch, c.dim, c.n_state}, DType::bf16);
       }},
      {"cross2d grid", "height * width == L", [](SelectiveScanArgs& a, const ScanCase& c) {
         a.directions = ScanDirections::cross2d;
         a.height = 2;
         a.width = 4;
         a.delta = Tensor::zeros({c.batch, 4, c.dim, c.seqlen}, DType::f32);
         a.A = Tensor::zeros({4 * c.dim, c.n_state}, DType::f32);
         a.B = a.C = Tensor::zeros({c.batch, 4, c.n_state, c.seqlen}, DType::f32);
         a.D = a.delta_bias = Tensor();
       }},
      {"cross2d unmergeable grid", "do not merge", [](SelectiveScanArgs& a, const ScanCase& c) {
         a.directions = ScanDirections::cross2d;
         a.u = Tensor::zeros({c.batch, c.dim, 3, 3}, DType::f32).transpose(2, 3);
         a.delta = Tensor::zeros({c.batch, 4, c.dim, c.seqlen}, DType::f32);
         a.A = Tensor::zeros({4 * c.dim, c.n_state}, DType::f32);
         a.B = a.C = Tensor::zeros({c.batch, 4, c.n_state, c.seqlen}, DType::f32);
         a.D = a.delta_bias = a.z = Tensor();
       }},
      {"bad direction", "unknown direction", [](SelectiveScanArgs& a, const ScanCase&) {
         a.directions = static_cast<ScanDirections>(9);
       }},
      {"nan scale", "out_scale", [](SelectiveScanArgs& a, const ScanCase&) { a.out_scale = NAN; }},
      {"column inputs without cross2d", "applies to cross2d only",
       [](SelectiveScanArgs& a, const ScanCase&) { a.column_inputs_transposed = true; }},
  };
  Context ctx;
  for (const BadCase& bc : cases) {
    SCOPED_TRACE(bc.name);
    const ScanInputs in = make_inputs(base);
    Tensor out = Tensor::empty({base.batch, base.dim, base.seqlen}, DType::f32);
    poison(out);
    SelectiveScanArgs a = make_args(base, in, out, Tensor());
    bc.mutate(a, base);
    try {
      kernels::selective_scan(ctx, a);
      ADD_FAILURE() << "no error";
    } catch (const mcv::Error& e) {
      EXPECT_NE(std::string(e.what()).find(bc.expect), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("selective_scan", 0), 0u) << e.what();
    }
    const std::vector<float> v = out.to_vector();
    for (float x : v) ASSERT_TRUE(std::isnan(x)) << "out written before the error";
  }
}

// The CUDA launcher's L-chunk count (host arithmetic, checked here without a GPU): the chunks'
// blocks fill the resident blocks once and never start a second wave.
TEST(SelectiveScanChunking, ChunksFillOneWave) {
  using kernels::scan::kResidentWarpsPerSm;
  using kernels::scan::wave_filling_chunks;
  // H200/H100 (132 SMs, 396 resident blocks of 128 threads): S6 bf16 (12 blocks a chunk, one lane)
  // and f32 (24, two lanes); batch 1 at D = 5120 (40 blocks a chunk: 10 would be 400 blocks).
  EXPECT_EQ(wave_filling_chunks(132, 12, 128, 262144, 1024), 33);
  EXPECT_EQ(wave_filling_chunks(132, 24, 128, 262144, 1024), 16);
  EXPECT_EQ(wave_filling_chunks(132, 40, 128, 65536, 1024), 9);
  // Short sequences: at most ceil(L / min_chunk) chunks (Vim at batch 1: L 197, 32-step chunks).
  EXPECT_EQ(wave_filling_chunks(132, 24, 128, 197, 32), 7);
  // More than half a wave in one chunk: no chunks (two would take two waves).
  EXPECT_EQ(wave_filling_chunks(132, 250, 128, 65536, 1024), 1);
  // Blocks of one partial warp take a warp's registers: 12 of them per SM.
  EXPECT_EQ(wave_filling_chunks(132, 1, 12, 1 << 24, 1024), 132 * 12);
  for (int sms : {1, 16, 78, 132, 144})
    for (long long per_chunk = 1; per_chunk <= 600; per_chunk += 7)
      for (int threads : {32, 64, 96, 128}) {
        const long long resident = static_cast<long long>(sms) * (kResidentWarpsPerSm / ((threads + 31) / 32));
        const int c = wave_filling_chunks(sms, per_chunk, threads, 1 << 22, 1024);
        ASSERT_GE(c, 1);
        ASSERT_LE(c, (1 << 22) / 1024);
        if (c > 1) ASSERT_LE(c * per_chunk, resident) << sms << " SMs, " << per_chunk << " blocks a chunk";
        if (c < (1 << 22) / 1024) ASSERT_GT((c + 1) * per_chunk, resident) << "a wave left unfilled";
      }
}

}  // namespace
}  // namespace mcv::test::scan
