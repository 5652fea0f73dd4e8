// AVX2 / AVX-512 f32 GEMM tile kernels for the CPU GEMM core.
//
// The library builds for baseline x86-64, so Eigen's product only gets SSE2 (no FMA): about
// 5 GFLOP/s per core here. These kernels are compiled per function for AVX2+FMA and AVX-512
// (target attributes; nothing else in the binary uses those instructions) and chosen at run time
// from cpu_features(); Eigen stays the portable path.
//
// Shape of the computation (the classic register-blocked GEMM): W^T is packed panel by panel
// (kc x NR floats, k-major, zero padded) so the micro-kernel streams it with aligned vector loads;
// A is read in place, one broadcast per row and k. The micro-kernel keeps an MR x NR block of C
// in registers: AVX-512 12 x 32 (24 zmm accumulators), AVX2 6 x 16 (12 ymm). Rows left over at
// the bottom of a tile run the same kernel instantiated for fewer rows; columns left over go
// through a small buffer.

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "common/cpu_math.h"
#include "mcv/kernels/cpu_features.h"
#include "mcv/thread_pool.h"
#include "nn/nn_internal.h"

#if MCV_CPU_X86
#include <immintrin.h>
#endif

namespace mcv::kernels::nn_detail {

namespace {

std::atomic<int> forced_path{static_cast<int>(CpuGemmPath::automatic)};

constexpr int kKc = 256;  // k-block: a packed panel (kc x NR floats) stays in L1 / L2

// Bp[k * NR + j] = W[(j0 + j) * ldw + k0 + k] for j < nr; zero for nr <= j < NR.
template <int NR>
void pack_panel(const float* W, std::int64_t ldw, std::int64_t j0, int nr, std::int64_t k0, int kc, float* bp) {
  for (int j = 0; j < nr; ++j) {
    const float* w = W + (j0 + j) * ldw + k0;
    for (int k = 0; k < kc; ++k) bp[k * NR + j] = w[k];
  }
  for (int j = nr; j < NR; ++j)
    for (int k = 0; k < kc; ++k) bp[k * NR + j] = 0.0f;
}

// Adds (accumulate) or stores a finished MR x NR block held in `tmp` into C, nr valid columns.
template <int MR, int NR>
inline void write_back(const float* tmp, float* C, std::int64_t ldc, bool accumulate, int nr) {
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < nr; ++j) C[i * ldc + j] = (accumulate ? C[i * ldc + j] : 0.0f) + tmp[i * NR + j];
}

#if MCV_CPU_X86

template <int MR>
MCV_CPU_TARGET_AVX512 void micro_512(int kc, const float* A, std::int64_t lda, const float* bp, float* C, std::int64_t ldc,
                             bool accumulate, int nr) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(bp + k * 32), b1 = _mm512_load_ps(bp + k * 32 + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(A[i * lda + k]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
  }
  if (nr == 32) {
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      float* c = C + i * ldc;
      if (accumulate) {
        c0[i] = _mm512_add_ps(c0[i], _mm512_loadu_ps(c));
        c1[i] = _mm512_add_ps(c1[i], _mm512_loadu_ps(c + 16));
      }
      _mm512_storeu_ps(c, c0[i]);
      _mm512_storeu_ps(c + 16, c1[i]);
    }
    return;
  }
  alignas(64) float tmp[MR * 32];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    _mm512_store_ps(tmp + i * 32, c0[i]);
    _mm512_store_ps(tmp + i * 32 + 16, c1[i]);
  }
  write_back<MR, 32>(tmp, C, ldc, accumulate, nr);
}

template <int MR>
MCV_CPU_TARGET_AVX2 void micro_256(int kc, const float* A, std::int64_t lda, const float* bp, float* C, std::int64_t ldc,
                           bool accumulate, int nr) {
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm256_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(bp + k * 16), b1 = _mm256_load_ps(bp + k * 16 + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(A + i * lda + k);
      c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
    }
  }
  if (nr == 16) {
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      float* c = C + i * ldc;
      if (accumulate) {
        c0[i] = _mm256_add_ps(c0[i], _mm256_loadu_ps(c));
        c1[i] = _mm256_add_ps(c1[i], _mm256_loadu_ps(c + 8));
      }
      _mm256_storeu_ps(c, c0[i]);
      _mm256_storeu_ps(c + 8, c1[i]);
    }
    return;
  }
  alignas(32) float tmp[MR * 16];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    _mm256_store_ps(tmp + i * 16, c0[i]);
    _mm256_store_ps(tmp + i * 16 + 8, c1[i]);
  }
  write_back<MR, 16>(tmp, C, ldc, accumulate, nr);
}

