// Mamba-2 SSD scan: CPU against the plain recurrence in double precision over lengths, chunk
// sizes that do and do not divide L, groups, D forms, gate, dt options, initial/final states and
// dtypes; CUDA (the chunked algorithm) against CPU; every validation error.

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "mcv/context.h"
#include "mcv/error.h"
#include "mcv/kernels/ssd.h"
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

enum class DForm { none, per_head, per_channel };

struct SsdCase {
  std::int64_t batch = 2, len = 64, heads = 4, headdim = 8, groups = 2, dstate = 16;
  int chunk = 64;
  DType io = DType::f32;
  DForm d_form = DForm::per_head;
  bool has_z = true, has_bias = true, softplus = true, initial = true, final = true, strided = false;
  float dt_min = 0.0f, dt_max = INFINITY;

  std::string str() const {
    return std::string(dtype_name(io)) + " B=" + std::to_string(batch) + " L=" + std::to_string(len) + " H=" +
           std::to_string(heads) + " P=" + std::to_string(headdim) + " G=" + std::to_string(groups) +
           " N=" + std::to_string(dstate) + " chunk=" + std::to_string(chunk) +
           (d_form == DForm::none ? "" : d_form == DForm::per_head ? " D(H)" : " D(H,P)") + (has_z ? " z" : "") +
           (has_bias ? " dt_bias" : "") + (softplus ? " softplus" : "") + (initial ? " init" : "") +
           (final ? " final" : "") + (strided ? " strided" : "") + " dt in [" + std::to_string(dt_min) + ", " +
           std::to_string(dt_max) + "]";
  }
};

struct SsdTensors {
  Tensor x, dt, A, B, C, D, z, dt_bias, init, final, out;
};

// Fixed-seed inputs on `device`; with `strided`, the token-major tensors are views into wider
// buffers (padding after the innermost dimension, as slices of a fused projection would be).
SsdTensors make_tensors(const SsdCase& c, Device device, std::uint64_t seed) {
  const std::int64_t b = c.batch, L = c.len, H = c.heads, P = c.headdim, G = c.groups, N = c.dstate;
  const std::int64_t pad = c.strided ? 3 : 0;
  auto view = [&](const Tensor& host, std::int64_t inner) { return host.to(device).slice(-1, 0, inner); };
  SsdTensors t;
  t.x = view(random_tensor({b, L, H, P + pad}, c.io, seed), P);
  // Raw dt around -1 before softplus; without softplus dt itself, kept positive (a decaying state).
  t.dt = view(c.softplus ? random_tensor({b, L, H + pad}, c.io, seed + 1, 0.5f, -1.0f)
                         : random_tensor({b, L, H + pad}, c.io, seed + 1, 0.05f, 0.3f),
              H);
  t.B = view(random_tensor({b, L, G, N + pad}, c.io, seed + 2), N);
  t.C = view(random_tensor({b, L, G, N + pad}, c.io, seed + 3), N);
  if (c.has_z) t.z = view(random_tensor({b, L, H, P + pad}, c.io, seed + 4), P);
  std::vector<float> a = random_tensor({H}, DType::f32, seed + 5, 0.5f).to_vector();
  for (float& v : a) v = -std::exp(v);  // A = -exp(A_log)
  t.A = Tensor::from_vector(a, {H}).to(device);
  if (c.d_form != DForm::none)
    t.D = random_tensor(c.d_form == DForm::per_head ? Shape{H} : Shape{H, P}, DType::f32, seed + 6).to(device);
  if (c.has_bias) t.dt_bias = random_tensor({H}, DType::f32, seed + 7, c.softplus ? 0.2f : 0.05f).to(device);
  if (c.initial) t.init = random_tensor({b, H, P, N}, DType::f32, seed + 8).to(device);
  if (c.final) {
    t.final = Tensor::empty({b, H, P, N}, DType::f32, device);
    poison(t.final);
  }
  t.out = Tensor::empty({b, L, H, P + pad}, c.io, device).slice(-1, 0, P);
  poison(t.out);
  return t;
}

