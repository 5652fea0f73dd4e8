// The chunked path's correction, one warp per (chunk, channel): scan_correct.cuh says why.

#include "selective_scan/cuda/scan_correct.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <type_traits>

#include "selective_scan/cuda/scan_device.cuh"
#include "selective_scan/cuda/scan_kernels.cuh"

namespace mcv::kernels::scan::cuda {
namespace {

constexpr int kWarpsPerBlock = 2;  // small blocks: a block's slot frees when its longer channel ends
// Blocks per SM the correction is built for: 12 caps it at 80 registers (a few bytes spill),
// 24 warps per SM. H200, S6, same machine, two rounds, ms: bf16 2.741/2.742 against 2.796/2.795
// with the compiler's 93 registers (20 warps), f32 3.312/3.330 against 3.354/3.334. A compile
// switch for such comparisons (MCV_SCAN_CUDA_FLAGS=-DMCV_SCAN_CORRECT_MIN_BLOCKS=n).
#ifndef MCV_SCAN_CORRECT_MIN_BLOCKS
#define MCV_SCAN_CORRECT_MIN_BLOCKS 12
#endif
constexpr unsigned kFull = 0xffffffffu;

constexpr int kR = 4;  // consecutive steps per lane in a segment

/// One state of the channel being corrected, in the warp's table (sorted by stop, latest
/// first): A * log2(e), the carried H_in, and the offset of its row of C.
struct alignas(16) CarriedState {
  float a2, h;
  i64 c_off;
};

/// Each chunk's true initial state H_in(c), c >= 1, from pass 1's end states (scanned from h = 0)
/// and dt sums: H_in(1) = h_end(0), H_in(c + 1) = across_chunk(c's dt sum, H_in(c), h_end(c)),
/// written over chunk_h's slot c - 1, whose h_end the walk has then used; and the final state
/// H_in(n_chunks) where asked. One thread per (direction block, batch, channel, state): its loads
/// do not depend on the chain, so they are issued ahead of it, where each correction warp walking
/// the chunks before its own had waited on them (H200, S6 bf16 with 32 chunks: see
/// scan_correct.cuh).
__global__ void __launch_bounds__(128) scan_combine_kernel(Params p) {
  const int N = p.n_state;
  const i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<i64>(p.dir_blocks()) * p.batch * p.dim * N) return;
  const int n = static_cast<int>(i % N);
  i64 rest = i / N;
  const int d = static_cast<int>(rest % p.dim);
  rest /= p.dim;
  const int b = static_cast<int>(rest % p.batch);
  const int k = static_cast<int>(rest / p.batch);
  const float a2 = p.A[(static_cast<i64>(k) * p.dim + d) * p.A_sc + n * p.A_sn] * kLog2e;
  float h = p.chunk_h[chunk_cell(p, 0, k, b, d) * N + n];
  // Eight chunks' loads, then their steps (the stores into the slots just read must not hold
  // the next loads back).
  constexpr int kBatch = 8;
  for (int c0 = 1; c0 < p.n_chunks; c0 += kBatch) {
    float h_end[kBatch], dtsum[kBatch];
#pragma unroll
    for (int q = 0; q < kBatch; ++q) {
      if (c0 + q < p.n_chunks) {
        const i64 cell = chunk_cell(p, c0 + q, k, b, d);
        h_end[q] = p.chunk_h[cell * N + n];
        dtsum[q] = p.chunk_dtsum[cell];
      }
    }
#pragma unroll
    for (int q = 0; q < kBatch; ++q) {
      if (c0 + q < p.n_chunks) {
        p.chunk_h[chunk_cell(p, c0 + q - 1, k, b, d) * N + n] = h;
        h = across_chunk(a2, dtsum[q], h, h_end[q]);
      }
    }
  }
  if (p.hT) p.hT[b * p.hT_sb + k * p.hT_sk + static_cast<i64>(d) * p.hT_sd + n * p.hT_sn] = h;
}

/// An element of a stream as a 32-bit word (16-bit ones zero-extended), converted where used
/// (word_value<T>(w, 0)): the corrections load their next segment or group ahead, and a
/// conversion right after the load would wait for its data there. ld.u16 goes straight into a
/// 32-bit register: a C++ unsigned-short load got its zero extension as a separate AND wherever
/// the compiler merged it, right behind the loads (H200 ncu, the lanes kernel: 9,201 stall
/// samples on that one instruction).
template <typename T>
__device__ __forceinline__ unsigned load_word(const T* e) {
  unsigned w;
  if constexpr (sizeof(T) == 2)
    asm("ld.global.u16 %0, [%1];" : "=r"(w) : "l"(e));
  else
    asm("ld.global.b32 %0, [%1];" : "=r"(w) : "l"(e));
  return w;
}
template <typename T>
__device__ __forceinline__ float word_float(unsigned w) {
  return word_value<T>(w, 0u);
}

/// A carried state's stop: the sum of dt S past which |H 2^(a2 S)| stays under the line
/// 2^log_line (the block correction's: correction_line). -inf where it is never above it (or H
/// is 0: not carried); +inf where it never drops - a non-finite carried state of the channel
/// (finite false), which must reach the outputs as on the CPU, or one that does not decay (a2 >= 0).
__device__ __forceinline__ float state_stop(float H, float a2, bool finite, float log_line) {
  if (H == 0.0f) return -INFINITY;
  if (!finite || !(a2 < 0.0f)) return INFINITY;
  const float lh = log2f(fabsf(H));
  return lh > log_line ? (lh - log_line) / -a2 : -INFINITY;
}

/// kJ: states per lane (n = lane + 32 j), 1 for N <= 32, 8 up to 256.
template <typename T, int kJ>
__global__ void __launch_bounds__(32 * kWarpsPerBlock, MCV_SCAN_CORRECT_MIN_BLOCKS) scan_correct_warp_kernel(Params p) {
  __shared__ CarriedState table[kWarpsPerBlock][32 * kJ];
  // Each state's stop (the sum of dt past which H_in 2^(a2 S) stays under the line), by state
  // while ranking, then in the table's order.
  __shared__ float keys[kWarpsPerBlock][32 * kJ];
  __shared__ float stop_table[kWarpsPerBlock][32 * kJ];
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  // Work item: channel fastest, then batch, direction block and chunk (from 1); fewer than 2^32
  // (the grid's blocks are at most INT_MAX), so 32-bit divisions.
  const unsigned item = blockIdx.x * kWarpsPerBlock + warp;
  const int kb_count = p.dir_blocks();
  if (item >= static_cast<i64>(p.n_chunks - 1) * kb_count * p.batch * p.dim) return;
  const int d = static_cast<int>(item % static_cast<unsigned>(p.dim));
  unsigned rest = item / static_cast<unsigned>(p.dim);
  const int b = static_cast<int>(rest % static_cast<unsigned>(p.batch));
  rest /= static_cast<unsigned>(p.batch);
  const int k = static_cast<int>(rest % static_cast<unsigned>(kb_count));  // 0 unless par_dirs
  const int chunk = 1 + static_cast<int>(rest / static_cast<unsigned>(kb_count));
  const int N = p.n_state;
  const i64 row = static_cast<i64>(k) * p.dim + d;

  // H_in (scan_combine_kernel left it in chunk_h's slot chunk - 1), and its largest magnitude
  // (carried_magnitude: infinite if a carried state is not finite).
  float a2[kJ], H[kJ];
  float hmax = 0.0f;
  const i64 carried = chunk_cell(p, chunk - 1, k, b, d) * N;
#pragma unroll
  for (int j = 0; j < kJ; ++j) {
    const int n = lane + 32 * j;
    a2[j] = 0.0f;
    H[j] = 0.0f;
    if (n < N) {
      a2[j] = p.A[row * p.A_sc + n * p.A_sn] * kLog2e;
      H[j] = p.chunk_h[carried + n];
      hmax = fmaxf(hmax, carried_magnitude(H[j]));
    }
  }
  for (int off = 16; off > 0; off >>= 1) hmax = fmaxf(hmax, __shfl_xor_sync(kFull, hmax, off));
  const bool finite = !isinf(hmax);
  // Each state's stop (state_stop) against the line hmax 2^correction_exponent.
  const float log_line = log2f(hmax) + static_cast<float>(p.correction_exponent);
  float* key = keys[warp];
  float stop[kJ];
#pragma unroll
  for (int j = 0; j < kJ; ++j) {
    const int n = lane + 32 * j;
    stop[j] = state_stop(H[j], a2[j], finite, log_line);  // H = 0 past N: never added
    if (n < N) key[n] = stop[j];
  }
  __syncwarp();
  // Rank by stop (latest first, ties by index): the states still above the line at any S are
  // then a prefix of the table.
  CarriedState* tab = table[warp];
  float* stops = stop_table[warp];
  int active = 0;
#pragma unroll
  for (int j = 0; j < kJ; ++j) {
    const int n = lane + 32 * j;
    if (n < N) {
      int rank = 0;
      for (int m = 0; m < N; ++m) {
        const float km = key[m];
        rank += (km > stop[j] || (km == stop[j] && m < n)) ? 1 : 0;
      }
      tab[rank] = CarriedState{a2[j], H[j], n * p.C_sn};
      stops[rank] = stop[j];
      active += stop[j] > -INFINITY ? 1 : 0;
    }
  }
  active = static_cast<int>(__reduce_add_sync(kFull, static_cast<unsigned>(active)));
  __syncwarp();
  if (active == 0) return;
  const float last_stop = stops[0];

  // The chunk's steps, kR * 32 at a time: lane l on the kR consecutive steps t0 + l kR + r (more
  // independent work per lane, and the per-segment work - the scan, the table walk, the
  // addresses - paid once per kR steps).
  const int t_begin = chunk * p.chunk_len, t_end = min(p.seqlen, t_begin + p.chunk_len);
  const float bias = p.bias ? p.bias[row * p.bias_s] : 0.0f;
  const T* drow = static_cast<const T*>(p.delta.ptr) + b * p.delta.sb + k * p.delta.sk + d * p.delta.sd;
  const bool gate_z = p.pass_gates_z();
  const T* zrow = gate_z ? static_cast<const T*>(p.z.ptr) + b * p.z.sb + d * p.z.sd : nullptr;
  const float scale = p.pass_scale();
  T* orow = pass_target_base<T>(p, b, k) + d * p.pass_target().sd;
  const T* cbase = static_cast<const T*>(p.C) + b * p.C_sb + (k * p.groups + d / p.cpg) * p.C_sg;
  // Steps walk the rows forward or backward (warp_correction_fits: no column orders); the
  // direction is a compile-time constant of the loop below, so that a lane's kR elements are
  // immediate offsets from one pointer per stream and state (64-bit address arithmetic per
  // element had been a third of the loop's instructions).
  auto segments = [&](auto flip_c) {
    constexpr bool kFlip = decltype(flip_c)::value;
    constexpr int kSign = kFlip ? -1 : 1;
    // Lane l's first step of the segment at t0, and its position in the rows.
    auto first_pos = [&](int t) -> i64 { return kFlip ? p.seqlen - 1 - t : t; };
    // A segment's streams, loaded one segment ahead (a warp's segments are serial: the next
    // one's loads are in flight while this one is scanned and summed), as words (load_word).
    struct Segment {
      unsigned x[kR], y1[kR], z[kR];
    };
    // kWhole: every step of the segment is in the chunk (all but a chunk's last segment), so
    // the per-step guards and their branches drop out.
    auto load_as = [&](int t0, Segment& seg, auto whole_c) {
      constexpr bool kWhole = decltype(whole_c)::value;
      const int t = t0 + lane * kR;
      const i64 pos = first_pos(t);
      const T *dp = drow + pos, *op = orow + pos, *zp = zrow + pos;
#pragma unroll
      for (int r = 0; r < kR; ++r) {
        const bool ok = kWhole || t + r < t_end;
        seg.x[r] = ok ? load_word(dp + kSign * r) : 0u;
        seg.y1[r] = ok ? load_word(op + kSign * r) : 0u;
      }
      if (gate_z) {
#pragma unroll
        for (int r = 0; r < kR; ++r) seg.z[r] = kWhole || t + r < t_end ? load_word(zp + kSign * r) : 0u;
      }
    };
    auto load = [&](int t0, Segment& seg) {
      if (t0 + 32 * kR <= t_end)
        load_as(t0, seg, std::true_type{});
      else
        load_as(t0, seg, std::false_type{});
    };
    float s_base = 0.0f;
    auto segment = [&](int t0, const Segment& cur, auto whole_c) {
      constexpr bool kWhole = decltype(whole_c)::value;
      const int t = t0 + lane * kR;
      const T* cpos = cbase + first_pos(t);
      bool ok[kR];
#pragma unroll
      for (int r = 0; r < kR; ++r) ok[r] = kWhole || t + r < t_end;
      // C of the first four states still above the line after the last segment, issued
      // before the scan (most channels are down to a few states soon: the slow ones decay last)
      // and converted after it.
      unsigned c_first[4][kR] = {};
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        if (q < active) {
          const T* cp = cpos + tab[q].c_off;
#pragma unroll
          for (int r = 0; r < kR; ++r) c_first[q][r] = ok[r] ? load_word(cp + kSign * r) : 0u;
        }
      }
      // S at each of the lane's steps: its own prefix, plus the lanes before (a warp scan of
      // the lanes' sums), plus the segments before.
      float s[kR];
      float run = 0.0f;
#pragma unroll
      for (int r = 0; r < kR; ++r) {
        run += ok[r] ? softplus_f<kSoftplusDegree<T>>(word_float<T>(cur.x[r]) + bias) : 0.0f;
        s[r] = run;
      }
      float before = run;
#pragma unroll
      for (int off = 1; off < 32; off <<= 1) {
        const float v = __shfl_up_sync(kFull, before, off);
        if (lane >= off) before += v;
      }
      before += s_base - run;
#pragma unroll
      for (int r = 0; r < kR; ++r) s[r] += before;
      const float s_first = __shfl_sync(kFull, s[0], 0);
      s_base = __shfl_sync(kFull, s[kR - 1], 31);
      // The states still above the line at this segment's first step (its largest terms).
      while (active > 0 && stops[active - 1] <= s_first) --active;
      float corr[kR];
#pragma unroll
      for (int r = 0; r < kR; ++r) corr[r] = 0.0f;
      auto add = [&](const CarriedState& st, const float (&cv)[kR]) {
#pragma unroll
        for (int r = 0; r < kR; ++r) corr[r] = fmaf(cv[r] * st.h, ex2_approx(st.a2 * s[r]), corr[r]);
      };
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        if (q < active) {
          float cv[kR];
#pragma unroll
          for (int r = 0; r < kR; ++r) cv[r] = word_float<T>(c_first[q][r]);
          add(tab[q], cv);
        }
      }
      for (int i = 4; i < active; ++i) {
        const CarriedState st = tab[i];
        const T* cp = cpos + st.c_off;
        float cv[kR];
#pragma unroll
        for (int r = 0; r < kR; ++r) cv[r] = ok[r] ? to_float(cp[kSign * r]) : 0.0f;
        add(st, cv);
      }
      T* op = orow + first_pos(t);
#pragma unroll
      for (int r = 0; r < kR; ++r) {
        const float gate = gate_z ? scale * silu(word_float<T>(cur.z[r])) : scale;
        if (ok[r]) op[kSign * r] = from_float<T>(fmaf(corr[r], gate, word_float<T>(cur.y1[r])));
      }
    };
    Segment next{};  // z stays 0 when not gating
    load(t_begin, next);
    for (int t0 = t_begin; t0 < t_end && s_base < last_stop; t0 += 32 * kR) {
      const Segment cur = next;
      load(t0 + 32 * kR, next);
      if (t0 + 32 * kR <= t_end)
        segment(t0, cur, std::true_type{});
      else
        segment(t0, cur, std::false_type{});
    }
  };
  if (dir_flipped(p.mode, k))
    segments(std::true_type{});
  else
    segments(std::false_type{});
}

