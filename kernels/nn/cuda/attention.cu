// CUDA multi-head attention for window blocks: out = softmax(scale * Q K^T) V per (batch, head).
//
// Three kernels, chosen per call by dtype and head size (cuda_attention at the bottom):
//
//  1. attention_mma_kernel (f16 / bf16, max(D, Dv) <= 96, sm_80+): flash-style, on tensor cores.
//     A block takes 64 query rows of one (batch, head), 16 per warp. Keys stream through shared
//     memory 64 at a time (K row-major, V transposed, zero-padded to the tile sizes); each warp
//     computes its 16 x 64 score tile with mma.sync m16n8k16 (f32 accumulate), runs an online
//     softmax on it in registers (f32, exp2 with log2(e) folded into the scale), rounds the
//     probabilities to the I/O type and multiplies them into V with a second mma whose A fragment
//     is the score accumulator itself (the m16n8 accumulator layout of two adjacent key tiles is
//     the m16k16 A layout), so no score ever leaves registers. Head dims are padded to a multiple
//     of 16 (40 -> 48: MambaVision's), with zeros in Q, K and V so the padding adds nothing.
//  2. attention_f32_kernel (f32, max(D, Dv) <= 64): the same streaming structure on CUDA cores,
//     one query row per thread, its scaled q and output row in registers, every K / V element a
//     shared-memory broadcast. Plain FP32 FMAs and expf: tensor cores would mean TF32, and f32
//     I/O must stay exact to FP32 like the CPU path.
//  3. attention_rowwise_kernel (everything else: larger heads, empty key sets, pre-sm_80 cards
//     for 16-bit types): one warp per query row with scalar loops; slow but shape-agnostic.
//
// The score matrix never reaches global memory, so the op needs no workspace (batch 128 of
// 196-token windows would otherwise need 157 MB of f32 scores per call) and is graph-capture safe:
// launches only, no allocation, no host synchronisation. Strides are arbitrary throughout: q/k/v
// are read straight out of the qkv projection and the output lands in the (B, T, heads, Dv)
// layout the proj linear wants. Tile loads map consecutive threads to consecutive head-dim
// elements, which are contiguous in that layout.

#include <type_traits>

#include "nn/cuda/common.cuh"

