// Selective-scan benchmark (see mcv/kernels/selective_scan_bench.h).

#include "mcv/kernels/selective_scan_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <sstream>

#include "mcv/error.h"
#include "mcv/kernels/conv1d.h"
#include "mcv/kernels/selective_scan.h"
#include "mcv/tensor.h"
#include "mcv/thread_pool.h"
#include "selective_scan/cpu.h"

#if MCV_HAVE_CUDA
#include <cuda_runtime.h>

#include "selective_scan/bench_helpers.h"
#endif

namespace mcv::kernels {

namespace {

using i64 = std::int64_t;

// The reference shapes: u, delta, z (batch, D, L); B, C (batch, G, N, L); D, z, delta bias and
// softplus on. reference_ms: official selective_scan_cuda.fwd in bf16 on an H100 (task brief).
struct RefShape {
  const char* name;
  i64 batch, dim, len, n, groups;
  double reference_ms;
};
constexpr RefShape kShapes[] = {
    {"S1", 128, 384, 197, 16, 1, 0.391}, {"S2", 128, 768, 197, 16, 1, 0.773},
    {"S3", 64, 768, 3136, 16, 4, 5.607}, {"S4", 64, 768, 3136, 1, 4, 1.415},
    {"S5", 128, 160, 196, 8, 1, 0.100},  {"S6", 1, 1536, 262144, 16, 1, 8.949},
};

struct Problem {
  i64 batch = 1, dim = 1, len = 1, n = 16, groups = 1;  // groups per direction
  ScanDirections dirs = ScanDirections::forward;
  i64 height = 0, width = 0;
  bool with_z = true, token_major = false;
  bool cols_transposed = false;  ///< cross2d: SelectiveScanArgs::column_inputs_transposed
  /// Bidirectional in the Vim model's own layout (vim_model.cpp, Mixer::forward): u and delta per
  /// direction as token-major slots (2, batch, L, D), B/C slices of x_proj's (2, batch, L, R + 2N)
  /// output, z a slice of in_proj's (batch, L, 2D), the output token-major.
  bool vim_layout = false;
  float scale = 1.0f;
  int k() const { return scan_direction_count(dirs); }
};

// One set of inputs and the output on the device.
struct Set {
  Tensor u, delta, A, B, C, D, z, bias, out;
  SelectiveScanArgs args(const Problem& p) const {
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
    a.directions = p.dirs;
    a.height = p.height;
    a.width = p.width;
    a.out_scale = p.scale;
    a.column_inputs_transposed = p.cols_transposed;
    a.out = out;
    return a;
  }
};

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

class Bench {
 public:
  Bench(Context& ctx, const ScanBenchOptions& opt) : ctx_(ctx), opt_(opt) {}

  Tensor random(const Shape& shape, DType dtype, float scale, float offset) {
    Tensor t = Tensor::empty(shape, dtype, ctx_.device());
    const std::uint64_t seed = ++seed_;
#if MCV_HAVE_CUDA
    if (ctx_.is_cuda()) {
      scan::bench::fill_uniform(t.raw_data(), t.numel(), dtype, seed, scale, offset, ctx_.cuda_stream());
      return t;
    }
#endif
    Tensor f = Tensor::empty(shape, DType::f32);
    float* p = f.data<float>();
    for (i64 i = 0, n = f.numel(); i < n; ++i)
      p[i] = offset + scale * (static_cast<float>(mix(seed * 0x9e3779b97f4a7c15ull + i) >> 40) * (2.0f / 16777216.0f) - 1.0f);
    t.copy_from(f);
    return t;
  }

  // A = -(1 .. N) per row (the S4D-real init of Mamba), jittered.
  Tensor a_matrix(i64 rows, i64 n) {
    std::vector<float> v(rows * n);
    for (i64 r = 0; r < rows; ++r)
      for (i64 j = 0; j < n; ++j) v[r * n + j] = -static_cast<float>(j + 1) * (1.0f + 0.05f * static_cast<float>(r % 7));
    return Tensor::from_vector(v, {rows, n}).to(ctx_.device());
  }