/// Token-major launches (channels contiguous at each step): one warp per (chunk, direction
/// block, batch, 32 consecutive channels), lane l on channel 32 w + l, every lane walking its
/// channel's steps in order - each step's delta, z and output of the warp's channels are then one
/// coalesced 64- or 128-byte access, where lanes over steps (the kernel above) would read one
/// sector per element. The chunk's steps go kLaneGroup at a time: that group's delta, pass-1
/// output and z are loaded one group ahead into registers, and its C (shared by the warp's
/// channels: a channel group is whole within a warp, lanes_correction_fits) one group ahead too,
/// spread over the lanes and staged through shared memory as f32. A state is summed while it is
/// above the line on some lane at the group's first step (the warp's states at once: a state
/// below the line on one lane adds less than the line there); a lane stores its outputs while one
/// of its own states is above the line, and the warp stops once every lane's S is past its last
/// state's stop.
constexpr int kLaneStates = 16;  // N <= 16: a lane holds its channel's states
constexpr int kLaneGroup = 8;    // steps per group
constexpr int kLaneCElems = kLaneGroup * kLaneStates / 32;  // C elements a lane moves per group

template <typename T>
__global__ void __launch_bounds__(32 * kWarpsPerBlock, 6) scan_correct_lanes_kernel(Params p) {
  __shared__ float c_tile[kWarpsPerBlock][kLaneGroup][kLaneStates];
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  // Work item as in the kernel above, with groups of 32 channels in place of channels.
  const unsigned item = blockIdx.x * kWarpsPerBlock + warp;
  const int kb_count = p.dir_blocks();
  const unsigned d_groups = static_cast<unsigned>((p.dim + 31) / 32);
  if (item >= static_cast<i64>(p.n_chunks - 1) * kb_count * p.batch * d_groups) return;
  const int d0 = static_cast<int>(item % d_groups) * 32;
  unsigned rest = item / d_groups;
  const int b = static_cast<int>(rest % static_cast<unsigned>(p.batch));
  rest /= static_cast<unsigned>(p.batch);
  const int k = static_cast<int>(rest % static_cast<unsigned>(kb_count));  // 0 unless par_dirs
  const int chunk = 1 + static_cast<int>(rest / static_cast<unsigned>(kb_count));
  const int d = d0 + lane, N = p.n_state;
  const bool valid = d < p.dim;
  const i64 row = static_cast<i64>(k) * p.dim + d;

  // The lane's carried states H_in (scan_combine_kernel left them in chunk_h's slot chunk - 1)
  // and each one's stop, as in the kernel above.
  float a2[kLaneStates], H[kLaneStates], stop[kLaneStates];
  float hmax = 0.0f;
  const i64 carried = chunk_cell(p, chunk - 1, k, b, valid ? d : 0) * N;
#pragma unroll
  for (int n = 0; n < kLaneStates; ++n) {
    const bool ok = valid && n < N;
    a2[n] = ok ? p.A[row * p.A_sc + n * p.A_sn] * kLog2e : 0.0f;
    H[n] = ok ? p.chunk_h[carried + n] : 0.0f;
    hmax = fmaxf(hmax, carried_magnitude(H[n]));
  }
  const bool finite = !isinf(hmax);
  const float log_line = log2f(hmax) + static_cast<float>(p.correction_exponent);
  float last_stop = -INFINITY;
#pragma unroll
  for (int n = 0; n < kLaneStates; ++n) {
    stop[n] = state_stop(H[n], a2[n], finite, log_line);
    last_stop = fmaxf(last_stop, stop[n]);
  }
  if (!__any_sync(kFull, last_stop > -INFINITY)) return;

  const int t_begin = chunk * p.chunk_len, t_end = min(p.seqlen, t_begin + p.chunk_len);
  const bool rev = dir_flipped(p.mode, k);
  const i64 pos_first = rev ? p.seqlen - 1 - t_begin : t_begin;
  const float bias = valid && p.bias ? p.bias[row * p.bias_s] : 0.0f;
  const bool gate_z = p.pass_gates_z();
  const float scale = p.pass_scale();
  const SeqP& dst = p.pass_target();
  // The streams at the group's first step, advanced a step (and a group) at a time: no 64-bit
  // multiplies per element. Lanes past D read and write nothing.
  const i64 dstep = rev ? -p.delta.sl : p.delta.sl, ostep = rev ? -dst.sl : dst.sl, zstep = rev ? -p.z.sl : p.z.sl;
  const T* dptr = static_cast<const T*>(p.delta.ptr) + b * p.delta.sb + k * p.delta.sk + d * p.delta.sd + pos_first * p.delta.sl;
  T* optr = pass_target_base<T>(p, b, k) + d * dst.sd + pos_first * dst.sl;
  const T* zptr = gate_z ? static_cast<const T*>(p.z.ptr) + b * p.z.sb + d * p.z.sd + pos_first * p.z.sl : dptr;
  // C of the warp's channel group: lane l moves elements e = l + 32 i of each group's
  // [step][state] block, at fixed offsets from the group's first step.
  const i64 cstep = rev ? -p.C_sl : p.C_sl;
  const T* cptr = static_cast<const T*>(p.C) + b * p.C_sb + (k * p.groups + d0 / p.cpg) * p.C_sg + pos_first * p.C_sl;
  i64 c_off[kLaneCElems];
  bool c_ok[kLaneCElems];  // a state of the model (n < N)
#pragma unroll
  for (int i = 0; i < kLaneCElems; ++i) {
    const int e = lane + 32 * i;
    c_ok[i] = e % kLaneStates < N;
    c_off[i] = (e / kLaneStates) * cstep + (c_ok[i] ? e % kLaneStates : 0) * p.C_sn;  // state 0 for n >= N
  }
  // A group's elements as loaded (load_word: one per word, so that 16-bit ones are not packed
  // in pairs either).
  struct Group {
    unsigned x[kLaneGroup], y1[kLaneGroup], z[kLaneGroup], c[kLaneCElems];
  };
  // kWhole: every step of the group is in the chunk (all but possibly the chunk's last group), so
  // the per-step guards and their branches drop out.
  // A lane past D loads nothing (its values feed sums that are never stored).
  auto load_as = [&](int t0, Group& g, auto whole_c) {
    constexpr bool kWhole = decltype(whole_c)::value;
    const int left = t_end - t0;
    if (valid) {
      const T *dp = dptr, *op = optr;
#pragma unroll
      for (int j = 0; j < kLaneGroup; ++j) {
        const bool ok = kWhole || j < left;
        g.x[j] = ok ? load_word(dp) : 0u;
        g.y1[j] = ok ? load_word(op) : 0u;
        dp += dstep;
        op += ostep;
      }
      if (gate_z) {
        const T* zp = zptr;
#pragma unroll
        for (int j = 0; j < kLaneGroup; ++j) {
          g.z[j] = kWhole || j < left ? load_word(zp) : 0u;
          zp += zstep;
        }
      }
    }
#pragma unroll
    for (int i = 0; i < kLaneCElems; ++i)
      g.c[i] = kWhole || (lane + 32 * i) / kLaneStates < left ? load_word(cptr + c_off[i]) : 0u;
    dptr += kLaneGroup * dstep;
    optr += kLaneGroup * ostep;
    zptr += kLaneGroup * zstep;
    cptr += kLaneGroup * cstep;
  };
  auto load = [&](int t0, Group& g) {
    if (t0 + kLaneGroup <= t_end)
      load_as(t0, g, std::true_type{});
    else
      load_as(t0, g, std::false_type{});
  };
  float* ct = &c_tile[warp][0][0];
  T* out = optr;  // the current group's first output (optr runs a group ahead)
  float s_run = 0.0f;  // S before the group
  Group next{};  // lanes past D (and z when not gating) keep these zeros
  load(t_begin, next);
  for (int t0 = t_begin; t0 < t_end && __any_sync(kFull, s_run < last_stop); t0 += kLaneGroup) {
    const Group cur = next;
    if (t0 + kLaneGroup < t_end) load(t0 + kLaneGroup, next);
    __syncwarp();  // the last group's C reads are done
#pragma unroll
    for (int i = 0; i < kLaneCElems; ++i) ct[lane + 32 * i] = c_ok[i] ? word_float<T>(cur.c[i]) : 0.0f;
    __syncwarp();
    auto group = [&](auto whole_c) {
      constexpr bool kWhole = decltype(whole_c)::value;
      const int left = t_end - t0;
      float s[kLaneGroup];
#pragma unroll
      for (int j = 0; j < kLaneGroup; ++j) {
        s_run += kWhole || j < left ? softplus_f<kSoftplusDegree<T>>(word_float<T>(cur.x[j]) + bias) : 0.0f;
        s[j] = s_run;
      }
      // The states above the line at the group's first step: this lane's, and the warp's.
      unsigned mine = 0;
#pragma unroll
      for (int n = 0; n < kLaneStates; ++n) mine |= (stop[n] > s[0] ? 1u : 0u) << n;
      const unsigned states = __reduce_or_sync(kFull, mine);
      float corr[kLaneGroup];
#pragma unroll
      for (int j = 0; j < kLaneGroup; ++j) corr[j] = 0.0f;
#pragma unroll
      for (int n = 0; n < kLaneStates; ++n) {
        if (states & (1u << n)) {
#pragma unroll
          for (int j = 0; j < kLaneGroup; ++j)
            corr[j] = fmaf(ct[j * kLaneStates + n] * H[n], ex2_approx(a2[n] * s[j]), corr[j]);
        }
      }
      if (mine != 0) {
        T* op = out;
#pragma unroll
        for (int j = 0; j < kLaneGroup; ++j) {
          const float gate = gate_z ? scale * silu(word_float<T>(cur.z[j])) : scale;
          if (kWhole || j < left) *op = from_float<T>(fmaf(corr[j], gate, word_float<T>(cur.y1[j])));
          op += ostep;
        }
      }
    };
    if (t0 + kLaneGroup <= t_end)
      group(std::true_type{});
    else
      group(std::false_type{});
    out += kLaneGroup * ostep;
  }
}

