// CUDA layer / RMS norm (with the fused residual add), LayerNorm2d and eval batch norm.
//
// Norms: the row lives in registers. A group of `group` threads takes one row, each thread
// kChunks vectors of kVec elements (vector j of a thread is the row's vector j * group + lane),
// so x and the residual are read from global memory once, with 16-byte loads where alignment
// allows (kVec = 8 halves / 4 floats; kVec = 1 otherwise), and every load of a row is in flight
// at once. Groups of <= 32 threads share a warp (C = 96 in f16 is 12 vectors: 8-lane groups of
// two vectors a thread, four rows per warp) and reduce with xor shuffles; longer rows take a whole block (<= 512 threads)
// and reduce through shared memory; rows beyond the registers of 512 threads go to
// norm_wide_kernel, which re-reads the row. The former kernel (one warp per row, three passes
// re-reading x with 2-byte loads, one load in flight per lane) was latency-bound: 17 us for a
// 0.5 MB batch-1 LayerNorm.
//
// Numerics are the former ones: x + residual in f32, mean = sum / C, var = sum((v - mean)^2) / C
// (two passes, over registers now), rstd = 1 / sqrtf(var + eps); RMS norm takes mean = 0.
// In place (out = x, residual_out = residual, or out = residual, residual_out = x) is safe: each
// element is written by the thread that read it, after the row's reductions, which follow every
// read of the row.

#include "nn/cuda/common.cuh"

namespace mcv::kernels::nn_detail {

namespace {

constexpr int kMaxBlock = 512;        // threads of a one-row block (128 registers a thread)
constexpr int kMaxThreadElems = 32;   // row elements a thread holds

// Sum over the `group` threads of a row: xor shuffles inside a warp (every lane gets the same
// bits), or, when the group is the whole block, warp sums then a shared-memory pass read in the
// same order by every thread.
__device__ __forceinline__ float group_sum(float v, int group, float* red) {
  if (group <= 32) {
    for (int o = group >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
  }
  v = cu::warp_sum(v);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  float s = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) s += red[w];
  __syncthreads();  // red is reused by the next sum
  return s;
}

// group <= 32: a power of two (2^group_log2), blockDim.x / group rows per block; group > 32:
// group == blockDim.x (a multiple of 32), one row per block. C <= group * kChunks * kVec and, for
// kVec > 1, every pointer, leading dimension and C allow kVec-element accesses.
template <typename T, int kVec, int kChunks>
__global__ void __launch_bounds__(kMaxBlock) norm_kernel(NormParams p, int group, int group_log2) {
  __shared__ float red[32];
  const int C = static_cast<int>(p.cols);
  const bool whole_block = group > 32;
  const int lane = whole_block ? static_cast<int>(threadIdx.x) : static_cast<int>(threadIdx.x) & (group - 1);
  const int slot = whole_block ? 0 : static_cast<int>(threadIdx.x >> group_log2);
  const int rows_per_block = whole_block ? 1 : static_cast<int>(blockDim.x >> group_log2);
  const bool res_f32 = p.residual_dtype == DType::f32;
  const bool out_f32 = p.out_dtype == DType::f32, ro_f32 = p.residual_out_dtype == DType::f32;
  // The loop bound is block-uniform: every thread reaches the shuffles and barriers.
  for (std::int64_t base = static_cast<std::int64_t>(blockIdx.x) * rows_per_block; base < p.rows;
       base += static_cast<std::int64_t>(gridDim.x) * rows_per_block) {
    const std::int64_t row = base + slot;
    const bool active = row < p.rows;
    const T* x = static_cast<const T*>(p.x) + row * p.ldx;
    float v[kChunks][kVec];
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      const int col = (j * group + lane) * kVec;
      if (active && col < C) {
        cu::load_vec<kVec>(x + col, v[j]);
        if (p.residual) {
          float r[kVec];
          cu::load_vec<T, kVec>(p.residual, res_f32, row * p.ldr + col, r);
#pragma unroll
          for (int k = 0; k < kVec; ++k) v[j][k] += r[k];
        }
      } else {
#pragma unroll
        for (int k = 0; k < kVec; ++k) v[j][k] = 0.0f;
      }
#pragma unroll
      for (int k = 0; k < kVec; ++k) s += v[j][k];
    }
    float mean = 0.0f;
    if (!p.rms) mean = group_sum(s, group, red) / static_cast<float>(C);
    float q = 0.0f;
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      if ((j * group + lane) * kVec < C) {
#pragma unroll
        for (int k = 0; k < kVec; ++k) {
          const float d = v[j][k] - mean;
          q += d * d;
        }
      }
    }
    const float rstd = 1.0f / sqrtf(group_sum(q, group, red) / static_cast<float>(C) + p.eps);
    if (!active) continue;
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      const int col = (j * group + lane) * kVec;
      if (col >= C) continue;
      float y[kVec], w[kVec], b[kVec];
      if (p.weight.data) cu::load_vec<T, kVec>(p.weight.data, p.weight.f32, col, w);
      if (p.bias.data) cu::load_vec<T, kVec>(p.bias.data, p.bias.f32, col, b);
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        y[k] = (v[j][k] - mean) * rstd;
        if (p.weight.data) y[k] *= w[k];
        if (p.bias.data) y[k] += b[k];
      }
      if (p.residual_out) cu::store_vec<T, kVec>(p.residual_out, ro_f32, row * p.ldro + col, v[j]);
      cu::store_vec<T, kVec>(p.out, out_f32, row * p.ldo + col, y);
    }
  }
}

