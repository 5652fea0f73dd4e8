// mcv selftest: a quick kernel self-check on this machine. On the CPU: the selective scan against
// a closed form (N = 1, constant decay: y_t = sum_s a^(t-s) u_s) and the fused directions against
// explicit compositions of single-direction scans on flipped / transposed copies. On each visible
// GPU (or the one named): every direction and dtype against the CPU result. Exit 1 on a mismatch.

#include <cmath>
#include <cstdio>
#include <functional>
#include <random>

#include "command.h"
#include "mcv/error.h"
#include "mcv/kernels/cpu_features.h"
#include "mcv/kernels/selective_scan.h"
#include "mcv/thread_pool.h"

namespace mcv::cli::cmd_selftest {
namespace {

using kernels::ScanDirections;
using kernels::SelectiveScanArgs;

Tensor random(const Shape& shape, std::uint64_t seed, float scale, float offset = 0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  Tensor t = Tensor::empty(shape, DType::f32);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = offset + scale * normal(rng);
  return t;
}

double rel_l2(const Tensor& got, const Tensor& want) {
  const auto g = got.to_vector(), w = want.to_vector();
  double num = 0, den = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (!std::isfinite(g[i])) return INFINITY;
    num += (double(g[i]) - w[i]) * (double(g[i]) - w[i]);
    den += double(w[i]) * w[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// A problem with K directions: batch 2, D 24, a 9 x 13 grid (L 117), N 16, one group per direction.
struct Problem {
  ScanDirections dirs;
  int K;
  Tensor u, delta, A, B, C, D, z, bias;
};

Problem make_problem(ScanDirections dirs, std::uint64_t seed) {
  const int K = kernels::scan_direction_count(dirs);
  const std::int64_t b = 2, d = 24, h = 9, w = 13, l = h * w, n = 16;
  Problem p{dirs, K, random({b, d, l}, seed, 1), random({b, K, d, l}, seed + 1, 0.5, -1), {}, random({b, K, n, l}, seed + 3, 1),
            random({b, K, n, l}, seed + 4, 1), random({K * d}, seed + 5, 1), random({b, d, l}, seed + 6, 1),
            random({K * d}, seed + 7, 0.3)};
  p.A = random({K * d, n}, seed + 2, 0.5, -1);
  for (std::int64_t i = 0; i < p.A.numel(); ++i) p.A.data<float>()[i] = -std::abs(p.A.data<float>()[i]);
  return p;
}

Tensor run(Context& ctx, const Problem& p, DType dtype) {
  ContextScope scope(ctx);
  const Device dev = ctx.device();
  SelectiveScanArgs a;
  a.u = p.u.to(dtype).to(dev);
  a.delta = p.delta.to(dtype).to(dev);
  a.A = p.A.to(dev);
  a.B = p.B.to(dtype).to(dev);
  a.C = p.C.to(dtype).to(dev);
  a.D = p.D.to(dev);
  a.z = p.z.to(dtype).to(dev);
  a.delta_bias = p.bias.to(dev);
  a.delta_softplus = true;
  a.directions = p.dirs;
  if (p.dirs == ScanDirections::cross2d) {
    a.height = 9;
    a.width = 13;
  }
  a.out = Tensor::empty(a.u.shape(), dtype, dev);
  kernels::selective_scan(ctx, a);
  Tensor out = a.out.to(Device::cpu()).to(DType::f32);
  ctx.synchronize();
  return out;
}

// Forward scans over explicitly re-ordered copies, summed back at natural positions, then gated:
// the composition the fused directions stand for (no z inside; the gate is applied once).
Tensor composed(Context& cpu, const Problem& p) {
  const std::int64_t b = p.u.size(0), d = p.u.size(1), l = p.u.size(2), n = p.A.size(1), h = 9, w = 13;
  auto order = [&](int k, std::int64_t t) -> std::int64_t {
    const bool flip = p.dirs == ScanDirections::reverse || (p.dirs == ScanDirections::bidirectional && k == 1) ||
                      (p.dirs == ScanDirections::cross2d && k >= 2);
    const std::int64_t s = flip ? l - 1 - t : t;
    return (p.dirs == ScanDirections::cross2d && k % 2 == 1) ? (s % h) * w + s / h : s;
  };
  Tensor sum = Tensor::zeros({b, d, l}, DType::f32);
  for (int k = 0; k < p.K; ++k) {
    Tensor u = Tensor::empty({b, d, l}, DType::f32), delta = Tensor::empty({b, d, l}, DType::f32);
    Tensor B = Tensor::empty({b, 1, n, l}, DType::f32), C = Tensor::empty({b, 1, n, l}, DType::f32);
    for (std::int64_t i = 0; i < b; ++i)
      for (std::int64_t t = 0; t < l; ++t) {
        const std::int64_t q = order(k, t);
        for (std::int64_t c = 0; c < d; ++c) {
          u.data<float>()[(i * d + c) * l + t] = p.u.data<float>()[(i * d + c) * l + q];
          delta.data<float>()[(i * d + c) * l + t] = p.delta.data<float>()[((i * p.K + k) * d + c) * l + q];
        }
        for (std::int64_t m = 0; m < n; ++m) {
          B.data<float>()[(i * n + m) * l + t] = p.B.data<float>()[((i * p.K + k) * n + m) * l + q];
          C.data<float>()[(i * n + m) * l + t] = p.C.data<float>()[((i * p.K + k) * n + m) * l + q];
        }
      }
    SelectiveScanArgs a;
    a.u = u;
    a.delta = delta;
    a.A = p.A.slice(0, k * d, (k + 1) * d).contiguous();
    a.B = B;
    a.C = C;
    a.D = p.D.slice(0, k * d, (k + 1) * d).contiguous();
    a.delta_bias = p.bias.slice(0, k * d, (k + 1) * d).contiguous();
    a.delta_softplus = true;
    a.out = Tensor::empty({b, d, l}, DType::f32);
    kernels::selective_scan(cpu, a);
    for (std::int64_t i = 0; i < b; ++i)
      for (std::int64_t c = 0; c < d; ++c)
        for (std::int64_t t = 0; t < l; ++t)
          sum.data<float>()[(i * d + c) * l + order(k, t)] += a.out.data<float>()[(i * d + c) * l + t];
  }
  for (std::int64_t i = 0; i < sum.numel(); ++i) {
    const float z = p.z.data<float>()[i];
    sum.data<float>()[i] *= z / (1.0f + std::exp(-z));
  }
  return sum;
}

// N = 1, A = log(decay), delta = 1 (no softplus), B = C = 1: y_t = sum_{s<=t} decay^(t-s) u_s.
double closed_form_error(Context& cpu) {
  const std::int64_t b = 1, d = 3, l = 1000;
  const double decay = 0.97;
  Tensor u = random({b, d, l}, 99, 1);
  SelectiveScanArgs a;
  a.u = u;
  a.delta = Tensor::empty({b, d, l}, DType::f32);
  a.delta.fill(1);
  a.A = Tensor::empty({d, 1}, DType::f32);
  a.A.fill(std::log(decay));
  a.B = Tensor::empty({d, 1}, DType::f32);
  a.B.fill(1);
  a.C = a.B;
  a.out = Tensor::empty({b, d, l}, DType::f32);
  kernels::selective_scan(cpu, a);
  Tensor want = Tensor::empty({b, d, l}, DType::f32);
  for (std::int64_t c = 0; c < d; ++c) {
    double h = 0;
    for (std::int64_t t = 0; t < l; ++t) {
      h = decay * h + u.data<float>()[c * l + t];
      want.data<float>()[c * l + t] = static_cast<float>(h);
    }
  }
  return rel_l2(a.out, want);
}

int run_selftest(const std::string& device_text) {
  bool ok = true;
  auto report = [&](const std::string& what, double err, double limit) {
    const bool pass = err <= limit;
    ok = ok && pass;
    std::printf("  %-4s %-52s rel_l2 %.2e (limit %.0e)\n", pass ? "ok" : "FAIL", what.c_str(), err, limit);
  };
  Context cpu(Device::cpu());
  std::printf("selective scan on cpu (%s, %d threads)\n", kernels::cpu_isa_name().c_str(), cpu.threads().size());
  report("closed form, N=1, L=1000", closed_form_error(cpu), 1e-5);
  const ScanDirections modes[] = {ScanDirections::forward, ScanDirections::reverse, ScanDirections::bidirectional,
                                  ScanDirections::cross2d};
  std::uint64_t seed = 10;
  for (ScanDirections mode : modes) {
    const Problem p = make_problem(mode, seed += 10);
    report(std::string(kernels::scan_directions_name(mode)) + " fused vs explicit composition", rel_l2(run(cpu, p, DType::f32), composed(cpu, p)), 1e-5);
  }
  std::vector<Device> gpus;
  if (device_text.empty()) {
    for (int i = 0; i < cuda_device_count(); ++i) gpus.push_back(Device::cuda(i));
  } else {
    const Device d = parse_device(device_text);
    if (d.is_cuda()) gpus.push_back(d);
  }
  for (const Device& dev : gpus) {
    Context gpu(dev);
    std::printf("selective scan on %s vs cpu\n", dev.str().c_str());
    for (ScanDirections mode : modes)
      for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
        const Problem p = make_problem(mode, seed += 10);
        report(std::string(kernels::scan_directions_name(mode)) + " " + dtype_name(dtype),
               rel_l2(run(gpu, p, dtype), run(cpu, p, DType::f32)), dtype == DType::f32 ? 1e-5 : 2e-2);
      }
  }
  if (gpus.empty()) std::printf("no CUDA device visible: GPU checks not run\n");
  std::printf("%s\n", ok ? "selftest passed" : "selftest FAILED");
  return ok ? kExitOk : kExitCheckFailed;
}

const McvCommand kCommand("selftest", "Kernel self-check on this machine (CPU and visible GPUs)", [](CLI::App& app) {
  auto device = std::make_shared<std::string>();
  app.add_option("--device", *device, "Check only this device (cpu, cuda:N); default: cpu and every GPU");
  return [device] { return run_selftest(*device); };
});

}  // namespace
}  // namespace mcv::cli::cmd_selftest
