// Activations, elementwise ops, softmax, attention and the layout helpers (window partition /
// reverse, token mean, bicubic resize): CPU against double references, CUDA against the CPU.

#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>
#include <vector>

#include "test_nn_common.h"

namespace mcv::nn_test {
namespace {

// ---- elementwise ----

enum class Ew { act, add, add_vec, add_gamma, mul, mul_vec, scale, mul_silu };
const Ew kEwOps[] = {Ew::act, Ew::add, Ew::add_vec, Ew::add_gamma, Ew::mul, Ew::mul_vec, Ew::scale, Ew::mul_silu};

struct EwCase {
  Tensor a, b, gamma;
  float s = 1.0f;
  Activation act = Activation::none;
};

EwCase ew_case(Ew op, DType dt, const Shape& shape, std::uint64_t seed) {
  EwCase c;
  const std::int64_t C = shape.back();
  c.a = rnd(shape, dt, seed, 2.0f);
  switch (op) {
    case Ew::act: c.act = Activation::gelu; break;
    case Ew::add:
    case Ew::mul:
    case Ew::mul_silu: c.b = rnd(shape, dt, seed + 1, 2.0f); break;
    case Ew::add_vec: {  // a position-embedding-like broadcast over the leading dimension
      Shape bs = shape;
      bs[0] = 1;
      c.b = rnd(bs, DType::f32, seed + 1);
      break;
    }
    case Ew::mul_vec: c.b = rnd({C}, DType::f32, seed + 1); break;
    case Ew::add_gamma:
      c.b = rnd(shape, dt, seed + 1);
      c.gamma = rnd({C}, DType::f32, seed + 2, 0.1f);
      break;
    case Ew::scale: c.s = 0.37f; break;
  }
  return c;
}

std::vector<double> ew_ref(Ew op, const EwCase& c) {
  const std::int64_t C = c.a.size(-1);
  std::vector<double> a = values(c.a);
  const std::vector<double> b = c.b.defined() ? values(c.b) : std::vector<double>();
  const std::vector<double> g = c.gamma.defined() ? values(c.gamma) : std::vector<double>();
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::size_t ch = i % static_cast<std::size_t>(C);
    switch (op) {
      case Ew::act: a[i] = act_ref(c.act, a[i]); break;
      case Ew::add: a[i] += b[i]; break;
      case Ew::add_vec: a[i] += b[i % b.size()]; break;
      case Ew::add_gamma: a[i] += b[i] * g[ch]; break;
      case Ew::mul: a[i] *= b[i]; break;
      case Ew::mul_vec: a[i] *= b[ch]; break;
      case Ew::scale: a[i] *= c.s; break;
      case Ew::mul_silu: a[i] *= b[i] / (1 + std::exp(-b[i])); break;
    }
  }
  return a;
}

void ew_run(Context& ctx, Ew op, const EwCase& c, const Tensor& out) {
  switch (op) {
    case Ew::act: kernels::activation(ctx, c.act, c.a, out); break;
    case Ew::add:
    case Ew::add_vec: kernels::add(ctx, c.a, c.b, out); break;
    case Ew::add_gamma: kernels::add(ctx, c.a, c.b, out, c.gamma); break;
    case Ew::mul:
    case Ew::mul_vec: kernels::mul(ctx, c.a, c.b, out); break;
    case Ew::scale: kernels::scale(ctx, c.a, c.s, out); break;
    case Ew::mul_silu: kernels::mul_silu(ctx, c.a, c.b, out); break;
  }
}

Tensor run_ew(Context& ctx, Ew op, EwCase c) {
  if (ctx.is_cuda()) {
    c.a = to_cuda(c.a);
    c.b = to_cuda(c.b);
    c.gamma = to_cuda(c.gamma);
  }
  Tensor out = poisoned(c.a.shape(), c.a.dtype(), ctx.device());
  ew_run(ctx, op, c, out);
  ctx.synchronize();
  return out.to(Device::cpu());
}

TEST(NnElementwise, CpuMatchesReference) {
  Context ctx;
  std::uint64_t seed = 1;
  for (DType dt : kFloatTypes)
    for (Ew op : kEwOps) {
      const EwCase c = ew_case(op, dt, {3, 11, 37}, seed += 3);
      expect_close(run_ew(ctx, op, c), from_doubles(ew_ref(op, c), c.a.shape()), tolerance(dt),
                   std::string(dtype_name(dt)) + " op " + std::to_string(static_cast<int>(op)));
    }
  for (DType dt : kFloatTypes)
    for (Activation act : {Activation::relu, Activation::gelu, Activation::gelu_tanh, Activation::silu}) {
      EwCase c = ew_case(Ew::act, dt, {5, 40}, 7);
      c.act = act;
      expect_close(run_ew(ctx, Ew::act, c), from_doubles(ew_ref(Ew::act, c), c.a.shape()), tolerance(dt),
                   std::string(dtype_name(dt)) + " " + kernels::activation_name(act));
    }
}

TEST(NnElementwise, CpuGateOnProjectionHalvesAndInPlace) {
  Context ctx;
  // out = x * silu(z) with x, z the two halves of one (B, L, 2D) projection output.
  const Tensor xz = rnd({2, 9, 2 * 24}, DType::f32, 11);
  const Tensor x = xz.slice(-1, 0, 24), z = xz.slice(-1, 24, 48);
  EwCase c;
  c.a = x.contiguous();
  c.b = z.contiguous();
  const std::vector<double> want = ew_ref(Ew::mul_silu, c);
  Tensor out = poisoned({2, 9, 24}, DType::f32);
  kernels::mul_silu(ctx, x, z, out);
  expect_close(out, from_doubles(want, out.shape()), tolerance(DType::f32), "halves");
  // In place: x += gamma * y.
  EwCase g = ew_case(Ew::add_gamma, DType::f32, {4, 16}, 12);
  const std::vector<double> want_g = ew_ref(Ew::add_gamma, g);
  Tensor stream = g.a.clone();
  kernels::add(ctx, stream, g.b, stream, g.gamma);
  expect_close(stream, from_doubles(want_g, stream.shape()), tolerance(DType::f32), "in place");
  // Partial overlap and bad broadcast shapes are errors.
  Tensor buf = Tensor::empty({4, 20}, DType::f32);
  expect_error([&] { kernels::scale(ctx, buf.slice(1, 0, 16), 2.0f, buf.slice(1, 2, 18)); }, "scale: out: overlaps x");
  expect_error([&] { kernels::add(ctx, g.a, rnd({15}, DType::f32, 1), Tensor::empty({4, 16}, DType::f32)); },
               "add: b: expected shape [4, 16] or trailing dimensions of it such as (16)");
  expect_error([&] { kernels::mul_silu(ctx, g.a, rnd({16}, DType::f32, 1), Tensor::empty({4, 16}, DType::f32)); },
               "mul_silu: z: expected shape [4, 16] but got [16]");
  // Absolute position embedding (1, L, C) added to (B, L, C) tokens, bf16 tokens + f32 table.
  const Tensor tokens = rnd({3, 10, 16}, DType::bf16, 13), pos = rnd({1, 10, 16}, DType::f32, 14);
  std::vector<double> want_pos = values(tokens);
  const std::vector<double> pv = values(pos);
  for (std::size_t i = 0; i < want_pos.size(); ++i) want_pos[i] += pv[i % pv.size()];
  Tensor with_pos = poisoned(tokens.shape(), DType::bf16);
  kernels::add(ctx, tokens, pos, with_pos);
  expect_close(with_pos, from_doubles(want_pos, tokens.shape()), tolerance(DType::bf16), "pos embed");
  expect_error([&] { kernels::add(ctx, tokens, rnd({2, 10, 16}, DType::f32, 1), with_pos); }, "add: b: expected shape");
  EXPECT_EQ(kernels::parse_activation("swish"), Activation::silu);
  expect_error([&] { kernels::parse_activation("tanh"); }, "activation 'tanh'");
}

// ---- softmax ----

std::vector<double> softmax_ref(const Tensor& x) {
  const std::int64_t C = x.size(-1);
  std::vector<double> v = values(x);
  for (std::size_t r = 0; r < v.size() / C; ++r) {
    double* row = v.data() + r * C;
    double mx = -INFINITY, sum = 0;
    for (std::int64_t i = 0; i < C; ++i) mx = std::max(mx, row[i]);
    for (std::int64_t i = 0; i < C; ++i) sum += std::exp(row[i] - mx);
    for (std::int64_t i = 0; i < C; ++i) row[i] = std::exp(row[i] - mx) / sum;
  }
  return v;
}

Tensor run_softmax(Context& ctx, const Tensor& x_cpu) {
  const Tensor x = ctx.is_cuda() ? to_cuda(x_cpu) : x_cpu;
  Tensor out = poisoned(x.shape(), x.dtype(), ctx.device());
  kernels::softmax(ctx, x, out);
  ctx.synchronize();
  return out.to(Device::cpu());
}

TEST(NnSoftmax, CpuMatchesReference) {
  Context ctx;
  for (DType dt : kFloatTypes)
    for (const Shape& s : {Shape{7, 49}, Shape{3, 1}, Shape{2, 3, 300}}) {
      const Tensor x = rnd(s, dt, 5, 4.0f);
      expect_close(run_softmax(ctx, x), from_doubles(softmax_ref(x), s), tolerance(dt),
                   std::string(dtype_name(dt)) + " " + shape_str(s));
    }
}

// ---- attention ----

std::vector<double> attention_ref(const kernels::AttentionArgs& a) {
  const std::int64_t B = a.q.size(0), H = a.q.size(1), Tq = a.q.size(2), D = a.q.size(3), Tk = a.k.size(2),
                     Dv = a.v.size(3);
  const std::vector<double> q = values(a.q), k = values(a.k), v = values(a.v);
  std::vector<double> out(static_cast<std::size_t>(B * H * Tq * Dv)), s(static_cast<std::size_t>(Tk));
  for (std::int64_t bh = 0; bh < B * H; ++bh)
    for (std::int64_t i = 0; i < Tq; ++i) {
      double mx = -INFINITY, sum = 0;
      for (std::int64_t j = 0; j < Tk; ++j) {
        double dot = 0;
        for (std::int64_t d = 0; d < D; ++d) dot += q[(bh * Tq + i) * D + d] * k[(bh * Tk + j) * D + d];
        s[j] = dot * a.scale;
        mx = std::max(mx, s[j]);
      }
      for (std::int64_t j = 0; j < Tk; ++j) sum += (s[j] = std::exp(s[j] - mx));
      for (std::int64_t d = 0; d < Dv; ++d) {
        double acc = 0;
        for (std::int64_t j = 0; j < Tk; ++j) acc += s[j] / sum * v[(bh * Tk + j) * Dv + d];
        out[(bh * Tq + i) * Dv + d] = acc;
      }
    }
  return out;
}

// q, k, v as views into one (B, T, 3, heads, D) qkv output, out as a view of (B, T, heads, D):
// the layout MambaVision's window attention has. Returns out in (B, heads, T, D) order.
struct QkvCase {
  Tensor qkv;  // (B, T, 3, heads, D)
  float scale;
};

kernels::AttentionArgs views(const Tensor& qkv, float scale, const Tensor& out_bthd) {
  kernels::AttentionArgs a;
  const Tensor p = qkv.permute({2, 0, 3, 1, 4});  // (3, B, heads, T, D)
  a.q = p.select(0, 0);
  a.k = p.select(0, 1);
  a.v = p.select(0, 2);
  a.scale = scale;
  a.out = out_bthd.permute({0, 2, 1, 3});
  return a;
}

Tensor run_attention(Context& ctx, const Tensor& qkv_cpu, float scale) {
  const Tensor qkv = ctx.is_cuda() ? to_cuda(qkv_cpu) : qkv_cpu;
  const std::int64_t B = qkv.size(0), T = qkv.size(1), H = qkv.size(3), D = qkv.size(4);
  Tensor out = poisoned({B, T, H, D}, qkv.dtype(), ctx.device());
  kernels::attention(ctx, views(qkv, scale, out));
  ctx.synchronize();
  return out.to(Device::cpu()).permute({0, 2, 1, 3}).contiguous();
}

TEST(NnAttention, CpuMatchesReference) {
  Context ctx;
  for (DType dt : kFloatTypes)
    for (const auto& [b, t, h, d] : {std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>{3, 49, 4, 32},
                                     {2, 13, 3, 7}, {1, 1, 1, 5}}) {
      const Tensor qkv = rnd({b, t, 3, h, d}, dt, 9);
      const float scale = 1.0f / std::sqrt(static_cast<float>(d));
      Tensor dummy = Tensor::empty({b, t, h, d}, dt);
      const std::vector<double> want = attention_ref(views(qkv, scale, dummy));
      expect_close(run_attention(ctx, qkv, scale), from_doubles(want, {b, h, t, d}), tolerance(dt),
                   std::string(dtype_name(dt)) + " T=" + std::to_string(t));
    }
  // Contiguous tensors with Tq != Tk and Dv != D.
  kernels::AttentionArgs a;
  a.q = rnd({2, 2, 5, 8}, DType::f32, 1);
  a.k = rnd({2, 2, 9, 8}, DType::f32, 2);
  a.v = rnd({2, 2, 9, 3}, DType::f32, 3);
  a.scale = 0.4f;
  a.out = poisoned({2, 2, 5, 3}, DType::f32);
  kernels::attention(ctx, a);
  expect_close(a.out, from_doubles(attention_ref(a), {2, 2, 5, 3}), tolerance(DType::f32), "cross shapes");
  a.v = rnd({2, 2, 8, 3}, DType::f32, 3);
  expect_error([&] { kernels::attention(ctx, a); }, "attention: v: expected shape [2, 2, 9, 3]");
  Tensor qo = rnd({2, 2, 5, 8}, DType::f32, 4);
  a.v = rnd({2, 2, 9, 3}, DType::f32, 3);
  a.q = qo;
  a.out = qo.slice(3, 0, 3);
  expect_error([&] { kernels::attention(ctx, a); }, "attention: out: must not overlap q");
}

// ---- windows ----

// out[(b*nh + i)*nw + j, r*ws + s, c] = x[b, i*ws + r, j*ws + s, c] (zero outside).
std::vector<double> partition_ref(const Tensor& x, std::int64_t ws) {
  const std::int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const std::int64_t nh = (H + ws - 1) / ws, nw = (W + ws - 1) / ws;
  const std::vector<double> v = values(x);
  std::vector<double> out(static_cast<std::size_t>(B * nh * nw * ws * ws * C), 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t y = 0; y < H; ++y)
      for (std::int64_t xx = 0; xx < W; ++xx)
        for (std::int64_t c = 0; c < C; ++c) {
          const std::int64_t win = (b * nh + y / ws) * nw + xx / ws, tok = (y % ws) * ws + xx % ws;
          out[(win * ws * ws + tok) * C + c] = v[((b * H + y) * W + xx) * C + c];
        }
  return out;
}

TEST(NnWindow, PartitionAndReverseRoundTrip) {
  Context ctx;
  for (DType dt : kFloatTypes)
    for (const auto& [h, w, ws] : {std::tuple<std::int64_t, std::int64_t, int>{14, 14, 7}, {9, 11, 4}, {5, 3, 8}}) {
      const Tensor x = rnd({2, h, w, 6}, dt, 4);
      const std::int64_t nh = (h + ws - 1) / ws, nw = (w + ws - 1) / ws;
      Tensor win = poisoned({2 * nh * nw, ws * ws, 6}, dt);
      kernels::window_partition(ctx, x, ws, win);
      expect_close(win, from_doubles(partition_ref(x, ws), win.shape()), 0.0, "partition");
      Tensor back = poisoned(x.shape(), dt);
      kernels::window_reverse(ctx, win, ws, back);
      expect_close(back, x, 0.0, "reverse");
    }
  Tensor x = rnd({1, 4, 4, 2}, DType::f32, 1);
  expect_error([&] { kernels::window_partition(ctx, x, 0, Tensor::empty({1, 1, 2}, DType::f32)); }, "window");
  expect_error([&] { kernels::window_partition(ctx, x, 3, Tensor::empty({1, 9, 2}, DType::f32)); },
               "window_partition: out: expected shape [4, 9, 2]");
}

// ---- token mean ----

TEST(NnMeanTokens, CpuMatchesReference) {
  Context ctx;
  for (DType dt : kFloatTypes) {
    // x is a token slice of a longer sequence (a class token skipped): strided batch dimension.
    const Tensor full = rnd({3, 50, 17}, dt, 6);
    const Tensor x = full.slice(1, 1, 50);
    const std::vector<double> v = values(x);
    std::vector<double> want(3 * 17, 0.0);
    for (std::int64_t b = 0; b < 3; ++b)
      for (std::int64_t l = 0; l < 49; ++l)
        for (std::int64_t c = 0; c < 17; ++c) want[b * 17 + c] += v[(b * 49 + l) * 17 + c] / 49.0;
    Tensor out = poisoned({3, 17}, dt);
    kernels::mean_tokens(ctx, x, out);
    expect_close(out, from_doubles(want, {3, 17}), tolerance(dt), dtype_name(dt));
  }
}

// ---- bicubic ----

// Independent double implementation of PyTorch's bicubic (A = -0.75, clamped taps).
std::vector<double> bicubic_ref(const Tensor& x, std::int64_t oh, std::int64_t ow, bool align) {
  const std::int64_t ih = x.size(-2), iw = x.size(-1), planes = x.numel() / (ih * iw);
  const std::vector<double> v = values(x);
  auto kernel = [](double t) {
    const double A = -0.75;
    t = std::abs(t);
    if (t <= 1) return ((A + 2) * t - (A + 3)) * t * t + 1;
    if (t < 2) return A * t * t * t - 5 * A * t * t + 8 * A * t - 4 * A;
    return 0.0;
  };
  auto src = [&](std::int64_t o, std::int64_t in, std::int64_t out) {
    if (align) return out > 1 ? static_cast<double>(o) * (in - 1) / (out - 1) : 0.0;
    return (o + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5;
  };
  std::vector<double> y(static_cast<std::size_t>(planes * oh * ow));
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ++ox) {
        const double sy = src(oy, ih, oh), sx = src(ox, iw, ow);
        const double fy = std::floor(sy), fx = std::floor(sx);
        double acc = 0;
        for (int a = -1; a <= 2; ++a)
          for (int b = -1; b <= 2; ++b) {
            const std::int64_t yy = std::clamp<std::int64_t>(static_cast<std::int64_t>(fy) + a, 0, ih - 1);
            const std::int64_t xx = std::clamp<std::int64_t>(static_cast<std::int64_t>(fx) + b, 0, iw - 1);
            acc += kernel(sy - (fy + a)) * kernel(sx - (fx + b)) * v[(p * ih + yy) * iw + xx];
          }
        y[(p * oh + oy) * ow + ox] = acc;
      }
  return y;
}

TEST(NnBicubic, CpuMatchesReference) {
  Context ctx;
  const Tensor x = rnd({2, 3, 14, 14}, DType::f32, 3);
  for (bool align : {false, true})
    for (const auto& [oh, ow] : {std::pair<std::int64_t, std::int64_t>{24, 24}, {7, 9}, {14, 14}, {1, 30}}) {
      kernels::BicubicArgs a;
      a.x = x;
      a.align_corners = align;
      a.out = poisoned({2, 3, oh, ow}, DType::f32);
      kernels::interpolate_bicubic(ctx, a);
      expect_close(a.out, from_doubles(bicubic_ref(x, oh, ow, align), a.out.shape()), 2e-6,
                   std::to_string(oh) + "x" + std::to_string(ow) + (align ? " align" : ""));
    }
  kernels::BicubicArgs a;
  a.x = x.to(DType::bf16);
  a.out = poisoned({2, 3, 20, 10}, DType::bf16);
  kernels::interpolate_bicubic(ctx, a);
  expect_close(a.out, from_doubles(bicubic_ref(a.x, 20, 10, false), a.out.shape()), tolerance(DType::bf16), "bf16");
  a.out = Tensor::empty({2, 4, 20, 10}, DType::bf16);
  expect_error([&] { kernels::interpolate_bicubic(ctx, a); }, "interpolate_bicubic: out: expected shape");
}

// ---- CUDA ----

TEST(NnElementwiseCuda, MatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  for (DType dt : kFloatTypes) {
    for (Ew op : kEwOps) {
      const EwCase c = ew_case(op, dt, {3, 11, 37}, 50 + static_cast<int>(op));
      expect_close(run_ew(gpu, op, c), run_ew(cpu, op, c), cuda_tolerance(dt),
                   std::string(dtype_name(dt)) + " op " + std::to_string(static_cast<int>(op)));
    }
    for (Activation act : {Activation::relu, Activation::gelu_tanh, Activation::silu}) {
      EwCase c = ew_case(Ew::act, dt, {5, 40}, 7);
      c.act = act;
      expect_close(run_ew(gpu, Ew::act, c), run_ew(cpu, Ew::act, c), cuda_tolerance(dt), kernels::activation_name(act));
    }
    for (const Shape& s : {Shape{7, 49}, Shape{3, 1}, Shape{2, 3, 300}, Shape{5, 2000}}) {
      const Tensor x = rnd(s, dt, 5, 4.0f);
      expect_close(run_softmax(gpu, x), run_softmax(cpu, x), cuda_tolerance(dt), "softmax " + shape_str(s));
    }
  }
  // Gate on strided halves, on the GPU.
  const Tensor xz = rnd({2, 9, 48}, DType::bf16, 11);
  Tensor want = poisoned({2, 9, 24}, DType::bf16), got = poisoned({2, 9, 24}, DType::bf16, Device::cuda());
  kernels::mul_silu(cpu, xz.slice(-1, 0, 24), xz.slice(-1, 24, 48), want);
  const Tensor xz_gpu = xz.to(Device::cuda());
  kernels::mul_silu(gpu, xz_gpu.slice(-1, 0, 24), xz_gpu.slice(-1, 24, 48), got);
  gpu.synchronize();
  expect_close(got, want, cuda_tolerance(DType::bf16), "gate halves");
}

// ---- CUDA: vector and scalar paths of the elementwise ops and the linear epilogue ----



Operand operand(const Shape& lead, std::int64_t C, DType dt, std::uint64_t seed, bool misaligned,
                float scale = 1.0f) {
  return {rnd(with_last(lead, C + (misaligned ? 3 : 0)), dt, seed, scale), misaligned ? 1 : 0, C};
}


// One elementwise op on (B, L, C) = lead + C, CPU against GPU. b_mode: 0 b of a's shape, 1 a
// (C) vector, 2 a (1, L, C) broadcast. b (and gamma) f32 with b_f32.
void check_ew_case(Context& cpu, Context& gpu, Ew op, DType dt, const Shape& lead, std::int64_t C, int b_mode,
                   bool b_f32, bool misaligned, std::uint64_t seed) {
  const DType bt = b_f32 ? DType::f32 : dt;
  const Operand a = operand(lead, C, dt, seed, misaligned, 2.0f);
  Operand b, gamma;
  const bool has_b = op != Ew::act && op != Ew::scale;
  if (has_b) {
    Shape bl = lead;
    if (op == Ew::mul_silu || b_mode == 0) {
    } else if (b_mode == 1) {
      bl = {};
    } else {
      bl[0] = 1;
    }
    b = operand(bl, C, bt, seed + 1, misaligned, 2.0f);
  }
  if (op == Ew::add_gamma) gamma = operand({}, C, bt, seed + 2, misaligned, 0.1f);
  const Activation acts[] = {Activation::gelu, Activation::gelu_tanh, Activation::silu, Activation::relu};
  const std::string what = std::string(dtype_name(dt)) + " op " + std::to_string(static_cast<int>(op)) + " " +
                           shape_str(with_last(lead, C)) + " b_mode " + std::to_string(b_mode) +
                           (b_f32 ? " b f32" : "") + (misaligned ? " misaligned" : "");
  Tensor got, want;
  for (Context* ctx : {&cpu, &gpu}) {
    const Device d = ctx->device();
    EwCase c;
    c.a = a.on(d);
    c.b = b.on(d);
    c.gamma = gamma.on(d);
    c.s = 0.37f;
    c.act = acts[seed % 4];
    Output out(lead, C, dt, d, misaligned);
    ew_run(*ctx, op, c, out.view);
    ctx->synchronize();
    out.expect_pads_untouched(what);
    (ctx == &cpu ? want : got) = out.view.to(Device::cpu());
  }
  expect_close_max(got, want, dt, what);
}

TEST(NnElementwiseCuda, VectorAndScalarPaths) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  std::uint64_t seed = 300;
  for (std::int64_t C : {1, 7, 80, 96, 192, 768, 3000, 5000})
    for (DType dt : kFloatTypes)
      for (bool misaligned : {false, true})
        for (Ew op : kEwOps) {
          seed += 3;
          const Shape lead = C >= 3000 ? Shape{2, 3} : Shape{3, 11};
          const int b_mode = op == Ew::add_vec || op == Ew::mul_vec ? 1 + static_cast<int>(seed % 2) : 0;
          const bool b_f32 = dt != DType::f32 && seed % 3 != 0;
          check_ew_case(cpu, gpu, op, dt, lead, C, b_mode, b_f32, misaligned, seed);
        }
}

