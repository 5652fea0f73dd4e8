// Validation of SelectiveScanArgs and routing by device. Everything a backend could trip over is
// rejected here, before any work is queued, with the tensor's name in the message.

#include "mcv/kernels/selective_scan.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "mcv/error.h"
#include "selective_scan/cpu.h"
#include "selective_scan/scan_problem.h"

namespace mcv::kernels {

#if MCV_HAVE_CUDA
namespace scan {
void run_cuda(Context& ctx, const Problem& p);  // cuda/launch.cu
}
#endif

int scan_direction_count(ScanDirections directions) {
  switch (directions) {
    case ScanDirections::forward: return 1;
    case ScanDirections::reverse: return 1;
    case ScanDirections::bidirectional: return 2;
    case ScanDirections::cross2d: return 4;
  }
  throw Error("selective_scan: directions", "unknown direction mode " +
                                                std::to_string(static_cast<int>(directions)));
}

const char* scan_directions_name(ScanDirections directions) {
  switch (directions) {
    case ScanDirections::forward: return "forward";
    case ScanDirections::reverse: return "reverse";
    case ScanDirections::bidirectional: return "bidirectional";
    case ScanDirections::cross2d: return "cross2d";
  }
  return "unknown";
}

namespace {

using scan::Problem;

std::string subject(const char* name) { return std::string("selective_scan: ") + name; }

[[noreturn]] void fail(const char* name, const std::string& problem) {
  throw Error(subject(name), problem);
}

std::string shape_of(const Tensor& t) { return shape_str(t.shape()) + " " + dtype_name(t.dtype()); }

void check_device(const Context& ctx, const Tensor& t, const char* name) {
  if (!(t.device() == ctx.device()))
    fail(name, "is on " + t.device().str() + " but the context runs on " + ctx.device().str());
}

/// Byte range [lo, hi) a tensor's elements can touch.
std::pair<std::uintptr_t, std::uintptr_t> byte_span(const Tensor& t) {
  const auto base = reinterpret_cast<std::uintptr_t>(t.raw_data());
  std::int64_t last = 0;
  for (int i = 0; i < t.dim(); ++i) last += (t.size(i) - 1) * t.stride(i);
  return {base, base + static_cast<std::uintptr_t>(last + 1) * t.element_size()};
}

bool overlaps(const Tensor& a, const Tensor& b) {
  const auto x = byte_span(a), y = byte_span(b);
  return x.first < y.second && y.first < x.second;
}

/// Sufficient condition for an output to have no two elements at one address.
void check_non_overlapping(const Tensor& t, const char* name) {
  std::vector<std::pair<std::int64_t, std::int64_t>> dims;  // (stride, extent)
  for (int i = 0; i < t.dim(); ++i)
    if (t.size(i) > 1) dims.emplace_back(t.stride(i), t.size(i));
  std::sort(dims.begin(), dims.end());
  std::int64_t reach = 0;  // largest offset reachable with the dims so far
  for (const auto& [stride, extent] : dims) {
    if (stride <= reach) fail(name, "has overlapping strides (an output must not alias itself)");
    reach += stride * (extent - 1);
  }
}

void check_extent_fits(std::int64_t v, const char* name) {
  if (v > std::numeric_limits<std::int32_t>::max())
    fail(name, "extent " + std::to_string(v) + " is above the supported 2^31-1");
}

/// Tensor of the I/O dtype holding per-step channel values, logical (batch, D, L); rank 4
/// (batch, D, H, W) is merged when cross2d. Returns (sb, sd, sl).
scan::SeqView seq_view(const Tensor& t, const char* name, const Problem& p, bool allow_grid) {
  scan::SeqView v;
  v.data = t.raw_data();
  if (t.dim() == 3) {
    if (t.size(0) != p.batch || t.size(1) != p.dim || t.size(2) != p.seqlen)
      fail(name, "has shape " + shape_of(t) + ", expected [" + std::to_string(p.batch) + ", " +
                     std::to_string(p.dim) + ", " + std::to_string(p.seqlen) + "]");
    v.sb = t.stride(0);
    v.sd = t.stride(1);
    v.sl = t.stride(2);
    return v;
  }
  if (t.dim() == 4 && allow_grid) {
    if (t.size(0) != p.batch || t.size(1) != p.dim || t.size(2) != p.height || t.size(3) != p.width)
      fail(name, "has shape " + shape_of(t) + ", expected [" + std::to_string(p.batch) + ", " +
                     std::to_string(p.dim) + ", " + std::to_string(p.height) + ", " +
                     std::to_string(p.width) + "]");
    const std::int64_t sh = t.stride(2), sw = t.stride(3);
    if (p.height > 1 && p.width > 1 && sh != p.width * sw)
      fail(name, "grid strides (H " + std::to_string(sh) + ", W " + std::to_string(sw) +
                     ") do not merge into one sequence axis (need stride_H == W * stride_W)");
    v.sb = t.stride(0);
    v.sd = t.stride(1);
    v.sl = p.width > 1 ? sw : sh;
    return v;
  }
  fail(name, "has shape " + shape_of(t) + ", expected rank 3 (batch, D, L)" +
                 std::string(allow_grid ? " or rank 4 (batch, D, H, W)" : ""));
}

void check_io_dtype(const Tensor& t, const char* name, DType want) {
  if (t.dtype() != want)
    fail(name, std::string("has dtype ") + dtype_name(t.dtype()) + ", expected " + dtype_name(want) +
                   " (u, delta, B, C, z and out share one dtype)");
}

void check_f32(const Tensor& t, const char* name) {
  if (t.dtype() != DType::f32)
    fail(name, std::string("has dtype ") + dtype_name(t.dtype()) + ", expected f32");
}

/// (K*D) or (K, D) f32 vector.
scan::VecView vec_view(const Tensor& t, const char* name, const Problem& p) {
  check_f32(t, name);
  const std::int64_t kd = p.dirs * p.dim;
  scan::VecView v;
  v.data = t.data<float>();
  if (t.dim() == 1 && t.size(0) == kd) {
    v.s = t.stride(0);
  } else if (t.dim() == 2 && t.size(0) == p.dirs && t.size(1) == p.dim) {
    if (p.dirs > 1 && p.dim > 1 && t.stride(0) != p.dim * t.stride(1))
      fail(name, "strides " + shape_str(t.strides()) + " do not merge (K, D) into one axis");
    v.s = t.stride(1);
  } else {
    fail(name, "has shape " + shape_of(t) + ", expected [" + std::to_string(kd) + "] (K*D) or [" +
                   std::to_string(p.dirs) + ", " + std::to_string(p.dim) + "]");
  }
  return v;
}

/// States: (batch, D, N) when K == 1, or (batch, K, D, N).
scan::StateView state_view(const Tensor& t, const char* name, const Problem& p) {
  check_f32(t, name);
  scan::StateView v;
  v.data = t.data<float>();
  const std::string want4 = "[" + std::to_string(p.batch) + ", " + std::to_string(p.dirs) + ", " +
                            std::to_string(p.dim) + ", " + std::to_string(p.n_state) + "]";
  if (t.dim() == 3 && p.dirs == 1) {
    if (t.size(0) != p.batch || t.size(1) != p.dim || t.size(2) != p.n_state)
      fail(name, "has shape " + shape_of(t) + ", expected [" + std::to_string(p.batch) + ", " +
                     std::to_string(p.dim) + ", " + std::to_string(p.n_state) + "]");
    v.sb = t.stride(0);
    v.sk = 0;
    v.sd = t.stride(1);
    v.sn = t.stride(2);
  } else if (t.dim() == 4) {
    if (t.size(0) != p.batch || t.size(1) != p.dirs || t.size(2) != p.dim || t.size(3) != p.n_state)
      fail(name, "has shape " + shape_of(t) + ", expected " + want4);
    v.sb = t.stride(0);
    v.sk = t.stride(1);
    v.sd = t.stride(2);
    v.sn = t.stride(3);
  } else {
    fail(name, "has shape " + shape_of(t) + ", expected " + want4 +
                   (p.dirs == 1 ? " or (batch, D, N)" : ""));
  }
  return v;
}

/// B or C: fixed (K*D, N), variable (batch, N, L) or (batch, K*G, N, L). Sets the group count.
scan::BcView bc_view(const Tensor& t, const char* name, const Problem& p, std::int64_t* groups) {
  scan::BcView v;
  v.data = t.raw_data();
  const std::int64_t kd = p.dirs * p.dim;
  if (t.dim() == 2) {
    if (t.size(0) != kd || t.size(1) != p.n_state)
      fail(name, "(fixed) has shape " + shape_of(t) + ", expected [" + std::to_string(kd) + ", " +
                     std::to_string(p.n_state) + "] (K*D, N)");
    v.variable = false;
    v.sg = t.stride(0);
    v.sn = t.stride(1);
    *groups = 0;
    return v;
  }
  if (t.dim() == 3) {
    if (p.dirs != 1)
      fail(name, "has shape " + shape_of(t) + ": with " + std::to_string(p.dirs) +
                     " directions B/C need a direction axis, (batch, K*G, N, L)");
    if (t.size(0) != p.batch || t.size(1) != p.n_state || t.size(2) != p.seqlen)
      fail(name, "has shape " + shape_of(t) + ", expected [" + std::to_string(p.batch) + ", " +
                     std::to_string(p.n_state) + ", " + std::to_string(p.seqlen) + "] (batch, N, L)");
    v.sb = t.stride(0);
    v.sg = 0;
    v.sn = t.stride(1);
    v.sl = t.stride(2);
    *groups = 1;
    return v;
  }
  if (t.dim() == 4) {
    const std::int64_t gk = t.size(1);
    if (t.size(0) != p.batch || t.size(2) != p.n_state || t.size(3) != p.seqlen || gk < 1 ||
        gk % p.dirs != 0)
      fail(name, "has shape " + shape_of(t) + ", expected [" + std::to_string(p.batch) + ", K*G, " +
                     std::to_string(p.n_state) + ", " + std::to_string(p.seqlen) + "] with K = " +
                     std::to_string(p.dirs));
    const std::int64_t g = gk / p.dirs;
    if (p.dim % g != 0)
      fail(name, std::to_string(g) + " groups per direction do not divide D = " +
                     std::to_string(p.dim));
    v.sb = t.stride(0);
    v.sg = t.stride(1);
    v.sn = t.stride(2);
    v.sl = t.stride(3);
    *groups = g;
    return v;
  }
  fail(name, "has shape " + shape_of(t) + ", expected (K*D, N), (batch, N, L) or (batch, K*G, N, L)");
}

}  // namespace

namespace scan {

Problem make_problem(const Context& ctx, const SelectiveScanArgs& a) {
  Problem p;
  p.dirs = scan_direction_count(a.directions);
  p.directions = a.directions;
  p.softplus = a.delta_softplus;
  if (!std::isfinite(a.out_scale)) fail("out_scale", "must be finite");
  p.out_scale = a.out_scale;
  const bool grid = a.directions == ScanDirections::cross2d;
  if (a.column_inputs_transposed && !grid)
    fail("column_inputs_transposed", std::string("applies to cross2d only (directions: ") +
                                         scan_directions_name(a.directions) + ")");
  p.cols_transposed = a.column_inputs_transposed;

  // u fixes batch, D, L and the dtype.
  if (!a.u.defined()) fail("u", "is required");
  check_device(ctx, a.u, "u");
  p.dtype = a.u.dtype();
  if (p.dtype != DType::f32 && p.dtype != DType::f16 && p.dtype != DType::bf16)
    fail("u", std::string("has dtype ") + dtype_name(p.dtype) + "; supported: f32, f16, bf16");
  if (a.u.dim() == 4 && grid) {
    p.batch = a.u.size(0);
    p.dim = a.u.size(1);
    p.height = a.u.size(2);
    p.width = a.u.size(3);
    if ((a.height && a.height != p.height) || (a.width && a.width != p.width))
      fail("height/width", "(" + std::to_string(a.height) + ", " + std::to_string(a.width) +
                               ") disagree with u's grid " + shape_of(a.u));
    p.seqlen = p.height * p.width;
  } else if (a.u.dim() == 4 && a.directions == ScanDirections::bidirectional) {
    // One input per direction (Vim's backward branch has its own conv1d): (batch, 2, D, L).
    if (a.u.size(1) != 2)
      fail("u", "has shape " + shape_of(a.u) + ": a per-direction u for bidirectional is (batch, 2, D, L)");
    p.batch = a.u.size(0);
    p.dim = a.u.size(2);
    p.seqlen = a.u.size(3);
  } else if (a.u.dim() == 3) {
    p.batch = a.u.size(0);
    p.dim = a.u.size(1);
    p.seqlen = a.u.size(2);
    if (grid) {
      if (a.height < 1 || a.width < 1 || a.height * a.width != p.seqlen)
        fail("height/width", "cross2d needs height * width == L (" + std::to_string(a.height) +
                                 " x " + std::to_string(a.width) + " vs L = " +
                                 std::to_string(p.seqlen) + "), or u of rank 4");
      p.height = a.height;
      p.width = a.width;
    }
  } else {
    fail("u", "has shape " + shape_of(a.u) + ", expected (batch, D, L)" +
                  std::string(grid ? " or (batch, D, H, W)" : "") +
                  std::string(a.directions == ScanDirections::bidirectional ? " or (batch, 2, D, L)" : ""));
  }
  if (p.batch < 1 || p.dim < 1 || p.seqlen < 1)
    fail("u", "is empty (" + shape_of(a.u) + "); batch, D and L must be >= 1");
  check_extent_fits(p.batch, "u (batch)");
  check_extent_fits(p.dim * p.dirs, "u (D * directions)");
  check_extent_fits(p.seqlen, "u (L)");

  // A fixes N.
  if (!a.A.defined()) fail("A", "is required");
  check_device(ctx, a.A, "A");
  check_f32(a.A, "A");
  const std::int64_t kd = p.dirs * p.dim;
  if (a.A.dim() == 2 && a.A.size(0) == kd) {
    p.n_state = a.A.size(1);
    p.A = {a.A.data<float>(), a.A.stride(0), a.A.stride(1)};
  } else if (a.A.dim() == 3 && a.A.size(0) == p.dirs && a.A.size(1) == p.dim) {
    if (p.dirs > 1 && p.dim > 1 && a.A.stride(0) != p.dim * a.A.stride(1))
      fail("A", "strides " + shape_str(a.A.strides()) + " do not merge (K, D) into one axis");
    p.n_state = a.A.size(2);
    p.A = {a.A.data<float>(), a.A.stride(1), a.A.stride(2)};
  } else {
    fail("A", "has shape " + shape_of(a.A) + ", expected [" + std::to_string(kd) + ", N] (K*D, N) or [" +
                  std::to_string(p.dirs) + ", " + std::to_string(p.dim) + ", N]");
  }
  if (p.n_state < 1 || p.n_state > kSelectiveScanMaxState)
    fail("A", "state size N = " + std::to_string(p.n_state) + " is outside 1.." +
                  std::to_string(kSelectiveScanMaxState));

  if (a.u.dim() == 4 && !grid) {
    p.u = {a.u.raw_data(), a.u.stride(0), a.u.stride(1), a.u.stride(2), a.u.stride(3)};
  } else {
    p.u = seq_view(a.u, "u", p, grid);
  }

  if (!a.delta.defined()) fail("delta", "is required");
  check_device(ctx, a.delta, "delta");
  check_io_dtype(a.delta, "delta", p.dtype);
  {
    const Tensor& t = a.delta;
    const std::string want = p.dirs == 1
        ? "[" + std::to_string(p.batch) + ", " + std::to_string(p.dim) + ", " + std::to_string(p.seqlen) + "]"
        : "[" + std::to_string(p.batch) + ", " + std::to_string(p.dirs) + ", " + std::to_string(p.dim) +
              ", " + std::to_string(p.seqlen) + "]";
    p.delta.data = t.raw_data();
    if (t.dim() == 3 && p.dirs == 1 && t.size(0) == p.batch && t.size(1) == p.dim &&
        t.size(2) == p.seqlen) {
      p.delta.sb = t.stride(0);
      p.delta.sd = t.stride(1);
      p.delta.sl = t.stride(2);
    } else if (t.dim() == 4 && t.size(0) == p.batch && t.size(1) == p.dirs && t.size(2) == p.dim &&
               t.size(3) == p.seqlen) {
      p.delta.sb = t.stride(0);
      p.delta.sk = t.stride(1);
      p.delta.sd = t.stride(2);
      p.delta.sl = t.stride(3);
    } else {
      fail("delta", "has shape " + shape_of(t) + ", expected " + want);
    }
  }

  std::int64_t gb = 0, gc = 0;
  for (const auto& [t, name] : {std::pair{&a.B, "B"}, std::pair{&a.C, "C"}}) {
    if (!t->defined()) fail(name, "is required");
    check_device(ctx, *t, name);
    check_io_dtype(*t, name, p.dtype);
  }
  p.B = bc_view(a.B, "B", p, &gb);
  p.C = bc_view(a.C, "C", p, &gc);
  if (gb && gc && gb != gc)
    fail("B/C", "have different group counts (" + std::to_string(gb) + " and " +
                    std::to_string(gc) + " per direction)");
  p.groups = std::max<std::int64_t>({gb, gc, 1});

  if (a.D.defined()) {
    check_device(ctx, a.D, "D");
    p.D = vec_view(a.D, "D", p);
  }
  if (a.delta_bias.defined()) {
    check_device(ctx, a.delta_bias, "delta_bias");
    p.bias = vec_view(a.delta_bias, "delta_bias", p);
  }
  if (a.z.defined()) {
    check_device(ctx, a.z, "z");
    check_io_dtype(a.z, "z", p.dtype);
    p.z = seq_view(a.z, "z", p, grid);
  }
  if (a.initial_state.defined()) {
    check_device(ctx, a.initial_state, "initial_state");
    p.h0 = state_view(a.initial_state, "initial_state", p);
  }

  // Outputs.
  if (!a.out.defined()) fail("out", "is required");
  check_device(ctx, a.out, "out");
  check_io_dtype(a.out, "out", p.dtype);
  p.out = seq_view(a.out, "out", p, grid);
  check_non_overlapping(a.out, "out");
  std::vector<std::pair<const Tensor*, const char*>> inputs = {
      {&a.u, "u"}, {&a.delta, "delta"}, {&a.A, "A"}, {&a.B, "B"}, {&a.C, "C"}, {&a.D, "D"},
      {&a.z, "z"}, {&a.delta_bias, "delta_bias"}, {&a.initial_state, "initial_state"}};
  for (const auto& [t, name] : inputs)
    if (t->defined() && overlaps(a.out, *t))
      fail("out", std::string("overlaps input ") + name + " (the scan does not run in place)");
  if (a.final_state.defined()) {
    check_device(ctx, a.final_state, "final_state");
    p.hT = state_view(a.final_state, "final_state", p);
    check_non_overlapping(a.final_state, "final_state");
    for (const auto& [t, name] : inputs)
      if (t->defined() && overlaps(a.final_state, *t))
        fail("final_state", std::string("overlaps input ") + name);
    if (overlaps(a.final_state, a.out)) fail("final_state", "overlaps out");
  }
  return p;
}

}  // namespace scan

void selective_scan(Context& ctx, const SelectiveScanArgs& args) {
  const scan::Problem p = scan::make_problem(ctx, args);
  if (ctx.device().is_cpu()) {
    scan::run_cpu(ctx, p, scan::default_cpu_isa());
    return;
  }
#if MCV_HAVE_CUDA
  scan::run_cuda(ctx, p);
#else
  throw Error("selective_scan", "this build has no CUDA support (context on " + ctx.device().str() + ")");
#endif
}

namespace scan {

void selective_scan_with_isa(Context& ctx, const SelectiveScanArgs& args, CpuIsa isa) {
  if (!ctx.device().is_cpu()) throw Error("selective_scan_with_isa", "needs a CPU context");
  run_cpu(ctx, make_problem(ctx, args), isa);
}

}  // namespace scan
}  // namespace mcv::kernels