  Set make_set(const Problem& p, DType dt) {
    const i64 b = p.batch, D = p.dim, L = p.len, N = p.n, K = p.k(), kg = K * p.groups;
    Set s;
    if (p.vim_layout) {
      const i64 R = (D / 2 + 15) / 16;  // Vim's dt_rank: ceil(d_model / 16), d_inner = 2 d_model
      const Tensor xdbl = random({K, b, L, R + 2 * N}, dt, 1.0f, 0.0f);
      s.u = random({K, b, L, D}, dt, 1.0f, 0.0f).permute({1, 0, 3, 2});
      s.delta = random({K, b, L, D}, dt, 0.5f, 0.0f).permute({1, 0, 3, 2});
      s.B = xdbl.slice(3, R, R + N).permute({1, 0, 3, 2});
      s.C = xdbl.slice(3, R + N, R + 2 * N).permute({1, 0, 3, 2});
      s.z = random({b, L, 2 * D}, dt, 1.0f, 0.0f).slice(2, D, 2 * D).transpose(1, 2);
      s.out = Tensor::empty({b, L, D}, dt, ctx_.device()).transpose(1, 2);
    } else if (p.token_major) {
      s.u = random({b, L, D}, dt, 1.0f, 0.0f).transpose(1, 2);
      if (p.with_z) s.z = random({b, L, D}, dt, 1.0f, 0.0f).transpose(1, 2);
      s.delta = K == 1 ? random({b, L, D}, dt, 0.5f, 0.0f).transpose(1, 2)
                       : random({b, L, K, D}, dt, 0.5f, 0.0f).permute({0, 2, 3, 1});
      s.B = random({b, L, kg, N}, dt, 1.0f, 0.0f).permute({0, 2, 3, 1});
      s.C = random({b, L, kg, N}, dt, 1.0f, 0.0f).permute({0, 2, 3, 1});
      s.out = Tensor::empty({b, L, D}, dt, ctx_.device()).transpose(1, 2);
    } else {
      s.u = random({b, D, L}, dt, 1.0f, 0.0f);
      if (p.with_z) s.z = random({b, D, L}, dt, 1.0f, 0.0f);
      s.delta = K == 1 ? random({b, D, L}, dt, 0.5f, 0.0f) : random({b, K, D, L}, dt, 0.5f, 0.0f);
      s.B = random({b, kg, N, L}, dt, 1.0f, 0.0f);
      s.C = random({b, kg, N, L}, dt, 1.0f, 0.0f);
      s.out = Tensor::empty({b, D, L}, dt, ctx_.device());
    }
    s.A = a_matrix(K * D, N);
    s.D = random({K * D}, DType::f32, 1.0f, 0.0f);
    s.bias = random({K * D}, DType::f32, 1.0f, -4.0f);  // softplus(-4 +- 1.5): dt ~ 0.004 .. 0.08
    return s;
  }

  static double op_bytes(const Problem& p, DType dt) {
    const double es = static_cast<double>(dtype_size(dt));
    const double bdl = static_cast<double>(p.batch) * p.dim * p.len;
    const double per_step = (2.0 + (p.with_z ? 1 : 0) + (p.vim_layout ? p.k() - 1 : 0)) * bdl * es;  // u (per direction), out, z
    const double delta = p.k() * bdl * es;
    const double bc = 2.0 * p.batch * p.k() * p.groups * p.n * p.len * es;
    const double params = 4.0 * p.k() * p.dim * (p.n + 2);
    return per_step + delta + bc + params;
  }

  static double transcendentals(const Problem& p) {
    const double bdl = static_cast<double>(p.batch) * p.dim * p.len;
    return p.k() * bdl * (p.n + 1) + (p.with_z ? bdl : 0.0);
  }

