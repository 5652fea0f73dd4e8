// CPU GEMM for linear, matmul and conv2d: f32 output tiles spread over ctx.threads(), each
// computed by the AVX-512 / AVX2 kernels of cpu_gemm_simd.cpp when the CPU has them, else by
// Eigen's blocked GEMM. This is the only file that instantiates Eigen's product (one
// instantiation: row-major A times row-major W transposed), which keeps the build short.

#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "common/cpu_dtype.h"
#include "mcv/thread_pool.h"
#include "nn/nn_internal.h"

namespace mcv::kernels::nn_detail {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using OutMap = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

}  // namespace

void cpu_gemm_tiles_impl(Context& ctx, std::int64_t M, std::int64_t N, std::int64_t K, const float* A,
                         std::int64_t lda, const float* W, std::int64_t ldw, const PackedWeight* packed,
                         void (*epilogue)(const GemmTile&, void*), void* state) {
  ThreadPool& pool = ctx.threads();
  const std::int64_t threads = pool.size();
  const CpuGemmPath path = packed ? packed->path : cpu_gemm_path();
  // A few rows: dot products straight from W. Otherwise the vector kernels want W packed, once.
  const bool dot = path != CpuGemmPath::eigen && M <= kMaxDotRows;
  PackedWeight local;
  if (path != CpuGemmPath::eigen && !dot && !packed) {
    local = pack_weight(ctx, W, N, K, ldw);
    packed = &local;
  }
  // Tile shape: enough tiles to keep every thread busy (4 per thread when rows allow), row tiles
  // of at most 256 so a tile's f32 result stays cache-sized; split columns only when there are
  // too few row tiles (batch-1 projections), in multiples of 32 (the packed panel width).
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const std::int64_t want_tiles = flops < 1e6 ? 1 : 4 * threads;
  const std::int64_t mt = std::clamp<std::int64_t>(ceil_div(M, want_tiles), 16, 256);
  const std::int64_t row_tiles = ceil_div(M, mt);
  std::int64_t nt = N;
  if (row_tiles < want_tiles) {
    const std::int64_t col_tiles = ceil_div(want_tiles, row_tiles);
    nt = std::max<std::int64_t>(64, ceil_div(ceil_div(N, col_tiles), 32) * 32);
    nt = std::min(nt, N);
  }
  const std::int64_t col_tiles = ceil_div(N, nt);
  const std::int64_t tiles = row_tiles * col_tiles;

  auto run = [&](std::int64_t t0, std::int64_t t1) {
    std::vector<float> buf(static_cast<std::size_t>(std::min(mt, M) * std::min(nt, N)));
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t r0 = (t / col_tiles) * mt, c0 = (t % col_tiles) * nt;
      const std::int64_t rows = std::min(mt, M - r0), cols = std::min(nt, N - c0);
      if (dot) {
        dot_tile_gemm(path, rows, cols, K, A + r0 * lda, lda, W + c0 * ldw, ldw, buf.data(), cols);
      } else if (packed && packed->nr) {
        packed_tile_gemm(*packed, rows, c0, cols, A + r0 * lda, lda, buf.data(), cols);
      } else {
        ConstMap a(A + r0 * lda, rows, K, Eigen::OuterStride<>(lda));
        ConstMap w(W + c0 * ldw, cols, K, Eigen::OuterStride<>(ldw));
        OutMap c(buf.data(), rows, cols, Eigen::OuterStride<>(cols));
        c.noalias() = a * w.transpose();
      }
      epilogue(GemmTile{r0, r0 + rows, c0, c0 + cols, buf.data(), cols}, state);
    }
  };
  if (tiles == 1)
    run(0, 1);
  else
    pool.parallel_for(tiles, 1, run);
}

}  // namespace mcv::kernels::nn_detail

