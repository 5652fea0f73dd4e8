#pragma once
// Shared pieces of the selective-scan tests: a case description, random inputs in the layouts
// the op supports, a float64 reference written straight from the math, and comparisons.

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "mcv/kernels/selective_scan.h"
#include "mcv/tensor.h"

namespace mcv::test::scan {

using kernels::ScanDirections;
using kernels::SelectiveScanArgs;

enum class Layout {
  channel_major,  ///< u (batch, D, L), delta (batch, K, D, L), B (batch, K*G, N, L), contiguous
  token_major,    ///< u (batch, L, D), delta (batch, L, K, D), B (batch, L, K*G, N), as views
  padded,         ///< L-contiguous rows with odd padding; B (batch, N, K*G, L) permuted
  gather,         ///< nothing contiguous: every stride > 1 (the generic gather paths)
};

struct ScanCase {
  std::int64_t batch = 2, dim = 6, seqlen = 33, n_state = 16, groups = 1;
  DType dtype = DType::f32;
  ScanDirections dirs = ScanDirections::forward;
  std::int64_t height = 0, width = 0;  ///< cross2d grid (seqlen = height * width)
  bool grid_rank4 = false;             ///< cross2d: pass u/z/out as (batch, D, H, W)
  Layout layout = Layout::channel_major;
  bool has_D = true, has_z = true, has_bias = true, softplus = true;
  bool final_state = true, initial_state = false;
  bool fixed_B = false, fixed_C = false;
  bool rank3_bc = false;  ///< K*G == 1: pass B/C as (batch, N, L)
  bool u_per_dir = false; ///< bidirectional: u as (batch, 2, D, L), one input per direction
  bool cols_transposed = false;  ///< cross2d: column_inputs_transposed (the random inputs read so)
  float scale = 1.0f;
  float a_scale = 1.0f;  ///< multiplies A (small: slow decay, long memory)
  std::uint64_t seed = 1;

  int dirs_count() const { return kernels::scan_direction_count(dirs); }
  std::string name() const;
};

inline void PrintTo(const ScanCase& c, std::ostream* os) { *os << c.name(); }

/// A tensor as stored (contiguous `base`) plus the view the op is given, so a copy to another
/// device keeps the layout.
struct Stored {
  Tensor base;
  std::function<Tensor(const Tensor&)> view;
  Tensor get() const { return base.defined() ? (view ? view(base) : base) : Tensor(); }
  Stored to(Device device) const { return {base.defined() ? base.to(device) : Tensor(), view}; }
};

/// Inputs of one case (in the case's layout and dtype).
struct ScanInputs {
  Stored u, delta, A, B, C, D, z, bias, h0;
  ScanInputs to(Device device) const {
    return {u.to(device), delta.to(device), A.to(device), B.to(device), C.to(device),
            D.to(device), z.to(device), bias.to(device), h0.to(device)};
  }
};

ScanInputs make_inputs(const ScanCase& c);
/// Output (like u) and final-state tensors in the case's layout, filled with NaN.
Stored make_out(const ScanCase& c, Device device);
Stored make_state(const ScanCase& c, Device device);
SelectiveScanArgs make_args(const ScanCase& c, const ScanInputs& in, const Tensor& out,
                            const Tensor& final_state);

/// Float64 reference: out as (batch, D, L) row-major, final states as (batch, K, D, N).
struct Reference {
  std::vector<double> out, state;
};
Reference reference_scan(const SelectiveScanArgs& args);

/// Logical (batch, D, L) values of an output (rank 3 or 4; any strides, any device).
std::vector<double> logical_values(const Tensor& t);

struct Error {
  double max_abs = 0, rel_l2 = 0, ref_max = 0;
  std::int64_t bad = 0;  ///< NaN/Inf where the reference is finite (unwritten elements)
};
Error compare(const std::vector<double>& got, const std::vector<double>& want);

/// Relative L2 tolerance of a dtype's output against the float64 reference.
double tolerance(DType dtype);

/// Replaces z's values with the gate's extremes in turn (+-inf, NaN, +-1e30, -3e38, around -88
/// where exp(-z) leaves the f32 range, and ordinary values), in the case's dtype.
void set_extreme_z(ScanInputs& in, DType dtype);
/// How expect_same_values compares want's NaNs and infinities: the same NaN / infinity, or any
/// non-finite value (L-chunked CUDA scans: see the gate note in selective_scan.h).
enum class NonFinite { exact, any };
/// got against want element by element: non-finite where want is (as `non_finite` says), finite
/// values within tol * max(1, |want|, scale[i]) (scale: empty, or one magnitude per element);
/// want must hold NaNs and infinities.
void expect_same_values(const std::vector<double>& got, const std::vector<double>& want, double tol,
                        NonFinite non_finite = NonFinite::exact, const std::vector<double>& scale = {});

}  // namespace mcv::test::scan