  /// Median time in ms of fn(run) over the timed runs.
  double time(const std::function<void(int)>& fn, int runs) {
    const int warmup = std::max(1, opt_.warmup);
#if MCV_HAVE_CUDA
    if (ctx_.is_cuda()) {
      auto stream = static_cast<cudaStream_t>(ctx_.cuda_stream());
      for (int i = 0; i < warmup; ++i) fn(i);
      std::vector<cudaEvent_t> ev(2 * runs);
      for (auto& e : ev) cudaEventCreate(&e);
      for (int i = 0; i < runs; ++i) {
        cudaEventRecord(ev[2 * i], stream);
        fn(i);
        cudaEventRecord(ev[2 * i + 1], stream);
        ctx_.workspace().reset();  // stream-ordered: the next call's scratch is reused in order
      }
      cudaError_t st = cudaStreamSynchronize(stream);
      std::vector<double> ms(runs);
      for (int i = 0; i < runs; ++i) {
        float t = 0;
        cudaEventElapsedTime(&t, ev[2 * i], ev[2 * i + 1]);
        ms[i] = t;
      }
      for (auto& e : ev) cudaEventDestroy(e);
      if (st != cudaSuccess) throw Error("selective_scan bench", cudaGetErrorString(st));
      std::nth_element(ms.begin(), ms.begin() + runs / 2, ms.end());
      return ms[runs / 2];
    }
#endif
    for (int i = 0; i < std::min(warmup, 1); ++i) fn(i);
    std::vector<double> ms;
    for (int i = 0; i < runs; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      fn(i);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      ctx_.workspace().reset();
    }
    std::nth_element(ms.begin(), ms.begin() + runs / 2, ms.end());
    return ms[runs / 2];
  }

  /// Input sets of `bytes` each that together exceed the L2 several times, so each run reads
  /// from DRAM.
  int sets_for_bytes(double bytes) const {
    if (!ctx_.is_cuda()) return 1;
    return static_cast<int>(std::clamp(std::ceil(200e6 / bytes), 1.0, 4.0));
  }
  std::vector<Set> make_sets(const Problem& p, DType dt) {
    std::vector<Set> sets;
    for (int i = 0, n = sets_for_bytes(op_bytes(p, dt)); i < n; ++i) sets.push_back(make_set(p, dt));
    return sets;
  }
  /// Median ms of one scan call over the rotated sets.
  double time_scan(const std::vector<Set>& sets, const Problem& p) {
    return time([&](int i) { selective_scan(ctx_, sets[i % sets.size()].args(p)); }, runs());
  }

  int runs() const { return ctx_.is_cuda() ? std::max(opt_.runs, 50) : std::max(1, std::min(opt_.runs, 3)); }

  ScanBenchResult result(const std::string& name, const Problem& p, DType dt, double ms, double ref) {
    ScanBenchResult r;
    r.name = name;
    r.dtype = dtype_name(dt);
    std::ostringstream s;
    s << p.batch << "x" << p.dim << "x" << p.len << " N" << p.n << " G" << p.groups;
    if (p.k() > 1) s << " K" << p.k();
    if (p.token_major) s << " tm";
    r.shape = s.str();
    r.ms = ms;
    r.bytes = op_bytes(p, dt);
    r.gbps = r.bytes / (ms * 1e6);
    if (ctx_.is_cuda() && copy_gbps_ > 0) {
      const double mufu_per_s = 16.0 * sms_ * 1.98e9;
      r.floor_ms = std::max(r.bytes / (copy_gbps_ * 1e6), transcendentals(p) / mufu_per_s * 1e3);
      r.ratio = ms / r.floor_ms;
      r.note = r.bytes / (copy_gbps_ * 1e6) >= transcendentals(p) / mufu_per_s * 1e3 ? "bytes-bound" : "exp-bound";
    } else {
      // CPU: the work rate, and its recurrence FMAs (h = a*h + b*u and y += C*h: two per state
      // update) as a fraction of the peak FMA rate measured in the same run. The other vector
      // work of a state update (the exp, dt*A, B*dt*u: ~12 more FMA-pipe operations) is
      // counted in docs/PERFORMANCE.md, not here.
      const double channel_steps = static_cast<double>(p.batch) * p.dim * p.len * p.k();
      const double updates_per_s = channel_steps * p.n / (ms * 1e-3);
      std::ostringstream n;
      n.precision(3);
      n << updates_per_s / 1e9 << " G state updates/s, " << channel_steps / (ms * 1e6) << " G channel-steps/s";
      if (peak_fma_ > 0) n << ", recurrence FMAs " << 100.0 * 2.0 * updates_per_s / peak_fma_ << " % of peak";
      r.note = n.str();
    }
    r.reference_ms = dt == DType::bf16 ? ref : 0.0;
    return r;
  }