SsdArgs make_args(const SsdCase& c, const SsdTensors& t) {
  SsdArgs a;
  a.x = t.x;
  a.dt = t.dt;
  a.A = t.A;
  a.B = t.B;
  a.C = t.C;
  a.D = t.D;
  a.z = t.z;
  a.dt_bias = t.dt_bias;
  a.dt_options = {c.softplus, c.dt_min, c.dt_max};
  a.initial_states = t.init;
  a.final_states = t.final;
  a.chunk_size = c.chunk;
  a.out = t.out;
  return a;
}

// h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T;  y_t = C_t h_t + D x_t;  out = y * silu(z).
void reference(const SsdCase& c, const SsdTensors& t, std::vector<double>* out, std::vector<double>* final) {
  const std::int64_t bn = c.batch, L = c.len, H = c.heads, P = c.headdim, G = c.groups, N = c.dstate;
  const std::vector<double> x = values(t.x), dt = values(t.dt), A = values(t.A), B = values(t.B), C = values(t.C);
  const std::vector<double> D = c.d_form != DForm::none ? values(t.D) : std::vector<double>();
  const std::vector<double> z = c.has_z ? values(t.z) : std::vector<double>();
  const std::vector<double> bias = c.has_bias ? values(t.dt_bias) : std::vector<double>(H, 0.0);
  std::vector<double> h = c.initial ? values(t.init) : std::vector<double>(bn * H * P * N, 0.0);
  out->assign(bn * L * H * P, 0.0);
  for (std::int64_t b = 0; b < bn; ++b)
    for (std::int64_t hh = 0; hh < H; ++hh) {
      const std::int64_t g = hh / (H / G);
      for (std::int64_t s = 0; s < L; ++s) {
        double d = dt[(b * L + s) * H + hh] + bias[hh];
        if (c.softplus) d = d <= 20.0 ? std::log1p(std::exp(d)) : d;
        if (c.dt_min > 0 || c.dt_max < INFINITY) d = std::min(std::max(d, double(c.dt_min)), double(c.dt_max));
        const double decay = std::exp(d * A[hh]);
        const double* Bs = &B[((b * L + s) * G + g) * N];
        const double* Cs = &C[((b * L + s) * G + g) * N];
        for (std::int64_t p = 0; p < P; ++p) {
          const std::size_t xi = ((b * L + s) * H + hh) * P + p;
          double* hp = &h[((b * H + hh) * P + p) * N];
          double y = 0;
          for (std::int64_t n = 0; n < N; ++n) {
            hp[n] = decay * hp[n] + d * x[xi] * Bs[n];
            y += Cs[n] * hp[n];
          }
          if (c.d_form == DForm::per_head) y += D[hh] * x[xi];
          if (c.d_form == DForm::per_channel) y += D[hh * P + p] * x[xi];
          if (c.has_z) y *= z[xi] / (1 + std::exp(-z[xi]));
          (*out)[xi] = y;
        }
      }
    }
  *final = h;
}

Tolerance out_tolerance(DType io) {
  switch (io) {
    case DType::f16: return {3e-3, 3e-3};
    case DType::bf16: return {2e-2, 1e-2};
    default: return {5e-5, 5e-5};
  }
}

void run_cpu_case(const SsdCase& c, std::uint64_t seed) {
  SCOPED_TRACE(c.str());
  Context ctx;
  const SsdTensors t = make_tensors(c, Device::cpu(), seed);
  ssd_chunk_scan(ctx, make_args(c, t));
  std::vector<double> want, want_final;
  reference(c, t, &want, &want_final);
  expect_close(values(t.out), want, out_tolerance(c.io), "out");
  if (c.final) expect_close(values(t.final), want_final, {5e-5, 5e-5}, "final_states");
}

const DType kDtypes[] = {DType::f32, DType::f16, DType::bf16};

TEST(Ssd, CpuMatchesRecurrenceOverLengthsAndChunks) {
  std::uint64_t seed = 1;
  const std::int64_t lengths[] = {1, 7, 64, 197, 1000};
  const int chunks[] = {8, 64, 100, 256};
  for (DType io : kDtypes)
    for (std::int64_t len : lengths)
      for (int chunk : chunks) {
        SsdCase c;
        c.io = io;
        c.len = len;
        c.chunk = chunk;
        c.strided = seed % 2 == 0;
        c.initial = seed % 3 != 0;
        run_cpu_case(c, seed++);
      }
}