namespace mcv::kernels::nn_detail {

namespace {

// ---- 1. tensor-core kernel (f16 / bf16) ----------------------------------------------------

constexpr int kMmaWarps = 4;
constexpr int kMmaRows = kMmaWarps * 16;  // query rows per block (one m16 tile per warp)
constexpr int kMmaKeys = 64;              // keys per shared-memory chunk
// Row padding (in 16-bit elements) of every shared tile. A fragment load reads 4 consecutive
// 32-bit words from each of 8 consecutive rows; a row stride of kD / 2 + 4 words (kD / 2 a
// multiple of 8, so the stride is 4, 12, 20 or 28 mod 32) puts those 32 words in 32 distinct banks.
constexpr int kMmaPad = 8;

__device__ __forceinline__ std::uint32_t load_word(const std::uint16_t* p) {
  return *reinterpret_cast<const std::uint32_t*>(p);
}

// c += a (16 x 16, row) * b (16 x 8, col), f32 accumulate. Fragment layouts (PTX ISA, m16n8k16),
// with g = lane / 4 and t = lane % 4:
//   a[0] = A[g][2t, 2t+1]     a[1] = A[g+8][2t, 2t+1]   a[2] = A[g][2t+8, +9]   a[3] = A[g+8][2t+8, +9]
//   b[0] = B[2t, 2t+1][g]     b[1] = B[2t+8, 2t+9][g]
//   c[0], c[1] = C[g][2t, 2t+1]                          c[2], c[3] = C[g+8][2t, 2t+1]
template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#else
  __trap();  // the host launches this kernel only on sm_80+ devices
#endif
}

// Copies src[r * rs + c * cs] (r < kRows, c < kCols) into a shared tile: dst[r * kLd + c], or with
// kTransposed dst[c * kLd + r] (V^T, so a B fragment of P V is one 32-bit word, like K's for
// Q K^T); zero where r >= rows_valid or c >= cols_valid (tile padding). 16-bit elements are copied
// as raw bits (0 is +0.0 in both). vec: 16-byte global loads of 8 elements, for head dims
// contiguous (cs == 1), row strides and cols_valid multiples of 8 and a 16-byte aligned src; an
// eighth of the load instructions of element loads, which dominated the kernel at batch 128
// (MambaVision-T: 0.26 ms per 196-token call). Trip counts are compile-time constants so the loops
// unroll and each thread has several loads in flight before its first shared store (at batch 1
// these loads are the latency).
template <int kRows, int kCols, int kLd, bool kTransposed>
__device__ __forceinline__ void load_tile(std::uint16_t* dst, const std::uint16_t* src, std::int64_t rows_valid,
                                          std::int64_t cols_valid, std::int64_t rs, std::int64_t cs, bool vec) {
  auto at = [](int r, int c) { return kTransposed ? c * kLd + r : r * kLd + c; };
  if (vec) {
    constexpr int kChunks = kCols / 8;
#pragma unroll 2
    for (int idx = threadIdx.x; idx < kRows * kChunks; idx += kMmaWarps * 32) {
      // Transposed, consecutive threads take consecutive rows: their 2-byte shared stores land in
      // neighbouring words of one destination row.
      const int r = kTransposed ? idx % kRows : idx / kChunks;
      const int c = (kTransposed ? idx / kRows : idx % kChunks) * 8;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (r < rows_valid && c < cols_valid) v = *reinterpret_cast<const uint4*>(src + r * rs + c);
      if constexpr (kTransposed) {
        const std::uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          dst[at(r, c + 2 * i)] = static_cast<std::uint16_t>(w[i] & 0xffffu);
          dst[at(r, c + 2 * i + 1)] = static_cast<std::uint16_t>(w[i] >> 16);
        }
      } else {
        *reinterpret_cast<uint4*>(dst + at(r, c)) = v;
      }
    }
  } else {
#pragma unroll 4
    for (int idx = threadIdx.x; idx < kRows * kCols; idx += kMmaWarps * 32) {
      const int r = idx / kCols, c = idx % kCols;
      dst[at(r, c)] = r < rows_valid && c < cols_valid ? src[r * rs + c * cs] : std::uint16_t{0};
    }
  }
}

