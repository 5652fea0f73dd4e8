// CUDA SSD scan, the chunked algorithm of Mamba-2 (Dao & Gu 2024, section 6) in four launches:
//   1. dt_cumsum:     dt_t (bias, softplus, clamp) and the chunk-local inclusive cumsum of dt_t*A
//   2. chunk_state:   S_c[p][n] = sum_{s in c} exp(cum_last - cum_s) dt_s x_s[p] B_s[n]
//   3. state_passing: H_c (state entering chunk c) = exp(cum_last(c-1)) H_{c-1} + S_{c-1}, in place
//                     over S; the last one is the final state
//   4. chunk_scan:    y_t = exp(cum_t) C_t . H_c                                  (inter-chunk)
//                         + sum_{s<=t in c} (C_t . B_s) exp(cum_t - cum_s) dt_s x_s (intra-chunk)
//                         + D x_t, then * silu(z_t)
// Launches 2 and 4 are small f32 GEMM-like tiles (64x64 outputs per 256-thread block, 4x4 per
// thread, K staged through shared memory 32 at a time). No tensor cores: correctness first; the
// tiles make the arithmetic L1/shared-memory bound instead of DRAM bound. Scratch (dt, cumsum,
// chunk states: 4 * (2 * batch * H * L + batch * H * chunks * P * N) bytes) comes from the
// context's workspace arena.
//
// Every __syncthreads() below sits in control flow that is uniform over the block (loop bounds
// depend only on blockIdx and the params); the only early return is block-uniform and precedes
// all barriers.

#include "common/cuda_dtype.cuh"
#include "common/cuda_math.cuh"
#include "mcv/cuda/context.cuh"
#include "ssd/ssd_params.h"