  void measure_copy() {
#if MCV_HAVE_CUDA
    if (!ctx_.is_cuda()) return;
    int dev = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, dev);
    const i64 bytes = i64{1} << 30;
    Tensor a = Tensor::empty({bytes}, DType::u8, ctx_.device()), b = Tensor::empty({bytes}, DType::u8, ctx_.device());
    auto stream = static_cast<cudaStream_t>(ctx_.cuda_stream());
    const double ms = time([&](int) { cudaMemcpyAsync(b.raw_data(), a.raw_data(), bytes, cudaMemcpyDeviceToDevice, stream); }, 20);
    copy_gbps_ = 2.0 * bytes / (ms * 1e6);
    ScanBenchResult r;
    r.name = "copy";
    r.dtype = "u8";
    r.shape = "1 GiB d2d";
    r.ms = ms;
    r.bytes = 2.0 * bytes;
    r.gbps = copy_gbps_;
    r.note = "read + write";
    out_.push_back(r);
#endif
  }

  /// CPU: the FMA rate of the context's threads on the scan's vector path (cpu_peak.h).
  void measure_fma_peak() {
    if (ctx_.is_cuda()) return;
    const scan::CpuIsa isa = scan::default_cpu_isa();
    const auto t0 = std::chrono::steady_clock::now();
    peak_fma_ = scan::peak_fma_rate(ctx_, isa);
    ScanBenchResult r;
    r.name = "fma peak";
    r.dtype = "f32";
    r.shape = std::to_string(ctx_.threads().size()) + " threads, " + scan::cpu_isa_label(isa);
    r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::ostringstream n;
    n.precision(4);
    n << peak_fma_ / 1e9 << " G FMA/s (independent vector FMA chains, best of 3)";
    r.note = n.str();
    out_.push_back(r);
  }

  bool wanted(const std::string& name) const {
    return opt_.only.empty() || std::find(opt_.only.begin(), opt_.only.end(), name) != opt_.only.end();
  }

  // len: 0 for the shape's own; otherwise the shape at that length (a diagnostic row, no reference).
  void run_single(const RefShape& s, DType dt, ScanDirections dirs = ScanDirections::forward, bool with_z = true,
                  i64 len = 0, bool token_major = false) {
    Problem p;
    p.token_major = token_major;
    p.batch = s.batch;
    p.dim = s.dim;
    p.len = len > 0 ? len : s.len;
    p.n = s.n;
    p.groups = s.groups;
    p.dirs = dirs;
    p.with_z = with_z;
    const double ms = time_scan(make_sets(p, dt), p);
    const bool plain = dirs == ScanDirections::forward && with_z && len <= 0 && !token_major;
    const std::string name = std::string(s.name) + (dirs == ScanDirections::reverse ? " reverse" : "") +
                             (with_z ? "" : " no z") + (len > 0 ? " L" + std::to_string(len) : "") +
                             (token_major ? " token-major" : "");
    out_.push_back(result(name, p, dt, ms, plain ? s.reference_ms : 0.0));
  }