TEST(Ssd, CpuMatchesRecurrenceOverOptions) {
  std::uint64_t seed = 100;
  for (DType io : kDtypes)
    for (std::int64_t groups : {1, 2, 4})
      for (DForm d_form : {DForm::none, DForm::per_head, DForm::per_channel})
        for (int flags = 0; flags < 4; ++flags) {
          SsdCase c;
          c.io = io;
          c.len = 37;
          c.chunk = 16;
          c.groups = groups;
          c.d_form = d_form;
          c.has_z = flags & 1;
          c.softplus = flags != 1;
          c.has_bias = flags != 2;
          c.initial = flags & 2;
          c.final = flags != 0;
          if (flags == 3) {  // a dt limit that clamps
            c.dt_min = 0.2f;
            c.dt_max = 0.5f;
          }
          run_cpu_case(c, seed++);
        }
}

// Head dims that span several 64-row CPU tasks and odd sizes.
TEST(Ssd, CpuMatchesRecurrenceOddSizes) {
  const std::int64_t shapes[][6] = {// batch, L, H, P, G, N
                                    {1, 5, 1, 1, 1, 1},
                                    {3, 9, 3, 5, 3, 3},
                                    {1, 33, 2, 130, 1, 7},
                                    {2, 20, 6, 64, 3, 64}};
  std::uint64_t seed = 300;
  for (const auto& s : shapes)
    for (DType io : kDtypes) {
      SsdCase c;
      c.batch = s[0];
      c.len = s[1];
      c.heads = s[2];
      c.headdim = s[3];
      c.groups = s[4];
      c.dstate = s[5];
      c.chunk = 8;
      c.io = io;
      c.strided = true;
      run_cpu_case(c, seed++);
    }
}

// What mamba2_lm_tiny runs: 8 heads x 16, 2 groups, state 16, chunk 8, softplus, D (H), no z
// (the model gates in RMSNormGated), dt limit (0, inf), no initial state.
TEST(Ssd, OracleConfiguration) {
  SsdCase c;
  c.batch = 2;
  c.len = 24;
  c.heads = 8;
  c.headdim = 16;
  c.groups = 2;
  c.dstate = 16;
  c.chunk = 8;
  c.has_z = false;
  c.initial = false;
  for (DType io : kDtypes) {
    c.io = io;
    run_cpu_case(c, 42);
  }
}

// The same tensor as initial and final state updates it in place.
TEST(Ssd, InPlaceStateUpdate) {
  SsdCase c;
  c.len = 19;
  c.chunk = 8;
  Context ctx;
  SsdTensors t = make_tensors(c, Device::cpu(), 5);
  std::vector<double> want, want_final;
  reference(c, t, &want, &want_final);
  t.final = t.init;
  ssd_chunk_scan(ctx, make_args(c, t));
  expect_close(values(t.out), want, out_tolerance(c.io), "out");
  expect_close(values(t.init), want_final, {5e-5, 5e-5}, "state");
}

// ---- CUDA against CPU ----------------------------------------------------------------------

void run_cuda_case(const SsdCase& c, std::uint64_t seed) {
  SCOPED_TRACE(c.str());
  Context cpu_ctx, gpu_ctx(Device::cuda());
  const SsdTensors cpu = make_tensors(c, Device::cpu(), seed);
  const SsdTensors gpu = make_tensors(c, Device::cuda(), seed);
  ssd_chunk_scan(cpu_ctx, make_args(c, cpu));
  ssd_chunk_scan(gpu_ctx, make_args(c, gpu));
  gpu_ctx.synchronize();
  gpu_ctx.workspace().reset();
  // Both accumulate in f32 but in different orders (recurrence vs chunked sums).
  const Tolerance tol = c.io == DType::f32 ? Tolerance{2e-4, 2e-4} : out_tolerance(c.io);
  expect_close(values(gpu.out), values(cpu.out), tol, "out");
  if (c.final) expect_close(values(gpu.final), values(cpu.final), {2e-4, 2e-4}, "final_states");
}