namespace mcv::kernels::nn_detail {

namespace {

using cpu::element_ptr;

// A (rows x cols, row stride ld) as f32 row-major: the data itself when already f32, else a
// converted copy in `buf`.
const float* as_f32_rows(const void* data, DType t, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                         std::vector<float>& buf, std::int64_t* ld_out) {
  if (t == DType::f32) {
    *ld_out = ld;
    return static_cast<const float*>(data);
  }
  buf.resize(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r) load_floats(element_ptr(data, t, r * ld), t, cols, buf.data() + r * cols);
  *ld_out = cols;
  return buf.data();
}

}  // namespace

void cpu_linear(Context& ctx, const LinearParams& p) {
  std::vector<float> a_buf, w_buf, bias(static_cast<std::size_t>(p.N));
  std::int64_t lda = 0, ldw = 0;
  const float* A = as_f32_rows(p.x, p.dtype, p.M, p.K, p.ldx, a_buf, &lda);
  const float* W = as_f32_rows(p.w, p.dtype, p.N, p.K, p.ldw, w_buf, &ldw);
  load_vec(p.bias, p.N, p.dtype, bias.data(), 0.0f);
  const DType rt = p.residual_f32 ? DType::f32 : p.dtype;
  cpu_gemm_tiles(ctx, p.M, p.N, p.K, A, lda, W, ldw, [&](const GemmTile& t) {
    const std::int64_t cols = t.c1 - t.c0;
    std::vector<float> row(static_cast<std::size_t>(cols)), res(p.residual ? static_cast<std::size_t>(cols) : 0);
    for (std::int64_t r = t.r0; r < t.r1; ++r) {
      const float* src = t.data + (r - t.r0) * t.ld;
      for (std::int64_t c = 0; c < cols; ++c) row[c] = src[c] + bias[t.c0 + c];
      apply_activation(p.act, row.data(), cols);
      if (p.residual) {
        load_floats(element_ptr(p.residual, rt, r * p.ldr + t.c0), rt, cols, res.data());
        for (std::int64_t c = 0; c < cols; ++c) row[c] += res[c];
      }
      store_floats(row.data(), cols, element_ptr(p.out, p.dtype, r * p.ldo + t.c0), p.dtype);
    }
  });
}

void cpu_matmul(Context& ctx, const MatmulParams& p) {
  ThreadPool& pool = ctx.threads();
  // Each batch packs A as f32 row-major (M x K) and B as f32 (N x K) (the W layout of the GEMM
  // core), unless the operand already is exactly that; packing is O(size) next to O(MNK).
  auto one = [&](std::int64_t bi) {
    std::vector<float> a_buf, b_buf;
    const std::size_t es = dtype_size(p.dtype);
    const char* a = static_cast<const char*>(p.a.data) + bi * p.a.bs * static_cast<std::int64_t>(es);
    const char* b = static_cast<const char*>(p.b.data) + bi * p.b.bs * static_cast<std::int64_t>(es);
    const float* A;
    std::int64_t lda;
    if (p.dtype == DType::f32 && (p.a.cs == 1 || p.K == 1) && (p.M == 1 || p.a.rs >= p.K)) {
      A = reinterpret_cast<const float*>(a);
      lda = p.M == 1 ? p.K : p.a.rs;
    } else {
      a_buf.resize(static_cast<std::size_t>(p.M * p.K));
      for (std::int64_t r = 0; r < p.M; ++r)
        for (std::int64_t k = 0; k < p.K; ++k)
          a_buf[r * p.K + k] = cpu::load_element(a + (r * p.a.rs + k * p.a.cs) * static_cast<std::int64_t>(es), p.dtype);
      A = a_buf.data();
      lda = p.K;
    }
    const float* B;
    std::int64_t ldb;
    if (p.dtype == DType::f32 && (p.b.rs == 1 || p.K == 1) && (p.N == 1 || p.b.cs >= p.K)) {
      B = reinterpret_cast<const float*>(b);
      ldb = p.N == 1 ? p.K : p.b.cs;
    } else {
      b_buf.resize(static_cast<std::size_t>(p.N * p.K));
      for (std::int64_t k = 0; k < p.K; ++k)
        for (std::int64_t n = 0; n < p.N; ++n)
          b_buf[n * p.K + k] = cpu::load_element(b + (k * p.b.rs + n * p.b.cs) * static_cast<std::int64_t>(es), p.dtype);
      B = b_buf.data();
      ldb = p.K;
    }
    void* out = static_cast<char*>(p.out) + bi * p.o_bs * static_cast<std::int64_t>(es);
    cpu_gemm_tiles(ctx, p.M, p.N, p.K, A, lda, B, ldb, [&](const GemmTile& t) {
      const std::int64_t cols = t.c1 - t.c0;
      std::vector<float> row(static_cast<std::size_t>(cols)), prev(p.accumulate ? static_cast<std::size_t>(cols) : 0);
      for (std::int64_t r = t.r0; r < t.r1; ++r) {
        const float* src = t.data + (r - t.r0) * t.ld;
        void* dst = element_ptr(out, p.dtype, r * p.o_rs + t.c0);
        for (std::int64_t c = 0; c < cols; ++c) row[c] = p.alpha * src[c];
        if (p.accumulate) {
          load_floats(dst, p.dtype, cols, prev.data());
          for (std::int64_t c = 0; c < cols; ++c) row[c] += prev[c];
        }
        store_floats(row.data(), cols, dst, p.dtype);
      }
    });
  };
  if (p.batch >= pool.size())
    pool.parallel_for(p.batch, 1, [&](std::int64_t b0, std::int64_t b1) {
      for (std::int64_t bi = b0; bi < b1; ++bi) one(bi);
    });
  else
    for (std::int64_t bi = 0; bi < p.batch; ++bi) one(bi);
}

}  // namespace mcv::kernels::nn_detail
