#pragma once
/// \file
/// Depthwise 1D convolution over a sequence (Mamba / Vim causal conv, MambaVision 'same' conv),
/// with optional bias and SiLU, and its single-token update for generation.
///
/// Math, per batch b, channel d, position t, tap k of a width-W filter:
///   causal:  out[t] = bias[d] + sum_k w[d,k] * x[t - (W-1) + k]      (left pad W-1, as
///            causal_conv1d_fn / nn.Conv1d(padding=W-1)(x)[..., :L])
///   same:    out[t] = bias[d] + sum_k w[d,k] * x[t - (W-1)/2 + k]    (PyTorch padding='same':
///            left pad floor((W-1)/2), right pad the rest)
///   reverse: out[t] = bias[d] + sum_k w[d,k] * x[t + (W-1) - k]      (the causal conv of the
///            flipped sequence, flipped back: Vim's backward branch, no flipped copy is made)
/// x outside [0, L) reads as zero; then out = silu(out) when `silu` is set.
///
/// Dtypes: x and out are f32, f16 or bf16 (one dtype); weight and bias are f32 or x's dtype.
/// Accumulation is f32. Conv states have x's dtype (they are copies of inputs, so exact).

#include <cstdint>

#include "mcv/context.h"
#include "mcv/tensor.h"

namespace mcv::kernels {

/// Where the sequence axis is: (batch, D, L) or (batch, L, D).
enum class Conv1dLayout { channel_major, token_major };
enum class Conv1dPadding { causal, same };

struct Conv1dArgs {
  /// (batch, D, L) channel_major or (batch, L, D) token_major. The innermost dimension must have
  /// stride 1; the other two may have any stride (e.g. a slice of a wider projection output).
  Tensor x;
  Tensor weight;  ///< (D, W) or the official (D, 1, W); W in [2, 4]; any strides
  Tensor bias;    ///< (D) or undefined
  /// Same shape and layout as x, x's dtype; innermost stride 1. Must not overlap x.
  Tensor out;
  Conv1dLayout layout = Conv1dLayout::channel_major;
  Conv1dPadding padding = Conv1dPadding::causal;
  bool reverse = false;  ///< causal only: the anti-causal conv (see the file comment)
  bool silu = false;
  /// (batch, D, S) with S >= W-1, or undefined: the last S inputs x[L-S .. L-1] (zeros where
  /// L < S), the conv state generation continues from. Causal, non-reverse only. With S = W it
  /// is the conv_state of mamba_simple / transformers; with S = W-1 causal_conv1d's final state.
  Tensor final_state;
};

/// Runs the convolution on ctx's device (on CUDA: queued on the context's stream, asynchronous;
/// no allocation). Throws mcv::Error before any work when a shape, dtype, stride, device or
/// option is not supported.
void conv1d(Context& ctx, const Conv1dArgs& args);

/// One generation step of the causal conv (causal_conv1d_update with one new token):
///   window = [conv_state[b, d, :], x[b, d]]            (S + 1 values)
///   out[b, d] = act(bias[d] + sum_k w[d, k] * window[S + 1 - W + k])
///   conv_state[b, d, :] = window[1:]                    (shifted in place)
struct Conv1dUpdateArgs {
  Tensor x;           ///< (batch, D) new input; f32/f16/bf16; any strides
  Tensor conv_state;  ///< (batch, D, S), S >= W-1, x's dtype; updated in place; any strides
  Tensor weight;      ///< (D, W) or (D, 1, W); W in [2, 4]; f32 or x's dtype
  Tensor bias;        ///< (D) or undefined; f32 or x's dtype
  Tensor out;         ///< (batch, D), x's dtype; may be x itself; must not overlap conv_state
  bool silu = false;
};

/// Same device, validation and asynchrony rules as conv1d.
void conv1d_update(Context& ctx, const Conv1dUpdateArgs& args);

}  // namespace mcv::kernels
