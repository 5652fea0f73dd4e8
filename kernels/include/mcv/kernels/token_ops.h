#pragma once
/// \file
/// Token-sequence helpers of ViT-style models (Vim): assembling the input sequence from patch
/// tokens, class tokens and a position embedding in one pass, and the max over tokens of a
/// `final_pool_type='max'` head. Both run on the CPU (thread pool) and on CUDA (the context's
/// stream), validate every argument before any work, and allocate nothing.

#include <cstdint>
#include <vector>

#include "mcv/context.h"
#include "mcv/tensor.h"

namespace mcv::kernels {

/// Most class tokens embed_tokens inserts.
constexpr int kEmbedTokensMaxInserted = 4;

/// out[b, t, :] = src(b, t) + pos[t, :]   (pos optional; the add is done in f32, rounded once)
///   src(b, t) = tokens[j, :]                        when t == positions[j]
///             = patches[b, t - #{j : positions[j] < t}, :]  otherwise
/// so the T class tokens land at `positions` (strictly increasing, in [0, M + T)) and the M patch
/// tokens keep their order around them: Vim's middle class token is positions = {M / 2}, a
/// leading one {0}, Vim's head + tail pair {0, M + 1}.
struct EmbedTokensArgs {
  Tensor patches;  ///< (batch, M, C); f32/f16/bf16; last stride 1, other strides free
  Tensor tokens;   ///< (T, C) f32 or patches' dtype, last stride 1; undefined when T = 0
  std::vector<std::int64_t> positions;  ///< T <= kEmbedTokensMaxInserted entries
  Tensor pos;      ///< (M + T, C) f32 or patches' dtype, last stride 1; or undefined
  Tensor out;      ///< (batch, M + T, C), patches' dtype, last stride 1; must not overlap inputs
};
void embed_tokens(Context& ctx, const EmbedTokensArgs& args);

/// out[b, c] = max over t of x[b, t, c], as torch.max(dim=1) (a NaN anywhere in the column gives
/// NaN). x: (batch, L, C) f32/f16/bf16, last stride 1; out: (batch, C) x's dtype, last stride 1.
void max_tokens(Context& ctx, const Tensor& x, const Tensor& out);

}  // namespace mcv::kernels
