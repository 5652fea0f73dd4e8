// embed_tokens and max_tokens: CPU against references written from their definitions (Vim's
// torch.cat of class and patch tokens + pos_embed; torch.max over dim 1), CUDA against CPU, and
// every validation error.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "mcv/context.h"
#include "mcv/error.h"
#include "mcv/kernels/token_ops.h"
#include "test_support.h"

namespace mcv::kernels {
namespace {

using test::poison;
using test::random_tensor;

struct EmbedCase {
  std::int64_t batch = 2, m = 9, ch = 5;
  std::vector<std::int64_t> positions = {4};
  bool pos = true;
  DType io = DType::f32;
  bool params_f32 = true;  // tokens / pos in f32 (else the I/O dtype)
  bool strided = false;    // patches / out as views into wider buffers

  std::string str() const {
    std::string p;
    for (auto v : positions) p += std::to_string(v) + ",";
    return std::string(dtype_name(io)) + " positions {" + p + "}" + (pos ? " pos" : "") +
           (params_f32 ? " params:f32" : " params:io") + (strided ? " strided" : "");
  }
};

struct EmbedTensors {
  Tensor patches, tokens, pos, out;
};

EmbedTensors make(const EmbedCase& c, Device device, std::uint64_t seed) {
  const std::int64_t t = static_cast<std::int64_t>(c.positions.size()), len = c.m + t, pad = c.strided ? 3 : 0;
  const DType pt = c.params_f32 ? DType::f32 : c.io;
  EmbedTensors e;
  e.patches = random_tensor({c.batch, c.m, c.ch + pad}, c.io, seed).to(device).slice(2, 0, c.ch);
  if (t > 0) e.tokens = random_tensor({t, c.ch}, pt, seed + 1).to(device);
  if (c.pos) e.pos = random_tensor({len, c.ch}, pt, seed + 2).to(device);
  e.out = Tensor::empty({c.batch, len, c.ch + pad}, c.io, device).slice(2, 0, c.ch);
  poison(e.out);
  return e;
}

EmbedTokensArgs args_of(const EmbedCase& c, const EmbedTensors& e) {
  EmbedTokensArgs a;
  a.patches = e.patches;
  a.tokens = e.tokens;
  a.positions = c.positions;
  a.pos = e.pos;
  a.out = e.out;
  return a;
}

// torch.cat([x[:, :p], cls, x[:, p:]], 1) (repeated per token), then + pos: built literally.
std::vector<double> embed_reference(const EmbedCase& c, const EmbedTensors& e) {
  const std::vector<float> x = e.patches.to_vector();
  const std::vector<float> tok = e.tokens.defined() ? e.tokens.to_vector() : std::vector<float>();
  const std::vector<float> pos = e.pos.defined() ? e.pos.to_vector() : std::vector<float>();
  const std::int64_t len = c.m + static_cast<std::int64_t>(c.positions.size());
  std::vector<std::vector<std::vector<double>>> seq(c.batch);
  for (std::int64_t b = 0; b < c.batch; ++b)
    for (std::int64_t r = 0; r < c.m; ++r)
      seq[b].emplace_back(x.begin() + (b * c.m + r) * c.ch, x.begin() + (b * c.m + r + 1) * c.ch);
  for (std::size_t j = 0; j < c.positions.size(); ++j)
    for (std::int64_t b = 0; b < c.batch; ++b)
      seq[b].insert(seq[b].begin() + c.positions[j],
                    std::vector<double>(tok.begin() + j * c.ch, tok.begin() + (j + 1) * c.ch));
  std::vector<double> out;
  for (std::int64_t b = 0; b < c.batch; ++b)
    for (std::int64_t r = 0; r < len; ++r)
      for (std::int64_t ch = 0; ch < c.ch; ++ch) out.push_back(seq[b][r][ch] + (pos.empty() ? 0.0 : pos[r * c.ch + ch]));
  return out;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  std::int64_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    bad += !(std::isfinite(got[i]) && std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])));
  EXPECT_EQ(bad, 0) << what;
}

std::vector<EmbedCase> embed_cases() {
  std::vector<EmbedCase> cases;
  for (DType io : {DType::f32, DType::bf16, DType::f16})
    for (const auto& positions : std::vector<std::vector<std::int64_t>>{{}, {0}, {4}, {9}, {0, 10}, {1, 3, 7}})
      for (bool pos : {true, false}) {
        EmbedCase c;
        c.io = io;
        c.positions = positions;
        c.pos = pos;
        c.params_f32 = positions.size() != 1;
        c.strided = positions.size() == 2;
        cases.push_back(c);
      }
  return cases;
}

TEST(EmbedTokens, CpuMatchesConcatenationReference) {
  Context ctx;
  std::uint64_t seed = 10;
  for (const EmbedCase& c : embed_cases()) {
    SCOPED_TRACE(c.str());
    const EmbedTensors e = make(c, Device::cpu(), seed += 3);
    embed_tokens(ctx, args_of(c, e));
    // The add is done in f32 and rounded once: f32 exact up to one rounding.
    expect_close(e.out.to_vector(), embed_reference(c, e), c.io == DType::f32 ? 1e-6 : 1e-2, c.str());
  }
}

