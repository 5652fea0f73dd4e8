#pragma once
/// \file
/// The 2x2 patch gather of PatchMerging2D (VMamba, Swin) on NHWC activations, including the zero
/// padding the official code applies to odd sizes (F.pad of the last row / column):
/// ```
///   out[b, i, j, q * C + c] = x[b, 2i + (q & 1), 2j + (q >> 1), c]   (0 past row H-1 or column W-1)
///   q = 0..3,  OH = ceil(H / 2),  OW = ceil(W / 2)
/// ```
/// The quarter order q is torch.cat([x0, x1, x2, x3], -1) with x0 = x[0::2, 0::2],
/// x1 = x[1::2, 0::2], x2 = x[0::2, 1::2], x3 = x[1::2, 1::2]. The op moves bytes only, so it is
/// exact for every dtype. CPU: rows of the output on the context's threads; CUDA: one thread per
/// output element, queued on the context's stream (no allocation, graph-capturable).

#include "mcv/context.h"
#include "mcv/tensor.h"

namespace mcv::kernels {

struct PatchMergeArgs {
  Tensor x;    ///< (B, H, W, C), f32/f16/bf16; last dimension stride 1, other strides free
  Tensor out;  ///< (B, ceil(H/2), ceil(W/2), 4C) contiguous, x's dtype; must not overlap x
};

/// Runs the gather on the context's device; every argument is checked first (mcv::Error naming
/// the tensor otherwise).
void patch_merge(Context& ctx, const PatchMergeArgs& args);

}  // namespace mcv::kernels
