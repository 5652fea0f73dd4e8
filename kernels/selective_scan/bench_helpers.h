#pragma once
// Device helpers of the selective-scan benchmark (cuda/bench_helpers.cu): random fills and the
// copies that the unfused Vim / VMamba compositions make (flips, CrossScan, CrossMerge).
// All tensors are contiguous; dtype is f32 or bf16; `stream` is a cudaStream_t.

#include <cstdint>

#include "mcv/dtype.h"

namespace mcv::kernels::scan::bench {

/// x[i] = offset + scale * uniform(-1, 1) from a hash of (seed, i).
void fill_uniform(void* x, std::int64_t n, DType dtype, std::uint64_t seed, float scale, float offset, void* stream);
/// y[r, L-1-l] = x[r, l].
void flip_rows(const void* x, void* y, std::int64_t rows, std::int64_t len, DType dtype, void* stream);
/// out[r, l] = scale * (a[r, l] + b[r, L-1-l]).
void add_flipped(const void* a, const void* b, void* out, std::int64_t rows, std::int64_t len, float scale,
                 DType dtype, void* stream);
/// VMamba CrossScan: x (batch, D, H, W) -> xs (batch, 4, D, H*W).
void cross_scan(const void* x, void* xs, std::int64_t batch, std::int64_t dim, std::int64_t h, std::int64_t w,
                DType dtype, void* stream);
/// VMamba CrossMerge: ys (batch, 4, D, H*W) -> y (batch, D, H*W).
void cross_merge(const void* ys, void* y, std::int64_t batch, std::int64_t dim, std::int64_t h, std::int64_t w,
                 DType dtype, void* stream);

}  // namespace mcv::kernels::scan::bench