// grid (B * heads, ceil(Tq / 64)), kMmaWarps warps. kD: max(D, Dv) rounded up to a multiple of 16.
// Shared memory: (64 + 64) rows of kD + 8 and kD rows of 72 16-bit elements, 21 KB at kD = 48.
// At least 4 blocks per SM caps registers at 128 (unrolled tile loads otherwise take 137 at
// kD = 48, leaving 3 blocks); every instantiation fits without spilling (ptxas -v, sm_90).
template <typename T, int kD>
__global__ void __launch_bounds__(kMmaWarps * 32, 4) attention_mma_kernel(AttentionParams p, float scale_log2) {
  constexpr int kLd = kD + kMmaPad;         // row stride of the Q / O and K tiles
  constexpr int kLdv = kMmaKeys + kMmaPad;  // row stride of the V^T tile
  constexpr int kKt = kD / 16;              // k16 steps of Q K^T
  constexpr int kNt = kD / 8;               // n8 tiles of the output row block
  constexpr int kSt = kMmaKeys / 8;         // n8 tiles of one score chunk
  __shared__ __align__(16) std::uint16_t qo[kMmaRows * kLd];  // Q tile, later each warp's O rows
  __shared__ __align__(16) std::uint16_t ks[kMmaKeys * kLd];
  __shared__ __align__(16) std::uint16_t vt[kD * kLdv];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const std::int64_t bh = blockIdx.x, b = bh / p.heads, h = bh % p.heads;
  const std::int64_t row0 = static_cast<std::int64_t>(blockIdx.y) * kMmaRows;
  const std::int64_t rows_valid = min(static_cast<std::int64_t>(kMmaRows), p.tq - row0);
  // A warp whose 16 rows all lie past Tq only helps load tiles (it must reach every barrier).
  const bool active = warp * 16 < rows_valid;
  const auto* qg = static_cast<const std::uint16_t*>(p.q) + b * p.qs[0] + h * p.qs[1] + row0 * p.qs[2];
  const auto* kg = static_cast<const std::uint16_t*>(p.k) + b * p.ks[0] + h * p.ks[1];
  const auto* vg = static_cast<const std::uint16_t*>(p.v) + b * p.vs[0] + h * p.vs[1];

  const auto aligned16 = [](const void* ptr) { return (reinterpret_cast<std::uintptr_t>(ptr) & 15) == 0; };
  const bool vec = p.qs[3] == 1 && p.ks[3] == 1 && p.vs[3] == 1 && p.d % 8 == 0 && p.dv % 8 == 0 &&
                   p.qs[2] % 8 == 0 && p.ks[2] % 8 == 0 && p.vs[2] % 8 == 0 && aligned16(qg) && aligned16(kg) &&
                   aligned16(vg);
  load_tile<kMmaRows, kD, kLd, false>(qo, qg, rows_valid, p.d, p.qs[2], p.qs[3], vec);
  __syncthreads();
  std::uint32_t qa[kKt][4];
  {
    const std::uint16_t* q0 = qo + (warp * 16 + g) * kLd + 2 * t;
#pragma unroll
    for (int kt = 0; kt < kKt; ++kt) {
      qa[kt][0] = load_word(q0 + kt * 16);
      qa[kt][1] = load_word(q0 + 8 * kLd + kt * 16);
      qa[kt][2] = load_word(q0 + kt * 16 + 8);
      qa[kt][3] = load_word(q0 + 8 * kLd + kt * 16 + 8);
    }
  }

  // Online softmax state of rows g (index 0) and g + 8 (index 1). l holds this lane's partial
  // row sums (its columns only); the quad's partials are added once at the end.
  float o[kNt][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (std::int64_t key0 = 0; key0 < p.tk; key0 += kMmaKeys) {
    const std::int64_t n = min(static_cast<std::int64_t>(kMmaKeys), p.tk - key0);
    __syncthreads();  // every warp is done with the previous chunk
    load_tile<kMmaKeys, kD, kLd, false>(ks, kg + key0 * p.ks[2], n, p.d, p.ks[2], p.ks[3], vec);
    load_tile<kMmaKeys, kD, kLdv, true>(vt, vg + key0 * p.vs[2], n, p.dv, p.vs[2], p.vs[3], vec);
    __syncthreads();
    if (!active) continue;

    float s[kSt][4] = {};
#pragma unroll
    for (int kt = 0; kt < kKt; ++kt)
#pragma unroll
      for (int nt = 0; nt < kSt; ++nt) {
        const std::uint16_t* kr = ks + (nt * 8 + g) * kLd + kt * 16 + 2 * t;
        const std::uint32_t kb[2] = {load_word(kr), load_word(kr + 8)};
        mma_16816<T>(s[nt], qa[kt], kb);
      }

    // Scale into the log2 domain; keys past Tk (zero-padded rows of K) get -inf.
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int nt = 0; nt < kSt; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = nt * 8 + 2 * t + (e & 1);
        s[nt][e] = key < n ? s[nt][e] * scale_log2 : -INFINITY;
        mx[e / 2] = fmaxf(mx[e / 2], s[nt][e]);
      }
    float corr[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      // The four lanes of a quad hold one row's columns.
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      corr[r] = exp2f(m[r] - mx[r]);  // 0 on the first chunk (m = -inf, mx finite: n >= 1)
      m[r] = mx[r];
      l[r] *= corr[r];
    }
#pragma unroll
    for (int nt = 0; nt < kSt; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[nt][e] = exp2f(s[nt][e] - m[e / 2]);
        l[e / 2] += s[nt][e];
      }
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[nt][e] *= corr[e / 2];

    // O += P V: score tiles 2kk and 2kk + 1 are the A fragment of keys [16kk, 16kk + 16).
#pragma unroll
    for (int kk = 0; kk < kMmaKeys / 16; ++kk) {
      const std::uint32_t pa[4] = {cu::pack2<T>(s[2 * kk][0], s[2 * kk][1]), cu::pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                                   cu::pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                   cu::pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int nt = 0; nt < kNt; ++nt) {
        const std::uint16_t* vr = vt + (nt * 8 + g) * kLdv + kk * 16 + 2 * t;
        const std::uint32_t vb[2] = {load_word(vr), load_word(vr + 8)};
        mma_16816<T>(o[nt], pa, vb);
      }
    }
  }
  if (!active) return;

  // Normalise, round, stage the warp's 16 rows in its own rows of the Q tile (no other warp
  // touches them after the first barrier) and write them out row by row: consecutive lanes take
  // consecutive output dims, contiguous in the (B, T, heads, Dv) layout.
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    inv[r] = 1.0f / l[r];
  }
  std::uint16_t* ow = qo + warp * 16 * kLd;
