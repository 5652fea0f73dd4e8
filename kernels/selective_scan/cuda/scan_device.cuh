#pragma once
// Device helpers shared by the CUDA selective-scan kernels (scan_pipe.cuh, scan_kernels.cuh):
// dtype conversions, the MUFU-based math, direction -> position maps, block coordinates, word
// copies with cp.async and the per-step state update.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common/cuda_async.cuh"
#include "common/cuda_dtype.cuh"
#include "common/cuda_math.cuh"
#include "selective_scan/cuda/scan_params.cuh"
#include "selective_scan/softplus_poly.h"

namespace mcv::kernels::scan::cuda {

using i64 = std::int64_t;

using ::mcv::kernels::cuda::cp_async_commit;
using ::mcv::kernels::cuda::cp_async_wait_all;
using ::mcv::kernels::cuda::cp_async_wait_committed;
using ::mcv::kernels::cuda::from_float;
using ::mcv::kernels::cuda::smem_u32;
using ::mcv::kernels::cuda::to_float;

using ::mcv::kernels::cuda::ex2_approx;
using ::mcv::kernels::cuda::kLn2;
using ::mcv::kernels::cuda::kLog2e;
using ::mcv::kernels::cuda::lg2_approx;
using ::mcv::kernels::cuda::silu;

/// torch's softplus (threshold 20) as max(x, 0) + e q(e), e = exp(-|x|) by the SFU, q of degree
/// kDegree from softplus_poly.h (its error bounds there: 3.2e-7 relative for degree 7, 1.55e-6
/// for 6, 1.05e-5 for 5).
template <int kDegree = 7>
__device__ __forceinline__ float softplus_f(float x) {
  static_assert(kDegree >= 5 && kDegree <= 7, "softplus_f: degree 5, 6 or 7");
  constexpr SoftplusCoefs<kDegree> c = softplus_coefs<kDegree>();
  const float e = ex2_approx(-fabsf(x) * kLog2e);
  float q = c.v[0];
#pragma unroll
  for (int i = 1; i <= kDegree; ++i) q = fmaf(q, e, c.v[i]);
  // torch returns x itself above 20; here e < 2.1e-9 there, so x + e*q rounds to x as well.
  return fmaf(e, q, fmaxf(x, 0.0f));
}

/// The softplus degree a scan with I/O type T takes (see softplus_f).
template <typename T>
inline constexpr int kSoftplusDegree = sizeof(T) == 2 ? 5 : 7;

/// The softplus of a pass kernel with I/O type T, kS states per thread, reading step rows or not.
/// Chosen per kernel by measurement (H200, ms; session 26), each choice compiling to the SASS
/// that was measured:
///  - f32: degree 7.
///  - 16-bit, several states: degree 5, one FMA per step fewer than degree 6 (with one sum chain
///    in scan_step: S6 bf16 2.665 -> 2.600, S3 0.991 -> 0.962).
///  - 16-bit, one state, channel rows: max(x, 0) + ln2 lg2(1 + e) by two SFU operations, 6
///    instructions for 9, where the SFU has room. Its error is absolute, ~1e-7 (lg2's, and 1 +
///    e's rounding: 0 below x = -16.6, where softplus is under 6e-8), far under what a 16-bit
///    delta's own rounding does (a bf16 x near -10 is known to 1/32: softplus(x) to ~3 %, 1.4e-6
///    absolute). Against degree 5, same process: VMamba SS2D N 1 bf16 0.570 -> 0.550, with column
///    inputs 0.493 -> 0.474, S4 0.398 -> 0.400 (level); on the 16-state kernels it lost (S3 0.962
///    -> 0.988, S6 2.601 -> 2.667: their SFU is ~76 % busy).
///  - 16-bit, one state, step rows (VMamba's token-major cross2d): degree 6, as before session 26.
///    Degree 5 and the lg2 form both made ptxas unroll this kernel differently (4,648 -> 5,120
///    SASS instructions) and the SS2D row slower (0.763 -> 0.784 / 0.774).
/// The warp corrections take softplus_f<kSoftplusDegree<T>> whatever pass 1 took: their dt
/// differ by at most degree 5's 1.05e-5 relative, which moves a carried state's decay 2^(a S) by
/// under 1e-4 relative before the correction stops at 2^-12 (16-bit) - far under the outputs'
/// rounding.
template <typename T, int kS, bool kStepRows>
__device__ __forceinline__ float softplus_io(float x) {
  if constexpr (sizeof(T) == 2 && kS == 1 && kStepRows) {
    return softplus_f<6>(x);
  } else if constexpr (sizeof(T) == 2 && kS == 1) {
    const float e = ex2_approx(-fabsf(x) * kLog2e);
    return fmaf(lg2_approx(1.0f + e), kLn2, fmaxf(x, 0.0f));
  } else {
    return softplus_f<kSoftplusDegree<T>>(x);
  }
}

/// c ? a : b as a selp instruction: both operands are computed first, so a run-time option
/// never turns an unrolled loop body into branches (the compiler sinks a plain ?: operand's
/// computation into a branch).
__device__ __forceinline__ float select_f(bool c, float a, float b) {
  float r;
  asm("{\n .reg .pred q;\n setp.ne.s32 q, %3, 0;\n selp.f32 %0, %1, %2, q;\n}"
      : "=f"(r)
      : "f"(a), "f"(b), "r"(static_cast<int>(c)));
  return r;
}

__device__ __forceinline__ bool dir_flipped(int mode, int k) {
  return mode == 1 || (mode == 2 && k == 1) || (mode == 3 && k >= 2);
}

/// Whether direction k visits grid positions column by column (cross2d's odd directions).
__device__ __forceinline__ bool dir_transposed(const Params& p, int k) { return p.mode == 3 && (k & 1); }
/// Whether direction k's streams are walked in that column order: not when the column orders are
/// staged as transposed copies (Params::cols_staged).
__device__ __forceinline__ bool rows_transposed(const Params& p, int k) {
  return dir_transposed(p, k) && !p.cols_staged;
}

/// Position in direction k's streams visited at step t: the natural (grid) position, or with
/// staged column orders the position in the transposed copies.
__device__ __forceinline__ i64 dir_pos(const Params& p, int k, int t) {
  if (dir_flipped(p.mode, k)) t = p.seqlen - 1 - t;
  if (rows_transposed(p, k)) {
    const int w = static_cast<int>(p.height_div.div(static_cast<unsigned>(t))), h = t - w * p.height;
    return static_cast<i64>(h) * p.width + w;
  }
  return t;
}

/// dir_pos along a column order (rows_transposed) for a thread that visits steps t, t + dt, t +
/// 2 dt, ...: the row h and column w of the current step, advanced by additions instead of a
/// division per step (the copy and store loops of column-order tiles spent ~25 instructions per
/// 16-byte move on dir_pos: ncu, H100, VMamba's token-major cross2d).
struct ColWalk {
  int h, w, height, width, sign;
  __device__ __forceinline__ ColWalk(const Params& p, int k, int t) {
    const bool flip = dir_flipped(p.mode, k);
    const int tt = flip ? p.seqlen - 1 - t : t;
    w = static_cast<int>(p.height_div.div(static_cast<unsigned>(tt)));
    h = tt - w * p.height;
    height = p.height;
    width = p.width;
    sign = flip ? -1 : 1;
  }
  __device__ __forceinline__ i64 pos() const { return static_cast<i64>(h) * width + w; }
  /// dt >= 0 steps on (backwards through the grid for the reversed column order).
  __device__ __forceinline__ void advance(int dt) {
    h += sign * dt;
    while (h >= height) h -= height, ++w;
    while (h < 0) h += height, --w;
  }
};

/// Asynchronous 4-byte copy (cp.async, no registers, every copy of a tile in flight at once)
/// of the aligned word holding the element at `src` into `dst`; zero-fills when !ok. 16-bit
/// elements are picked out of their word afterwards by address parity (word_value): a 2-byte
/// cp.async does not exist, and rows (odd L, reversed or column-major orders) need not be aligned.
template <typename T>
__device__ __forceinline__ void cp_async_word(void* dst, const T* src, bool ok) {
  const auto addr = reinterpret_cast<std::uintptr_t>(src) & ~std::uintptr_t{3};
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(dst)), "l"(addr), "r"(ok ? 4 : 0)
               : "memory");
}