// Vim's add of the two scan outputs, (128, 197, 384) f16: more vectors than one grid covers; the
// (1, L, C) position-embedding broadcast over the grid-stride loop; in place on both paths.
TEST(NnElementwiseCuda, LargeBroadcastAndInPlace) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  check_ew_case(cpu, gpu, Ew::add, DType::f16, {128, 197}, 384, 0, false, false, 1);
  check_ew_case(cpu, gpu, Ew::add_vec, DType::bf16, {64, 197}, 192, 2, true, false, 2);
  check_ew_case(cpu, gpu, Ew::mul_silu, DType::f32, {7, 300}, 96, 0, false, true, 3);
  for (DType dt : kFloatTypes)
    for (bool misaligned : {false, true}) {
      const Operand a = operand({5, 13}, 96, dt, 40, misaligned), b = operand({5, 13}, 96, dt, 41, misaligned);
      const Operand g = operand({}, 96, DType::f32, 42, misaligned, 0.1f);
      Tensor want = poisoned({5, 13, 96}, dt);
      kernels::add(cpu, a.on(Device::cpu()), b.on(Device::cpu()), want, g.on(Device::cpu()));
      const Tensor wide = a.wide.to(Device::cuda());
      const Tensor x = wide.slice(-1, a.c0, a.c0 + 96);
      kernels::add(gpu, x, b.on(Device::cuda()), x, g.on(Device::cuda()));
      gpu.synchronize();
      expect_close_max(x.to(Device::cpu()), want, dt,
                       std::string("in-place add ") + dtype_name(dt) + (misaligned ? " misaligned" : ""));
    }
}

