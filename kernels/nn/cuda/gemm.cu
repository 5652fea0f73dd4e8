// CUDA linear and batched matmul.
//
// Row-major GEMMs map onto column-major cuBLAS by computing the transpose: for y (M x N) =
// x (M x K) W^T, cuBLAS sees y^T (N x M, ld ldo) = op(W) op(x^T) with W's storage read as a
// K x N column-major matrix (op T) and x's as K x M (op N).
//
// linear: cuBLASLt with the bias / ReLU epilogues and the residual as C (beta = 1) where they
// express the whole op; anything else (GELU, SiLU, f32 parameters on a 16-bit GEMM, ...) runs the
// GEMM then one fused epilogue kernel. cuBLASLt's GELU epilogue is not used: it is the tanh
// approximation, while nn.GELU() is the erf form. When cuBLASLt offers no algorithm, cublasGemmEx
// does the GEMM. f32 GEMMs use CUBLAS_COMPUTE_32F (no TF32) unless the caller opts in.

#include <array>
#include <cstring>
#include <map>
#include <mutex>

#include "nn/cuda/common.cuh"

namespace mcv::kernels::nn_detail {

namespace {

constexpr std::size_t kLtMaxWorkspace = 4u << 20;  // enough for cuBLASLt's split-K on these shapes

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f32: return CUDA_R_32F;
    case DType::f16: return CUDA_R_16F;
    case DType::bf16: return CUDA_R_16BF;
    default: throw Error("nn cuda", std::string("no cuBLAS type for ") + dtype_name(t));
  }
}

