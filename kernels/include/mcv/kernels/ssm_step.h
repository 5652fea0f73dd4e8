#pragma once
/// \file
/// Single-token recurrent updates of the selective state space (generation with a cached state):
/// Mamba-1 (`selective_state_update`, A per channel and state index) and Mamba-2 (the same with
/// heads: A one scalar per head, B/C shared by the heads of a group).
///
/// Math, per batch b, channel (Mamba-1: d; Mamba-2: head h and head dim p), state index n;
/// channel/head i reads group g = i / (channels_or_heads / G) of B and C:
///   dt     = dt_raw + dt_bias                           (dt_bias optional)
///   dt     = softplus(dt)                               (optional; x for x > 20, as PyTorch)
///   dt     = clamp(dt, dt_min, dt_max)                  (only when (dt_min, dt_max) != (0, inf),
///                                                        as mamba_ssm's dt_limit)
///   state[n] = exp(dt * A[..n]) * state[n] + dt * B[g, n] * x
///   y      = sum_n C[g, n] * state[n] + D * x           (D optional)
///   out    = y * silu(z)                                (z optional)
///
/// Dtypes: x, dt, B, C, z and out share one I/O dtype (f32, f16 or bf16); the state, A, D and
/// dt_bias are f32 (kept in f32 whatever the model dtype). Accumulation is f32.

#include <limits>

#include "mcv/context.h"
#include "mcv/tensor.h"

namespace mcv::kernels {

/// dt post-processing shared by the step updates and the SSD scan.
struct DtOptions {
  bool softplus = false;
  /// Clamp after softplus; the default (0, inf) means no clamp, as in mamba_ssm.
  float dt_min = 0.0f;
  float dt_max = std::numeric_limits<float>::infinity();
};

/// Mamba-1 step. Every tensor may have any strides.
struct SelectiveStateUpdateArgs {
  Tensor state;    ///< (batch, D, N) f32, read and updated in place
  Tensor x;        ///< (batch, D)
  Tensor dt;       ///< (batch, D), before bias/softplus
  Tensor A;        ///< (D, N) f32 (negative: A = -exp(A_log))
  Tensor B;        ///< (batch, N) or grouped (batch, G, N), G divides D
  Tensor C;        ///< same shape as B
  Tensor D;        ///< (D) f32 or undefined
  Tensor z;        ///< (batch, D) or undefined
  Tensor dt_bias;  ///< (D) f32 or undefined
  DtOptions dt_options;
  Tensor out;      ///< (batch, D); must not overlap state (x or z themselves are fine)
};

/// Runs on ctx's device (on CUDA: queued on the context's stream, asynchronous; no allocation).
/// Throws mcv::Error before any work when a shape, dtype, device or option is not supported.
void selective_state_update(Context& ctx, const SelectiveStateUpdateArgs& args);

/// Mamba-2 step. Every tensor may have any strides.
struct Mamba2StateUpdateArgs {
  Tensor state;    ///< (batch, H, P, N) f32, read and updated in place
  Tensor x;        ///< (batch, H, P)
  Tensor dt;       ///< (batch, H), before bias/softplus/clamp
  Tensor A;        ///< (H) f32
  Tensor B;        ///< (batch, G, N), G divides H
  Tensor C;        ///< (batch, G, N)
  Tensor D;        ///< (H) or (H, P) f32, or undefined
  Tensor z;        ///< (batch, H, P) or undefined
  Tensor dt_bias;  ///< (H) f32 or undefined
  DtOptions dt_options;
  Tensor out;      ///< (batch, H, P); must not overlap state
};

/// Same device, validation and asynchrony rules as selective_state_update.
void mamba2_state_update(Context& ctx, const Mamba2StateUpdateArgs& args);

}  // namespace mcv::kernels