using MicroKernel = void (*)(int, const float*, std::int64_t, const float*, float*, std::int64_t, bool, int);

template <int... I>
constexpr auto table_512(std::integer_sequence<int, I...>) {
  return std::array<MicroKernel, sizeof...(I)>{&micro_512<I + 1>...};
}
template <int... I>
constexpr auto table_256(std::integer_sequence<int, I...>) {
  return std::array<MicroKernel, sizeof...(I)>{&micro_256<I + 1>...};
}

// Dot-product kernels for GEMMs of a few rows (batch-1 projections, heads): no packing, W is
// streamed once and each output is one dot product of two contiguous rows.
template <int MR>
MCV_CPU_TARGET_AVX512 void dot_512(std::int64_t K, const float* A, std::int64_t lda, const float* W, std::int64_t ldw,
                           std::int64_t cols, float* C, std::int64_t ldc) {
  const std::int64_t tail = K % 16;
  const __mmask16 mask = static_cast<__mmask16>((1u << tail) - 1u);
  for (std::int64_t j = 0; j < cols; ++j) {
    const float* w = W + j * ldw;
    __m512 acc[MR];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) acc[i] = _mm512_setzero_ps();
    std::int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      const __m512 wv = _mm512_loadu_ps(w + k);
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(A + i * lda + k), wv, acc[i]);
    }
    if (tail) {
      const __m512 wv = _mm512_maskz_loadu_ps(mask, w + k);
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, A + i * lda + k), wv, acc[i]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      // A plain store and sum: GCC 12's reduction intrinsics trip -Wmaybe-uninitialized.
      alignas(64) float lanes[16];
      _mm512_store_ps(lanes, acc[i]);
      float sum = 0.0f;
      for (int l = 0; l < 8; ++l) sum += lanes[l] + lanes[l + 8];
      C[i * ldc + j] = sum;
    }
  }
}

template <int MR>
MCV_CPU_TARGET_AVX2 void dot_256(std::int64_t K, const float* A, std::int64_t lda, const float* W, std::int64_t ldw,
                         std::int64_t cols, float* C, std::int64_t ldc) {
  for (std::int64_t j = 0; j < cols; ++j) {
    const float* w = W + j * ldw;
    __m256 acc[MR];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) acc[i] = _mm256_setzero_ps();
    std::int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      const __m256 wv = _mm256_loadu_ps(w + k);
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(A + i * lda + k), wv, acc[i]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, acc[i]);
      float sum = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
      for (std::int64_t kk = k; kk < K; ++kk) sum += A[i * lda + kk] * w[kk];
      C[i * ldc + j] = sum;
    }
  }
}

using DotKernel = void (*)(std::int64_t, const float*, std::int64_t, const float*, std::int64_t, std::int64_t, float*,
                           std::int64_t);
constexpr DotKernel kDot512[] = {&dot_512<1>, &dot_512<2>, &dot_512<3>, &dot_512<4>};
constexpr DotKernel kDot256[] = {&dot_256<1>, &dot_256<2>, &dot_256<3>, &dot_256<4>};

#endif

}  // namespace

void set_cpu_gemm_path(CpuGemmPath path) { forced_path.store(static_cast<int>(path)); }

CpuGemmPath cpu_gemm_path() {
  const auto forced = static_cast<CpuGemmPath>(forced_path.load());
  const CpuFeatures& f = cpu_features();
  switch (forced) {
    case CpuGemmPath::eigen: return CpuGemmPath::eigen;
    case CpuGemmPath::avx2: return f.avx2 ? CpuGemmPath::avx2 : CpuGemmPath::eigen;
    case CpuGemmPath::avx512: return f.avx512f ? CpuGemmPath::avx512 : f.avx2 ? CpuGemmPath::avx2 : CpuGemmPath::eigen;
    case CpuGemmPath::automatic: break;
  }
#if MCV_CPU_X86
  return f.avx512f ? CpuGemmPath::avx512 : f.avx2 ? CpuGemmPath::avx2 : CpuGemmPath::eigen;
#else
  return CpuGemmPath::eigen;
#endif
}