namespace mcv::kernels::ssd_detail {

namespace {

using cuda::to_float;

constexpr int kThreads = 256;
constexpr int kTile = 64;  // outputs per block along each of the two tile axes
constexpr int kK = 32;     // reduction slice staged in shared memory

struct Workspace {
  float* dt = nullptr;      // (batch*H, L): processed dt
  float* cum = nullptr;     // (batch*H, L): chunk-local inclusive cumsum of dt*A
  float* states = nullptr;  // (batch*H, chunks, P, N)
  std::int64_t chunks = 0;
};

__device__ __forceinline__ std::int64_t chunk_end(const SsdParams& p, std::int64_t c) {
  return min((c + 1) * static_cast<std::int64_t>(p.chunk), p.len);
}

template <typename T>
__global__ void dt_cumsum_kernel(SsdParams p, Workspace w) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= p.batch * p.heads * w.chunks) return;
  const std::int64_t c = i % w.chunks, bh = i / w.chunks, h = bh % p.heads, b = bh / p.heads;
  const T* dt_in = static_cast<const T*>(p.dt);
  const float a = p.A[h * p.A_h];
  const float bias = p.dt_bias ? p.dt_bias[h * p.db_h] : 0.0f;
  float acc = 0.0f;
  for (std::int64_t t = c * p.chunk, end = chunk_end(p, c); t < end; ++t) {
    float dt = to_float(dt_in[b * p.dt_b + t * p.dt_t + h * p.dt_h]) + bias;
    if (p.softplus) dt = cuda::softplus(dt);
    if (p.clamp) dt = fminf(fmaxf(dt, p.dt_min), p.dt_max);
    acc += dt * a;
    w.dt[bh * p.len + t] = dt;
    w.cum[bh * p.len + t] = acc;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) chunk_state_kernel(SsdParams p, Workspace w) {
  __shared__ float xs[kK][kTile + 1];  // x[s][p] * dt_s * exp(cum_last - cum_s)
  __shared__ float bs[kK][kTile + 1];  // B[s][n]
  const std::int64_t P = p.headdim, N = p.dstate;
  const std::int64_t tiles_p = (P + kTile - 1) / kTile, tiles_n = (N + kTile - 1) / kTile;
  std::int64_t blk = blockIdx.x;
  const std::int64_t n0 = blk % tiles_n * kTile;
  blk /= tiles_n;
  const std::int64_t p0 = blk % tiles_p * kTile;
  blk /= tiles_p;
  const std::int64_t c = blk % w.chunks, bh = blk / w.chunks;
  const std::int64_t h = bh % p.heads, b = bh / p.heads, g = h / (p.heads / p.ngroups);
  const std::int64_t t_begin = c * p.chunk, t_end = chunk_end(p, c);
  const T* x = static_cast<const T*>(p.x) + b * p.x_b + h * p.x_h;
  const T* B = static_cast<const T*>(p.B) + b * p.B_b + g * p.B_g;
  const float* dt = w.dt + bh * p.len;
  const float* cum = w.cum + bh * p.len;
  const float cum_last = cum[t_end - 1];
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;

  float acc[4][4] = {};
  for (std::int64_t s0 = t_begin; s0 < t_end; s0 += kK) {
    for (int e = tid; e < kK * kTile; e += kThreads) {
      const int row = e / kTile, col = e % kTile;
      const std::int64_t s = s0 + row;
      float xv = 0.0f, bv = 0.0f;
      if (s < t_end) {
        if (p0 + col < P) xv = to_float(x[s * p.x_t + p0 + col]) * (dt[s] * expf(cum_last - cum[s]));
        if (n0 + col < N) bv = to_float(B[s * p.B_t + n0 + col]);
      }
      xs[row][col] = xv;
      bs[row][col] = bv;
    }
    __syncthreads();
#pragma unroll 4
    for (int k = 0; k < kK; ++k) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = xs[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = bs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }
  float* st = w.states + (bh * w.chunks + c) * P * N;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const std::int64_t pp = p0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (pp < P && n < N) st[pp * N + n] = acc[i][j];
    }
}

// One thread per state element (b, h, p, n), sequential over chunks.
__global__ void state_passing_kernel(SsdParams p, Workspace w) {
  const std::int64_t pn = p.headdim * p.dstate;
  const std::int64_t per_bh = (pn + kThreads - 1) / kThreads;
  const std::int64_t bh = blockIdx.x / per_bh;
  const std::int64_t e = blockIdx.x % per_bh * kThreads + threadIdx.x;
  if (e >= pn) return;
  float state = p.initial_states ? p.initial_states[bh * pn + e] : 0.0f;
  for (std::int64_t c = 0; c < w.chunks; ++c) {
    float* slot = w.states + (bh * w.chunks + c) * pn + e;
    const float chunk_state = *slot;
    *slot = state;
    state = expf(w.cum[bh * p.len + chunk_end(p, c) - 1]) * state + chunk_state;
  }
  if (p.final_states) p.final_states[bh * pn + e] = state;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) chunk_scan_kernel(SsdParams p, Workspace w) {
  __shared__ float cs[kTile][kK + 1];  // C[t][n]
  __shared__ float hs[kK][kTile + 1];  // state entering the chunk, [n][p]
  __shared__ float bs[kK][kK + 1];     // B[s][n]
  __shared__ float ms[kTile][kK + 1];  // (C_t . B_s) exp(cum_t - cum_s) dt_s, masked to s <= t
  __shared__ float xs[kK][kTile + 1];  // x[s][p]
  const std::int64_t P = p.headdim, N = p.dstate;
  const std::int64_t tiles_p = (P + kTile - 1) / kTile, tiles_t = (p.chunk + kTile - 1) / kTile;
  std::int64_t blk = blockIdx.x;
  const std::int64_t p0 = blk % tiles_p * kTile;
  blk /= tiles_p;
  const std::int64_t tt = blk % tiles_t;
  blk /= tiles_t;
  const std::int64_t c = blk % w.chunks, bh = blk / w.chunks;
  const std::int64_t t_begin = c * p.chunk, t_end = chunk_end(p, c);
  const std::int64_t t0 = t_begin + tt * kTile;
  if (t0 >= t_end) return;  // a t tile past a short last chunk: uniform over the block
  const std::int64_t h = bh % p.heads, b = bh / p.heads, g = h / (p.heads / p.ngroups);
  const T* x = static_cast<const T*>(p.x) + b * p.x_b + h * p.x_h;
  const T* B = static_cast<const T*>(p.B) + b * p.B_b + g * p.B_g;
  const T* C = static_cast<const T*>(p.C) + b * p.C_b + g * p.C_g;
  const float* dt = w.dt + bh * p.len;
  const float* cum = w.cum + bh * p.len;
  const float* h_prev = w.states + (bh * w.chunks + c) * P * N;
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;

  auto load_c_tile = [&](std::int64_t n0) {
    for (int e = tid; e < kTile * kK; e += kThreads) {
      const int row = e / kK, col = e % kK;
      const std::int64_t t = t0 + row, n = n0 + col;
      cs[row][col] = t < t_end && n < N ? to_float(C[t * p.C_t + n]) : 0.0f;
    }
  };

  // Inter-chunk term: C_t . H_c[p], scaled by the decay from the chunk start to t.
  float acc[4][4] = {};
  for (std::int64_t n0 = 0; n0 < N; n0 += kK) {
    load_c_tile(n0);
    for (int e = tid; e < kK * kTile; e += kThreads) {
      const int pl = e / kK, nl = e % kK;  // consecutive threads read consecutive n
      const std::int64_t pp = p0 + pl, n = n0 + nl;
      hs[nl][pl] = pp < P && n < N ? h_prev[pp * N + n] : 0.0f;
    }
    __syncthreads();
#pragma unroll 4
    for (int k = 0; k < kK; ++k) {
      float av[4], hv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = cs[ty + 16 * i][k];
#pragma unroll
      for (int j = 0; j < 4; ++j) hv[j] = hs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * hv[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const std::int64_t t = t0 + ty + 16 * i;
    const float decay = t < t_end ? expf(cum[t]) : 0.0f;
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] *= decay;
  }

  // Intra-chunk term, 32 source steps s at a time (only s <= t0 + 63 can reach this tile).
  const std::int64_t s_end = min(t0 + kTile, t_end);
  const int gt = tid / 4, gs = tid % 4;  // this thread's G entries: row gt, columns gs + 4q
  for (std::int64_t s0 = t_begin; s0 < s_end; s0 += kK) {
    float gv[8] = {};
    for (std::int64_t n0 = 0; n0 < N; n0 += kK) {
      load_c_tile(n0);
      for (int e = tid; e < kK * kK; e += kThreads) {
        const int row = e / kK, col = e % kK;
        const std::int64_t s = s0 + row, n = n0 + col;
        bs[row][col] = s < s_end && n < N ? to_float(B[s * p.B_t + n]) : 0.0f;
      }
      __syncthreads();
#pragma unroll 4
      for (int k = 0; k < kK; ++k) {
        const float cv = cs[gt][k];
#pragma unroll
        for (int q = 0; q < 8; ++q) gv[q] += cv * bs[gs + 4 * q][k];
      }
      __syncthreads();
    }
    const std::int64_t t = t0 + gt;
#pragma unroll
    for (int q = 0; q < 8; ++q) {
      const int sl = gs + 4 * q;
      const std::int64_t s = s0 + sl;
      // exp only of non-positive exponents (s <= t, A <= 0): masked entries never compute one.
      ms[gt][sl] = t < t_end && s < s_end && s <= t ? gv[q] * expf(cum[t] - cum[s]) * dt[s] : 0.0f;
    }
    for (int e = tid; e < kK * kTile; e += kThreads) {
      const int row = e / kTile, col = e % kTile;
      const std::int64_t s = s0 + row;
      xs[row][col] = s < s_end && p0 + col < P ? to_float(x[s * p.x_t + p0 + col]) : 0.0f;
    }
    __syncthreads();
#pragma unroll 4
    for (int k = 0; k < kK; ++k) {
      float mv[4], xv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) mv[i] = ms[ty + 16 * i][k];
#pragma unroll
      for (int j = 0; j < 4; ++j) xv[j] = xs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += mv[i] * xv[j];
    }
    __syncthreads();
  }

  // D skip term, gate, store.
  const T* z = static_cast<const T*>(p.z);
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const std::int64_t t = t0 + ty + 16 * i;
    if (t >= t_end) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const std::int64_t pp = p0 + tx + 16 * j;
      if (pp >= P) continue;
      float y = acc[i][j];
      if (p.D) y += p.D[h * p.D_h + pp * p.D_p] * to_float(x[t * p.x_t + pp]);
      if (p.z) y *= cuda::silu(to_float(z[b * p.z_b + t * p.z_t + h * p.z_h + pp]));
      out[b * p.o_b + t * p.o_t + h * p.o_h + pp] = cuda::from_float<T>(y);
    }
  }
}

