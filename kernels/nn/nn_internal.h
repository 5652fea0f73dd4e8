#pragma once
// Private to the nn ops: argument checks, the plain parameter structs each op is reduced to
// (shared by the CPU and CUDA paths, so both see exactly the same validated call), and the entry
// points of the two backends. No CUDA or Eigen headers here.

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include "common/op_checks.h"
#include "mcv/context.h"
#include "mcv/dtype.h"
#include "mcv/error.h"
#include "mcv/kernels/nn.h"
#include "mcv/tensor.h"

namespace mcv::kernels::nn_detail {

/// A tensor seen as a row-major matrix: `rows` rows of `cols` elements, row r at data + r * ld.
struct Rows {
  void* data = nullptr;
  DType dtype = DType::f32;
  std::int64_t rows = 0, cols = 0, ld = 0;
};

/// A (C) parameter vector, contiguous, f32 or the I/O dtype; data null when absent.
struct Vec {
  const void* data = nullptr;
  bool f32 = true;
};

using op_checks::no_cuda;
using op_checks::overlaps;
using op_checks::same_view;

/// The common checks plus the nn-specific ones, with messages "<op>: <tensor>: <problem>".
class Check : public op_checks::Checker {
 public:
  using Checker::Checker;

  /// A (C) parameter vector: present, 1-D of extent c, contiguous, f32 or io. Undefined -> {}.
  Vec vec(const char* name, const Tensor& t, std::int64_t c, DType io, bool required = false) const;
  /// The rows view of t (see nn.h); fails when the leading dimensions do not collapse.
  Rows rows(const char* name, const Tensor& t) const;
  /// True when `out` is the very same view as `in`; fails when they overlap otherwise.
  bool alias_or_disjoint(const char* out_name, const Tensor& out, const char* in_name, const Tensor& in) const;
  /// No two elements of t share memory (an output with arbitrary strides).
  void writable(const char* name, const Tensor& t) const;
};

// ---- Host element helpers -----------------------------------------------------------------

/// dst[i] = float(src[i]) for i < n.
void load_floats(const void* src, DType t, std::int64_t n, float* dst);
/// dst[i] = src[i] converted to t (round to nearest even) for i < n.
void store_floats(const float* src, std::int64_t n, void* dst, DType t);
/// A vector parameter as floats (empty when absent).
void load_vec(const Vec& v, std::int64_t n, DType io, float* dst, float fill);
/// v[i] = act(v[i]).
void apply_activation(Activation act, float* v, std::int64_t n);

// ---- Parameter structs --------------------------------------------------------------------

struct LinearParams {
  DType dtype = DType::f32;
  std::int64_t M = 0, N = 0, K = 0;
  const void* x = nullptr;
  std::int64_t ldx = 0;
  const void* w = nullptr;
  std::int64_t ldw = 0;
  Vec bias;
  const void* residual = nullptr;
  bool residual_f32 = false;
  bool residual_is_out = false;
  std::int64_t ldr = 0;
  void* out = nullptr;
  std::int64_t ldo = 0;
  Activation act = Activation::none;
  bool allow_tf32 = false;
};

/// One operand of a batched GEMM: element (b, r, c) at data + b*bs + r*rs + c*cs.
struct MatOperand {
  const void* data = nullptr;
  std::int64_t bs = 0, rs = 0, cs = 0;
};

struct MatmulParams {
  DType dtype = DType::f32;
  std::int64_t batch = 0, M = 0, N = 0, K = 0;
  MatOperand a, b;
  void* out = nullptr;
  std::int64_t o_bs = 0, o_rs = 0;
  float alpha = 1.0f;
  bool accumulate = false;
  bool allow_tf32 = false;
};

struct NormParams {
  DType dtype = DType::f32;  // x
  std::int64_t rows = 0, cols = 0;
  const void* x = nullptr;
  std::int64_t ldx = 0;
  const void* residual = nullptr;
  DType residual_dtype = DType::f32;
  std::int64_t ldr = 0;
  Vec weight, bias;
  float eps = 1e-5f;
  bool rms = false;
  void* out = nullptr;
  DType out_dtype = DType::f32;
  std::int64_t ldo = 0;
  void* residual_out = nullptr;
  DType residual_out_dtype = DType::f32;
  std::int64_t ldro = 0;
};

struct LayerNorm2dParams {
  DType dtype = DType::f32;
  std::int64_t n = 0, c = 0, hw = 0;
  const void* x = nullptr;
  Vec weight, bias;
  float eps = 1e-6f;
  void* out = nullptr;
};

struct BatchNormParams {
  DType dtype = DType::f32;
  std::int64_t rows = 0, cols = 0;
  const void* x = nullptr;
  std::int64_t ldx = 0;
  Vec weight, bias, mean, var;
  float eps = 1e-5f;
  Activation act = Activation::none;
  void* out = nullptr;
  std::int64_t ldo = 0;
};

struct ConvParams {
  DType dtype = DType::f32;
  std::int64_t n = 0, h = 0, w = 0, cin = 0, oh = 0, ow = 0, cout = 0;
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
  const void* x = nullptr;
  const void* weight = nullptr;
  Vec bias;
  const void* residual = nullptr;
  bool residual_f32 = false;
  bool residual_is_out = false;
  void* out = nullptr;
  Activation act = Activation::none;
  bool allow_tf32 = false;
  bool force_direct = false;
  bool depthwise() const { return groups == cin && groups == cout; }
};

enum class EwOp { activation, add, mul, scale, mul_silu };

struct EwParams {
  DType dtype = DType::f32;
  EwOp op = EwOp::activation;
  Activation act = Activation::none;
  std::int64_t rows = 0, cols = 0;
  const void* a = nullptr;
  std::int64_t lda = 0;
  // Rows view of b_rows rows (b_rows divides rows); row r of a pairs with row r % b_rows of b:
  // a's shape (b_rows = rows), a (C) vector (1), or a trailing-dims broadcast like (1, L, C).
  const void* b = nullptr;
  std::int64_t ldb = 0, b_rows = 0;
  bool b_f32 = false;
  Vec gamma;
  float s = 1.0f;
  void* out = nullptr;
  std::int64_t ldo = 0;
};

struct SoftmaxParams {
  DType dtype = DType::f32;
  std::int64_t rows = 0, cols = 0;
  const void* x = nullptr;
  std::int64_t ldx = 0;
  void* out = nullptr;
  std::int64_t ldo = 0;
};

struct AttentionParams {
  DType dtype = DType::f32;
  std::int64_t batch = 0, heads = 0, tq = 0, tk = 0, d = 0, dv = 0;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  std::int64_t qs[4] = {}, ks[4] = {}, vs[4] = {}, os[4] = {};
  float scale = 1.0f;
};

struct WindowParams {
  DType dtype = DType::f32;
  std::int64_t batch = 0, h = 0, w = 0, c = 0, window = 0, nh = 0, nw = 0;
  const void* src = nullptr;
  void* dst = nullptr;
  bool reverse = false;  // false: image -> windows; true: windows -> image
};

struct MeanTokensParams {
  DType dtype = DType::f32;
  std::int64_t batch = 0, len = 0, c = 0;
  const void* x = nullptr;
  std::int64_t sb = 0, sl = 0;
  void* out = nullptr;
  std::int64_t ldo = 0;
};

// ---- Backends -----------------------------------------------------------------------------

void cpu_linear(Context& ctx, const LinearParams& p);
void cpu_matmul(Context& ctx, const MatmulParams& p);
void cpu_norm(Context& ctx, const NormParams& p);
void cpu_layer_norm_2d(Context& ctx, const LayerNorm2dParams& p);
void cpu_batch_norm(Context& ctx, const BatchNormParams& p);
void cpu_conv2d(Context& ctx, const ConvParams& p);
void cpu_elementwise(Context& ctx, const EwParams& p);
void cpu_softmax(Context& ctx, const SoftmaxParams& p);
void cpu_attention(Context& ctx, const AttentionParams& p);
void cpu_window(Context& ctx, const WindowParams& p);
void cpu_mean_tokens(Context& ctx, const MeanTokensParams& p);

/// C[r, c] for r < M, c < N: the f32 GEMM core of the CPU paths. Computes A (M x K, row stride
/// lda) times W^T (W is N x K, row stride ldw) over tiles on ctx.threads(), and hands each
/// finished f32 tile (rows [r0, r1), columns [c0, c1), row stride ldt) to `epilogue`, which
/// writes it wherever it belongs. Tiles are disjoint; epilogue calls run concurrently.
struct GemmTile {
  std::int64_t r0, r1, c0, c1;
  const float* data;
  std::int64_t ld;
};
struct PackedWeight;
/// Non-template core of cpu_gemm_tiles (the epilogue through a function reference).
void cpu_gemm_tiles_impl(Context& ctx, std::int64_t M, std::int64_t N, std::int64_t K, const float* A,
                         std::int64_t lda, const float* W, std::int64_t ldw, const PackedWeight* packed,
                         void (*epilogue)(const GemmTile&, void*), void* state);
/// `packed` (optional) is W already packed by pack_weight(): callers running many GEMMs with one
/// weight, like conv2d's pixel tiles, pack it once.
template <typename F>
void cpu_gemm_tiles(Context& ctx, std::int64_t M, std::int64_t N, std::int64_t K, const float* A,
                    std::int64_t lda, const float* W, std::int64_t ldw, F&& epilogue,
                    const PackedWeight* packed = nullptr) {
  cpu_gemm_tiles_impl(ctx, M, N, K, A, lda, W, ldw, packed,
                      [](const GemmTile& t, void* s) { (*static_cast<std::remove_reference_t<F>*>(s))(t); },
                      &epilogue);
}
/// Which tile kernel the CPU GEMM core uses: AVX-512 or AVX2+FMA kernels when the CPU has them,
/// else Eigen. Tests force each path; `automatic` picks the widest.
enum class CpuGemmPath { automatic, eigen, avx2, avx512 };
void set_cpu_gemm_path(CpuGemmPath path);
/// The path the next GEMM takes (a forced path the CPU lacks falls back to a narrower one).
CpuGemmPath cpu_gemm_path();
/// W (N x K, row stride ldw) packed once for the vector kernels: panels of nr columns, each
/// K x nr floats, k-major, zero padded past N; 64-byte aligned. Empty (nr 0) on the Eigen path.
struct PackedWeight {
  CpuGemmPath path = CpuGemmPath::eigen;
  int nr = 0;
  std::int64_t n = 0, k = 0;
  std::shared_ptr<float> data;
};
PackedWeight pack_weight(Context& ctx, const float* W, std::int64_t N, std::int64_t K, std::int64_t ldw);
/// C (rows x cols, row stride ldc) = A (rows x K) times columns [c0, c0 + cols) of W^T, on the
/// calling thread; c0 is a multiple of pw.nr.
void packed_tile_gemm(const PackedWeight& pw, std::int64_t rows, std::int64_t c0, std::int64_t cols, const float* A,
                      std::int64_t lda, float* C, std::int64_t ldc);
/// GEMMs of at most kMaxDotRows rows: one vector dot product per output, W unpacked. False (and
/// nothing done) on the Eigen path or for more rows.
constexpr std::int64_t kMaxDotRows = 4;
bool dot_tile_gemm(CpuGemmPath path, std::int64_t rows, std::int64_t cols, std::int64_t K, const float* A,
                   std::int64_t lda, const float* W, std::int64_t ldw, float* C, std::int64_t ldc);

#ifdef MCV_HAVE_CUDA
void cuda_linear(Context& ctx, const LinearParams& p);
void cuda_matmul(Context& ctx, const MatmulParams& p);
void cuda_norm(Context& ctx, const NormParams& p);
void cuda_layer_norm_2d(Context& ctx, const LayerNorm2dParams& p);
void cuda_batch_norm(Context& ctx, const BatchNormParams& p);
void cuda_conv2d(Context& ctx, const ConvParams& p);
void cuda_elementwise(Context& ctx, const EwParams& p);
void cuda_softmax(Context& ctx, const SoftmaxParams& p);
void cuda_attention(Context& ctx, const AttentionParams& p);
void cuda_window(Context& ctx, const WindowParams& p);
void cuda_mean_tokens(Context& ctx, const MeanTokensParams& p);
#endif

}  // namespace mcv::kernels::nn_detail