TEST(SsdCuda, MatchesCpuOverLengthsAndChunks) {
  MCV_REQUIRE_CUDA();
  std::uint64_t seed = 1000;
  for (DType io : kDtypes)
    for (std::int64_t len : {1, 7, 64, 197, 1000})
      for (int chunk : {8, 64, 100, 256}) {
        SsdCase c;
        c.io = io;
        c.len = len;
        c.chunk = chunk;
        c.strided = seed % 2 == 0;
        c.initial = seed % 3 != 0;
        c.d_form = seed % 3 == 0 ? DForm::per_channel : DForm::per_head;
        run_cuda_case(c, seed++);
      }
}

// Several 64-wide tiles along P and N, ragged 32-wide reduction slices, groups, options.
TEST(SsdCuda, MatchesCpuOverShapesAndOptions) {
  MCV_REQUIRE_CUDA();
  const std::int64_t shapes[][6] = {// batch, L, H, P, G, N
                                    {1, 5, 1, 1, 1, 1},
                                    {3, 77, 3, 5, 3, 3},
                                    {2, 300, 4, 80, 2, 70},
                                    {1, 513, 8, 64, 1, 128},
                                    {2, 24, 8, 16, 2, 16}};
  std::uint64_t seed = 2000;
  for (const auto& s : shapes)
    for (DType io : kDtypes)
      for (int flags = 0; flags < 4; ++flags) {
        SsdCase c;
        c.batch = s[0];
        c.len = s[1];
        c.heads = s[2];
        c.headdim = s[3];
        c.groups = s[4];
        c.dstate = s[5];
        c.chunk = flags == 0 ? 8 : flags == 1 ? 64 : flags == 2 ? 96 : 256;
        c.io = io;
        c.has_z = flags & 1;
        c.softplus = flags != 2;
        c.initial = flags != 1;
        c.strided = flags & 2;
        if (flags == 3) {
          c.dt_min = 0.1f;
          c.dt_max = 0.4f;
        }
        run_cuda_case(c, seed++);
      }
}