unsigned checked_blocks(std::int64_t blocks, const char* kernel) {
  if (blocks < 1 || blocks > 0x7fffffff)
    throw Error("ssd_chunk_scan", std::string("problem too large for one launch of ") + kernel);
  return static_cast<unsigned>(blocks);
}

}  // namespace

void ssd_cuda(Context& ctx, const SsdParams& p) {
  Context::Cuda& cu = ctx.cuda();
  CudaDeviceGuard guard(cu.device);
  const std::int64_t bh = p.batch * p.heads, P = p.headdim, N = p.dstate;
  Workspace w;
  w.chunks = (p.len + p.chunk - 1) / p.chunk;
  const auto floats = [](std::int64_t n) { return static_cast<std::size_t>(n) * sizeof(float); };
  w.dt = static_cast<float*>(ctx.workspace().allocate(floats(bh * p.len)));
  w.cum = static_cast<float*>(ctx.workspace().allocate(floats(bh * p.len)));
  w.states = static_cast<float*>(ctx.workspace().allocate(floats(bh * w.chunks * P * N)));

  const std::int64_t tiles_p = (P + kTile - 1) / kTile, tiles_n = (N + kTile - 1) / kTile;
  const std::int64_t tiles_t = (p.chunk + kTile - 1) / kTile;
  const unsigned cumsum_blocks = checked_blocks((bh * w.chunks + kThreads - 1) / kThreads, "dt_cumsum");
  const unsigned state_blocks = checked_blocks(bh * w.chunks * tiles_p * tiles_n, "chunk_state");
  const unsigned passing_blocks = checked_blocks(bh * ((P * N + kThreads - 1) / kThreads), "state_passing");
  const unsigned scan_blocks = checked_blocks(bh * w.chunks * tiles_t * tiles_p, "chunk_scan");
  cuda::dispatch_io(p.io, [&](auto tag) {
    using T = decltype(tag);
    dt_cumsum_kernel<T><<<cumsum_blocks, kThreads, 0, cu.stream>>>(p, w);
    cuda_check_launch("ssd dt_cumsum_kernel");
    chunk_state_kernel<T><<<state_blocks, kThreads, 0, cu.stream>>>(p, w);
    cuda_check_launch("ssd chunk_state_kernel");
    state_passing_kernel<<<passing_blocks, kThreads, 0, cu.stream>>>(p, w);
    cuda_check_launch("ssd state_passing_kernel");
    chunk_scan_kernel<T><<<scan_blocks, kThreads, 0, cu.stream>>>(p, w);
    cuda_check_launch("ssd chunk_scan_kernel");
  });
}

}  // namespace mcv::kernels::ssd_detail