template <typename T> __device__ __forceinline__ float word_value(unsigned w, unsigned high);
template <> __device__ __forceinline__ float word_value<float>(unsigned w, unsigned) { return __uint_as_float(w); }
template <> __device__ __forceinline__ float word_value<__nv_bfloat16>(unsigned w, unsigned high) {
  return __uint_as_float(high ? (w & 0xffff0000u) : (w << 16));
}
template <> __device__ __forceinline__ float word_value<__half>(unsigned w, unsigned high) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(high ? (w >> 16) : (w & 0xffffu))));
}

/// Block index -> (channel block, group, batch, direction when par_dirs, chunk).
struct BlockCoords {
  int cb, g, b, k, chunk;
};
__device__ __forceinline__ BlockCoords block_coords(const Params& p, int bpg, int chunk_offset) {
  int blk = blockIdx.x;
  BlockCoords c;
  c.cb = blk % bpg;
  blk /= bpg;
  c.g = blk % p.groups;
  blk /= p.groups;
  c.b = blk % p.batch;
  blk /= p.batch;
  c.k = blk % p.dir_blocks();
  c.chunk = blk / p.dir_blocks() + chunk_offset;
  return c;
}

/// Index of (chunk, direction block, batch, channel) in chunk_h / chunk_dtsum (times n_state).
__device__ __forceinline__ i64 chunk_cell(const Params& p, int chunk, int kb, int b, int d) {
  return ((static_cast<i64>(chunk) * p.dir_blocks() + kb) * p.batch + b) * p.dim + d;
}

