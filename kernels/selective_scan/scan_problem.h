#pragma once
// The validated, normalised form of SelectiveScanArgs shared by the CPU and CUDA paths: raw
// pointers plus element strides for fixed logical axes, so backends never look at Tensor
// shapes again. Plain data (no CUDA types): the .cu launcher copies it into its params struct.

#include <cstdint>

#include "mcv/dtype.h"
#include "mcv/kernels/selective_scan.h"

namespace mcv::kernels::scan {

/// Per-step channel stream: u, z, out (logical (batch, D, L)) and delta (batch, K, D, L).
struct SeqView {
  void* data = nullptr;
  std::int64_t sb = 0, sk = 0, sd = 0, sl = 0;
};

/// B or C. Variable: (batch, K*G, N, L) with sg over the combined group index k*G + g.
/// Fixed: (K*D, N), sb = sl = 0, sg = stride over the channel row k*D + d.
struct BcView {
  void* data = nullptr;
  bool variable = true;
  std::int64_t sb = 0, sg = 0, sn = 0, sl = 0;
};

/// A (K*D, N) f32: row k*D + d.
struct MatView {
  const float* data = nullptr;
  std::int64_t sc = 0, sn = 0;
};

/// D or delta_bias (K*D) f32; data null when absent.
struct VecView {
  const float* data = nullptr;
  std::int64_t s = 0;
};

/// Initial / final states (batch, K, D, N) f32; data null when absent.
struct StateView {
  float* data = nullptr;
  std::int64_t sb = 0, sk = 0, sd = 0, sn = 0;
};

struct Problem {
  DType dtype = DType::f32;
  std::int64_t batch = 0, dim = 0, seqlen = 0, n_state = 0;
  std::int64_t groups = 1;  ///< G per direction
  int dirs = 1;             ///< K
  ScanDirections directions = ScanDirections::forward;
  std::int64_t height = 0, width = 0;  ///< cross2d only
  /// cross2d: delta, B and C of the column directions stored column-major
  /// (SelectiveScanArgs::column_inputs_transposed).
  bool cols_transposed = false;
  bool softplus = false;
  float out_scale = 1.0f;

  SeqView u, delta, z, out;  ///< z.data null when absent
  BcView B, C;
  MatView A;
  VecView D, bias;
  StateView h0, hT;

  std::int64_t channels_per_group() const { return dim / groups; }
};

/// Whether direction k of the mode visits its sequence backwards (before any transpose).
inline bool dir_flipped(ScanDirections mode, int k) {
  switch (mode) {
    case ScanDirections::forward: return false;
    case ScanDirections::reverse: return true;
    case ScanDirections::bidirectional: return k == 1;
    case ScanDirections::cross2d: return k >= 2;
  }
  return false;
}

/// Whether direction k walks the grid column by column.
inline bool dir_transposed(ScanDirections mode, int k) {
  return mode == ScanDirections::cross2d && (k & 1);
}

/// Natural (grid) position visited at step t by direction k.
inline std::int64_t dir_position(const Problem& p, int k, std::int64_t t) {
  if (dir_flipped(p.directions, k)) t = p.seqlen - 1 - t;
  if (dir_transposed(p.directions, k)) return (t % p.height) * p.width + t / p.height;
  return t;
}

/// Index along L at which direction k's per-position inputs (delta, B, C) hold step t: the
/// grid position, or for column directions given column-major (Problem::cols_transposed) the
/// step itself (counted back for k = 3).
inline std::int64_t dir_input_position(const Problem& p, int k, std::int64_t t) {
  if (p.cols_transposed && dir_transposed(p.directions, k)) return dir_flipped(p.directions, k) ? p.seqlen - 1 - t : t;
  return dir_position(p, k, t);
}

}  // namespace mcv::kernels::scan