PackedWeight pack_weight(Context& ctx, const float* W, std::int64_t N, std::int64_t K, std::int64_t ldw) {
  PackedWeight pw;
  pw.path = cpu_gemm_path();
  if (pw.path == CpuGemmPath::eigen) return pw;
  pw.nr = pw.path == CpuGemmPath::avx512 ? 32 : 16;
  pw.n = N;
  pw.k = K;
  const std::int64_t panels = (N + pw.nr - 1) / pw.nr;
  const std::size_t bytes = static_cast<std::size_t>(panels * K * pw.nr) * sizeof(float);
  float* data = static_cast<float*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  if (!data) throw Error("cpu gemm", "out of memory packing a weight of " + std::to_string(bytes) + " bytes");
  pw.data = std::shared_ptr<float>(data, [](float* p) { std::free(p); });
  const std::int64_t grain = std::max<std::int64_t>(1, 65536 / std::max<std::int64_t>(K * pw.nr, 1));
  ctx.threads().parallel_for(panels, grain, [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; ++p) {
      const int nr = static_cast<int>(std::min<std::int64_t>(pw.nr, N - p * pw.nr));
      float* panel = data + p * K * pw.nr;
      if (pw.nr == 32)
        pack_panel<32>(W, ldw, p * 32, nr, 0, static_cast<int>(K), panel);
      else
        pack_panel<16>(W, ldw, p * 16, nr, 0, static_cast<int>(K), panel);
    }
  });
  return pw;
}

void packed_tile_gemm(const PackedWeight& pw, std::int64_t rows, std::int64_t c0, std::int64_t cols, const float* A,
                      std::int64_t lda, float* C, std::int64_t ldc) {
#if MCV_CPU_X86
  static constexpr auto k512 = table_512(std::make_integer_sequence<int, 12>());
  static constexpr auto k256 = table_256(std::make_integer_sequence<int, 6>());
  const MicroKernel* kernels = pw.nr == 32 ? k512.data() : k256.data();
  const int mr_max = pw.nr == 32 ? 12 : 6;
  const std::int64_t K = pw.k;
  // k-blocks outermost: the kc x NR slice of a panel is reused by every row block of the tile.
  for (std::int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int kc = static_cast<int>(std::min<std::int64_t>(kKc, K - k0));
    for (std::int64_t j0 = c0; j0 < c0 + cols; j0 += pw.nr) {
      const int nr = static_cast<int>(std::min<std::int64_t>(pw.nr, c0 + cols - j0));
      const float* panel = pw.data.get() + (j0 / pw.nr) * K * pw.nr + k0 * pw.nr;
      for (std::int64_t i0 = 0; i0 < rows; i0 += mr_max) {
        const int mr = static_cast<int>(std::min<std::int64_t>(mr_max, rows - i0));
        kernels[mr - 1](kc, A + i0 * lda + k0, lda, panel, C + i0 * ldc + (j0 - c0), ldc, k0 > 0, nr);
      }
    }
  }
#else
  (void)pw, (void)rows, (void)c0, (void)cols, (void)A, (void)lda, (void)C, (void)ldc;
  throw Error("cpu gemm", "vector kernels are not built for this CPU architecture");
#endif
}

bool dot_tile_gemm(CpuGemmPath path, std::int64_t rows, std::int64_t cols, std::int64_t K, const float* A,
                   std::int64_t lda, const float* W, std::int64_t ldw, float* C, std::int64_t ldc) {
#if MCV_CPU_X86
  if (path == CpuGemmPath::eigen || rows > kMaxDotRows) return false;
  (path == CpuGemmPath::avx512 ? kDot512 : kDot256)[rows - 1](K, A, lda, W, ldw, cols, C, ldc);
  return true;
#else
  (void)path, (void)rows, (void)cols, (void)K, (void)A, (void)lda, (void)W, (void)ldw, (void)C, (void)ldc;
  return false;
#endif
}

}  // namespace mcv::kernels::nn_detail