TEST(EmbedTokens, CudaMatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  std::uint64_t seed = 100;
  for (const EmbedCase& c : embed_cases()) {
    SCOPED_TRACE(c.str());
    const EmbedTensors h = make(c, Device::cpu(), seed += 3);
    const EmbedTensors d = make(c, Device::cuda(), seed);
    embed_tokens(cpu, args_of(c, h));
    embed_tokens(gpu, args_of(c, d));
    gpu.synchronize();
    const std::vector<float> a = h.out.to_vector(), b = d.out.to_vector();
    ASSERT_EQ(a.size(), b.size());
    std::int64_t diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff += a[i] != b[i];  // one f32 add, one rounding: exact
    EXPECT_EQ(diff, 0);
  }
}

TEST(EmbedTokens, RejectsBadArguments) {
  Context ctx;
  EmbedCase c;
  auto expect_error = [&](auto mutate, const std::string& needle) {
    EmbedTensors e = make(c, Device::cpu(), 7);
    EmbedTokensArgs a = args_of(c, e);
    mutate(a);
    try {
      embed_tokens(ctx, a);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find(needle), std::string::npos) << err.what();
    }
  };
  expect_error([](EmbedTokensArgs& a) { a.positions = {3, 3}; }, "positions");
  expect_error([](EmbedTokensArgs& a) { a.positions = {10}; }, "positions");
  expect_error([](EmbedTokensArgs& a) { a.positions = {-1}; }, "positions");
  expect_error([](EmbedTokensArgs& a) { a.positions = {0, 1, 2, 3, 4}; }, "positions");
  expect_error([](EmbedTokensArgs& a) { a.tokens = Tensor(); }, "tokens");
  expect_error([](EmbedTokensArgs& a) { a.positions = {}; }, "tokens");
  expect_error([](EmbedTokensArgs& a) { a.pos = a.pos.slice(0, 0, 5); }, "pos");
  expect_error([](EmbedTokensArgs& a) { a.out = Tensor::empty({2, 10, 5}, DType::bf16); }, "out");
  expect_error([](EmbedTokensArgs& a) { a.out = Tensor::empty({2, 9, 5}, DType::f32); }, "out");
  expect_error([](EmbedTokensArgs& a) { a.patches = a.patches.transpose(1, 2); }, "patches");
  expect_error([](EmbedTokensArgs& a) { a.out = a.patches; }, "out");
  expect_error([](EmbedTokensArgs& a) { a.patches = Tensor::empty({2, 9, 5}, DType::i32); }, "patches");
}

std::vector<double> max_reference(const Tensor& x) {
  const std::vector<float> v = x.to_vector();
  const std::int64_t b = x.size(0), l = x.size(1), c = x.size(2);
  std::vector<double> out(b * c);
  for (std::int64_t i = 0; i < b; ++i)
    for (std::int64_t k = 0; k < c; ++k) {
      double m = -INFINITY;
      bool nan = false;
      for (std::int64_t t = 0; t < l; ++t) {
        const double e = v[(i * l + t) * c + k];
        nan = nan || std::isnan(e);
        m = std::max(m, e);
      }
      out[i * c + k] = nan ? NAN : m;
    }
  return out;
}

TEST(MaxTokens, CpuMatchesReferenceAndPropagatesNaN) {
  Context ctx;
  for (DType io : {DType::f32, DType::bf16}) {
    Tensor x = random_tensor({3, 7, 6}, io, 5);
    if (io == DType::f32) {
      x.data<float>()[(1 * 7 + 4) * 6 + 2] = std::numeric_limits<float>::quiet_NaN();
      x.data<float>()[(2 * 7 + 0) * 6 + 5] = std::numeric_limits<float>::quiet_NaN();
    }
    Tensor out = Tensor::empty({3, 6}, io);
    poison(out);
    max_tokens(ctx, x, out);
    const std::vector<float> got = out.to_vector();
    const std::vector<double> want = max_reference(x);
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (std::isnan(want[i]))
        EXPECT_TRUE(std::isnan(got[i])) << i;
      else
        EXPECT_EQ(got[i], want[i]) << i;  // a selection: exact
    }
  }
}

TEST(MaxTokens, CudaMatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  const Tensor x = random_tensor({4, 9, 33}, DType::f32, 9);
  Tensor a = Tensor::empty({4, 33}, DType::f32), b = Tensor::empty({4, 33}, DType::f32, Device::cuda());
  max_tokens(cpu, x, a);
  max_tokens(gpu, x.to(Device::cuda()), b);
  gpu.synchronize();
  EXPECT_EQ(a.to_vector(), b.to_vector());
}

TEST(MaxTokens, RejectsBadArguments) {
  Context ctx;
  const Tensor x = random_tensor({2, 3, 4}, DType::f32, 1);
  EXPECT_THROW(max_tokens(ctx, x, Tensor::empty({2, 3}, DType::f32)), Error);
  EXPECT_THROW(max_tokens(ctx, x, Tensor::empty({2, 4}, DType::bf16)), Error);
  EXPECT_THROW(max_tokens(ctx, x.view({6, 4}), Tensor::empty({6}, DType::f32)), Error);
  EXPECT_THROW(max_tokens(ctx, x, x.select(1, 0)), Error);
}

}  // namespace
}  // namespace mcv::kernels
