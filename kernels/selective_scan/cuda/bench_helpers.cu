// Device helpers of the selective-scan benchmark (see selective_scan/bench_helpers.h). Simple
// grid-stride kernels: they stand in for what the unfused model code does (torch.flip, VMamba's
// CrossScan/CrossMerge), each reading and writing every element once.

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "mcv/cuda/context.cuh"
#include "mcv/error.h"
#include "selective_scan/bench_helpers.h"

namespace mcv::kernels::scan::bench {
namespace {

using i64 = std::int64_t;

__device__ __forceinline__ float load(const float* p, i64 i) { return p[i]; }
__device__ __forceinline__ float load(const __nv_bfloat16* p, i64 i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store(float* p, i64 i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, i64 i, float v) { p[i] = __float2bfloat16_rn(v); }

__device__ __forceinline__ std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

template <typename T>
__global__ void fill_kernel(T* x, i64 n, std::uint64_t seed, float scale, float offset) {
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < n; i += static_cast<i64>(gridDim.x) * blockDim.x) {
    const float u = static_cast<float>(mix(seed * 0x9e3779b97f4a7c15ull + i) >> 40) * (2.0f / 16777216.0f) - 1.0f;
    store(x, i, offset + scale * u);
  }
}

template <typename T>
__global__ void flip_kernel(const T* x, T* y, i64 rows, i64 len) {
  const i64 n = rows * len;
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < n; i += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 r = i / len, l = i % len;
    y[r * len + (len - 1 - l)] = x[i];
  }
}

template <typename T>
__global__ void add_flipped_kernel(const T* a, const T* b, T* out, i64 rows, i64 len, float scale) {
  const i64 n = rows * len;
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < n; i += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 r = i / len, l = i % len;
    store(out, i, scale * (load(a, i) + load(b, r * len + (len - 1 - l))));
  }
}

// One thread per output element of xs (batch, 4, D, L), reading x in scan order.
template <typename T>
__global__ void cross_scan_kernel(const T* x, T* xs, i64 batch, i64 dim, i64 h, i64 w) {
  const i64 L = h * w, n = batch * 4 * dim * L;
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < n; i += static_cast<i64>(gridDim.x) * blockDim.x) {
    i64 t = i % L;
    const i64 d = (i / L) % dim, k = (i / (L * dim)) % 4, b = i / (L * dim * 4);
    if (k >= 2) t = L - 1 - t;
    const i64 q = (k & 1) ? (t % h) * w + t / h : t;
    xs[i] = x[(b * dim + d) * L + q];
  }
}

// One thread per grid element of y, summing the four directions' outputs at their scan slots.
template <typename T>
__global__ void cross_merge_kernel(const T* ys, T* y, i64 batch, i64 dim, i64 h, i64 w) {
  const i64 L = h * w, n = batch * dim * L;
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < n; i += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 q = i % L, d = (i / L) % dim, b = i / (L * dim);
    const i64 col = (q % w) * h + q / w;  // column-major step of grid position q
    const T* base = ys + (b * 4 * dim + d) * L;
    const i64 kstride = dim * L;
    const float v = load(base, q) + load(base + kstride, col) + load(base + 2 * kstride, L - 1 - q) +
                    load(base + 3 * kstride, L - 1 - col);
    store(y, i, v);
  }
}

unsigned blocks_for(i64 n) { return static_cast<unsigned>(std::min<i64>((n + 255) / 256, 132 * 32)); }

template <typename F>
void by_dtype(DType dtype, F&& f) {
  if (dtype == DType::f32) f(static_cast<float*>(nullptr));
  else if (dtype == DType::bf16) f(static_cast<__nv_bfloat16*>(nullptr));
  else throw Error("selective_scan bench", "helpers support f32 and bf16 only");
}

}  // namespace

void fill_uniform(void* x, i64 n, DType dtype, std::uint64_t seed, float scale, float offset, void* stream) {
  by_dtype(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    fill_kernel<T><<<blocks_for(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(static_cast<T*>(x), n, seed, scale, offset);
  });
  cuda_check_launch("bench fill");
}

void flip_rows(const void* x, void* y, i64 rows, i64 len, DType dtype, void* stream) {
  by_dtype(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    flip_kernel<T><<<blocks_for(rows * len), 256, 0, static_cast<cudaStream_t>(stream)>>>(static_cast<const T*>(x), static_cast<T*>(y), rows, len);
  });
  cuda_check_launch("bench flip");
}

void add_flipped(const void* a, const void* b, void* out, i64 rows, i64 len, float scale, DType dtype, void* stream) {
  by_dtype(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    add_flipped_kernel<T><<<blocks_for(rows * len), 256, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out), rows, len, scale);
  });
  cuda_check_launch("bench add_flipped");
}

void cross_scan(const void* x, void* xs, i64 batch, i64 dim, i64 h, i64 w, DType dtype, void* stream) {
  by_dtype(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    cross_scan_kernel<T><<<blocks_for(batch * 4 * dim * h * w), 256, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<const T*>(x), static_cast<T*>(xs), batch, dim, h, w);
  });
  cuda_check_launch("bench cross_scan");
}

void cross_merge(const void* ys, void* y, i64 batch, i64 dim, i64 h, i64 w, DType dtype, void* stream) {
  by_dtype(dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    cross_merge_kernel<T><<<blocks_for(batch * dim * h * w), 256, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<const T*>(ys), static_cast<T*>(y), batch, dim, h, w);
  });
  cuda_check_launch("bench cross_merge");
}

}  // namespace mcv::kernels::scan::bench