cublasComputeType_t compute_type(DType t, bool tf32) {
  return t == DType::f32 && tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

// Largest power of two (<= 256) dividing the address: what cuBLASLt may assume about a pointer.
std::uint32_t alignment(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t al = 256;
  while (al > 1 && a % al != 0) al /= 2;
  return al;
}

// out[r, c] = act(src[r, c] + bias[c]) + residual[r, c], kVec consecutive columns per thread:
// one flat loop over rows x (cols / kVec) with 32-bit indices and a multiply-high division for the
// row. f16 at kVec = 8 moves 16 bytes per access (the former one-element-per-thread row grid moved
// 2 bytes and spent 64-bit index arithmetic on each).
struct EpilogueArgs {
  std::uint32_t total = 0;  // rows * (cols / kVec)
  cu::FastDiv vcols;        // cols / kVec
  const void* src = nullptr;
  std::int64_t lds = 0;
  Vec bias;
  Activation act = Activation::none;
  const void* residual = nullptr;
  bool residual_f32 = false;
  std::int64_t ldr = 0;
  void* out = nullptr;
  std::int64_t ldo = 0;
};

template <typename T, int kVec>
__global__ void epilogue_kernel(EpilogueArgs a) {
  const T* src = static_cast<const T*>(a.src);
  T* out = static_cast<T*>(a.out);
  for (std::uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < a.total; i += gridDim.x * blockDim.x) {
    const std::uint32_t r = a.vcols.div(i), c = (i - r * a.vcols.d) * kVec;
    float v[kVec];
    cu::load_vec<kVec>(src + r * a.lds + c, v);
    if (a.bias.data) {
      float b[kVec];
      cu::load_vec<T, kVec>(a.bias.data, a.bias.f32, c, b);
#pragma unroll
      for (int k = 0; k < kVec; ++k) v[k] += b[k];
    }
    if (a.act != Activation::none) {
#pragma unroll
      for (int k = 0; k < kVec; ++k) v[k] = cu::activate(a.act, v[k]);
    }
    if (a.residual) {
      float res[kVec];
      cu::load_vec<T, kVec>(a.residual, a.residual_f32, r * a.ldr + c, res);
#pragma unroll
      for (int k = 0; k < kVec; ++k) v[k] += res[k];
    }
    cu::store_vec<kVec>(out + r * a.ldo + c, v);
  }
}

// RAII holders for the cuBLASLt descriptors of one call.
struct LtDescs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtDescs() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

struct LtChoice {
  bool ok = false;
  cublasLtMatmulHeuristicResult_t result{};
};

// Heuristic answers depend only on the descriptors, so they are cached per configuration.
using LtKey = std::array<std::int64_t, 18>;
std::mutex lt_mutex;
std::map<LtKey, LtChoice>& lt_cache() {
  static auto* cache = new std::map<LtKey, LtChoice>();  // never destroyed (static teardown order)
  return *cache;
}

struct LtGemm {
  // D (N x M col-major, ldd) = W^T-op GEMM + beta * C (ldc), with an epilogue.
  std::int64_t M, N, K;
  DType dtype;
  const void* x;
  std::int64_t ldx;
  const void* w;
  std::int64_t ldw;
  const void* c;  // null: beta = 0
  std::int64_t ldc;
  void* d;
  std::int64_t ldd;
  cublasLtEpilogue_t epilogue;
  const void* bias;  // I/O dtype
  bool tf32;
};

// Returns false (having queued nothing) when cuBLASLt has no algorithm for the call.
bool run_lt(Context& ctx, const LtGemm& g) {
  auto& cuda = ctx.cuda();
  cublasLtHandle_t lt = cuda.cublas_lt();
  const cudaDataType_t type = cuda_type(g.dtype);
  const std::uint64_t m = static_cast<std::uint64_t>(g.N), n = static_cast<std::uint64_t>(g.M),
                      k = static_cast<std::uint64_t>(g.K);
  LtDescs ds;
  cublas_check(cublasLtMatmulDescCreate(&ds.op, compute_type(g.dtype, g.tf32), CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  cublas_check(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)), "TRANSA");
  cublas_check(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)), "TRANSB");
  cublas_check(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &g.epilogue, sizeof(g.epilogue)),
               "EPILOGUE");
  if (g.bias) {
    cublas_check(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)),
                 "BIAS_POINTER");
    cublas_check(cublasLtMatmulDescSetAttribute(ds.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &type, sizeof(type)),
                 "BIAS_DATA_TYPE");
  }
  cublas_check(cublasLtMatrixLayoutCreate(&ds.a, type, k, m, g.ldw), "layout W");
  cublas_check(cublasLtMatrixLayoutCreate(&ds.b, type, k, n, g.ldx), "layout x");
  cublas_check(cublasLtMatrixLayoutCreate(&ds.c, type, m, n, g.c ? g.ldc : g.ldd), "layout C");
  cublas_check(cublasLtMatrixLayoutCreate(&ds.d, type, m, n, g.ldd), "layout D");
  cublas_check(cublasLtMatmulPreferenceCreate(&ds.pref), "cublasLtMatmulPreferenceCreate");
  const std::uint64_t max_ws = kLtMaxWorkspace;
  cublas_check(cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws,
                                                    sizeof(max_ws)),
               "MAX_WORKSPACE");
  const std::uint32_t al_a = alignment(g.w), al_b = alignment(g.x), al_c = alignment(g.c ? g.c : g.d),
                      al_d = alignment(g.d);
  cublas_check(cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof(al_a)), "ALIGN_A");
  cublas_check(cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof(al_b)), "ALIGN_B");
  cublas_check(cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof(al_c)), "ALIGN_C");
  cublas_check(cublasLtMatmulPreferenceSetAttribute(ds.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d, sizeof(al_d)), "ALIGN_D");

  const LtKey key{cuda.device, g.M, g.N, g.K, g.ldx, g.ldw, g.c ? g.ldc : -1, g.ldd, static_cast<std::int64_t>(g.dtype),
                  static_cast<std::int64_t>(g.epilogue), g.bias ? 1 : 0, g.tf32 ? 1 : 0, al_a, al_b, al_c, al_d,
                  static_cast<std::int64_t>(alignment(g.bias)), 0};
  LtChoice choice;
  {
    std::lock_guard<std::mutex> lock(lt_mutex);
    auto it = lt_cache().find(key);
    if (it != lt_cache().end()) {
      choice = it->second;
    } else {
      int found = 0;
      const cublasStatus_t st =
          cublasLtMatmulAlgoGetHeuristic(lt, ds.op, ds.a, ds.b, ds.c, ds.d, ds.pref, 1, &choice.result, &found);
      choice.ok = st == CUBLAS_STATUS_SUCCESS && found > 0;
      lt_cache()[key] = choice;
    }
  }
  if (!choice.ok) return false;
  void* ws = choice.result.workspaceSize ? ctx.workspace().allocate(choice.result.workspaceSize) : nullptr;
  const float alpha = 1.0f, beta = g.c ? 1.0f : 0.0f;
  cublas_check(cublasLtMatmul(lt, ds.op, &alpha, g.w, ds.a, g.x, ds.b, &beta, g.c ? g.c : g.d, ds.c, g.d, ds.d,
                              &choice.result.algo, ws, choice.result.workspaceSize, cuda.stream),
               "cublasLtMatmul");
  return true;
}

