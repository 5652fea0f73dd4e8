// The CUDA attention op against the CPU path, one parameterised suite over shapes x layouts x
// dtypes. The shapes cover every CUDA kernel of kernels/nn/cuda/attention.cu: the tensor-core
// kernel (16-bit, head dims padded to 16 / 32 / 48 / 64 / 96, key counts that are and are not
// multiples of its 64-key chunk, query counts past one 64-row block), the FP32 kernel (head dims
// up to 64, 32-key chunks) and the row-wise fallback (larger heads). Layouts: q / k / v as views
// of one qkv projection output with the output in (B, T, heads, Dv) order, as MambaVision runs it;
// contiguous tensors; and permuted views with a non-unit head-dim stride. Outputs start as NaN so
// an element no kernel writes fails. The same cases also run on the CPU against a double
// reference, which keeps the view construction honest on machines without a GPU.

#include <cmath>
#include <string>
#include <vector>

#include "mcv/cuda_graph.h"
#include "test_nn_common.h"

namespace mcv::nn_test {
namespace {

enum class Layout {
  qkv,         // q, k, v = (B, T, 3, H, D) permuted and selected; out a view of (B, T, H, Dv)
  contiguous,  // (B, H, T, D) tensors
  strided,     // q, v, out token-major (B, T, H, D); k stored (B, H, D, Tk): head-dim stride Tk
};

struct Case {
  const char* name;
  std::int64_t b, h, tq, tk, d, dv;
  Layout layout;
};

// Storage of one case, on one device: the tensors the views are taken of.
struct Storage {
  Tensor q, k, v, out;  // for Layout::qkv, q holds the whole qkv tensor and k, v are unused
};

Storage make_storage(const Case& c, DType dt) {
  Storage s;
  switch (c.layout) {
    case Layout::qkv:
      s.q = rnd({c.b, c.tq, 3, c.h, c.d}, dt, 11);
      s.out = poisoned({c.b, c.tq, c.h, c.dv}, dt);
      break;
    case Layout::contiguous:
      s.q = rnd({c.b, c.h, c.tq, c.d}, dt, 12);
      s.k = rnd({c.b, c.h, c.tk, c.d}, dt, 13);
      s.v = rnd({c.b, c.h, c.tk, c.dv}, dt, 14);
      s.out = poisoned({c.b, c.h, c.tq, c.dv}, dt);
      break;
    case Layout::strided:
      s.q = rnd({c.b, c.tq, c.h, c.d}, dt, 15);
      s.k = rnd({c.b, c.h, c.d, c.tk}, dt, 16);
      s.v = rnd({c.b, c.tk, c.h, c.dv}, dt, 17);
      s.out = poisoned({c.b, c.tq, c.h, c.dv}, dt);
      break;
  }
  return s;
}

Storage to_device(const Storage& s, Device device) {
  Storage d;
  d.q = s.q.to(device);
  if (s.k.defined()) d.k = s.k.to(device);
  if (s.v.defined()) d.v = s.v.to(device);
  d.out = s.out.to(device);  // still NaN
  return d;
}

float scale_of(const Case& c) { return 1.0f / std::sqrt(static_cast<float>(c.d)); }

// (B, H, T, D) views of the storage.
kernels::AttentionArgs views(const Case& c, const Storage& s) {
  kernels::AttentionArgs a;
  a.scale = scale_of(c);
  switch (c.layout) {
    case Layout::qkv: {
      const Tensor p = s.q.permute({2, 0, 3, 1, 4});  // (3, B, H, T, D)
      a.q = p.select(0, 0);
      a.k = p.select(0, 1);
      a.v = p.select(0, 2);
      a.out = s.out.permute({0, 2, 1, 3});
      break;
    }
    case Layout::contiguous:
      a.q = s.q;
      a.k = s.k;
      a.v = s.v;
      a.out = s.out;
      break;
    case Layout::strided:
      a.q = s.q.permute({0, 2, 1, 3});
      a.k = s.k.permute({0, 1, 3, 2});
      a.v = s.v.permute({0, 2, 1, 3});
      a.out = s.out.permute({0, 2, 1, 3});
      break;
  }
  return a;
}

// Runs the op on `ctx` from the CPU storage `s`; returns out as a contiguous CPU (B, H, Tq, Dv).
Tensor run(Context& ctx, const Case& c, const Storage& s) {
  const Storage dev = ctx.is_cuda() ? to_device(s, ctx.device()) : to_device(s, Device::cpu());
  const kernels::AttentionArgs a = views(c, dev);
  kernels::attention(ctx, a);
  ctx.synchronize();
  return a.out.to(Device::cpu()).contiguous();
}

// softmax(scale q k^T) v in double from the (already rounded) inputs.
Tensor reference(const Case& c, const Storage& s) {
  const kernels::AttentionArgs a = views(c, s);
  const std::vector<double> q = values(a.q), k = values(a.k), v = values(a.v);
  std::vector<double> out(static_cast<std::size_t>(c.b * c.h * c.tq * c.dv)), p(static_cast<std::size_t>(c.tk));
  for (std::int64_t bh = 0; bh < c.b * c.h; ++bh)
    for (std::int64_t i = 0; i < c.tq; ++i) {
      double mx = -INFINITY, sum = 0;
      for (std::int64_t j = 0; j < c.tk; ++j) {
        double dot = 0;
        for (std::int64_t e = 0; e < c.d; ++e) dot += q[(bh * c.tq + i) * c.d + e] * k[(bh * c.tk + j) * c.d + e];
        p[j] = dot * a.scale;
        mx = std::max(mx, p[j]);
      }
      for (std::int64_t j = 0; j < c.tk; ++j) sum += (p[j] = std::exp(p[j] - mx));
      for (std::int64_t e = 0; e < c.dv; ++e) {
        double acc = 0;
        for (std::int64_t j = 0; j < c.tk; ++j) acc += p[j] * v[(bh * c.tk + j) * c.dv + e];
        out[(bh * c.tq + i) * c.dv + e] = acc / sum;
      }
    }
  return from_doubles(out, {c.b, c.h, c.tq, c.dv});
}

const Case kCases[] = {
    // MambaVision-T's two attention shapes (batch * windows reduced from 128).
    {"mv_196_h8_d40", 3, 8, 196, 196, 40, 40, Layout::qkv},
    {"mv_49_h16_d40", 3, 16, 49, 49, 40, 40, Layout::qkv},
    // MambaVision-S / B / L head dims (48, 64, 49).
    {"qkv_d48", 2, 4, 49, 49, 48, 48, Layout::qkv},
    {"qkv_d64", 2, 2, 64, 64, 64, 64, Layout::qkv},
    {"qkv_d49", 1, 3, 50, 50, 49, 49, Layout::qkv},
    // Tq != Tk, D != Dv, several query blocks and key chunks with ragged ends.
    {"cross_70x130", 2, 3, 70, 130, 24, 40, Layout::contiguous},
    {"cross_130x300", 1, 2, 130, 300, 32, 16, Layout::strided},
    // Odd sizes: partial head-dim tiles, fewer keys than one mma n-tile, a single query.
    {"odd_5x7_d17_dv3", 2, 3, 5, 7, 17, 3, Layout::contiguous},
    {"odd_33x1_d8", 1, 2, 33, 1, 8, 8, Layout::strided},
    {"odd_1x9_d5", 1, 1, 1, 9, 5, 5, Layout::contiguous},
    {"odd_13x13_d7", 2, 3, 13, 13, 7, 7, Layout::qkv},
    // The largest tensor-core tile (d 80 -> 96), and heads past every fast kernel (row-wise).
    {"d80_dv96", 1, 2, 65, 77, 80, 96, Layout::strided},
    {"d112_fallback", 1, 2, 20, 30, 112, 100, Layout::contiguous},
};

struct Param {
  Case c;
  DType dtype;
};

std::string param_name(const testing::TestParamInfo<Param>& info) {
  return std::string(info.param.c.name) + "_" + dtype_name(info.param.dtype);
}

std::vector<Param> all_params() {
  std::vector<Param> ps;
  for (const Case& c : kCases)
    for (DType dt : kFloatTypes) ps.push_back({c, dt});
  return ps;
}

class NnAttentionCases : public testing::TestWithParam<Param> {};

TEST_P(NnAttentionCases, CpuMatchesDoubleReference) {
  const auto& [c, dt] = GetParam();
  Context cpu;
  const Storage s = make_storage(c, dt);
  expect_close(run(cpu, c, s), reference(c, s), tolerance(dt), c.name);
}

TEST_P(NnAttentionCases, CudaMatchesCpu) {
  MCV_REQUIRE_CUDA();
  const auto& [c, dt] = GetParam();
  Context cpu, gpu(Device::cuda());
  const Storage s = make_storage(c, dt);
  const Tensor want = run(cpu, c, s);
  const Tensor got = run(gpu, c, s);
  expect_close(got, want, cuda_tolerance(dt), c.name);
  // The 16-bit kernels round the probabilities to the I/O type before P V (as flash attention
  // does), so compare against the exact result too: within the CPU path's own tolerance plus
  // that rounding.
  expect_close(got, reference(c, s), dt == DType::f32 ? 2e-5 : 2 * cuda_tolerance(dt),
               std::string(c.name) + " vs double");
}

INSTANTIATE_TEST_SUITE_P(Shapes, NnAttentionCases, testing::ValuesIn(all_params()), param_name);

// The op captured into a CUDA graph (in an arena scope, as the benchmark captures a forward pass)
// and replayed: the replay writes every output, and a second replay after new inputs are copied
// into the same buffers computes from the new values (no state baked into the capture).
TEST(NnAttentionCudaGraph, CaptureAndReplay) {
  MCV_REQUIRE_CUDA();
  const Case c{"graph", 2, 8, 196, 196, 40, 40, Layout::qkv};
  Context cpu, gpu(Device::cuda());
  for (DType dt : kFloatTypes) {
    const Storage s1 = make_storage(c, dt);
    Storage s2 = make_storage(c, dt);
    s2.q = rnd(s2.q.shape(), dt, 99);
    const Tensor want1 = run(cpu, c, s1), want2 = run(cpu, c, s2);

    const Storage dev = to_device(s1, Device::cuda());
    const kernels::AttentionArgs a = views(c, dev);
    ContextScope scope(gpu, /*use_arena=*/true);
    kernels::attention(gpu, a);  // warm-up outside the capture
    gpu.synchronize();
    Tensor out = dev.out;
    out.fill(std::nan(""));
    CudaGraph graph(gpu);
    graph.begin();
    kernels::attention(gpu, a);
    graph.end();
    ASSERT_TRUE(graph.captured());
    graph.replay();
    gpu.synchronize();
    expect_close(a.out.to(Device::cpu()).contiguous(), want1, cuda_tolerance(dt),
                 std::string("first replay ") + dtype_name(dt));

    Tensor qkv = dev.q;
    qkv.copy_from(s2.q);
    out.fill(std::nan(""));
    graph.replay();
    gpu.synchronize();
    expect_close(a.out.to(Device::cpu()).contiguous(), want2, cuda_tolerance(dt),
                 std::string("replay on new inputs ") + dtype_name(dt));
  }
}

}  // namespace
}  // namespace mcv::nn_test
