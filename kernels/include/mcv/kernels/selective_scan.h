#pragma once
/// \file
/// Mamba-1 selective scan (S6), the function of state-spaces/mamba `selective_scan_ref`, with the
/// scan directions that vision models use fused in one call (no flipped or transposed copies).
///
/// Per batch b, direction k, channel d (in group g = d / (D / G)), step t and state n:
/// ```
///   dt_t   = softplus(delta_t + delta_bias[d])      (bias and softplus optional; softplus(x) =
///                                                    log1p(exp(x)), x > 20 -> x, as torch)
///   h_t[n] = exp(dt_t * A[d, n]) * h_{t-1}[n] + dt_t * B_t[n] * u_t       (h_0 = 0 or given)
///   y_t    = sum_n C_t[n] * h_t[n] + D[d] * u_t
///   out    = out_scale * (sum over directions of y, at natural positions) * silu(z)   (z optional)
/// ```
/// State and accumulation are float32 whatever the I/O dtype.
///
/// Directions are index maps over one input ("step t" visits position p_k(t)):
///  - forward (K = 1): p(t) = t;  reverse (K = 1): p(t) = L-1-t.
///  - bidirectional (K = 2, Vim "v2"): k = 0 forward, k = 1 reverse, each with its own delta, A,
///    B, C, D and delta_bias; z is shared and read at the natural position. Equal to the official
///    flip -> scan -> flip composition; out_scale = 0.5 gives Vim's "div2" variants.
///  - cross2d (K = 4, VMamba SS2D): u is an H x W grid, L = H*W in row-major grid order. k = 0
///    row-major, 1 column-major, 2 reverse of 0, 3 reverse of 1 (VMamba's CrossScan order). Every
///    per-position input (delta, B, C) is given in GRID order, so projections computed once on the
///    grid feed the kernel as they are; out is the cross-merged sum at grid positions. Or, with
///    `column_inputs_transposed`, the column orders' delta, B and C (k = 1, 3) column-major, as
///    a projection of the column-major copy of u gives them (the official xs[1] order).
///
/// Parameters for K directions are stacked as VMamba stacks them: A is (K*D, N) with row k*D + d,
/// D and delta_bias are (K*D) (or (K, D)), and B/C of shape (batch, K*G, N, L) give direction k
/// group g at index k*G + g. For K = 1 this is exactly the official argument layout.
///
/// Layouts: every tensor is described by its logical shape and any element strides (views work:
/// a token-major (batch, L, D) tensor is passed as `x.transpose(1, 2)`; a (batch, L, G, N) B as
/// `b.permute({0, 2, 3, 1})`). The fast layouts are channel-major (L contiguous) and token-major
/// (D contiguous); others run correctly but slower. cross2d on CUDA over a channel-major grid
/// copies the column orders' u, delta, B and C once, each H x W plane transposed, to workspace
/// scratch, so that every direction streams channel rows; a token-major grid is read in place
/// (VMamba SS2D at 64 x 192 x 56 x 56, N 16, bf16, H100: 1.28 ms channel-major, 1.16 with
/// `column_inputs_transposed`, 1.94 ms token-major; N 1: 0.68 / 0.58 / 0.93 ms).

#include <cstdint>

#include "mcv/context.h"
#include "mcv/tensor.h"