// The linear epilogue (bias + activation + residual after the GEMM): N across the row shapes,
// bias and residual f32 or the I/O dtype, strided / offset out and residual, residual = out.
TEST(NnLinearEpilogueCuda, VectorAndScalarPaths) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  std::uint64_t seed = 700;
  int i = 0;
  for (std::int64_t N : {1, 7, 80, 96, 192, 768, 3000})
    for (DType dt : kFloatTypes)
      for (bool misaligned : {false, true}) {
        ++i;
        const std::int64_t M = N >= 3000 ? 9 : 67, K = 16;
        const bool params_f32 = dt != DType::f32 && i % 2 == 0;
        const int residual = i % 3;  // 0 none, 1 a separate tensor, 2 residual = out
        const Activation act = i % 4 == 3 ? Activation::none : Activation::gelu;
        const Tensor x = rnd({M, K}, dt, seed += 5), w = rnd({N, K}, dt, seed + 1, 0.25f);
        const Operand bias = operand({}, N, params_f32 ? DType::f32 : dt, seed + 2, misaligned);
        const Operand res = operand({M}, N, residual == 1 && params_f32 ? DType::f32 : dt, seed + 3, misaligned);
        const std::string what = std::string("linear epilogue ") + dtype_name(dt) + " N " + std::to_string(N) +
                                 " residual " + std::to_string(residual) + (params_f32 ? " f32 params" : "") +
                                 (misaligned ? " misaligned" : "") + " " + kernels::activation_name(act);
        Tensor got, want;
        for (Context* ctx : {&cpu, &gpu}) {
          const Device d = ctx->device();
          kernels::LinearArgs a;
          a.x = d.is_cpu() ? x : x.to(d);
          a.weight = d.is_cpu() ? w : w.to(d);
          a.bias = bias.on(d);
          a.activation = act;
          Output out({M}, N, dt, d, misaligned);
          if (residual == 1) a.residual = res.on(d);
          if (residual == 2) {
            // residual = out: the op accumulates into out, which starts as the residual.
            const Tensor r = res.on(d);
            out.view.copy_from(r);
            a.residual = out.view;
          }
          a.out = out.view;
          kernels::linear(*ctx, a);
          ctx->synchronize();
          out.expect_pads_untouched(what);
          (ctx == &cpu ? want : got) = out.view.to(Device::cpu());
        }
        expect_close_max(got, want, dt, what);
      }
}

