// Single-step state updates (Mamba-1 selective_state_update, Mamba-2 with heads): run step by
// step over a sequence and compared at every step, state and output, with a double-precision
// recurrence; the Mamba-2 step also against the SSD scan of the same sequence; CUDA against CPU;
// every validation error.

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "mcv/context.h"
#include "mcv/error.h"
#include "mcv/kernels/selective_scan.h"
#include "mcv/kernels/ssd.h"
#include "mcv/kernels/ssm_step.h"
#include "test_support.h"

namespace mcv::kernels {
namespace {

using test::poison;
using test::random_tensor;

std::vector<double> values(const Tensor& t) {
  const std::vector<float> f = t.to_vector();
  return std::vector<double>(f.begin(), f.end());
}

struct Tolerance {
  double atol, rtol;
};
Tolerance tolerance(DType io) {
  switch (io) {
    case DType::f16: return {2e-3, 2e-3};
    case DType::bf16: return {1.5e-2, 1e-2};
    default: return {2e-5, 2e-5};
  }
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, Tolerance tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  std::int64_t bad = 0;
  std::size_t first = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool ok = std::isfinite(got[i]) && std::abs(got[i] - want[i]) <= tol.atol + tol.rtol * std::abs(want[i]);
    if (!ok && bad++ == 0) first = i;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " elements off; first at " << first
                    << ": got " << got[first] << " want " << want[first];
}

// A whole sequence for a step-by-step run, shared by both model variants: Mamba-1 is H = D
// channels with P = 1 and A per (d, n); Mamba-2 has A per head.
struct StepCase {
  bool mamba2 = true;
  std::int64_t batch = 2, heads = 4, headdim = 3, dstate = 16, groups = 2, steps = 8;
  DType io = DType::f32;
  bool has_D = true, D_per_p = false, has_z = true, has_bias = true, softplus = true, grouped_1d = false;
  float dt_min = 0.0f, dt_max = INFINITY;