// Rows too long for the registers of one block: one block per row, three passes over global
// memory (the later ones mostly hit L2). The last pass reads each element before the same thread
// writes it, which keeps the in-place uses safe.
template <typename T>
__global__ void __launch_bounds__(256) norm_wide_kernel(NormParams p) {
  __shared__ float red[32];
  const bool res_f32 = p.residual_dtype == DType::f32;
  const bool out_f32 = p.out_dtype == DType::f32, ro_f32 = p.residual_out_dtype == DType::f32;
  const std::int64_t C = p.cols;
  for (std::int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {
    const T* x = static_cast<const T*>(p.x) + row * p.ldx;
    const std::int64_t res_off = row * p.ldr;
    auto value = [&](std::int64_t i) {
      float v = cu::to_float(x[i]);
      if (p.residual) v += cu::load_param<T>(p.residual, res_f32, res_off + i);
      return v;
    };
    float mean = 0.0f;
    if (!p.rms) {
      float s = 0.0f;
      for (std::int64_t i = threadIdx.x; i < C; i += blockDim.x) s += value(i);
      mean = group_sum(s, blockDim.x, red) / static_cast<float>(C);
    }
    float q = 0.0f;
    for (std::int64_t i = threadIdx.x; i < C; i += blockDim.x) {
      const float d = value(i) - mean;
      q += d * d;
    }
    const float rstd = 1.0f / sqrtf(group_sum(q, blockDim.x, red) / static_cast<float>(C) + p.eps);
    for (std::int64_t i = threadIdx.x; i < C; i += blockDim.x) {
      const float v = value(i);
      float y = (v - mean) * rstd;
      if (p.weight.data) y *= cu::load_param<T>(p.weight.data, p.weight.f32, i);
      if (p.bias.data) y += cu::load_param<T>(p.bias.data, p.bias.f32, i);
      if (p.residual_out) cu::store_param<T>(p.residual_out, ro_f32, row * p.ldro + i, v);
      cu::store_param<T>(p.out, out_f32, row * p.ldo + i, y);
    }
  }
}

std::int64_t ceil_pow2(std::int64_t n) {
  std::int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}

template <typename T, int kVec, int kChunks>
void launch_norm_rows(const NormParams& p, cudaStream_t stream, int sms, int group) {
  int threads = group, log2 = 0;
  unsigned blocks;
  if (group <= 32) {
    while ((1 << log2) < group) ++log2;
    // 4 warps a block, fewer when that leaves SMs idle (batch-1 shapes: 49 to 196 rows).
    threads = 128;
    while (threads > 32 && (p.rows + (threads >> log2) - 1) / (threads >> log2) < 2 * sms) threads /= 2;
    const std::int64_t rows_per_block = threads >> log2;
    blocks = static_cast<unsigned>(
        std::clamp<std::int64_t>((p.rows + rows_per_block - 1) / rows_per_block, 1, std::int64_t{sms} * 32));
  } else {
    blocks = static_cast<unsigned>(std::clamp<std::int64_t>(p.rows, 1, std::int64_t{sms} * (4096 / threads)));
  }
  norm_kernel<T, kVec, kChunks><<<blocks, threads, 0, stream>>>(p, group, log2);
  cuda_check_launch("norm_kernel");
}

// Picks the row group and the chunks a thread holds for rows of C = p.cols elements.
template <typename T, int kVec>
void launch_norm(const NormParams& p, cudaStream_t stream, int sms) {
  constexpr int kMaxChunks = std::min(8, kMaxThreadElems / kVec);
  const std::int64_t nvec = p.cols / kVec;
  std::int64_t group, chunks;
  // Two vectors a thread where the row allows: a 16-byte vector costs 8 registers against ~50 of
  // fixed cost (ptxas: 56 registers at one chunk, 58 at two), so two double the loads in flight
  // per SM; C = 96 in f16 (12 vectors) is then 8 lanes a row, 4 rows a warp.
  if (nvec <= 2) {
    group = 1;
    chunks = nvec;
  } else if (nvec <= 64) {
    group = ceil_pow2((nvec + 1) / 2);
    chunks = 2;
  } else if (nvec <= 32 * kMaxChunks) {
    group = 32;
    chunks = ceil_pow2((nvec + 31) / 32);
  } else {
    group = ((nvec + kMaxChunks - 1) / kMaxChunks + 31) / 32 * 32;
    if (group > kMaxBlock) {
      norm_wide_kernel<T><<<static_cast<unsigned>(std::clamp<std::int64_t>(p.rows, 1, std::int64_t{sms} * 16)),
                            256, 0, stream>>>(p);
      cuda_check_launch("norm_wide_kernel");
      return;
    }
    chunks = ceil_pow2((nvec + group - 1) / group);
  }
  const int g = static_cast<int>(group);
  switch (chunks) {
    case 1: launch_norm_rows<T, kVec, 1>(p, stream, sms, g); return;
    case 2: launch_norm_rows<T, kVec, 2>(p, stream, sms, g); return;
    case 4: launch_norm_rows<T, kVec, 4>(p, stream, sms, g); return;
    default:
      if constexpr (kMaxChunks >= 8) launch_norm_rows<T, kVec, 8>(p, stream, sms, g);
      return;
  }
}

// One thread per (image, pixel), looping over channels (stride H*W): loads coalesce across
// neighbouring pixels.
template <typename T>
__global__ void layer_norm_2d_kernel(LayerNorm2dParams p) {
  const std::int64_t total = p.n * p.hw;
  for (std::int64_t t = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t n = t / p.hw, q = t % p.hw;
    const T* x = static_cast<const T*>(p.x) + n * p.c * p.hw + q;
    T* out = static_cast<T*>(p.out) + n * p.c * p.hw + q;
    float s = 0.0f;
    for (std::int64_t c = 0; c < p.c; ++c) s += cu::to_float(x[c * p.hw]);
    const float mean = s / static_cast<float>(p.c);
    float m2 = 0.0f;
    for (std::int64_t c = 0; c < p.c; ++c) {
      const float d = cu::to_float(x[c * p.hw]) - mean;
      m2 += d * d;
    }
    const float rstd = 1.0f / sqrtf(m2 / static_cast<float>(p.c) + p.eps);
    for (std::int64_t c = 0; c < p.c; ++c) {
      float y = (cu::to_float(x[c * p.hw]) - mean) * rstd;
      if (p.weight.data) y *= cu::load_param<T>(p.weight.data, p.weight.f32, c);
      if (p.bias.data) y += cu::load_param<T>(p.bias.data, p.bias.f32, c);
      out[c * p.hw] = cu::from_float<T>(y);
    }
  }
}

// out[r, c] = act(x[r, c] * s[c] + shift[c]), kVec columns per thread (flat 32-bit loop as the
// elementwise ops). One launch covers a range of rows: the op's parameters with x and out moved
// to its first row.
struct BatchNormRun {
  BatchNormParams op;
  std::uint32_t total = 0;  // rows * (cols / kVec)
  cu::FastDiv vcols;        // cols / kVec
};

template <typename T, int kVec>
__global__ void batch_norm_kernel(BatchNormRun run) {
  const BatchNormParams& p = run.op;
  const T* x = static_cast<const T*>(p.x);
  T* out = static_cast<T*>(p.out);
  for (std::uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < run.total; i += gridDim.x * blockDim.x) {
    const std::uint32_t r = run.vcols.div(i), c = (i - r * run.vcols.d) * kVec;
    float v[kVec], mean[kVec], var[kVec], w[kVec], b[kVec];
    cu::load_vec<kVec>(x + r * p.ldx + c, v);
    cu::load_vec<T, kVec>(p.mean.data, p.mean.f32, c, mean);
    cu::load_vec<T, kVec>(p.var.data, p.var.f32, c, var);
    if (p.weight.data) cu::load_vec<T, kVec>(p.weight.data, p.weight.f32, c, w);
    if (p.bias.data) cu::load_vec<T, kVec>(p.bias.data, p.bias.f32, c, b);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      // Same scale/shift form as the CPU path (and PyTorch's CPU eval kernel).
      const float s = (p.weight.data ? w[k] : 1.0f) * (1.0f / sqrtf(var[k] + p.eps));
      const float shift = (p.bias.data ? b[k] : 0.0f) - mean[k] * s;
      v[k] = cu::activate(p.act, v[k] * s + shift);
    }
    cu::store_vec<kVec>(out + r * p.ldo + c, v);
  }
}

}  // namespace