namespace mcv::kernels {

/// Largest state size N the op accepts.
constexpr std::int64_t kSelectiveScanMaxState = 256;

enum class ScanDirections {
  forward,        ///< K = 1
  reverse,        ///< K = 1, scanned L-1 .. 0, outputs at their natural positions
  bidirectional,  ///< K = 2: forward + reverse, outputs summed (Vim v2)
  cross2d,        ///< K = 4: VMamba cross-scan, outputs cross-merged
};

/// Number of directions K of a mode (1, 1, 2 or 4).
int scan_direction_count(ScanDirections directions);
const char* scan_directions_name(ScanDirections directions);

/// Arguments of one selective scan. Shapes below use K (directions), D (channels), L (steps),
/// N (state size, <= 256), G (groups per direction of B/C; D % G == 0). Optional tensors are left
/// undefined (`Tensor()`). u, delta, B, C, z and out share one dtype (f32, f16 or bf16); A, D,
/// delta_bias and the states are f32. All tensors live on the context's device.
struct SelectiveScanArgs {
  /// (batch, D, L). cross2d: also (batch, D, H, W) when H and W merge (stride_H == W*stride_W),
  /// e.g. an NCHW tensor or an NHWC one passed as `x.permute({0, 3, 1, 2})`. bidirectional: also
  /// (batch, 2, D, L), a separate input per direction (Vim's backward branch convolves its own).
  Tensor u;
  /// K = 1: (batch, D, L) (or (batch, 1, D, L)); K > 1: (batch, K, D, L). Natural / grid order.
  Tensor delta;
  /// (K*D, N) or (K, D, N), f32 (real A; models pass -exp(A_log)).
  Tensor A;
  /// Variable: (batch, K*G, N, L), or (batch, N, L) when K*G == 1. Input-independent ("fixed"):
  /// (K*D, N) in the I/O dtype. Natural / grid order like delta.
  Tensor B;
  Tensor C;  ///< Same forms as B (each of B and C may independently be fixed or variable).
  Tensor D;           ///< Optional skip weights, (K*D) or (K, D), f32.
  /// Optional gate, (batch, D, L) (or u's grid shape), read at natural positions. Non-finite
  /// gates give non-finite outputs; where CUDA splits a long sequence into L-chunks (few
  /// channels), a chunk's outputs are gated once and corrected after, g y1 + g dy, so a +inf
  /// gate (z = +inf) can give NaN where the one-pass g (y1 + dy) is an infinity.
  Tensor z;
  Tensor delta_bias;  ///< Optional, (K*D) or (K, D), f32.
  /// Optional h_0: (batch, D, N) when K = 1, else (batch, K, D, N); f32.
  Tensor initial_state;

  bool delta_softplus = false;
  ScanDirections directions = ScanDirections::forward;
  /// cross2d grid size when u is given as (batch, D, L); derived from a rank-4 u otherwise.
  std::int64_t height = 0, width = 0;
  /// Multiplies the summed outputs (before the z gate, which is linear in it).
  float out_scale = 1.0f;
  /// cross2d only: delta's slices k = 1, 3 and B/C's groups of those directions hold grid
  /// position (h, w) at index w * H + h along L (each H x W plane stored transposed, W x H), the
  /// order the column directions walk the grid in (k = 3 backwards); k = 0, 2 stay in grid
  /// order. This is the official composition's order for those inputs (its projection runs on
  /// the cross-scanned copies; only k = 3's flip differs), and it spares CUDA's channel-major
  /// path the transposed copies of them: only u's column order is copied (H100, VMamba SS2D,
  /// see docs/PERFORMANCE.md). Paths that read the grid in place copy them back to grid order.
  bool column_inputs_transposed = false;

  /// Output, (batch, D, L) (or u's grid shape), u's dtype (any non-overlapping strides; must not
  /// overlap an input). Where CUDA splits a long sequence into L-chunks, each chunk's carried-in
  /// state is decayed only until it is below 1/16 of the output type's rounding of the
  /// channel's largest carried state (2^-28 f32, 2^-15 f16, 2^-12 bf16); the outputs it would
  /// still change are left as they are.
  Tensor out;
  /// Optional output h_L of every direction: (batch, D, N) when K = 1, else (batch, K, D, N); f32.
  Tensor final_state;
};

/// Runs the scan on the context's device (CPU thread pool or the context's CUDA stream). Every
/// shape, dtype, stride and device is validated first: anything unsupported throws mcv::Error
/// before any work is queued. On CUDA the call is asynchronous and allocates scratch (long
/// sequences, several directions, the transposed copies of channel-major cross2d streams) only
/// from `ctx.workspace()`.
void selective_scan(Context& ctx, const SelectiveScanArgs& args);

}  // namespace mcv::kernels