  // Vim v2 block scan at S1 size: fused bidirectional vs flips + two scans + flip-add.
  void run_vim(DType dt) {
    Problem p;
    p.batch = 128;
    p.dim = 384;
    p.len = 197;
    p.n = 16;
    p.dirs = ScanDirections::bidirectional;
    p.scale = 0.5f;
    const std::vector<Set> sets = make_sets(p, dt);
    const double fused = time_scan(sets, p);
    out_.push_back(result("vim-bidir fused", p, dt, fused, 0));
    {
      Problem m = p;
      m.token_major = m.vim_layout = true;
      ScanBenchResult r = result("vim-bidir fused (model layout)", m, dt, time_scan(make_sets(m, dt), m), 0);
      r.note += ", u and delta per direction, token-major (vim_model.cpp)";
      out_.push_back(r);
    }
#if MCV_HAVE_CUDA
    if (!ctx_.is_cuda()) return;
    const i64 D = p.dim, rows = p.batch * p.dim;
    Tensor u_b = Tensor::empty(sets[0].u.shape(), dt, ctx_.device()), z_b = Tensor::empty(sets[0].u.shape(), dt, ctx_.device());
    Tensor out_f = Tensor::empty(sets[0].u.shape(), dt, ctx_.device()), out_b = Tensor::empty(sets[0].u.shape(), dt, ctx_.device());
    void* stream = ctx_.cuda_stream();
    const double unfused = time([&](int i) {
      const Set& s = sets[i % sets.size()];
      scan::bench::flip_rows(s.u.raw_data(), u_b.raw_data(), rows, p.len, dt, stream);
      scan::bench::flip_rows(s.z.raw_data(), z_b.raw_data(), rows, p.len, dt, stream);
      SelectiveScanArgs f;
      f.u = s.u;
      f.delta = s.delta.select(1, 0);
      f.A = s.A.slice(0, 0, D);
      f.B = s.B.slice(1, 0, 1);
      f.C = s.C.slice(1, 0, 1);
      f.D = s.D.slice(0, 0, D);
      f.z = s.z;
      f.delta_bias = s.bias.slice(0, 0, D);
      f.delta_softplus = true;
      f.out = out_f;
      selective_scan(ctx_, f);
      SelectiveScanArgs bw = f;  // the backward branch computes its projections on flipped tokens
      bw.u = u_b;
      bw.delta = s.delta.select(1, 1);
      bw.A = s.A.slice(0, D, 2 * D);
      bw.B = s.B.slice(1, 1, 2);
      bw.C = s.C.slice(1, 1, 2);
      bw.D = s.D.slice(0, D, 2 * D);
      bw.z = z_b;
      bw.delta_bias = s.bias.slice(0, D, 2 * D);
      bw.out = out_b;
      selective_scan(ctx_, bw);
      scan::bench::add_flipped(out_f.raw_data(), out_b.raw_data(), s.out.raw_data(), rows, p.len, 0.5f, dt, stream);
    }, runs());
    ScanBenchResult r = result("vim-bidir unfused", p, dt, unfused, 0);
    r.note += ", flips + 2 scans + flip-add; fused is " + std::to_string(unfused / fused).substr(0, 4) + "x faster";
    out_.push_back(r);
#endif
  }