void cuda_norm(Context& ctx, const NormParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  if (p.rows <= 0 || p.cols <= 0) return;
  const int sms = std::max(1, ctx.cuda().props.multiProcessorCount);
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kT = static_cast<int>(sizeof(T));
    auto size = [](DType t) { return t == DType::f32 ? 4 : kT; };
    const int vec = cu::vec_width(cu::kVec16<T>, p.rows, p.cols,
                                  {{p.x, kT, p.ldx},
                                   {p.residual, size(p.residual_dtype), p.ldr},
                                   {p.out, size(p.out_dtype), p.ldo},
                                   {p.residual_out, size(p.residual_out_dtype), p.ldro},
                                   {p.weight.data, p.weight.f32 ? 4 : kT, 0},
                                   {p.bias.data, p.bias.f32 ? 4 : kT, 0}});
    if (vec == cu::kVec16<T>)
      launch_norm<T, cu::kVec16<T>>(p, ctx.cuda().stream, sms);
    else
      launch_norm<T, 1>(p, ctx.cuda().stream, sms);
  });
}

void cuda_layer_norm_2d(Context& ctx, const LayerNorm2dParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kThreads = 256;
    layer_norm_2d_kernel<T><<<cu::grid_for(p.n * p.hw, kThreads), kThreads, 0, ctx.cuda().stream>>>(p);
    cuda_check_launch("layer_norm_2d_kernel");
  });
}