// A small run of the four SSD kernels over several tiles, a ragged last chunk and every
// optional tensor, for compute-sanitizer (tools/gpu-check runs *Sanitizer*).
TEST(SsdCudaSanitizer, EveryKernelSmall) {
  MCV_REQUIRE_CUDA();
  SsdCase c;
  c.batch = 1;
  c.len = 150;
  c.heads = 2;
  c.headdim = 70;
  c.groups = 1;
  c.dstate = 40;
  c.chunk = 96;
  c.d_form = DForm::per_channel;
  c.strided = true;
  run_cuda_case(c, 11);
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

TEST(Ssd, RejectsBadArguments) {
  Context ctx;
  SsdCase c;
  c.len = 9;
  c.io = DType::bf16;
  const SsdTensors base = make_tensors(c, Device::cpu(), 3);
  auto run = [&](const std::function<void(SsdArgs&)>& edit) {
    return [&, edit] {
      SsdArgs a = make_args(c, base);
      edit(a);
      ssd_chunk_scan(ctx, a);
    };
  };
  const DType bf = DType::bf16, f32 = DType::f32;
  EXPECT_NO_THROW(run([](SsdArgs&) {})());
  expect_error(run([](SsdArgs& a) { a.x = Tensor(); }), "ssd_chunk_scan: x: is required");
  expect_error(run([&](SsdArgs& a) { a.x = Tensor::zeros({2, 9, 32}, bf); }), "x: expected (batch, L, H, P)");
  expect_error(run([&](SsdArgs& a) { a.x = Tensor::zeros({2, 9, 4, 8}, DType::u8); }), "x: dtype u8");
  expect_error(run([&](SsdArgs& a) { a.x = Tensor::zeros({2, 0, 4, 8}, bf); }), "x: is empty");
  expect_error(run([&](SsdArgs& a) { a.x = Tensor::zeros({2, 9, 8, 4}, bf).transpose(2, 3); }),
               "x: the last dimension must have stride 1");
  expect_error(run([&](SsdArgs& a) { a.dt = Tensor::zeros({2, 9, 5}, bf); }), "dt: expected shape [2, 9, 4]");
  expect_error(run([&](SsdArgs& a) { a.dt = Tensor::zeros({2, 9, 4}, f32); }), "dt: expected dtype bf16");
  expect_error(run([&](SsdArgs& a) { a.A = Tensor::zeros({4}, bf); }), "A: expected dtype f32");
  expect_error(run([&](SsdArgs& a) { a.A = Tensor::zeros({4, 1}, f32); }), "A: expected shape [4]");
  expect_error(run([&](SsdArgs& a) { a.B = Tensor::zeros({2, 9, 32}, bf); }), "B: expected (batch, L, G, N)");
  expect_error(run([&](SsdArgs& a) { a.B = Tensor::zeros({2, 9, 3, 16}, bf); }), "B: 3 groups do not divide 4");
  expect_error(run([&](SsdArgs& a) { a.B = Tensor::zeros({2, 8, 2, 16}, bf); }), "B: expected shape [2, 9, 2, 16]");
  expect_error(run([&](SsdArgs& a) { a.B = Tensor::zeros({2, 9, 16, 2}, bf).transpose(2, 3); }),
               "B: the last dimension must have stride 1");
  expect_error(run([&](SsdArgs& a) { a.C = Tensor::zeros({2, 9, 2, 15}, bf); }), "C: expected shape [2, 9, 2, 16]");
  expect_error(run([&](SsdArgs& a) { a.D = Tensor::zeros({4, 7}, f32); }), "D: expected (H) or (H, P)");
  expect_error(run([&](SsdArgs& a) { a.D = Tensor::zeros({4}, bf); }), "D: expected dtype f32");
  expect_error(run([&](SsdArgs& a) { a.z = Tensor::zeros({2, 9, 4, 8}, DType::f16); }), "z: expected dtype bf16");
  expect_error(run([&](SsdArgs& a) { a.dt_bias = Tensor::zeros({2}, f32); }), "dt_bias: expected shape [4]");
  expect_error(run([](SsdArgs& a) { a.dt_options.dt_min = 2.0f; a.dt_options.dt_max = 1.0f; }), "dt limits");
  expect_error(run([&](SsdArgs& a) { a.initial_states = Tensor::zeros({2, 4, 8, 15}, f32); }),
               "initial_states: expected shape [2, 4, 8, 16]");
  expect_error(run([&](SsdArgs& a) { a.initial_states = Tensor::zeros({2, 4, 8, 16}, bf); }),
               "initial_states: expected dtype f32");
  expect_error(run([&](SsdArgs& a) { a.final_states = Tensor::zeros({2, 4, 16, 8}, f32).transpose(2, 3); }),
               "final_states: must be contiguous");
  expect_error(run([](SsdArgs& a) { a.chunk_size = 0; }), "chunk_size: 0 is outside [1, 1024]");
  expect_error(run([](SsdArgs& a) { a.chunk_size = 4096; }), "chunk_size: 4096");
  expect_error(run([&](SsdArgs& a) { a.out = Tensor::zeros({2, 9, 4, 8}, f32); }), "out: expected dtype bf16");
  expect_error(run([&](SsdArgs& a) { a.out = Tensor::zeros({2, 9, 4, 7}, bf); }), "out: expected shape");
  expect_error(run([](SsdArgs& a) { a.out = a.x; }), "out: must not overlap x");
  expect_error(run([](SsdArgs& a) { a.out = a.z; }), "out: must not overlap z");
  EXPECT_NO_THROW(run([](SsdArgs& a) { a.final_states = a.initial_states; })());  // in place
  expect_error(run([&](SsdArgs& a) {
                 const std::int64_t n = 2 * 4 * 8 * 16;
                 const Tensor buf = Tensor::zeros({n + 1}, f32);
                 a.initial_states = buf.slice(0, 0, n).view({2, 4, 8, 16});
                 a.final_states = buf.slice(0, 1, n + 1).view({2, 4, 8, 16});
               }),
               "final_states: must not overlap initial_states");
  static float dummy[4];
  expect_error(run([](SsdArgs& a) { a.A = Tensor::from_blob(dummy, {4}, DType::f32, Device::cuda(0), nullptr); }),
               "A: is on cuda:0");
}

}  // namespace
}  // namespace mcv::kernels