/// Batch b's (direction k's slice, with par_dirs) part of a one-direction pass's target.
template <typename T>
__device__ __forceinline__ T* pass_target_base(const Params& p, int b, int k) {
  const SeqP& s = p.pass_target();
  return static_cast<T*>(const_cast<void*>(s.ptr)) + b * s.sb + (p.merged_by_pass() ? k * s.sk : 0);
}

/// A thread's channel in its block: local channel ch (kLanes threads each) and lane, the
/// block's first channel d_first and its count of real channels n_valid, the channel d, and the
/// block's steps [t_begin, t_end) (its chunk's when L is chunked).
struct ThreadChannel {
  int ch, lane, n_valid, d_first, d, t_begin, t_end;
  bool active;
};
template <int kLanes>
__device__ __forceinline__ ThreadChannel thread_channel(const Params& p, const BlockCoords& bc, int channels) {
  ThreadChannel c;
  c.ch = static_cast<int>(threadIdx.x) / kLanes;
  c.lane = static_cast<int>(threadIdx.x) % kLanes;
  const int c_first = bc.cb * channels;
  c.n_valid = min(channels, p.cpg - c_first);
  c.d_first = bc.g * p.cpg + c_first;
  c.d = c.d_first + c.ch;
  c.active = c.ch < c.n_valid;
  c.t_begin = p.n_chunks > 1 ? bc.chunk * p.chunk_len : 0;
  c.t_end = p.n_chunks > 1 ? min(p.seqlen, c.t_begin + p.chunk_len) : p.seqlen;
  return c;
}