// out (batch x M x N, row-major, ld ldo) = alpha * a @ b + beta * out through
// cublasGemmStridedBatchedEx (the matmul op, and linear's fallback). Operands are row-major when
// cs == 1 and column-major otherwise (rs == 1), as the matmul entry point normalises them.
void run_gemm_ex(Context& ctx, DType dtype, bool tf32, std::int64_t batch, std::int64_t M, std::int64_t N,
                 std::int64_t K, const MatOperand& a, const MatOperand& b, void* out, std::int64_t ldo,
                 std::int64_t o_bs, float alpha, float beta) {
  cublasHandle_t h = ctx.cuda().cublas();
  // Explicit compute types decide TF32; the handle's math mode must not add it behind our back.
  cublas_check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  const cudaDataType_t type = cuda_type(dtype);
  // cuBLAS computes out^T (N x M) = op1(b) op2(a). Row-major b (K x N, ld rs) read column-major is
  // N x K = b^T (op N); column-major b (ld cs) is b itself (op T). Likewise for a.
  const bool a_row = a.cs == 1, b_row = b.cs == 1;
  const cublasOperation_t op1 = b_row ? CUBLAS_OP_N : CUBLAS_OP_T;
  const cublasOperation_t op2 = a_row ? CUBLAS_OP_N : CUBLAS_OP_T;
  const std::int64_t ldb = b_row ? b.rs : b.cs, lda = a_row ? a.rs : a.cs;
  cublas_check(cublasGemmStridedBatchedEx(h, op1, op2, cu::to_int(N, "N"), cu::to_int(M, "M"), cu::to_int(K, "K"),
                                          &alpha, b.data, type, cu::to_int(ldb, "ldb"), b.bs, a.data, type,
                                          cu::to_int(lda, "lda"), a.bs, &beta, out, type, cu::to_int(ldo, "ldo"), o_bs,
                                          cu::to_int(batch, "batch"), compute_type(dtype, tf32), CUBLAS_GEMM_DEFAULT),
               "cublasGemmStridedBatchedEx");
}

}  // namespace

namespace cu {

void launch_epilogue(cudaStream_t stream, DType dtype, std::int64_t rows, std::int64_t cols, const void* src,
                     std::int64_t lds, Vec bias, Activation act, const void* residual, bool residual_f32,
                     std::int64_t ldr, void* out, std::int64_t ldo) {
  if (rows <= 0 || cols <= 0) return;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kT = static_cast<int>(sizeof(T));
    const int vec = vec_width(kVec16<T>, rows, cols,
                              {{src, kT, lds},
                               {out, kT, ldo},
                               {bias.data, bias.f32 ? 4 : kT, 0},
                               {residual, residual_f32 ? 4 : kT, ldr}});
    for_row_ranges(rows, cols, vec, 1, [&](std::int64_t r0, std::int64_t n) {
      EpilogueArgs a;
      a.total = static_cast<std::uint32_t>(n * (cols / vec));
      a.vcols = FastDiv(static_cast<std::uint32_t>(cols / vec));
      a.src = static_cast<const T*>(src) + r0 * lds;
      a.lds = lds;
      a.bias = bias;
      a.act = act;
      a.residual = residual ? static_cast<const char*>(residual) + r0 * ldr * (residual_f32 ? 4 : kT) : nullptr;
      a.residual_f32 = residual_f32;
      a.ldr = ldr;
      a.out = static_cast<T*>(out) + r0 * ldo;
      a.ldo = ldo;
      const FlatGrid g = flat_grid(a.total);
      if (vec == kVec16<T>)
        epilogue_kernel<T, kVec16<T>><<<g.blocks, g.threads, 0, stream>>>(a);
      else
        epilogue_kernel<T, 1><<<g.blocks, g.threads, 0, stream>>>(a);
      cuda_check_launch("epilogue_kernel");
    });
  });
}

}  // namespace cu