  // VMamba SS2D at S3 size (4 x 192 channels, 56 x 56 grid, no z; N 16, and N 1 as in
  // vmambav2_tiny_224, the S4 shape): fused cross2d (both layouts; channel-major also with the
  // column directions' delta/B/C column-major, the order the official composition's projection
  // gives them) vs CrossScan copy + one grouped scan over 4*D channels + CrossMerge.
  void run_vmamba(DType dt, int n) {
    Problem p;
    p.batch = ctx_.is_cuda() ? 64 : 2;
    p.dim = 192;
    p.height = p.width = 56;
    p.len = 56 * 56;
    p.n = n;
    p.dirs = ScanDirections::cross2d;
    p.with_z = false;
    // Channel-major grid, token-major grid, channel-major with the column inputs column-major.
    double fused_ms[3] = {0, 0, 0};
    for (int v = 0; v < 3; ++v) {
      Problem f = p;
      f.token_major = v == 1;
      f.cols_transposed = v == 2;
      fused_ms[v] = time_scan(make_sets(f, dt), f);
      ScanBenchResult r = result(v == 0 ? "vmamba-ss2d fused" : v == 1 ? "vmamba-ss2d fused (token-major)"
                                                                       : "vmamba-ss2d fused (column inputs)",
                                 f, dt, fused_ms[v], 0);
      if (v == 2) r.note += ", delta/B/C of k = 1, 3 column-major";
      out_.push_back(r);
    }
#if MCV_HAVE_CUDA
    if (!ctx_.is_cuda()) return;
    Problem q = p;  // the grouped scan the unfused code runs: K*D channels, G = K, forward
    q.dim = 4 * p.dim;
    q.groups = 4;
    q.dirs = ScanDirections::forward;
    const std::vector<Set> sets = make_sets(q, dt);
    Tensor x = random({p.batch, p.dim, p.len}, dt, 1.0f, 0.0f);
    Tensor y = Tensor::empty({p.batch, p.dim, p.len}, dt, ctx_.device());
    void* stream = ctx_.cuda_stream();
    const double ms = time([&](int i) {
      const Set& s = sets[i % sets.size()];
      scan::bench::cross_scan(x.raw_data(), s.u.raw_data(), p.batch, p.dim, p.height, p.width, dt, stream);
      selective_scan(ctx_, s.args(q));
      scan::bench::cross_merge(s.out.raw_data(), y.raw_data(), p.batch, p.dim, p.height, p.width, dt, stream);
    }, runs());
    ScanBenchResult r = result("vmamba-ss2d unfused", p, dt, ms, 0);
    r.note += ", CrossScan + grouped scan + CrossMerge; fused is " + std::to_string(ms / fused_ms[1]).substr(0, 4) +
              "x faster token-major (the layout VMamba feeds), " + std::to_string(ms / fused_ms[0]).substr(0, 4) +
              "x channel-major, " + std::to_string(ms / fused_ms[2]).substr(0, 4) + "x with column inputs";
    out_.push_back(r);
#endif
  }

  // The depthwise conv + SiLU that produces the scan's u in the models (token-major, reading a
  // slice of in_proj's output): Vim-Ti (causal, width 4, bias; its backward branch's anti-causal
  // form) and MambaVision-T stage 3 ('same', width 3, no bias). Bytes: x read and u written once
  // (weights negligible); SiLU's exponential per element is far below the bytes floor. Measured
  // to show what fusing the conv into the scan's input read could save: the scan would read x
  // instead of u (the same bytes) and x_proj still needs u, so at most this op's own time.
  void run_conv1d(DType dt) {
    struct ConvShape {
      const char* name;
      i64 batch, len, dim, width;
      bool causal, reverse, bias;
    };
    const ConvShape shapes[] = {{"conv1d vim", 128, 197, 384, 4, true, false, true},
                                {"conv1d vim reverse", 128, 197, 384, 4, true, true, true},
                                {"conv1d mambavision", 128, 196, 160, 3, false, false, false}};
    for (const ConvShape& c : shapes) {
      const int sets = sets_for_bytes(3.0 * c.batch * c.len * c.dim * dtype_size(dt));  // xz (2 D) and u
      std::vector<Tensor> xz, out;
      for (int i = 0; i < sets; ++i) {
        xz.push_back(random({c.batch, c.len, 2 * c.dim}, dt, 1.0f, 0.0f));
        out.push_back(Tensor::empty({c.batch, c.len, c.dim}, dt, ctx_.device()));
      }
      const Tensor w = random({c.dim, c.width}, DType::f32, 0.5f, 0.0f);
      const Tensor b = c.bias ? random({c.dim}, DType::f32, 0.1f, 0.0f) : Tensor();
      const double ms = time([&](int i) {
        Conv1dArgs a;
        a.x = xz[i % sets].slice(2, 0, c.dim);
        a.weight = w;
        a.bias = b;
        a.out = out[i % sets];
        a.layout = Conv1dLayout::token_major;
        a.padding = c.causal ? Conv1dPadding::causal : Conv1dPadding::same;
        a.reverse = c.reverse;
        a.silu = true;
        conv1d(ctx_, a);
      }, runs());
      ScanBenchResult r;
      r.name = c.name;
      r.dtype = dtype_name(dt);
      std::ostringstream shape;
      shape << c.batch << "x" << c.dim << "x" << c.len << " W" << c.width << " tm";
      r.shape = shape.str();
      r.ms = ms;
      r.bytes = 2.0 * c.batch * c.len * c.dim * dtype_size(dt);
      r.gbps = r.bytes / (ms * 1e6);
      if (ctx_.is_cuda() && copy_gbps_ > 0) {
        r.floor_ms = r.bytes / (copy_gbps_ * 1e6);
        r.ratio = ms / r.floor_ms;
        r.note = "bytes-bound";
      }
      out_.push_back(r);
    }
  }