  std::string str() const {
    return std::string(mamba2 ? "mamba2" : "mamba1") + " " + dtype_name(io) + " B=" + std::to_string(batch) +
           " H=" + std::to_string(heads) + " P=" + std::to_string(headdim) + " N=" + std::to_string(dstate) +
           " G=" + std::to_string(groups) + (has_D ? (D_per_p ? " D(H,P)" : " D") : "") + (has_z ? " z" : "") +
           (has_bias ? " dt_bias" : "") + (softplus ? " softplus" : "") + " dt in [" + std::to_string(dt_min) +
           ", " + std::to_string(dt_max) + "]";
  }
};

// Token-major sequence tensors; step t reads views select(1, t).
struct StepInputs {
  Tensor x, dt, B, C, z;       // (batch, T, H[, P]) / (batch, T, G, N)
  Tensor A, D, dt_bias, state0;  // f32
};

StepInputs make_inputs(const StepCase& c, std::uint64_t seed) {
  StepInputs in;
  const std::int64_t b = c.batch, T = c.steps, H = c.heads, P = c.headdim, N = c.dstate, G = c.groups;
  if (c.mamba2) {
    in.x = random_tensor({b, T, H, P}, c.io, seed);
    in.dt = random_tensor({b, T, H}, c.io, seed + 1, c.softplus ? 0.5f : 0.05f, c.softplus ? -1.0f : 0.3f);
    in.z = random_tensor({b, T, H, P}, c.io, seed + 2);
    in.A = random_tensor({H}, DType::f32, seed + 3, 0.5f);
    in.D = random_tensor(c.D_per_p ? Shape{H, P} : Shape{H}, DType::f32, seed + 4);
    in.state0 = random_tensor({b, H, P, N}, DType::f32, seed + 5);
  } else {
    in.x = random_tensor({b, T, H}, c.io, seed);
    in.dt = random_tensor({b, T, H}, c.io, seed + 1, c.softplus ? 0.5f : 0.05f, c.softplus ? -1.0f : 0.3f);
    in.z = random_tensor({b, T, H}, c.io, seed + 2);
    in.A = random_tensor({H, N}, DType::f32, seed + 3, 0.5f);
    in.D = random_tensor({H}, DType::f32, seed + 4);
    in.state0 = random_tensor({b, H, N}, DType::f32, seed + 5);
  }
  // A = -exp(A_log), as the models build it.
  {
    std::vector<float> a = in.A.to_vector();
    for (float& v : a) v = -std::exp(v);
    in.A = Tensor::from_vector(a, in.A.shape());
  }
  in.B = random_tensor({b, T, G, N}, c.io, seed + 6);
  in.C = random_tensor({b, T, G, N}, c.io, seed + 7);
  // Without softplus dt stays positive (a decaying state), so the bias stays small.
  in.dt_bias = random_tensor({H}, DType::f32, seed + 8, c.softplus ? 0.2f : 0.05f);
  return in;
}

// Double-precision recurrence over all steps; returns outputs (T, batch, H, P) and the final state.
struct Reference {
  std::vector<std::vector<double>> out;  // per step, (batch, H, P)
  std::vector<std::vector<double>> state;  // per step, (batch, H, P, N)
};

Reference reference(const StepCase& c, const StepInputs& in) {
  const std::int64_t b_n = c.batch, T = c.steps, H = c.heads, P = c.mamba2 ? c.headdim : 1, N = c.dstate, G = c.groups;
  const std::vector<double> x = values(in.x), dt = values(in.dt), Bv = values(in.B), Cv = values(in.C),
                            z = values(in.z), A = values(in.A), D = values(in.D), bias = values(in.dt_bias);
  std::vector<double> s = values(in.state0);
  Reference r;
  for (std::int64_t t = 0; t < T; ++t) {
    std::vector<double> y(b_n * H * P);
    for (std::int64_t b = 0; b < b_n; ++b)
      for (std::int64_t h = 0; h < H; ++h) {
        const std::int64_t g = h / (H / G);
        double d = dt[(b * T + t) * H + h] + (c.has_bias ? bias[h] : 0.0);
        if (c.softplus) d = d <= 20.0 ? std::log1p(std::exp(d)) : d;
        if (c.dt_min > 0 || c.dt_max < INFINITY) d = std::min(std::max(d, double(c.dt_min)), double(c.dt_max));
        for (std::int64_t p = 0; p < P; ++p) {
          const double xv = x[((b * T + t) * H + h) * P + p];
          double acc = 0;
          for (std::int64_t n = 0; n < N; ++n) {
            const double a = c.mamba2 ? A[h] : A[h * N + n];
            double& sn = s[((b * H + h) * P + p) * N + n];
            sn = std::exp(d * a) * sn + d * Bv[((b * T + t) * G + g) * N + n] * xv;
            acc += Cv[((b * T + t) * G + g) * N + n] * sn;
          }
          if (c.has_D) acc += xv * (c.D_per_p ? D[h * P + p] : D[h]);
          if (c.has_z) {
            const double zv = z[((b * T + t) * H + h) * P + p];
            acc *= zv / (1 + std::exp(-zv));
          }
          y[(b * H + h) * P + p] = acc;
        }
      }
    r.out.push_back(y);
    r.state.push_back(s);
  }
  return r;
}

// Runs the op step by step on `device`; calls check(t, out_t, state_after_t).
void run_steps(const StepCase& c, const StepInputs& host, Device device,
               const std::function<void(std::int64_t, const Tensor&, const Tensor&)>& check) {
  Context ctx(device);
  auto dev = [&](const Tensor& t) { return t.to(device); };
  const Tensor x = dev(host.x), dt = dev(host.dt), B = dev(host.B), C = dev(host.C), z = dev(host.z);
  const Tensor A = dev(host.A), D = dev(host.D), bias = dev(host.dt_bias);
  Tensor state = dev(host.state0);
  for (std::int64_t t = 0; t < c.steps; ++t) {
    Tensor out = Tensor::empty(c.mamba2 ? Shape{c.batch, c.heads, c.headdim} : Shape{c.batch, c.heads}, c.io, device);
    poison(out);
    const DtOptions opts{c.softplus, c.dt_min, c.dt_max};
    if (c.mamba2) {
      Mamba2StateUpdateArgs a;
      a.state = state;
      a.x = x.select(1, t);
      a.dt = dt.select(1, t);
      a.A = A;
      a.B = B.select(1, t);
      a.C = C.select(1, t);
      if (c.has_D) a.D = D;
      if (c.has_z) a.z = z.select(1, t);
      if (c.has_bias) a.dt_bias = bias;
      a.dt_options = opts;
      a.out = out;
      mamba2_state_update(ctx, a);
    } else {
      SelectiveStateUpdateArgs a;
      a.state = state;
      a.x = x.select(1, t);
      a.dt = dt.select(1, t);
      a.A = A;
      // Ungrouped Mamba-1 passes B as (batch, N).
      a.B = c.grouped_1d ? B.select(1, t) : B.select(1, t).select(1, 0);
      a.C = c.grouped_1d ? C.select(1, t) : C.select(1, t).select(1, 0);
      if (c.has_D) a.D = D;
      if (c.has_z) a.z = z.select(1, t);
      if (c.has_bias) a.dt_bias = bias;
      a.dt_options = opts;
      a.out = out;
      selective_state_update(ctx, a);
    }
    ctx.synchronize();
    check(t, out, state);
  }
}

void check_against_reference(const StepCase& c, std::uint64_t seed) {
  SCOPED_TRACE(c.str());
  const StepInputs in = make_inputs(c, seed);
  const Reference ref = reference(c, in);
  run_steps(c, in, Device::cpu(), [&](std::int64_t t, const Tensor& out, const Tensor& state) {
    expect_close(values(out), ref.out[t], tolerance(c.io), "out at step " + std::to_string(t));
    expect_close(values(state), ref.state[t], {1e-5, 1e-5}, "state at step " + std::to_string(t));
  });
}

const DType kDtypes[] = {DType::f32, DType::f16, DType::bf16};

TEST(SelectiveStateUpdate, MatchesDoubleRecurrenceAtEveryStep) {
  std::uint64_t seed = 10;
  for (DType io : kDtypes)
    for (bool grouped : {false, true})
      for (int options = 0; options < 4; ++options) {
        StepCase c;
        c.mamba2 = false;
        c.io = io;
        c.heads = 12;  // D channels
        c.groups = grouped ? 3 : 1;
        c.grouped_1d = grouped;
        c.has_D = options != 1;
        c.has_z = options != 2;
        c.has_bias = options != 3;
        c.softplus = options != 2;
        c.dstate = options == 3 ? 5 : 16;
        check_against_reference(c, seed++);
      }
}

TEST(Mamba2StateUpdate, MatchesDoubleRecurrenceAtEveryStep) {
  std::uint64_t seed = 200;
  for (DType io : kDtypes)
    for (std::int64_t groups : {1, 2, 4})
      for (int options = 0; options < 4; ++options) {
        StepCase c;
        c.io = io;
        c.groups = groups;
        c.D_per_p = options == 1;
        c.has_D = options != 2;
        c.has_z = options != 3;
        c.has_bias = options != 2;
        c.softplus = options != 3;
        if (options == 1) {  // a limit that clamps many of the dt values
          c.dt_min = 0.2f;
          c.dt_max = 0.6f;
        }
        c.dstate = options == 2 ? 7 : 16;
        c.headdim = options == 0 ? 16 : 3;
        check_against_reference(c, seed++);
      }
}

// The shape the mamba2_lm_tiny oracle decodes with: 8 heads x 16, 2 groups, state 16.
TEST(Mamba2StateUpdate, OracleShape) {
  StepCase c;
  c.batch = 1;
  c.heads = 8;
  c.headdim = 16;
  c.groups = 2;
  c.dstate = 16;
  c.steps = 16;
  c.has_z = false;  // the model gates in its RMSNormGated
  check_against_reference(c, 77);
}

// Feeding the SSD scan's final state of a prefix into the step continues the scan exactly: the
// steps' outputs equal the scan's outputs over the whole sequence, and the states agree.
TEST(Mamba2StateUpdate, ContinuesTheSsdScan) {
  for (DType io : kDtypes) {
    SCOPED_TRACE(dtype_name(io));
    Context ctx;
    const std::int64_t batch = 2, L = 21, prefix = 13, H = 4, P = 8, G = 2, N = 16;
    const Tensor x = random_tensor({batch, L, H, P}, io, 1), dt = random_tensor({batch, L, H}, io, 2, 0.5f, -1.0f);
    const Tensor B = random_tensor({batch, L, G, N}, io, 3), C = random_tensor({batch, L, G, N}, io, 4);
    const Tensor z = random_tensor({batch, L, H, P}, io, 5);
    std::vector<float> a = random_tensor({H}, DType::f32, 6, 0.5f).to_vector();
    for (float& v : a) v = -std::exp(v);
    const Tensor A = Tensor::from_vector(a, {H}), D = random_tensor({H}, DType::f32, 7);
    const Tensor bias = random_tensor({H}, DType::f32, 8, 0.2f);
    const Tensor init = random_tensor({batch, H, P, N}, DType::f32, 9);
    SsdArgs s;
    s.x = x;
    s.dt = dt;
    s.A = A;
    s.B = B;
    s.C = C;
    s.D = D;
    s.z = z;
    s.dt_bias = bias;
    s.dt_options.softplus = true;
    s.initial_states = init;
    s.chunk_size = 8;
    s.out = Tensor::empty({batch, L, H, P}, io);
    Tensor final_full = Tensor::empty({batch, H, P, N}, DType::f32);
    s.final_states = final_full;
    ssd_chunk_scan(ctx, s);
    const Tensor full_out = s.out;
    // The prefix, then steps.
    SsdArgs sp = s;
    sp.x = x.slice(1, 0, prefix);
    sp.dt = dt.slice(1, 0, prefix);
    sp.B = B.slice(1, 0, prefix);
    sp.C = C.slice(1, 0, prefix);
    sp.z = z.slice(1, 0, prefix);
    sp.out = Tensor::empty({batch, prefix, H, P}, io);
    Tensor state = Tensor::empty({batch, H, P, N}, DType::f32);
    sp.final_states = state;
    ssd_chunk_scan(ctx, sp);
    for (std::int64_t t = prefix; t < L; ++t) {
      Mamba2StateUpdateArgs u;
      u.state = state;
      u.x = x.select(1, t);
      u.dt = dt.select(1, t);
      u.A = A;
      u.B = B.select(1, t);
      u.C = C.select(1, t);
      u.D = D;
      u.z = z.select(1, t);
      u.dt_bias = bias;
      u.dt_options.softplus = true;
      u.out = Tensor::empty({batch, H, P}, io);
      poison(u.out);
      mamba2_state_update(ctx, u);
      expect_close(values(u.out), values(full_out.select(1, t)), tolerance(io), "step " + std::to_string(t));
    }
    expect_close(values(state), values(final_full), {1e-5, 1e-5}, "final state");
  }
}

// The Mamba-1 step continues the selective scan (the other engineer's op): a scan over a prefix
// with its final state, then one step per token, gives the scan's outputs over the whole
// sequence and its final state.
TEST(SelectiveStateUpdate, ContinuesTheSelectiveScan) {
  for (DType io : kDtypes)
    for (std::int64_t groups : {1, 2}) {
      SCOPED_TRACE(std::string(dtype_name(io)) + " G=" + std::to_string(groups));
      Context ctx;
      const std::int64_t batch = 2, dim = 8, n = 16, L = 12, prefix = 7;
      const Tensor u = random_tensor({batch, dim, L}, io, 1), delta = random_tensor({batch, dim, L}, io, 2, 0.5f, -1.0f);
      const Tensor z = random_tensor({batch, dim, L}, io, 3);
      const Tensor B = random_tensor({batch, groups, n, L}, io, 4), C = random_tensor({batch, groups, n, L}, io, 5);
      std::vector<float> a = random_tensor({dim, n}, DType::f32, 6, 0.5f).to_vector();
      for (float& v : a) v = -std::exp(v);
      const Tensor A = Tensor::from_vector(a, {dim, n}), D = random_tensor({dim}, DType::f32, 7);
      const Tensor bias = random_tensor({dim}, DType::f32, 8, 0.2f);
      const Tensor init = random_tensor({batch, dim, n}, DType::f32, 9);
      auto scan = [&](std::int64_t len, Tensor* out, Tensor* final_state) {
        SelectiveScanArgs s;
        s.u = u.slice(2, 0, len);
        s.delta = delta.slice(2, 0, len);
        s.A = A;
        s.B = groups == 1 ? B.select(1, 0).slice(2, 0, len) : B.slice(3, 0, len);
        s.C = groups == 1 ? C.select(1, 0).slice(2, 0, len) : C.slice(3, 0, len);
        s.D = D;
        s.z = z.slice(2, 0, len);
        s.delta_bias = bias;
        s.delta_softplus = true;
        s.initial_state = init;
        *out = Tensor::empty({batch, dim, len}, io);
        *final_state = Tensor::empty({batch, dim, n}, DType::f32);
        s.out = *out;
        s.final_state = *final_state;
        selective_scan(ctx, s);
      };
      Tensor full_out, full_state, prefix_out, state;
      scan(L, &full_out, &full_state);
      scan(prefix, &prefix_out, &state);
      for (std::int64_t t = prefix; t < L; ++t) {
        SelectiveStateUpdateArgs a;
        a.state = state;
        a.x = u.select(2, t);
        a.dt = delta.select(2, t);
        a.A = A;
        a.B = groups == 1 ? B.select(1, 0).select(2, t) : B.select(3, t);
        a.C = groups == 1 ? C.select(1, 0).select(2, t) : C.select(3, t);
        a.D = D;
        a.z = z.select(2, t);
        a.dt_bias = bias;
        a.dt_options.softplus = true;
        a.out = Tensor::empty({batch, dim}, io);
        poison(a.out);
        selective_state_update(ctx, a);
        expect_close(values(a.out), values(full_out.select(2, t)), tolerance(io), "step " + std::to_string(t));
      }
      expect_close(values(state), values(full_state), {1e-5, 1e-5}, "final state");
    }
}

// ---- CUDA against CPU ----------------------------------------------------------------------

void check_cuda_matches_cpu(const StepCase& c, std::uint64_t seed) {
  SCOPED_TRACE(c.str());
  const StepInputs in = make_inputs(c, seed);
  std::vector<std::vector<double>> cpu_out, cpu_state;
  run_steps(c, in, Device::cpu(), [&](std::int64_t, const Tensor& out, const Tensor& state) {
    cpu_out.push_back(values(out));
    cpu_state.push_back(values(state));
  });
  run_steps(c, in, Device::cuda(), [&](std::int64_t t, const Tensor& out, const Tensor& state) {
    const Tolerance tol = c.io == DType::f32 ? Tolerance{1e-5, 1e-5} : tolerance(c.io);
    expect_close(values(out), cpu_out[t], tol, "out at step " + std::to_string(t));
    expect_close(values(state), cpu_state[t], {1e-5, 1e-5}, "state at step " + std::to_string(t));
  });
}

TEST(StateUpdateCuda, MatchesCpu) {
  MCV_REQUIRE_CUDA();
  std::uint64_t seed = 500;
  for (DType io : kDtypes)
    for (bool mamba2 : {false, true})
      for (std::int64_t dstate : {1, 5, 16, 40, 128}) {
        StepCase c;
        c.mamba2 = mamba2;
        c.io = io;
        c.dstate = dstate;
        c.heads = mamba2 ? 6 : 24;
        c.headdim = 5;
        c.groups = mamba2 ? 3 : 2;
        c.grouped_1d = true;
        c.D_per_p = dstate == 40;
        c.has_z = dstate != 5;
        if (dstate == 16) {
          c.dt_min = 0.1f;
          c.dt_max = 0.5f;
        }
        check_cuda_matches_cpu(c, seed++);
      }
}

// A small run of the step kernel, for compute-sanitizer (tools/gpu-check runs *Sanitizer*).
TEST(StateUpdateCudaSanitizer, EveryKernelSmall) {
  MCV_REQUIRE_CUDA();
  for (bool mamba2 : {false, true}) {
    StepCase c;
    c.mamba2 = mamba2;
    c.dstate = 40;  // 32 lanes per row, a ragged second pass
    c.heads = 6;
    c.headdim = 3;
    c.groups = 3;
    c.grouped_1d = true;
    c.steps = 2;
    check_cuda_matches_cpu(c, 9);
  }
}

// ---- validation ----------------------------------------------------------------------------

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(SelectiveStateUpdate, RejectsBadArguments) {
  Context ctx;
  auto run = [&](const std::function<void(SelectiveStateUpdateArgs&)>& edit) {
    return [&ctx, edit] {
      SelectiveStateUpdateArgs a;
      a.state = Tensor::zeros({2, 6, 4}, DType::f32);
      a.x = Tensor::zeros({2, 6}, DType::f16);
      a.dt = Tensor::zeros({2, 6}, DType::f16);
      a.A = Tensor::zeros({6, 4}, DType::f32);
      a.B = Tensor::zeros({2, 3, 4}, DType::f16);
      a.C = Tensor::zeros({2, 3, 4}, DType::f16);
      a.D = Tensor::zeros({6}, DType::f32);
      a.z = Tensor::zeros({2, 6}, DType::f16);
      a.dt_bias = Tensor::zeros({6}, DType::f32);
      a.out = Tensor::zeros({2, 6}, DType::f16);
      edit(a);
      selective_state_update(ctx, a);
    };
  };
  using Args = SelectiveStateUpdateArgs;
  EXPECT_NO_THROW(run([](Args&) {})());
  EXPECT_NO_THROW(run([](Args& a) { a.out = a.x; })());  // out may be x itself
  expect_error(run([](Args& a) { a.state = Tensor::zeros({2, 6, 4}, DType::f16); }), "state: expected dtype f32");
  expect_error(run([](Args& a) { a.state = Tensor::zeros({2, 6}, DType::f32); }), "state: expected (batch, D, N)");
  expect_error(run([](Args& a) { a.x = Tensor::zeros({2, 5}, DType::f16); }), "x: expected shape [2, 6]");
  expect_error(run([](Args& a) { a.x = Tensor::zeros({2, 6}, DType::i64); }), "x: dtype i64");
  expect_error(run([](Args& a) { a.dt = Tensor::zeros({2, 6}, DType::f32); }), "dt: expected dtype f16");
  expect_error(run([](Args& a) { a.A = Tensor::zeros({6}, DType::f32); }), "A: expected shape [6, 4]");
  expect_error(run([](Args& a) { a.A = Tensor::zeros({6, 4}, DType::f16); }), "A: expected dtype f32");
  expect_error(run([](Args& a) { a.B = Tensor::zeros({2, 4, 4}, DType::f16); }), "B: 4 groups do not divide 6");
  expect_error(run([](Args& a) { a.B = Tensor::zeros({2, 5}, DType::f16); }), "B: expected shape [2, 4]");
  expect_error(run([](Args& a) { a.B = Tensor::zeros({2, 1, 1, 4}, DType::f16); }), "B: expected (batch, N) or (batch, G, N)");
  expect_error(run([](Args& a) { a.C = Tensor::zeros({2, 4}, DType::f16); }), "C: expected shape [2, 3, 4]");
  expect_error(run([](Args& a) { a.D = Tensor::zeros({6}, DType::f16); }), "D: expected dtype f32");
  expect_error(run([](Args& a) { a.z = Tensor::zeros({1, 6}, DType::f16); }), "z: expected shape");
  expect_error(run([](Args& a) { a.dt_bias = Tensor::zeros({7}, DType::f32); }), "dt_bias: expected shape [6]");
  expect_error(run([](Args& a) { a.dt_options.dt_min = 1.0f, a.dt_options.dt_max = 0.5f; }), "dt limits");
  expect_error(run([](Args& a) { a.dt_options.dt_max = NAN; }), "dt limits");
  expect_error(run([](Args& a) { a.out = Tensor::zeros({2, 6}, DType::f32); }), "out: expected dtype f16");
  expect_error(run([](Args& a) {
                 a.state = Tensor::zeros({2, 6, 4}, DType::f32);
                 a.D = a.state.select(0, 0).select(1, 0);
               }),
               "state: must not overlap D");
  expect_error(run([](Args& a) { a.A = Tensor::zeros({6, 0}, DType::f32); }), "A: is empty");
}

// Overlaps that would race or read clobbered values (f32 I/O so views of one buffer fit).
TEST(SelectiveStateUpdate, RejectsOverlappingTensors) {
  Context ctx;
  auto run = [&](const std::function<void(SelectiveStateUpdateArgs&)>& edit) {
    return [&ctx, edit] {
      SelectiveStateUpdateArgs a;
      a.state = Tensor::zeros({2, 6, 4}, DType::f32);
      a.x = Tensor::zeros({2, 6}, DType::f32);
      a.dt = Tensor::zeros({2, 6}, DType::f32);
      a.A = Tensor::zeros({6, 4}, DType::f32);
      a.B = Tensor::zeros({2, 3, 4}, DType::f32);
      a.C = Tensor::zeros({2, 3, 4}, DType::f32);
      a.out = Tensor::zeros({2, 6}, DType::f32);
      edit(a);
      selective_state_update(ctx, a);
    };
  };
  using Args = SelectiveStateUpdateArgs;
  EXPECT_NO_THROW(run([](Args&) {})());
  expect_error(run([](Args& a) { a.out = a.state.select(2, 0); }), "state: must not overlap out");
  expect_error(run([](Args& a) { a.x = a.state.select(2, 1); }), "state: must not overlap x");
  expect_error(run([](Args& a) { a.out = a.B.view({2, 12}).slice(1, 0, 6); }), "out: must not overlap B");
  expect_error(run([](Args& a) {
                 const Tensor buf = Tensor::zeros({2, 7}, DType::f32);
                 a.x = buf.slice(1, 0, 6);
                 a.out = buf.slice(1, 1, 7);
               }),
               "out: must not overlap x");
}

TEST(Mamba2StateUpdate, RejectsBadArguments) {
  Context ctx;
  auto run = [&](const std::function<void(Mamba2StateUpdateArgs&)>& edit) {
    return [&ctx, edit] {
      Mamba2StateUpdateArgs a;
      a.state = Tensor::zeros({2, 4, 3, 5}, DType::f32);
      a.x = Tensor::zeros({2, 4, 3}, DType::bf16);
      a.dt = Tensor::zeros({2, 4}, DType::bf16);
      a.A = Tensor::zeros({4}, DType::f32);
      a.B = Tensor::zeros({2, 2, 5}, DType::bf16);
      a.C = Tensor::zeros({2, 2, 5}, DType::bf16);
      a.D = Tensor::zeros({4, 3}, DType::f32);
      a.z = Tensor::zeros({2, 4, 3}, DType::bf16);
      a.dt_bias = Tensor::zeros({4}, DType::f32);
      a.out = Tensor::zeros({2, 4, 3}, DType::bf16);
      edit(a);
      mamba2_state_update(ctx, a);
    };
  };
  using Args = Mamba2StateUpdateArgs;
  EXPECT_NO_THROW(run([](Args&) {})());
  EXPECT_NO_THROW(run([](Args& a) { a.D = Tensor::zeros({4}, DType::f32); })());
  expect_error(run([](Args& a) { a.state = Tensor::zeros({2, 4, 15}, DType::f32); }), "state: expected (batch, H, P, N)");
  expect_error(run([](Args& a) { a.x = Tensor::zeros({2, 4, 4}, DType::bf16); }), "x: expected shape [2, 4, 3]");
  expect_error(run([](Args& a) { a.dt = Tensor::zeros({2, 4, 3}, DType::bf16); }), "dt: expected shape [2, 4]");
  expect_error(run([](Args& a) { a.A = Tensor::zeros({4, 3, 5}, DType::f32); }), "A: expected shape [4]");
  expect_error(run([](Args& a) { a.B = Tensor::zeros({2, 3, 5}, DType::bf16); }), "B: 3 groups do not divide 4");
  expect_error(run([](Args& a) { a.B = Tensor::zeros({2, 2, 6}, DType::bf16); }), "B: expected shape [2, 2, 5]");
  expect_error(run([](Args& a) { a.C = Tensor::zeros({2, 2, 5}, DType::f16); }), "C: expected dtype bf16");
  expect_error(run([](Args& a) { a.D = Tensor::zeros({3}, DType::f32); }), "D: expected (H) or (H, P)");
  expect_error(run([](Args& a) { a.z = Tensor::zeros({2, 4, 3}, DType::f32); }), "z: expected dtype bf16");
  expect_error(run([](Args& a) { a.dt_bias = Tensor::zeros({4}, DType::bf16); }), "dt_bias: expected dtype f32");
  expect_error(run([](Args& a) { a.out = Tensor(); }), "out: is required");
  static float dummy[2 * 4 * 3 * 5];
  expect_error(run([](Args& a) { a.state = Tensor::from_blob(dummy, {2, 4, 3, 5}, DType::f32, Device::cuda(1), nullptr); }),
               "state: is on cuda:1");
}

}  // namespace
}  // namespace mcv::kernels