void cuda_linear(Context& ctx, const LinearParams& p) {
  auto& cuda = ctx.cuda();
  CudaDeviceGuard guard(cuda.device);
  const bool bias_io = p.bias.data && (p.bias.f32 == (p.dtype == DType::f32));
  const bool residual_io = p.residual && (p.residual_f32 == (p.dtype == DType::f32));
  // Fully inside cuBLASLt: D = act(x W^T + C + bias) equals the op when act is none (any
  // residual as C) or ReLU without residual.
  const bool lt_fused = (!p.bias.data || bias_io) &&
                        (p.act == Activation::none || (p.act == Activation::relu && !p.residual)) &&
                        (!p.residual || (residual_io && (p.residual_is_out || p.ldr == p.ldo)));
  if (lt_fused) {
    LtGemm g{p.M, p.N, p.K, p.dtype, p.x, p.ldx, p.w, p.ldw, p.residual, p.ldr, p.out, p.ldo,
             CUBLASLT_EPILOGUE_DEFAULT, p.bias.data, p.allow_tf32};
    if (p.act == Activation::relu)
      g.epilogue = p.bias.data ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    else if (p.bias.data)
      g.epilogue = CUBLASLT_EPILOGUE_BIAS;
    if (run_lt(ctx, g)) return;
  }
  // GEMM into out (or a scratch matrix when the residual lives in out), then the epilogue.
  void* dst = p.out;
  std::int64_t ldd = p.ldo;
  if (p.residual_is_out) {
    dst = ctx.workspace().allocate(static_cast<std::size_t>(p.M * p.N) * dtype_size(p.dtype));
    ldd = p.N;
  }
  LtGemm g{p.M, p.N, p.K, p.dtype, p.x, p.ldx, p.w, p.ldw, nullptr, 0, dst, ldd, CUBLASLT_EPILOGUE_DEFAULT, nullptr,
           p.allow_tf32};
  if (!run_lt(ctx, g)) {
    // x row-major (M x K); W (N x K) row-major is the column-major storage of the K x N operand
    // (with K == 1 and unit row stride it reads as row-major instead, hence the row stride N).
    const MatOperand a{p.x, 0, p.ldx, 1}, b{p.w, 0, p.K == 1 ? p.N : 1, p.ldw};
    run_gemm_ex(ctx, p.dtype, p.allow_tf32, 1, p.M, p.N, p.K, a, b, dst, ldd, 0, 1.0f, 0.0f);
  }
  if (p.bias.data || p.act != Activation::none || p.residual || dst != p.out)
    cu::launch_epilogue(cuda.stream, p.dtype, p.M, p.N, dst, ldd, p.bias, p.act, p.residual, p.residual_f32, p.ldr,
                        p.out, p.ldo);
}

void cuda_matmul(Context& ctx, const MatmulParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  run_gemm_ex(ctx, p.dtype, p.allow_tf32, p.batch, p.M, p.N, p.K, p.a, p.b, p.out, p.o_rs, p.o_bs, p.alpha,
              p.accumulate ? 1.0f : 0.0f);
}

}  // namespace mcv::kernels::nn_detail