#pragma unroll
  for (int nt = 0; nt < kNt; ++nt) {
    auto* w0 = reinterpret_cast<std::uint32_t*>(ow + g * kLd + nt * 8 + 2 * t);
    auto* w1 = reinterpret_cast<std::uint32_t*>(ow + (g + 8) * kLd + nt * 8 + 2 * t);
    *w0 = cu::pack2<T>(o[nt][0] * inv[0], o[nt][1] * inv[0]);
    *w1 = cu::pack2<T>(o[nt][2] * inv[1], o[nt][3] * inv[1]);
  }
  __syncwarp();
  auto* og = static_cast<std::uint16_t*>(p.out) + b * p.os[0] + h * p.os[1] + (row0 + warp * 16) * p.os[2];
  const std::int64_t rows = min(static_cast<std::int64_t>(16), rows_valid - warp * 16);
  for (int idx = lane; idx < 16 * kD; idx += 32) {
    const int r = idx / kD, c = idx % kD;
    if (r < rows && c < p.dv) og[r * p.os[2] + c * p.os[3]] = ow[r * kLd + c];
  }
}

// ---- 2. FP32 kernel -------------------------------------------------------------------------

constexpr int kF32Threads = 64;  // query rows per block, one per thread
constexpr int kF32Keys = 32;     // keys per shared-memory chunk (their scores live in registers)

// grid (B * heads, ceil(Tq / 64)). kD: max(D, Dv) rounded up to a multiple of 16, at most 64
// (q, o and one chunk's scores take 2 kD + 32 registers).
template <int kD>
__global__ void __launch_bounds__(kF32Threads) attention_f32_kernel(AttentionParams p) {
  __shared__ __align__(16) float ks[kF32Keys * kD];
  __shared__ __align__(16) float vs[kF32Keys * kD];
  const std::int64_t bh = blockIdx.x, b = bh / p.heads, h = bh % p.heads;
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.y) * kF32Threads + threadIdx.x;
  const bool live = i < p.tq;
  const float* qr = static_cast<const float*>(p.q) + b * p.qs[0] + h * p.qs[1] + (live ? i : 0) * p.qs[2];
  const float* kg = static_cast<const float*>(p.k) + b * p.ks[0] + h * p.ks[1];
  const float* vg = static_cast<const float*>(p.v) + b * p.vs[0] + h * p.vs[1];
  // q pre-scaled as the CPU path does, so the dot products round the same way.
  float q[kD], o[kD];