/// scan_correct_warp_kernel: rows contiguous along L.
bool rows_correction_fits(const Params& p) {
  const SeqP& target = p.pass_target();
  return p.n_state <= 256 && p.delta.sl == 1 && target.sl == 1 && (!p.pass_gates_z() || p.z.sl == 1) && p.C_sl == 1;
}

/// Chunks at least this long take scan_correct_lanes_kernel by default; shorter ones keep the
/// block correction, which is what the batch-1 models' short chunks (Vim-T: 32 steps) were
/// measured with. The lanes kernel was measured on S6 (7,968-step chunks; H200, token-major, ms,
/// against the block correction): bf16 3.186 / 3.273, f32 4.19-4.22 / 4.45-4.46.
constexpr int kLanesMinChunk = 1024;

/// scan_correct_lanes_kernel: channels contiguous at each step, N within a lane's registers, a
/// warp's 32 channels in one channel group (one C), and long chunks unless forced.
bool lanes_correction_fits(const Params& p, bool forced) {
  const SeqP& target = p.pass_target();
  return p.n_state <= kLaneStates && p.delta.sd == 1 && target.sd == 1 && (!p.pass_gates_z() || p.z.sd == 1) &&
         (p.groups == 1 || p.cpg % 32 == 0) && (forced || p.chunk_len >= kLanesMinChunk);
}

}  // namespace

