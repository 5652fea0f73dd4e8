#pragma once
/// \file
/// Mamba-2 SSD scan over a whole sequence (mamba_chunk_scan_combined without seq_idx/cu_seqlens).
///
/// Math, per batch b, head h (group g = h / (H / G)), head dim p, state index n, step t:
///   dt_t = clamp(softplus(dt_raw_t + dt_bias[h]))         (each part optional, see DtOptions)
///   h_t[p, n] = exp(dt_t * A[h]) * h_{t-1}[p, n] + dt_t * x_t[p] * B_t[g, n]
///   y_t[p]    = sum_n C_t[g, n] * h_t[p, n] + D[h(, p)] * x_t[p]
///   out_t[p]  = y_t[p] * silu(z_t[p])                      (z optional)
/// with h_{-1} = initial_states (or zero); final_states = h_{L-1}.
///
/// The CUDA path uses the chunked (SSD) algorithm: chunk states, state passing between chunks,
/// then the intra-chunk quadratic form plus the inter-chunk term. The CPU path runs the
/// recurrence directly, vectorised over the head dim; both compute the function above, so the
/// result does not depend on chunk_size beyond rounding. Any L >= 1 works (no multiple of
/// chunk_size needed).
///
/// Dtypes: x, dt, B, C, z and out share one I/O dtype (f32, f16 or bf16); A, D, dt_bias and the
/// states are f32. Accumulation is f32. CUDA scratch comes from ctx.workspace() (the caller
/// resets it between passes).

#include "mcv/context.h"
#include "mcv/kernels/ssm_step.h"
#include "mcv/tensor.h"

namespace mcv::kernels {

struct SsdArgs {
  /// Token-major tensors: the innermost dimension (P or N) must have stride 1; the others may
  /// have any stride (e.g. views into the fused in_proj / conv output).
  Tensor x;               ///< (batch, L, H, P)
  Tensor dt;              ///< (batch, L, H), any strides
  Tensor A;               ///< (H) f32
  Tensor B;               ///< (batch, L, G, N), G divides H
  Tensor C;               ///< (batch, L, G, N)
  Tensor D;               ///< (H) or (H, P) f32, or undefined
  Tensor z;               ///< (batch, L, H, P) or undefined
  Tensor dt_bias;         ///< (H) f32 or undefined
  DtOptions dt_options;
  Tensor initial_states;  ///< (batch, H, P, N) f32 contiguous, or undefined (zeros)
  Tensor final_states;    ///< (batch, H, P, N) f32 contiguous output, or undefined
  /// Tokens per chunk of the CUDA algorithm, in [1, 1024] (mamba_ssm uses 256; the
  /// transformers Mamba-2 configs name it chunk_size).
  int chunk_size = 256;
  /// (batch, L, H, P), innermost stride 1; must not overlap any input.
  Tensor out;
};

/// Runs on ctx's device (on CUDA: queued on the context's stream, asynchronous). Throws
/// mcv::Error before any work when a shape, dtype, stride, device or option is not supported.
void ssd_chunk_scan(Context& ctx, const SsdArgs& args);

}  // namespace mcv::kernels