#pragma unroll
  for (int c = 0; c < kD; ++c) {
    q[c] = live && c < p.d ? qr[c * p.qs[3]] * p.scale : 0.0f;
    o[c] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (std::int64_t key0 = 0; key0 < p.tk; key0 += kF32Keys) {
    const std::int64_t n = min(static_cast<std::int64_t>(kF32Keys), p.tk - key0);
    __syncthreads();
#pragma unroll 2
    for (int idx = threadIdx.x; idx < kF32Keys * kD; idx += kF32Threads) {
      const int j = idx / kD, c = idx % kD;
      ks[idx] = j < n && c < p.d ? kg[(key0 + j) * p.ks[2] + c * p.ks[3]] : 0.0f;
      vs[idx] = j < n && c < p.dv ? vg[(key0 + j) * p.vs[2] + c * p.vs[3]] : 0.0f;
    }
    __syncthreads();
    float s[kF32Keys];
    float mx = m;
#pragma unroll
    for (int j = 0; j < kF32Keys; ++j) {
      const float4* kr = reinterpret_cast<const float4*>(ks + j * kD);  // same address in every lane
      float dot = 0.0f;
#pragma unroll
      for (int c = 0; c < kD / 4; ++c) {
        const float4 k4 = kr[c];
        dot = fmaf(q[4 * c], k4.x, dot);
        dot = fmaf(q[4 * c + 1], k4.y, dot);
        dot = fmaf(q[4 * c + 2], k4.z, dot);
        dot = fmaf(q[4 * c + 3], k4.w, dot);
      }
      s[j] = j < n ? dot : -INFINITY;
      mx = fmaxf(mx, s[j]);
    }
    const float corr = expf(m - mx);  // 0 on the first chunk
    m = mx;
    l *= corr;
#pragma unroll
    for (int c = 0; c < kD; ++c) o[c] *= corr;
#pragma unroll
    for (int j = 0; j < kF32Keys; ++j) {
      const float e = expf(s[j] - m);
      l += e;
      const float4* vr = reinterpret_cast<const float4*>(vs + j * kD);
#pragma unroll
      for (int c = 0; c < kD / 4; ++c) {
        const float4 v4 = vr[c];
        o[4 * c] = fmaf(e, v4.x, o[4 * c]);
        o[4 * c + 1] = fmaf(e, v4.y, o[4 * c + 1]);
        o[4 * c + 2] = fmaf(e, v4.z, o[4 * c + 2]);
        o[4 * c + 3] = fmaf(e, v4.w, o[4 * c + 3]);
      }
    }
  }
  if (!live) return;
  float* out = static_cast<float*>(p.out) + b * p.os[0] + h * p.os[1] + i * p.os[2];
#pragma unroll
  for (int c = 0; c < kD; ++c)
    if (c < p.dv) out[c * p.os[3]] = o[c] / l;
}

// ---- 3. row-wise fallback -------------------------------------------------------------------

// One warp per query row. The warp stages its scaled query row and its Tk scores in shared
// memory. Scores: each lane owns keys j = lane, lane + 32, ... and walks the key row (L1-cached).
// Softmax with warp reductions. Output: each lane owns output dims and sums p_j v[j, d] over j.
constexpr int kRowWarps = 4;

template <typename T>
__global__ void attention_rowwise_kernel(AttentionParams p) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const std::int64_t bh = blockIdx.x, b = bh / p.heads, h = bh % p.heads;
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.y) * kRowWarps + warp;
  if (i >= p.tq) return;  // whole warp; the kernel uses no block-level barrier
  float* s = smem + warp * (p.tk + p.d);
  float* qs = s + p.tk;
  const T* q = static_cast<const T*>(p.q) + b * p.qs[0] + h * p.qs[1] + i * p.qs[2];
  for (std::int64_t d = lane; d < p.d; d += 32) qs[d] = cu::to_float(q[d * p.qs[3]]) * p.scale;
  __syncwarp();
  const T* kb = static_cast<const T*>(p.k) + b * p.ks[0] + h * p.ks[1];
  float mx = -INFINITY;
  for (std::int64_t j = lane; j < p.tk; j += 32) {
    const T* kr = kb + j * p.ks[2];
    float dot = 0.0f;
    for (std::int64_t d = 0; d < p.d; ++d) dot += qs[d] * cu::to_float(kr[d * p.ks[3]]);
    s[j] = dot;
    mx = fmaxf(mx, dot);
  }
  mx = cu::warp_max(mx);
  float sum = 0.0f;
  for (std::int64_t j = lane; j < p.tk; j += 32) {
    const float e = expf(s[j] - mx);
    s[j] = e;
    sum += e;
  }
  sum = cu::warp_sum(sum);
  __syncwarp();  // every lane's exp(s) visible to the whole warp
  const T* vb = static_cast<const T*>(p.v) + b * p.vs[0] + h * p.vs[1];
  T* o = static_cast<T*>(p.out) + b * p.os[0] + h * p.os[1] + i * p.os[2];
  for (std::int64_t d = lane; d < p.dv; d += 32) {
    float acc = 0.0f;
    for (std::int64_t j = 0; j < p.tk; ++j) acc += s[j] * cu::to_float(vb[j * p.vs[2] + d * p.vs[3]]);
    o[d * p.os[3]] = cu::from_float<T>(acc / sum);
  }
}