  std::vector<ScanBenchResult> run() {
    measure_copy();
    measure_fma_peak();
    std::vector<DType> dtypes;
    if (opt_.bf16) dtypes.push_back(DType::bf16);
    if (opt_.f32) dtypes.push_back(DType::f32);
    for (DType dt : dtypes) {
      for (const RefShape& s : kShapes) {
        if (!wanted(s.name)) continue;
        // On the CPU only the short-sequence shapes (the others take seconds per call).
        if (!ctx_.is_cuda() && s.len > 256) continue;
        run_single(s, dt);
        if (opt_.variants) {
          run_single(s, dt, ScanDirections::reverse, true);
          run_single(s, dt, ScanDirections::forward, false);
          // The short shapes' rows (L = 197 / 196) are not 16-byte aligned, so they take neither
          // TMA boxes nor warp pipelines; the same shape at L = 200 shows what the aligned path
          // would give them (per-step cost against S3's).
          if (s.len % 8 != 0) run_single(s, dt, ScanDirections::forward, true, (s.len + 7) / 8 * 8);
          // The same call with u, delta, z and the output (batch, L, D) and B/C (batch, L, G, N),
          // the layout the models' projections produce (token-major rows; chunked launches there
          // take the token-major warp correction, scan_correct.cuh).
          run_single(s, dt, ScanDirections::forward, true, 0, true);
        }
      }
      if (opt_.compositions && wanted("vim")) run_vim(dt);
      if (opt_.compositions && wanted("vmamba") && ctx_.is_cuda())
        for (int n : {16, 1}) run_vmamba(dt, n);
      if (wanted("conv1d")) run_conv1d(dt);
    }
    return out_;
  }

 private:
  Context& ctx_;
  ScanBenchOptions opt_;
  std::vector<ScanBenchResult> out_;
  std::uint64_t seed_ = 0;
  double copy_gbps_ = 0;
  double peak_fma_ = 0;  ///< CPU: FMA lane-operations per second (measure_fma_peak)
  int sms_ = 132;
};

}  // namespace

std::vector<ScanBenchResult> bench_selective_scan(Context& ctx, const ScanBenchOptions& options) {
  Bench bench(ctx, options);
  return bench.run();
}

std::string format_scan_bench(const std::vector<ScanBenchResult>& results) {
  std::ostringstream s;
  char line[512];
  std::snprintf(line, sizeof line, "%-32s %-5s %-28s %9s %9s %8s %9s %7s %9s  %s\n", "name", "dtype", "shape", "ms",
                "MB", "GB/s", "floor ms", "ratio", "official", "note");
  s << line;
  for (const auto& r : results) {
    std::snprintf(line, sizeof line, "%-32s %-5s %-28s %9.4f %9.1f %8.1f %9.4f %7.2f %9.3f  %s\n", r.name.c_str(),
                  r.dtype.c_str(), r.shape.c_str(), r.ms, r.bytes / 1e6, r.gbps, r.floor_ms, r.ratio, r.reference_ms,
                  r.note.c_str());
    s << line;
  }
  return s.str();
}

}  // namespace mcv::kernels