TEST(NnAttentionCuda, MatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  for (DType dt : kFloatTypes)
    for (const auto& [b, t, h, d] : {std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>{3, 49, 4, 32},
                                     {2, 196, 8, 32}, {2, 13, 3, 7}, {1, 64, 2, 64}, {1, 1, 1, 5}}) {
      const Tensor qkv = rnd({b, t, 3, h, d}, dt, 9);
      const float scale = 1.0f / std::sqrt(static_cast<float>(d));
      expect_close(run_attention(gpu, qkv, scale), run_attention(cpu, qkv, scale), cuda_tolerance(dt),
                   std::string(dtype_name(dt)) + " T=" + std::to_string(t) + " D=" + std::to_string(d));
    }
}

TEST(NnLayoutCuda, MatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  for (DType dt : kFloatTypes) {
    const Tensor x = rnd({2, 9, 11, 6}, dt, 4);
    Tensor win_c = poisoned({2 * 3 * 3, 16, 6}, dt), win_g = poisoned({2 * 3 * 3, 16, 6}, dt, Device::cuda());
    kernels::window_partition(cpu, x, 4, win_c);
    const Tensor x_gpu = x.to(Device::cuda());
    kernels::window_partition(gpu, x_gpu, 4, win_g);
    Tensor back = poisoned(x.shape(), dt, Device::cuda());
    kernels::window_reverse(gpu, win_g, 4, back);
    gpu.synchronize();
    expect_close(win_g, win_c, 0.0, "partition");
    expect_close(back, x, 0.0, "reverse");

    const Tensor full = rnd({3, 50, 300}, dt, 6);
    Tensor m_c = poisoned({3, 300}, dt), m_g = poisoned({3, 300}, dt, Device::cuda());
    kernels::mean_tokens(cpu, full.slice(1, 1, 50), m_c);
    const Tensor full_gpu = full.to(Device::cuda());
    kernels::mean_tokens(gpu, full_gpu.slice(1, 1, 50), m_g);
    gpu.synchronize();
    expect_close(m_g, m_c, cuda_tolerance(dt), "mean_tokens");

    kernels::BicubicArgs a;
    a.x = rnd({1, 5, 14, 14}, dt, 8);
    a.out = poisoned({1, 5, 24, 20}, dt);
    kernels::interpolate_bicubic(cpu, a);
    kernels::BicubicArgs g = a;
    g.x = to_cuda(a.x);
    g.out = poisoned({1, 5, 24, 20}, dt, Device::cuda());
    kernels::interpolate_bicubic(gpu, g);
    gpu.synchronize();
    expect_close(g.out, a.out, 0.0, "bicubic");
  }
}

