// Depthwise conv1d and its single-step update: CPU against a double-precision reference written
// from the official definitions (causal_conv1d_ref, nn.Conv1d padding='same', the flip-conv-flip
// of Vim's backward branch), CUDA against CPU, and every validation error.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "mcv/context.h"
#include "mcv/error.h"
#include "mcv/kernels/conv1d.h"
#include "test_support.h"

namespace mcv::kernels {
namespace {

using test::poison;
using test::random_tensor;

enum class Mode { causal, same, reverse };
const char* mode_name(Mode m) { return m == Mode::causal ? "causal" : m == Mode::same ? "same" : "reverse"; }

struct ConvCase {
  std::int64_t batch = 2, dim = 7, len = 13;
  int width = 4;
  bool token_major = false;
  Mode mode = Mode::causal;
  bool silu = false, bias = true;
  DType io = DType::f32;
  bool weight_f32 = true;      // else weight and bias in the I/O dtype
  bool weight_3d = false;      // the official (D, 1, W)
  bool strided = false;        // x/out as views into wider buffers
  std::int64_t pad = 3;        // how much wider, when strided
  std::int64_t state_len = 0;  // > 0: request the final conv state

  std::string str() const {
    return std::string(mode_name(mode)) + (token_major ? " token-major" : " channel-major") + " W=" +
           std::to_string(width) + " " + dtype_name(io) + (weight_f32 ? " w:f32" : " w:io") + (silu ? " silu" : "") +
           (bias ? " bias" : "") + (strided ? " strided" : "") + " B=" + std::to_string(batch) +
           " D=" + std::to_string(dim) + " L=" + std::to_string(len) + " S=" + std::to_string(state_len);
  }
};

struct ConvTensors {
  Tensor x, weight, bias, out, state;
};

// Builds the inputs of a case on `device` from fixed seeds, so CPU and CUDA see equal values.
ConvTensors make_tensors(const ConvCase& c, Device device, std::uint64_t seed) {
  const std::int64_t pad = c.strided ? c.pad : 0;
  const Shape parent = c.token_major ? Shape{c.batch, c.len, c.dim + pad} : Shape{c.batch, c.dim, c.len + pad};
  const std::int64_t inner = c.token_major ? c.dim : c.len;
  ConvTensors t;
  t.x = random_tensor(parent, c.io, seed).to(device).slice(2, 0, inner);
  const DType wt = c.weight_f32 ? DType::f32 : c.io;
  t.weight = random_tensor(c.weight_3d ? Shape{c.dim, 1, c.width} : Shape{c.dim, c.width}, wt, seed + 1, 0.5f).to(device);
  if (c.bias) t.bias = random_tensor({c.dim}, wt, seed + 2, 0.5f).to(device);
  t.out = Tensor::empty(parent, c.io, device).slice(2, 0, inner);
  poison(t.out);
  if (c.state_len > 0) {
    t.state = Tensor::empty({c.batch, c.dim, c.state_len}, c.io, device);
    poison(t.state);
  }
  return t;
}

Conv1dArgs make_args(const ConvCase& c, const ConvTensors& t) {
  Conv1dArgs a;
  a.x = t.x;
  a.weight = t.weight;
  a.bias = t.bias;
  a.out = t.out;
  a.layout = c.token_major ? Conv1dLayout::token_major : Conv1dLayout::channel_major;
  a.padding = c.mode == Mode::same ? Conv1dPadding::same : Conv1dPadding::causal;
  a.reverse = c.mode == Mode::reverse;
  a.silu = c.silu;
  a.final_state = t.state;
  return a;
}

// Logical (batch, D, L) values of a channel- or token-major tensor, as doubles.
std::vector<double> logical_bdl(const Tensor& t, const ConvCase& c) {
  const Tensor v = c.token_major ? t.transpose(1, 2) : t;
  const std::vector<float> f = v.to_vector();
  return std::vector<double>(f.begin(), f.end());
}

// The reference, literally: nn.Conv1d with explicit zero padding (left, right), flipped input
// and output for the reverse direction.
std::vector<double> reference(const ConvCase& c, const ConvTensors& t) {
  const std::vector<double> x = logical_bdl(t.x, c);
  const std::vector<float> wf = t.weight.to_vector();
  const std::vector<float> bf = c.bias ? t.bias.to_vector() : std::vector<float>(c.dim, 0.0f);
  const int W = c.width;
  const int left = c.mode == Mode::same ? (W - 1) / 2 : W - 1;  // PyTorch 'same': floor((W-1)/2) on the left
  std::vector<double> out(x.size());
  for (std::int64_t b = 0; b < c.batch; ++b)
    for (std::int64_t d = 0; d < c.dim; ++d) {
      const double* xr = &x[(b * c.dim + d) * c.len];
      auto input = [&](std::int64_t t) {  // the (possibly flipped) sequence, zero-padded
        if (t < 0 || t >= c.len) return 0.0;
        return c.mode == Mode::reverse ? xr[c.len - 1 - t] : xr[t];
      };
      for (std::int64_t t = 0; t < c.len; ++t) {
        double acc = bf[d];
        for (int k = 0; k < W; ++k) acc += static_cast<double>(wf[d * W + k]) * input(t - left + k);
        if (c.silu) acc = acc / (1.0 + std::exp(-acc));
        const std::int64_t pos = c.mode == Mode::reverse ? c.len - 1 - t : t;
        out[(b * c.dim + d) * c.len + pos] = acc;
      }
    }
  return out;
}

struct Tolerance {
  double atol, rtol;
};
Tolerance tolerance(DType io) {
  switch (io) {
    case DType::f16: return {2e-3, 2e-3};
    case DType::bf16: return {1e-2, 1e-2};
    default: return {2e-5, 2e-5};
  }
}

// Every element within atol + rtol * |want|; NaN (an unwritten, poisoned element) fails.
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

void expect_state(const ConvCase& c, const ConvTensors& t) {
  const std::vector<double> x = logical_bdl(t.x, c);
  const std::vector<float> s = t.state.to_vector();
  std::int64_t bad = 0;
  for (std::int64_t b = 0; b < c.batch; ++b)
    for (std::int64_t d = 0; d < c.dim; ++d)
      for (std::int64_t j = 0; j < c.state_len; ++j) {
        const std::int64_t pos = c.len - c.state_len + j;
        const double want = pos >= 0 ? x[(b * c.dim + d) * c.len + pos] : 0.0;
        bad += s[(b * c.dim + d) * c.state_len + j] != want;  // copies: exact
      }
  EXPECT_EQ(bad, 0) << "final_state of " << c.str();
}

void run_cpu_case(const ConvCase& c, std::uint64_t seed) {
  SCOPED_TRACE(c.str());
  Context ctx;
  const ConvTensors t = make_tensors(c, Device::cpu(), seed);
  conv1d(ctx, make_args(c, t));
  expect_close(logical_bdl(t.out, c), reference(c, t), tolerance(c.io), c.str());
  if (c.state_len > 0) expect_state(c, t);
}

const DType kDtypes[] = {DType::f32, DType::f16, DType::bf16};
const Mode kModes[] = {Mode::causal, Mode::same, Mode::reverse};

TEST(Conv1d, CpuMatchesReferenceFullCrossProduct) {
  std::uint64_t seed = 100;
  for (DType io : kDtypes)
    for (bool token_major : {false, true})
      for (Mode mode : kModes)
        for (int width = 2; width <= 4; ++width)
          for (bool silu : {false, true})
            for (bool bias : {false, true})
              for (bool weight_f32 : {true, false}) {
                ConvCase c;
                c.io = io;
                c.token_major = token_major;
                c.mode = mode;
                c.width = width;
                c.silu = silu;
                c.bias = bias;
                c.weight_f32 = weight_f32;
                c.strided = (seed % 3) == 0;
                c.weight_3d = (seed % 2) == 0;
                run_cpu_case(c, seed++);
              }
}

// Sizes around the CPU tiling (512-token row segments, 16 x 256 token-major tiles) and tiny L.
TEST(Conv1d, CpuMatchesReferenceOddSizes) {
  const std::int64_t shapes[][3] = {{1, 1, 1}, {3, 5, 2}, {1, 3, 3}, {2, 300, 17}, {1, 9, 1030}, {2, 257, 33}};
  std::uint64_t seed = 900;
  for (const auto& s : shapes)
    for (bool token_major : {false, true})
      for (Mode mode : kModes)
        for (DType io : {DType::f32, DType::bf16}) {
          ConvCase c;
          c.batch = s[0];
          c.dim = s[1];
          c.len = s[2];
          c.token_major = token_major;
          c.mode = mode;
          c.io = io;
          c.width = 2 + static_cast<int>(seed % 3);
          c.silu = true;
          c.strided = true;
          run_cpu_case(c, seed++);
        }
}

TEST(Conv1d, FinalStateHoldsTheLastInputs) {
  std::uint64_t seed = 1500;
  for (bool token_major : {false, true})
    for (std::int64_t len : {1, 2, 5, 40})
      for (int width : {2, 4})
        for (std::int64_t extra : {0, 1, 3}) {
          ConvCase c;
          c.len = len;
          c.width = width;
          c.token_major = token_major;
          c.state_len = width - 1 + extra;
          c.io = seed % 2 ? DType::f16 : DType::f32;
          c.silu = true;
          run_cpu_case(c, seed++);
        }
}

// One update per new token continues the full causal conv exactly where conv1d's final state
// left it; the state keeps holding the last S inputs.
void check_update_continues_conv(Device device) {
  Context ctx(device);
  for (DType io : kDtypes)
    for (int width = 2; width <= 4; ++width)
      for (std::int64_t state_len : {std::int64_t(width - 1), std::int64_t(width)}) {
        const std::int64_t batch = 2, dim = 11, prefix = 5, steps = 6, total = prefix + steps;
        SCOPED_TRACE(std::string(dtype_name(io)) + " W=" + std::to_string(width) + " S=" + std::to_string(state_len));
        const Tensor x = random_tensor({batch, dim, total}, io, 7 + width).to(device);
        const Tensor weight = random_tensor({dim, 1, width}, io, 8, 0.5f).to(device);
        const Tensor bias = random_tensor({dim}, DType::f32, 9, 0.5f).to(device);
        Tensor full = Tensor::empty({batch, dim, total}, io, device);
        Conv1dArgs a;
        a.x = x;
        a.weight = weight;
        a.bias = bias;
        a.out = full;
        a.silu = true;
        conv1d(ctx, a);
        Tensor state = Tensor::empty({batch, dim, state_len}, io, device);
        poison(state);
        a.x = x.slice(2, 0, prefix);
        a.out = Tensor::empty({batch, dim, prefix}, io, device);
        a.final_state = state;
        conv1d(ctx, a);
        for (std::int64_t s = 0; s < steps; ++s) {
          Conv1dUpdateArgs u;
          u.x = x.select(2, prefix + s);
          u.conv_state = state;
          u.weight = weight;
          u.bias = bias;
          u.out = Tensor::empty({batch, dim}, io, device);
          poison(u.out);
          u.silu = true;
          conv1d_update(ctx, u);
          const std::vector<float> got = u.out.to_vector(), want = full.select(2, prefix + s).to_vector();
          expect_close(std::vector<double>(got.begin(), got.end()), std::vector<double>(want.begin(), want.end()),
                       tolerance(io), "step " + std::to_string(s));
        }
        const test::Diff ds = test::compare(state, x.slice(2, total - state_len, total).contiguous());
        EXPECT_EQ(ds.max_abs, 0.0);
      }
}

TEST(Conv1dUpdate, ContinuesTheFullConvOnCpu) { check_update_continues_conv(Device::cpu()); }

TEST(Conv1dUpdate, CpuMatchesReferenceWithStridedViews) {
  Context ctx;
  for (DType io : kDtypes)
    for (int width = 2; width <= 4; ++width)
      for (bool silu : {false, true}) {
        const std::int64_t batch = 3, dim = 6, state_len = width + 1;
        SCOPED_TRACE(std::string(dtype_name(io)) + " W=" + std::to_string(width));
        // x as a column of a wider projection, the state as a slice of a longer buffer.
        const Tensor x = random_tensor({batch, 2 * dim}, io, 21).slice(1, dim, 2 * dim);
        Tensor state = random_tensor({batch, dim, state_len + 2}, io, 22).slice(2, 1, 1 + state_len);
        const std::vector<float> s0 = state.to_vector(), xv = x.to_vector();
        const Tensor weight = random_tensor({dim, width}, DType::f32, 23, 0.5f);
        Tensor out = Tensor::empty({batch, dim}, io);
        poison(out);
        Conv1dUpdateArgs u;
        u.x = x;
        u.conv_state = state;
        u.weight = weight;
        u.out = out;
        u.silu = silu;
        conv1d_update(ctx, u);
        const std::vector<float> w = weight.to_vector(), s1 = state.to_vector();
        std::vector<double> want(batch * dim), got(batch * dim);
        const std::vector<float> of = out.to_vector();
        for (std::int64_t b = 0; b < batch; ++b)
          for (std::int64_t d = 0; d < dim; ++d) {
            std::vector<double> window(state_len + 1);
            for (std::int64_t j = 0; j < state_len; ++j) window[j] = s0[(b * dim + d) * state_len + j];
            window[state_len] = xv[b * dim + d];
            double acc = 0;
            for (int k = 0; k < width; ++k) acc += w[d * width + k] * window[state_len + 1 - width + k];
            want[b * dim + d] = silu ? acc / (1 + std::exp(-acc)) : acc;
            got[b * dim + d] = of[b * dim + d];
            for (std::int64_t j = 0; j < state_len; ++j)
              EXPECT_EQ(s1[(b * dim + d) * state_len + j], window[j + 1]);
          }
        expect_close(got, want, tolerance(io), "conv1d_update");
      }
}

// ---- CUDA against CPU ----------------------------------------------------------------------

void run_cuda_case(const ConvCase& c, std::uint64_t seed) {
  SCOPED_TRACE(c.str());
  Context cpu_ctx, gpu_ctx(Device::cuda());
  const ConvTensors cpu = make_tensors(c, Device::cpu(), seed);
  const ConvTensors gpu = make_tensors(c, Device::cuda(), seed);
  conv1d(cpu_ctx, make_args(c, cpu));
  conv1d(gpu_ctx, make_args(c, gpu));
  gpu_ctx.synchronize();
  const Tolerance tol = c.io == DType::f32 ? Tolerance{1e-5, 1e-5} : tolerance(c.io);
  expect_close(logical_bdl(gpu.out, c), logical_bdl(cpu.out, c), tol, "cuda vs cpu");
  if (c.state_len > 0) {
    const test::Diff d = test::compare(gpu.state, cpu.state);
    EXPECT_EQ(d.max_abs, 0.0) << "final_state";
  }
}

TEST(Conv1dCuda, MatchesCpu) {
  MCV_REQUIRE_CUDA();
  std::uint64_t seed = 3000;
  for (DType io : kDtypes)
    for (bool token_major : {false, true})
      for (Mode mode : kModes)
        for (int width = 2; width <= 4; ++width)
          for (bool weight_f32 : {true, false}) {
            ConvCase c;
            c.io = io;
            c.token_major = token_major;
            c.mode = mode;
            c.width = width;
            c.weight_f32 = weight_f32;
            c.silu = seed % 2 == 0;
            c.bias = seed % 3 != 0;
            c.strided = seed % 2 == 1;
            c.state_len = mode == Mode::causal ? width - 1 + seed % 2 : 0;
            c.batch = 2;
            c.dim = 37;
            c.len = 300;
            run_cuda_case(c, seed++);
          }
}

// Shapes that take the vectorised token-major kernel (channels a multiple of 8, rows aligned
// for 16-byte access), as Vim calls it: x a slice of the (B, L, 2D) projection; lengths that are
// and are not a multiple of its 4-step strips; plus a misaligned slice that must fall back.
TEST(Conv1dCuda, TokenMajorVectorisedMatchesCpu) {
  MCV_REQUIRE_CUDA();
  std::uint64_t seed = 3500;
  for (DType io : kDtypes)
    for (Mode mode : kModes)
      for (std::int64_t len : {1, 3, 197, 198})
        for (std::int64_t pad : {0, 64, 5}) {
          ConvCase c;
          c.io = io;
          c.token_major = true;
          c.mode = mode;
          c.width = mode == Mode::same ? 3 : 4;
          c.silu = true;
          c.bias = seed % 2 == 0;
          c.weight_f32 = seed % 3 != 0;
          c.strided = pad > 0;
          c.pad = pad;
          c.state_len = mode == Mode::causal ? 3 : 0;
          c.batch = 3;
          c.dim = 64;
          c.len = len;
          run_cuda_case(c, seed++);
        }
}

// Causal, anti-causal and 'same' token-major convs (strided views, SiLU on the first two) of one
// size on CUDA against the CPU, under each value of one of the kernel's forcing variables.
void run_token_major_forms(const char* env, std::initializer_list<const char*> values,
                           std::initializer_list<DType> dtypes, std::int64_t batch, std::int64_t len,
                           std::int64_t pad, std::uint64_t seed) {
  for (const char* value : values) {
    setenv(env, value, 1);
    SCOPED_TRACE(std::string(env) + "=" + value);
    for (DType io : dtypes)
      for (Mode mode : {Mode::causal, Mode::reverse, Mode::same}) {
        ConvCase c;
        c.io = io;
        c.token_major = true;
        c.mode = mode;
        c.width = mode == Mode::same ? 3 : 4;
        c.silu = mode != Mode::same;
        c.weight_f32 = io != DType::bf16;
        c.strided = true;
        c.pad = pad;
        c.batch = batch;
        c.dim = 512;
        c.len = len;
        run_cuda_case(c, seed++);
      }
  }
  unsetenv(env);
}

// Every strip length of the vectorised kernel (8, 4 and 2 steps per thread, forced with
// MCV_CONV1D_STEPS; the default picks by dtype and thread count), partial last strips included.
TEST(Conv1dCuda, TokenMajorLongStripsMatchCpu) {
  MCV_REQUIRE_CUDA();
  run_token_major_forms("MCV_CONV1D_STEPS", {"8", "4", "2"}, {DType::f32, DType::f16, DType::bf16}, 16, 515, 512,
                        3700);
}

// The pipelined kernel's grid is one resident wave, so at this size (more strips than the wave has
// threads) each thread walks several strips with the next one's copies in flight. Both forms on
// both types (MCV_CONV1D_PIPE=1/0; by default 16-bit I/O is pipelined and f32 is not).
TEST(Conv1dCuda, TokenMajorThreadsWalkSeveralStrips) {
  MCV_REQUIRE_CUDA();
  run_token_major_forms("MCV_CONV1D_PIPE", {"1", "0"}, {DType::f32, DType::bf16}, 96, 509, 256, 3800);
}

TEST(Conv1dCuda, UpdateContinuesTheFullConv) {
  MCV_REQUIRE_CUDA();
  check_update_continues_conv(Device::cuda());
}

// A small run of every conv kernel, for compute-sanitizer (tools/gpu-check runs *Sanitizer*).
TEST(Conv1dCudaSanitizer, EveryKernelSmall) {
  MCV_REQUIRE_CUDA();
  std::uint64_t seed = 4000;
  for (bool token_major : {false, true})
    for (int width = 2; width <= 4; ++width) {
      ConvCase c;
      c.io = width == 3 ? DType::bf16 : DType::f32;
      c.token_major = token_major;
      c.width = width;
      c.strided = true;
      c.silu = true;
      c.mode = width == 4 ? Mode::reverse : Mode::causal;
      c.state_len = c.mode == Mode::causal ? width : 0;
      run_cuda_case(c, seed++);
    }
  check_update_continues_conv(Device::cuda());
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

TEST(Conv1d, RejectsBadArguments) {
  Context ctx;
  ConvCase c;
  const ConvTensors t = make_tensors(c, Device::cpu(), 1);
  auto run = [&](const std::function<void(Conv1dArgs&)>& edit) {
    return [&, edit] {
      Conv1dArgs a = make_args(c, t);
      edit(a);
      conv1d(ctx, a);
    };
  };
  EXPECT_NO_THROW(run([](Conv1dArgs&) {})());  // the base case is valid
  expect_error(run([](Conv1dArgs& a) { a.x = Tensor(); }), "conv1d: x: is required");
  expect_error(run([](Conv1dArgs& a) { a.x = a.x.select(0, 0); }), "x: expected (batch, D, L)");
  expect_error(run([](Conv1dArgs& a) { a.x = Tensor::zeros({2, 7, 13}, DType::i32); }), "x: dtype i32");
  expect_error(run([](Conv1dArgs& a) { a.x = Tensor::zeros({2, 7, 0}, DType::f32); }), "x: is empty");
  expect_error(run([](Conv1dArgs& a) { a.x = Tensor::zeros({2, 13, 7}, DType::f32).transpose(1, 2); }),
               "x: the last dimension must have stride 1");
  expect_error(run([](Conv1dArgs& a) { a.weight = Tensor(); }), "weight: is required");
  expect_error(run([](Conv1dArgs& a) { a.weight = Tensor::zeros({6, 4}, DType::f32); }), "weight: has 6 channels");
  expect_error(run([](Conv1dArgs& a) { a.weight = Tensor::zeros({7, 2, 4}, DType::f32); }), "weight: expected (D, W)");
  expect_error(run([](Conv1dArgs& a) { a.weight = Tensor::zeros({7, 5}, DType::f32); }), "weight: width 5");
  expect_error(run([](Conv1dArgs& a) { a.weight = Tensor::zeros({7, 1}, DType::f32); }), "weight: width 1");
  expect_error(run([](Conv1dArgs& a) { a.weight = Tensor::zeros({7, 4}, DType::bf16); }), "weight: expected dtype f32 but got bf16");
  expect_error(run([](Conv1dArgs& a) { a.bias = Tensor::zeros({8}, DType::f32); }), "bias: expected shape [7]");
  expect_error(run([](Conv1dArgs& a) { a.bias = Tensor::zeros({7}, DType::f16); }), "bias: expected dtype");
  expect_error(run([](Conv1dArgs& a) { a.out = Tensor(); }), "out: is required");
  expect_error(run([](Conv1dArgs& a) { a.out = Tensor::zeros({2, 7, 12}, DType::f32); }), "out: expected shape");
  expect_error(run([](Conv1dArgs& a) { a.out = Tensor::zeros({2, 7, 13}, DType::f16); }), "out: expected dtype f32");
  expect_error(run([](Conv1dArgs& a) { a.out = a.x; }), "out: must not overlap x");
  expect_error(run([](Conv1dArgs& a) { a.layout = Conv1dLayout::token_major; }), "weight: has 7 channels but x has 13");
  expect_error(run([](Conv1dArgs& a) {
                 a.padding = Conv1dPadding::same;
                 a.reverse = true;
               }),
               "reverse: only the causal");
  expect_error(run([](Conv1dArgs& a) {
                 a.reverse = true;
                 a.final_state = Tensor::zeros({2, 7, 3}, DType::f32);
               }),
               "final_state: only the forward causal");
  expect_error(run([](Conv1dArgs& a) { a.final_state = Tensor::zeros({2, 7, 2}, DType::f32); }),
               "final_state: expected (2, 7, S >= 3)");
  expect_error(run([](Conv1dArgs& a) { a.final_state = Tensor::zeros({2, 7, 3}, DType::bf16); }),
               "final_state: expected dtype f32");
  // A tensor that claims to live on a GPU is rejected before anything reads it.
  static float dummy[2 * 7 * 13];
  expect_error(run([](Conv1dArgs& a) {
                 a.x = Tensor::from_blob(dummy, {2, 7, 13}, DType::f32, Device::cuda(0), nullptr);
               }),
               "x: is on cuda:0 but the context runs on cpu");
}

TEST(Conv1dUpdate, RejectsBadArguments) {
  Context ctx;
  const Tensor x = Tensor::zeros({2, 5}, DType::f32), state = Tensor::zeros({2, 5, 3}, DType::f32);
  const Tensor weight = Tensor::zeros({5, 4}, DType::f32);
  auto run = [&](const std::function<void(Conv1dUpdateArgs&)>& edit) {
    return [&, edit] {
      Conv1dUpdateArgs a;
      a.x = x;
      a.conv_state = state.clone();
      a.weight = weight;
      a.out = Tensor::zeros({2, 5}, DType::f32);
      edit(a);
      conv1d_update(ctx, a);
    };
  };
  EXPECT_NO_THROW(run([](Conv1dUpdateArgs&) {})());
  expect_error(run([](Conv1dUpdateArgs& a) { a.x = Tensor::zeros({2, 5, 1}, DType::f32); }), "x: expected (batch, D)");
  expect_error(run([](Conv1dUpdateArgs& a) { a.conv_state = Tensor::zeros({2, 5, 2}, DType::f32); }),
               "conv_state: expected (2, 5, S >= 3)");
  expect_error(run([](Conv1dUpdateArgs& a) { a.conv_state = Tensor::zeros({2, 5, 4}, DType::f16); }),
               "conv_state: expected dtype f32");
  expect_error(run([](Conv1dUpdateArgs& a) { a.conv_state = Tensor(); }), "conv_state: is required");
  expect_error(run([](Conv1dUpdateArgs& a) { a.weight = Tensor::zeros({5, 5}, DType::f32); }), "weight: width 5");
  expect_error(run([](Conv1dUpdateArgs& a) { a.bias = Tensor::zeros({5}, DType::bf16); }), "bias: expected dtype f32");
  expect_error(run([](Conv1dUpdateArgs& a) { a.x = Tensor::zeros({2, 5}, DType::i32); }), "x: dtype i32");
  expect_error(run([](Conv1dUpdateArgs& a) { a.out = Tensor::zeros({2, 4}, DType::f32); }), "out: expected shape");
  expect_error(run([](Conv1dUpdateArgs& a) { a.out = a.conv_state.select(2, 0); }), "out: must not overlap conv_state");
  expect_error(run([](Conv1dUpdateArgs& a) { a.x = a.conv_state.select(2, 2); }), "x: must not overlap conv_state");
}

}  // namespace
}  // namespace mcv::kernels