/// This thread's share of channel d's parameters for direction k: A * log2(e) and the initial
/// state of its kS states (lane * kS + s; zero past n_state, and h0 only for the first chunk),
/// the D skip and the delta bias.
template <int kS>
__device__ __forceinline__ void load_channel(const Params& p, int b, int k, int d, int lane, bool active,
                                             bool first_chunk, float (&a2)[kS], float (&h)[kS], float& dskip,
                                             float& bias) {
  const i64 row = static_cast<i64>(k) * p.dim + d;
#pragma unroll
  for (int s = 0; s < kS; ++s) {
    const int n = lane * kS + s;
    const bool ok = active && n < p.n_state;
    a2[s] = ok ? p.A[row * p.A_sc + n * p.A_sn] * kLog2e : 0.0f;
    h[s] = (ok && p.h0 && first_chunk) ? p.h0[b * p.h0_sb + k * p.h0_sk + static_cast<i64>(d) * p.h0_sd + n * p.h0_sn]
                                        : 0.0f;
  }
  dskip = (active && p.Dskip) ? p.Dskip[row * p.D_s] : 0.0f;
  bias = (active && p.bias) ? p.bias[row * p.bias_s] : 0.0f;
}

/// Chunked path: a state across a whole chunk - the state H before it decayed by the chunk's
/// 2^(a2 dtsum), plus the chunk's own end state h_end (scanned from h = 0; the recurrence is
/// linear).
__device__ __forceinline__ float across_chunk(float a2, float dtsum, float H, float h_end) {
  return fmaf(ex2_approx(a2 * dtsum), H, h_end);
}
/// A carried state's size for the correction's stop line: |H|, or infinite when H is not finite
/// (such a state is never dropped, so that it reaches the outputs as on the CPU).
__device__ __forceinline__ float carried_magnitude(float H) { return isfinite(H) ? fabsf(H) : INFINITY; }

/// Chunked path, chunk c >= 1: replaces h with the chunk's true initial state H_in, combined
/// from the end states (scanned from h = 0) and dt sums of the chunks before it (the recurrence
/// is linear: H_in(c) = exp(A * dtsum(c-1)) * H_in(c-1) + h_end(c-1)); the last chunk also writes
/// the final state hT. Returns the largest |H_in| of this thread's states (infinite if one is not
/// finite).
template <int kS>
__device__ __forceinline__ float carried_state(const Params& p, const BlockCoords& bc, int k, int d, int lane,
                                               bool active, const float (&a2)[kS], float (&h)[kS]) {
  float hmax = 0.0f;
  const bool last_chunk = bc.chunk == p.n_chunks - 1;
#pragma unroll
  for (int s = 0; s < kS; ++s) {
    const int n = lane * kS + s;
    float H = 0.0f;
    if (active && n < p.n_state) {
      H = p.chunk_h[chunk_cell(p, 0, k, bc.b, d) * p.n_state + n];
#pragma unroll 4
      for (int c = 1; c < bc.chunk; ++c) {
        const i64 cell = chunk_cell(p, c, k, bc.b, d);
        H = across_chunk(a2[s], p.chunk_dtsum[cell], H, p.chunk_h[cell * p.n_state + n]);
      }
      if (last_chunk && p.hT) {
        const i64 cell = chunk_cell(p, bc.chunk, k, bc.b, d);
        p.hT[bc.b * p.hT_sb + k * p.hT_sk + static_cast<i64>(d) * p.hT_sd + n * p.hT_sn] =
            across_chunk(a2[s], p.chunk_dtsum[cell], H, p.chunk_h[cell * p.n_state + n]);
      }
    }
    h[s] = H;
    hmax = fmaxf(hmax, carried_magnitude(H));
  }
  return hmax;
}

/// The block correction's stop line for a thread whose largest carried |H_in| is hmax
/// (carried_state, infinite when a carried state is not finite): decayed below it, a state no
/// longer reaches the outputs. A non-finite carried state gets no line (-inf), so that it reaches
/// every later output of its chunk, as on the CPU, instead of being dropped after the first tile.
__device__ __forceinline__ float correction_line(const Params& p, float hmax) {
  return isinf(hmax) ? -INFINITY : ldexpf(hmax, p.correction_exponent);
}

/// The decay-only step of the correction: g = exp2(dt*a2) * g, returns sum C*g (partial over
/// this thread's states).
template <int kS>
__device__ __forceinline__ float decay_step(float (&g)[kS], const float (&a2)[kS], const float* crow, float dt) {
  float part[2] = {0.0f, 0.0f};
#pragma unroll
  for (int s = 0; s < kS; ++s) {
    g[s] *= ex2_approx(dt * a2[s]);
    part[s & 1] = fmaf(crow[s], g[s], part[s & 1]);
  }
  return part[0] + part[1];
}