void cuda_batch_norm(Context& ctx, const BatchNormParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  if (p.rows <= 0 || p.cols <= 0) return;
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kT = static_cast<int>(sizeof(T));
    const int vec = cu::vec_width(cu::kVec16<T>, p.rows, p.cols,
                                  {{p.x, kT, p.ldx},
                                   {p.out, kT, p.ldo},
                                   {p.weight.data, p.weight.f32 ? 4 : kT, 0},
                                   {p.bias.data, p.bias.f32 ? 4 : kT, 0},
                                   {p.mean.data, p.mean.f32 ? 4 : kT, 0},
                                   {p.var.data, p.var.f32 ? 4 : kT, 0}});
    cu::for_row_ranges(p.rows, p.cols, vec, 1, [&](std::int64_t r0, std::int64_t n) {
      BatchNormRun a;
      a.op = p;
      a.op.x = static_cast<const T*>(p.x) + r0 * p.ldx;
      a.op.out = static_cast<T*>(p.out) + r0 * p.ldo;
      a.total = static_cast<std::uint32_t>(n * (p.cols / vec));
      a.vcols = cu::FastDiv(static_cast<std::uint32_t>(p.cols / vec));
      const cu::FlatGrid g = cu::flat_grid(a.total);
      if (vec == cu::kVec16<T>)
        batch_norm_kernel<T, cu::kVec16<T>><<<g.blocks, g.threads, 0, ctx.cuda().stream>>>(a);
      else
        batch_norm_kernel<T, 1><<<g.blocks, g.threads, 0, ctx.cuda().stream>>>(a);
      cuda_check_launch("batch_norm_kernel");
    });
  });
}

}  // namespace mcv::kernels::nn_detail
