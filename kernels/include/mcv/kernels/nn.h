#pragma once
/// \file
/// The generic neural-network ops the vision models are built from: linear / batched matmul,
/// layer and RMS norm (with the fused residual add of mamba_ssm), conv2d (NHWC), batch norm,
/// activations and elementwise ops, softmax, windowed multi-head attention, and the layout helpers
/// (window partition, token mean, bicubic resize). Each op has a CPU path and a CUDA path that
/// compute the same function; the math is written next to each op and follows PyTorch.
///
/// Conventions shared by every op here:
/// - `Context&` first; every tensor must live on the context's device. Arguments are validated
///   completely before any work is queued; a bad argument throws mcv::Error naming the op and
///   the tensor ("linear: weight: expected shape ...").
/// - Outputs are written into tensors the caller allocated (`out`); nothing is returned but the
///   helpers that build parameters at load time.
/// - I/O dtypes are f32, f16 and bf16. Accumulation is always f32. Small parameter vectors
///   (bias, norm weights, batch-norm statistics, layer scale) may be f32 or the I/O dtype.
/// - "Rows view": an op that works over the last dimension takes a tensor (..., C) whose last
///   dimension has stride 1 and whose leading dimensions collapse into one row index with a
///   uniform row stride >= C: contiguous tensors, and also views such as one half of a wider
///   projection output (`xz.slice(-1, 0, D)`).
/// - Aliasing: an output may be the very same view as an input where the op says so (in-place);
///   any other overlap between an output and another tensor is an error.
/// - CUDA ops are queued on the context's stream; scratch memory (cuBLASLt / cuDNN workspaces,
///   temporaries) comes from ctx.workspace(), which the caller resets between forward passes.
/// - f32 GEMMs and convolutions run in true f32 (TF32 off) unless `allow_tf32` is set.
/// - Layouts: sequence activations are token-major (batch, L, C); convolution stages are NHWC.
///   Parameters keep the official PyTorch layout except conv2d weights, which are OHWI (use
///   conv_weight_ohwi() once at load).

#include <cstdint>
#include <string_view>

#include "mcv/context.h"
#include "mcv/tensor.h"