/// After a channel's steps: its end state and dt sum (the channel's total) to the chunk
/// scratch when L is chunked, else the final state hT when asked for.
template <int kS>
__device__ __forceinline__ void store_channel_end(const Params& p, const BlockCoords& bc, int k, int d, int lane,
                                                  bool active, const float (&h)[kS], float dtsum) {
  if (!active) return;
  if (p.n_chunks > 1) {
    const i64 cell = chunk_cell(p, bc.chunk, bc.k, bc.b, d);
#pragma unroll
    for (int s = 0; s < kS; ++s) {
      const int n = lane * kS + s;
      if (n < p.n_state) p.chunk_h[cell * p.n_state + n] = h[s];
    }
    if (lane == 0) p.chunk_dtsum[cell] = dtsum;
  } else if (p.hT) {
#pragma unroll
    for (int s = 0; s < kS; ++s) {
      const int n = lane * kS + s;
      if (n < p.n_state) p.hT[bc.b * p.hT_sb + k * p.hT_sk + static_cast<i64>(d) * p.hT_sd + n * p.hT_sn] = h[s];
    }
  }
}

/// Sum over the kLanes threads of a channel (adjacent lanes of one warp).
template <int kLanes>
__device__ __forceinline__ float lane_sum(float v) {
#pragma unroll
  for (int off = kLanes / 2; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

/// One step of the recurrence for this thread's kS states: h = exp2(dt*a2) * h + B*dtu and
/// returns sum C*h (partial over this thread's states) in kChains independent chains (1, 2 or 4;
/// kS a multiple of 4). Each chain more costs an FADD per step to join the partial sums; fewer
/// chains make the sum's dependent chain longer. One chain where the states' exponentials bound
/// the step: with 16 states it took S6 bf16's pass-1 body from 1,931 to 1,883 instructions per
/// 16 steps at the same 168 registers (H200, against four chains: S6 bf16 2.665 -> 2.600 ms, S3
/// bf16 0.991 -> 0.962, S3 f32 1.207 -> 1.153, Vim's model layout bf16 0.171 -> 0.166); four
/// where the f32 lanes do not split the per-step work on step-row boxes, whose one-chain sum
/// measured slower (Vim's model layout f32 0.2069 -> 0.2190 ms).
template <int kS, int kChains>
__device__ __forceinline__ float scan_step(float (&h)[kS], const float (&a2)[kS], const float* brow, const float* crow,
                                           float dt, float dtu) {
  if constexpr (kS % 4 == 0) {
    static_assert(kChains == 1 || kChains == 2 || kChains == 4, "scan_step: 1, 2 or 4 sum chains");
    float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const float4* b4 = reinterpret_cast<const float4*>(brow);
    const float4* c4 = reinterpret_cast<const float4*>(crow);
#pragma unroll
    for (int q = 0; q < kS / 4; ++q) {
      const float4 bv = b4[q], cv = c4[q];
      const float bn[4] = {bv.x, bv.y, bv.z, bv.w}, cn[4] = {cv.x, cv.y, cv.z, cv.w};
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int s = q * 4 + r;
        h[s] = fmaf(ex2_approx(dt * a2[s]), h[s], bn[r] * dtu);
        part[r % kChains] = fmaf(cn[r], h[s], part[r % kChains]);
      }
    }
    if constexpr (kChains == 4)
      return (part[0] + part[1]) + (part[2] + part[3]);
    else if constexpr (kChains == 2)
      return part[0] + part[1];
    else
      return part[0];
  } else {
    float y = 0.0f;
#pragma unroll
    for (int s = 0; s < kS; ++s) {
      h[s] = fmaf(ex2_approx(dt * a2[s]), h[s], brow[s] * dtu);
      y = fmaf(crow[s], h[s], y);
    }
    return y;
  }
}


}  // namespace mcv::kernels::scan::cuda