// ---- launchers ------------------------------------------------------------------------------

// max(D, Dv) rounded up to the head-dim tiles a fast kernel is instantiated for (0: none).
// 16-bit: multiples of 16 (the mma k step) up to 96, 80 rounded up to save an instantiation
// (128 would need 52 KB of shared memory, past the 48 KB a launch gets without opting in);
// f32: up to 64 (register budget of the one-row-per-thread kernel).
int padded_head_dim(std::int64_t d, bool f32) {
  for (int kd : {16, 32, 48, 64, 96})
    if (d <= kd && (!f32 || kd <= 64)) return kd;
  return 0;
}

template <typename T, int kD>
void launch_mma(Context& ctx, const AttentionParams& p, dim3 grid) {
  const float scale_log2 = p.scale * 1.4426950408889634f;  // exp(x) = exp2(x log2 e)
  attention_mma_kernel<T, kD><<<grid, kMmaWarps * 32, 0, ctx.cuda().stream>>>(p, scale_log2);
  cuda_check_launch("attention_mma_kernel");
}

template <int kD>
void launch_f32(Context& ctx, const AttentionParams& p, dim3 grid) {
  attention_f32_kernel<kD><<<grid, kF32Threads, 0, ctx.cuda().stream>>>(p);
  cuda_check_launch("attention_f32_kernel");
}

}  // namespace

void cuda_attention(Context& ctx, const AttentionParams& p) {
  // Nothing to write. (An empty key set with queries still launches: every output is 0 / 0 = NaN,
  // as on the CPU.)
  if (p.batch == 0 || p.heads == 0 || p.tq == 0 || p.dv == 0) return;
  CudaDeviceGuard guard(ctx.cuda().device);
  cudaStream_t stream = ctx.cuda().stream;
  const auto bh = static_cast<unsigned>(p.batch * p.heads);
  const std::int64_t dmax = std::max(p.d, p.dv);
  const bool tensor_cores = ctx.cuda().props.major >= 8;
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    const int kd = p.tk > 0 && (std::is_same_v<T, float> || tensor_cores)
                       ? padded_head_dim(dmax, std::is_same_v<T, float>)
                       : 0;
    if (kd != 0) {
      if constexpr (std::is_same_v<T, float>) {
        const dim3 grid(bh, static_cast<unsigned>((p.tq + kF32Threads - 1) / kF32Threads));
        switch (kd) {
          case 16: launch_f32<16>(ctx, p, grid); return;
          case 32: launch_f32<32>(ctx, p, grid); return;
          case 48: launch_f32<48>(ctx, p, grid); return;
          case 64: launch_f32<64>(ctx, p, grid); return;
          default: break;
        }
      } else {
        const dim3 grid(bh, static_cast<unsigned>((p.tq + kMmaRows - 1) / kMmaRows));
        switch (kd) {
          case 16: launch_mma<T, 16>(ctx, p, grid); return;
          case 32: launch_mma<T, 32>(ctx, p, grid); return;
          case 48: launch_mma<T, 48>(ctx, p, grid); return;
          case 64: launch_mma<T, 64>(ctx, p, grid); return;
          case 96: launch_mma<T, 96>(ctx, p, grid); return;
          default: break;
        }
      }
    }
    const std::size_t smem = static_cast<std::size_t>(kRowWarps) * static_cast<std::size_t>(p.tk + p.d) * sizeof(float);
    const dim3 grid(bh, static_cast<unsigned>((p.tq + kRowWarps - 1) / kRowWarps));
    attention_rowwise_kernel<T><<<grid, kRowWarps * 32, smem, stream>>>(p);
    cuda_check_launch("attention_rowwise_kernel");
  });
}

}  // namespace mcv::kernels::nn_detail