bool warp_correction_fits(const Params& p, bool forced) {
  return p.n_chunks > 1 && p.softplus && p.mode != 3 && p.C_var &&
         (rows_correction_fits(p) || lanes_correction_fits(p, forced));
}

template <typename T>
void launch_warp_correction(const Params& p, cudaStream_t stream) {
  const i64 cells = static_cast<i64>(p.dir_blocks()) * p.batch * p.dim * p.n_state;
  scan_combine_kernel<<<grid_size((cells + 127) / 128, "combine"), 128, 0, stream>>>(p);
  cuda_check_launch("selective_scan: scan_combine_kernel");
  const i64 per_chunk = static_cast<i64>(p.dir_blocks()) * p.batch;
  if (rows_correction_fits(p)) {
    const i64 items = (p.n_chunks - 1) * per_chunk * p.dim;
    const unsigned grid = grid_size((items + kWarpsPerBlock - 1) / kWarpsPerBlock, "correct");
    if (p.n_state <= 32)
      scan_correct_warp_kernel<T, 1><<<grid, 32 * kWarpsPerBlock, 0, stream>>>(p);
    else
      scan_correct_warp_kernel<T, 8><<<grid, 32 * kWarpsPerBlock, 0, stream>>>(p);
    cuda_check_launch("selective_scan: scan_correct_warp_kernel");
  } else {
    const i64 items = (p.n_chunks - 1) * per_chunk * ((p.dim + 31) / 32);
    const unsigned grid = grid_size((items + kWarpsPerBlock - 1) / kWarpsPerBlock, "correct");
    scan_correct_lanes_kernel<T><<<grid, 32 * kWarpsPerBlock, 0, stream>>>(p);
    cuda_check_launch("selective_scan: scan_correct_lanes_kernel");
  }
}

template void launch_warp_correction<float>(const Params&, cudaStream_t);
template void launch_warp_correction<__half>(const Params&, cudaStream_t);
template void launch_warp_correction<__nv_bfloat16>(const Params&, cudaStream_t);

}  // namespace mcv::kernels::scan::cuda