namespace mcv::kernels {

/// Activations that ops can apply in their epilogue.
enum class Activation {
  none,
  relu,       ///< max(x, 0)
  gelu,       ///< x * 0.5 * (1 + erf(x / sqrt(2)))            (nn.GELU(), the exact form)
  gelu_tanh,  ///< 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (nn.GELU(approximate='tanh'))
  silu,       ///< x / (1 + exp(-x))                            (nn.SiLU)
};
/// "none", "relu", "gelu", "gelu_tanh", "silu".
const char* activation_name(Activation a);
/// Parses the names above (also "swish" for silu); throws mcv::Error naming the text otherwise.
Activation parse_activation(std::string_view text);

// ---- GEMM -------------------------------------------------------------------------------------

/// out = act(x W^T + bias) + residual  (nn.Linear, then the activation, then the residual add).
/// CPU: output tiles on ctx.threads(), each an AVX-512 / AVX2 register-blocked GEMM (chosen at
/// run time; the weight is packed once per call) or Eigen's on other CPUs; f32 arithmetic, 16-bit
/// inputs converted. CUDA: cuBLASLt (bias / ReLU epilogues fused) or cuBLAS, plus one fused
/// epilogue kernel where the library epilogue does not fit.
struct LinearArgs {
  Tensor x;         ///< (..., K) rows view; f32/f16/bf16
  Tensor weight;    ///< (N, K) nn.Linear layout, x's dtype, last dimension stride 1, row stride >= K
  Tensor bias;      ///< (N) f32 or x's dtype, or undefined
  /// (..., N) rows view, f32 or x's dtype, or undefined. May be the same view as `out` (then the
  /// op accumulates into out); must not otherwise overlap it.
  Tensor residual;
  Activation activation = Activation::none;
  bool allow_tf32 = false;  ///< f32 only: let the GEMM round inputs to TF32 (faster, ~1e-3 error)
  Tensor out;               ///< (..., N) rows view with x's leading shape, x's dtype
};
void linear(Context& ctx, const LinearArgs& args);

/// out = alpha * a @ b (+ out when `accumulate`), batched.
/// Each matrix needs a unit stride in one of its last two dimensions (row- or column-major, so
/// `k.transpose(-1, -2)` works without a copy); the batch dimension may have any stride, and a
/// 2-D operand or a batch extent of 1 broadcasts over the batch.
struct MatmulArgs {
  Tensor a;    ///< (M, K) or (batch, M, K); f32/f16/bf16
  Tensor b;    ///< (K, N) or (batch, K, N); a's dtype
  Tensor out;  ///< (batch, M, N) or (M, N) when both inputs are 2-D; a's dtype; last stride 1
  float alpha = 1.0f;
  bool accumulate = false;
  bool allow_tf32 = false;
};
void matmul(Context& ctx, const MatmulArgs& args);

// ---- Normalisation ----------------------------------------------------------------------------

/// Layer norm / RMS norm over the last dimension, with mamba_ssm's fused residual add
/// (layer_norm_fn / rms_norm_fn with prenorm=True):
///   s            = x + residual          (s = x when residual is undefined), in f32
///   residual_out = s                     (stored in residual_out's dtype: f32 for Vim's
///                                         residual_in_fp32, else x's dtype)
///   layer_norm:  out = (s - mean(s)) / sqrt(var(s) + eps) * weight + bias   (biased variance)
///   rms_norm:    out = s / sqrt(mean(s^2) + eps) * weight                  (+ bias if given)
/// The statistics use the unrounded f32 s, as the fused Triton kernels do. The same view may be
/// passed as `residual` and `residual_out` (in-place residual stream) and as `x` and `out`.
struct NormArgs {
  Tensor x;             ///< (..., C) rows view; f32/f16/bf16
  Tensor residual;      ///< (..., C) rows view, f32 or x's dtype, or undefined
  Tensor weight;        ///< (C) f32 or x's dtype, or undefined (no affine scale)
  Tensor bias;          ///< (C) f32 or x's dtype, or undefined
  float eps = 1e-5f;
  Tensor out;           ///< (..., C) rows view, x's dtype or f32
  Tensor residual_out;  ///< (..., C) rows view, f32 or x's dtype, or undefined
};
void layer_norm(Context& ctx, const NormArgs& args);
void rms_norm(Context& ctx, const NormArgs& args);

/// LayerNorm2d on NCHW (VMamba with channel_first, timm's LayerNorm2d): normalises dimension 1
/// of a contiguous (N, C, H, W) tensor at every (n, h, w), same formula as layer_norm. Models in
/// this library keep conv stages NHWC and use layer_norm instead; this exists for NCHW inputs.
struct LayerNorm2dArgs {
  Tensor x;       ///< (N, C, H, W) contiguous; f32/f16/bf16
  Tensor weight;  ///< (C) f32 or x's dtype, or undefined
  Tensor bias;    ///< (C) f32 or x's dtype, or undefined
  float eps = 1e-6f;
  Tensor out;     ///< (N, C, H, W) contiguous, x's dtype; may be x itself
};
void layer_norm_2d(Context& ctx, const LayerNorm2dArgs& args);

/// Batch norm in eval mode over the last (channel) dimension, with an optional activation:
///   out = act(x * s[c] + (bias[c] - running_mean[c] * s[c])),  s = weight / sqrt(running_var + eps)
/// (the same scale/shift form as PyTorch's CPU eval kernel). For a BN right after a conv, fold
/// it into the conv at load with fold_batch_norm() instead.
struct BatchNormArgs {
  Tensor x;             ///< (..., C) rows view (NHWC activations); f32/f16/bf16
  Tensor weight;        ///< (C) f32 or x's dtype, or undefined (1)
  Tensor bias;          ///< (C) f32 or x's dtype, or undefined (0)
  Tensor running_mean;  ///< (C) f32 or x's dtype
  Tensor running_var;   ///< (C) f32 or x's dtype
  float eps = 1e-5f;
  Activation activation = Activation::none;
  Tensor out;           ///< (..., C) rows view, x's dtype; may be the same view as x
};
void batch_norm(Context& ctx, const BatchNormArgs& args);

// ---- Convolution ------------------------------------------------------------------------------

/// 2-D convolution (cross-correlation, as nn.Conv2d) on NHWC activations:
///   out[n, oh, ow, co] = act(bias[co] + sum_{i, j, ci} x[n, oh*sh - ph + i*dh, ow*sw - pw + j*dw,
///                        g*Cin_g + ci] * weight[co, i, j, ci]) + residual[n, oh, ow, co]
/// with g = co / (Cout / groups); x outside the image reads as zero.
/// Output extent: OH = (H + 2 ph - dh (kh - 1) - 1) / sh + 1 (conv_out_size()).
/// CPU: tiles of im2col + the GEMM core of linear (1x1 convs read x directly), a direct path for
/// depthwise.
/// CUDA: cuDNN (NHWC, f32 with FMA math unless allow_tf32), a direct kernel for depthwise
/// (groups == Cin == Cout) and for any configuration cuDNN declines.
struct Conv2dArgs {
  Tensor x;         ///< (N, H, W, Cin) contiguous; f32/f16/bf16
  Tensor weight;    ///< (Cout, kh, kw, Cin/groups) OHWI contiguous, x's dtype
  Tensor bias;      ///< (Cout) f32 or x's dtype, or undefined
  Tensor residual;  ///< (N, OH, OW, Cout) contiguous, f32 or x's dtype, or undefined; may be `out`
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;  ///< symmetric zero padding, as nn.Conv2d(padding=(ph, pw))
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;
  Activation activation = Activation::none;
  bool allow_tf32 = false;
  /// CUDA: always use the library's direct kernel instead of cuDNN (tests, tiny convs).
  bool force_direct = false;
  Tensor out;       ///< (N, OH, OW, Cout) contiguous, x's dtype
};
void conv2d(Context& ctx, const Conv2dArgs& args);

/// Output extent of a convolution along one axis; throws when the window does not fit.
std::int64_t conv_out_size(std::int64_t in, std::int64_t kernel, std::int64_t stride,
                           std::int64_t pad, std::int64_t dilation);

/// The official nn.Conv2d weight (Cout, Cin/groups, kh, kw) re-laid out as OHWI, contiguous, on
/// the same device with the same dtype (do it once at load). A copy, except where both layouts
/// coincide (1x1 and depthwise kernels), where it is a view of the same storage.
Tensor conv_weight_ohwi(const Tensor& weight_oihw);

/// A conv folded with the eval-mode BatchNorm that follows it:
///   weight' = weight * s[co],  bias' = (bias - running_mean) * s + bn_bias,
///   s = bn_weight / sqrt(running_var + eps)
/// computed in double. `conv_weight` is any layout with Cout first (OIHW or OHWI); `conv_bias`
/// may be undefined (zero). Inputs are CPU tensors of any float dtype; results are CPU f32.
struct FoldedConv {
  Tensor weight;
  Tensor bias;
};
FoldedConv fold_batch_norm(const Tensor& conv_weight, const Tensor& conv_bias, const Tensor& bn_weight,
                           const Tensor& bn_bias, const Tensor& running_mean,
                           const Tensor& running_var, double eps);

// ---- Elementwise ------------------------------------------------------------------------------
// x, a, b, z and out are rows views of one shape (..., C) unless stated; out has x's (a's) dtype
// and may be the same view as any input.

/// out = act(x).
void activation(Context& ctx, Activation act, const Tensor& x, const Tensor& out);
/// out = a + b * gamma. b has a's shape or broadcasts over a's leading dimensions: its shape
/// without leading 1s equals a's trailing dimensions, e.g. a (C) bias, or an absolute position
/// embedding (1, L, C) added to tokens (B, L, C). b: a's dtype or f32. gamma: an optional (C)
/// layer-scale vector (MambaVision's `x + gamma * f(x)`), f32 or a's dtype.
void add(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out, const Tensor& gamma = Tensor());
/// out = a * b, with b broadcast as in add().
void mul(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out);
/// out = x * s.
void scale(Context& ctx, const Tensor& x, float s, const Tensor& out);
/// out = x * silu(z)  (the gate of Mamba blocks; x and z may be the two halves of one
/// projection output).
void mul_silu(Context& ctx, const Tensor& x, const Tensor& z, const Tensor& out);

/// Softmax over the last dimension with f32 accumulation (max-subtracted, as torch.softmax).
void softmax(Context& ctx, const Tensor& x, const Tensor& out);

// ---- Attention --------------------------------------------------------------------------------

/// Multi-head attention of MambaVision's window blocks (and timm's Attention):
///   out[b, h, i, :] = sum_j softmax_j(scale * q[b, h, i, :] . k[b, h, j, :]) v[b, h, j, :]
/// All four tensors may have any strides, so q, k and v can be views into the qkv projection
/// output ((B, T, 3, heads, D) permuted) and out can be a permuted view of (B, T, heads, D),
/// the layout the proj linear reads. f32 accumulation; softmax over f32 scores.
/// CUDA: one fused kernel (a warp per query row); needs Tk + D <= 3072.
struct AttentionArgs {
  Tensor q;    ///< (B, heads, Tq, D); f32/f16/bf16
  Tensor k;    ///< (B, heads, Tk, D); q's dtype
  Tensor v;    ///< (B, heads, Tk, Dv); q's dtype
  float scale = 1.0f;  ///< usually D^-0.5
  Tensor out;  ///< (B, heads, Tq, Dv); q's dtype; must not overlap q, k or v
};
void attention(Context& ctx, const AttentionArgs& args);

// ---- Layout -----------------------------------------------------------------------------------
// Permutes / transposes: Tensor::permute() then Tensor::contiguous() (inside a ContextScope the
// copy is queued on the context's stream).

/// MambaVision's window_partition on NHWC with the zero padding its layers apply first:
///   x (B, H, W, C) -> out (B * nh * nw, window * window, C), nh = ceil(H / window),
///   out[(b * nh + i) * nw + j, r * window + s, c] = x[b, i * window + r, j * window + s, c]
///   (zero where the row or column is past H or W).
void window_partition(Context& ctx, const Tensor& x, int window, const Tensor& out);
/// The inverse (window_reverse then the crop to H x W): windows (B * nh * nw, window^2, C) ->
/// out (B, H, W, C). Both tensors contiguous.
void window_reverse(Context& ctx, const Tensor& windows, int window, const Tensor& out);

/// Mean over tokens: x (B, L, C) -> out (B, C) (global average pooling of NHWC viewed as
/// (B, H*W, C), or the token mean of Vim's final_pool_type='mean'). x: any strides with the
/// last stride 1; out: rows view. f32 accumulation.
void mean_tokens(Context& ctx, const Tensor& x, const Tensor& out);

/// torch.nn.functional.interpolate(x, size=(OH, OW), mode='bicubic', align_corners=...) on a
/// (..., H, W) tensor (e.g. a position embedding grid (1, C, H, W)) into out (..., OH, OW):
/// cubic convolution with A = -0.75, source index scale * (dst + 0.5) - 0.5 (align_corners
/// False) or scale * dst (True), taps clamped to the border. `scale_factor_h/w` > 0 reproduce a
/// call made with scale_factor= instead of size= (the source scale is then 1 / scale_factor).
/// Runs on the CPU (load-time work); CUDA tensors are copied through the host.
struct BicubicArgs {
  Tensor x;    ///< (..., H, W); f32/f16/bf16; any strides
  Tensor out;  ///< (..., OH, OW) contiguous, x's dtype
  bool align_corners = false;
  double scale_factor_h = 0, scale_factor_w = 0;
};
void interpolate_bicubic(Context& ctx, const BicubicArgs& args);

}  // namespace mcv::kernels