TEST(NnCudaSanitizer, ElementwiseAttentionLayout) {
  MCV_REQUIRE_CUDA();
  Context gpu(Device::cuda());
  for (Ew op : kEwOps) {
    const EwCase c = ew_case(op, DType::bf16, {3, 37}, 5);
    EXPECT_EQ(test::compare(run_ew(gpu, op, c), c.a).non_finite, 0);
  }
  const Tensor x = rnd({5, 77}, DType::f16, 1);
  EXPECT_EQ(test::compare(run_softmax(gpu, x), x).non_finite, 0);
  const Tensor qkv = rnd({2, 13, 3, 3, 7}, DType::f32, 2);
  const Tensor out = run_attention(gpu, qkv, 0.3f);
  EXPECT_EQ(test::compare(out, out).non_finite, 0);
  const Tensor img = rnd({1, 5, 6, 3}, DType::f32, 3).to(Device::cuda());
  Tensor win = poisoned({4, 16, 3}, DType::f32, Device::cuda());
  kernels::window_partition(gpu, img, 4, win);
  Tensor back = poisoned({1, 5, 6, 3}, DType::f32, Device::cuda());
  kernels::window_reverse(gpu, win, 4, back);
  Tensor mean = poisoned({1, 3}, DType::f32, Device::cuda());
  kernels::mean_tokens(gpu, back.view({1, 30, 3}), mean);
  gpu.synchronize();
  EXPECT_EQ(test::compare(back, img).max_abs, 0.0);
}

}  // namespace
}  // namespace mcv::nn_test
