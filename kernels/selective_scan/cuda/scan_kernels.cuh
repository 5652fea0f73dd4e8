#pragma once
// CUDA selective-scan kernels (included by one .cu per I/O dtype) and their launch. The
// pipelined kernel (scan_pipe.cuh) runs wherever pipe_supported allows; the tiled kernel here is
// the general fallback (any strides, serial directions) and the reference the pipelined one was
// measured against (MCV_SCAN_PIPE=0 selects it everywhere).
//
// Common design (the scan is memory- and MUFU-bound, not FLOP-bound):
//  - One thread (or `kLanes` threads splitting N) owns one channel (b, d) and runs the whole
//    recurrence for it in registers, so no cross-thread scan over L is needed; parallelism comes
//    from batch x channels x directions (and from L-chunks for long sequences with few channels).
//  - A block holds up to 128 channels of ONE (batch, group) and stages tiles of steps in shared
//    memory; the group's B_t, C_t are per (batch, group), so every channel of the block reads them
//    as broadcast LDS.128 - that is where the bytes are saved against one channel per block.
//  - Directions only change the step -> position map used by the loaders, so flips and the
//    column-major VMamba orders cost no copies (channel-major cross2d streams are copied once to
//    token-major scratch first, shared by the four directions: launch.cu says why). Several
//    directions run in separate blocks, each writing its slice of a (batch, K, D, L) scratch,
//    and a merge pass sums and gates them (par_dirs); the tiled kernel can also run them one
//    after the other in each thread (MCV_SCAN_SERIAL_DIRS=1, an f32 running sum).
//  - exp(dt*A) is ex2.approx.ftz(dt * A*log2(e)) (one MUFU op, ~2 ulp); softplus and silu are
//    MUFU-based too (scan_device.cuh), within ~3e-7 relative of torch's.
//  - Long L, few channels (e.g. batch 1): L is cut into chunks scanned in parallel from h = 0
//    (pass 1, writing provisional outputs and each chunk's end state and sum of dt); a correction
//    pass turns those into each chunk's true initial state H_in (the recurrence is linear:
//    chunk c's decay over the chunk is exp(A * sum dt)) and adds
//    C_t . (H_in * exp(A * cumsum dt)) * scale * silu(z_t) to the outputs of chunks c >= 1. The
//    correction stops once every |H_in * decay| of a block falls below a fraction of its |H_in|
//    max under the output type's rounding (Params::correction_exponent); with fast decay it
//    touches only a prefix of each chunk. Where the layout allows (channel rows, softplus), the
//    correction runs instead as one warp per (chunk, channel), each channel only as far as its
//    own carried state needs (scan_correct.cuh).

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <type_traits>
#include <cstdint>


#include "common/cuda_dtype.cuh"
#include "mcv/cuda/context.cuh"
#include "selective_scan/cuda/scan_device.cuh"
#include "selective_scan/cuda/relayout.cuh"
#include "selective_scan/cuda/scan_correct.cuh"
#include "selective_scan/cuda/scan_params.cuh"
#include "selective_scan/cuda/scan_pipe.cuh"

namespace mcv::kernels::scan::cuda {

/// Per-thread coordinates in a [kT (tile_steps)][C] tile for the two coalescing orders.
struct TileCoords {
  int cf_c, cf_j0;  // channel-fastest: channel tid % C, steps tid / C + m * lanes
  int sf_j, sf_c0;  // step-fastest: step tid % kT (tile_steps), channels tid / kT (tile_steps) + m * cstep
  int sf_cstep;
};


/// Parity of a 16-bit element's index within its word: base pointer parity plus the parities of
/// the strides that move it (enough to know which half of the copied word it is).
struct Parity {
  unsigned base = 0, sd = 0, sl = 0;
  template <typename T>
  __device__ __forceinline__ static Parity of(const T* base, i64 sd, i64 sl) {
    Parity q;
    q.base = static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(base) >> 1) & 1u;
    q.sd = static_cast<unsigned>(sd) & 1u;
    q.sl = static_cast<unsigned>(sl) & 1u;
    return q;
  }
  __device__ __forceinline__ unsigned at(int c, i64 pos) const {
    return (base + (static_cast<unsigned>(c) & sd) + (static_cast<unsigned>(pos) & sl)) & 1u;
  }
};

/// Element (d_first + c, pos[j]) of a per-step tensor, from its copied word in tile slot `w`.
template <typename T>
__device__ __forceinline__ float tile_value(const float* tile, int at, const Parity& q, int c, i64 pos) {
  return word_value<T>(__float_as_uint(tile[at]), q.at(c, pos));
}

/// Starts the copies tile[j][c] <- base[(d_first + c) * sd + pos[j] * sl] (zero outside the
/// valid range). Coalesced whichever axis is contiguous.
template <int kLanes, int kT, typename T>
__device__ __forceinline__ void issue_seq(float* tile, int ld, const T* base, i64 sd, i64 sl, int d_first,
                                          int n_valid, int nT, const i64* pos, const TileCoords& tc) {
  constexpr int kPer = kT / kLanes;
  if (sd == 1) {
    const T* row = base + d_first + tc.cf_c;
    const bool cok = tc.cf_c < n_valid;
#pragma unroll 4
    for (int m = 0; m < kPer; ++m) {
      const int j = tc.cf_j0 + m * kLanes;
      const bool ok = cok && j < nT;
      cp_async_word(tile + j * ld + tc.cf_c, ok ? row + pos[j] * sl : base, ok);
    }
  } else {
    const bool jok = tc.sf_j < nT;
    const T* src = base + static_cast<i64>(d_first + tc.sf_c0) * sd + pos[tc.sf_j] * sl;
    const i64 src_step = static_cast<i64>(tc.sf_cstep) * sd;
    float* dst = tile + tc.sf_j * ld + tc.sf_c0;
#pragma unroll 4
    for (int m = 0; m < kPer; ++m, src += src_step, dst += tc.sf_cstep) {
      const bool ok = jok && tc.sf_c0 + m * tc.sf_cstep < n_valid;
      cp_async_word(dst, ok ? src : base, ok);
    }
  }
}

/// Stores tile[j][c] to base[(d_first + c) * sd + pos[j] * sl] for the valid range.
template <int kLanes, int kT, typename T>
__device__ __forceinline__ void store_seq(const float* tile, int ld, T* base, i64 sd, i64 sl, int d_first,
                                          int n_valid, int nT, const i64* pos, const TileCoords& tc) {
  constexpr int kPer = kT / kLanes;
  if (sd == 1) {
    if (tc.cf_c >= n_valid) return;
    T* row = base + d_first + tc.cf_c;
#pragma unroll
    for (int m = 0; m < kPer; ++m) {
      const int j = tc.cf_j0 + m * kLanes;
      if (j < nT) row[pos[j] * sl] = from_float<T>(tile[j * ld + tc.cf_c]);
    }
  } else {
    if (tc.sf_j >= nT) return;
    const i64 off = pos[tc.sf_j] * sl;
#pragma unroll
    for (int m = 0; m < kPer; ++m) {
      const int c = tc.sf_c0 + m * tc.sf_cstep;
      if (c < n_valid) base[static_cast<i64>(d_first + c) * sd + off] = from_float<T>(tile[tc.sf_j * ld + c]);
    }
  }
}

/// Starts the copies of the group's B or C for the tile: tile[j][n] (row stride kNb + 4), zero
/// past n_state.
template <int kNb, int kT, typename T>
__device__ __forceinline__ void issue_bc(float* tile, const T* base, i64 sn, i64 sl, int n_state, int nT,
                                         const i64* pos) {
  constexpr int kLdb = kNb + 4;
  constexpr int kTotal = kT * kNb;
  for (int i = threadIdx.x; i < kTotal; i += blockDim.x) {
    int j, n;
    if (sn == 1) {
      n = i % kNb;
      j = i / kNb;
    } else {
      j = i % kT;
      n = i / kT;
    }
    const bool ok = j < nT && n < n_state;
    cp_async_word(tile + j * kLdb + n, ok ? base + n * sn + pos[j] * sl : base, ok);
  }
}

/// Turns a copied B/C tile of 16-bit words into f32 in place (no-op for f32).
template <int kNb, int kT, typename T>
__device__ __forceinline__ void convert_bc(float* tile, const T* base, i64 sn, i64 sl, const i64* pos) {
  if constexpr (!std::is_same_v<T, float>) {
    constexpr int kLdb = kNb + 4;
    constexpr int kTotal = kT * kNb;
    const Parity q = Parity::of(base, sn, sl);
    for (int i = threadIdx.x; i < kTotal; i += blockDim.x) {
      const int j = i / kNb, n = i % kNb;
      const int at = j * kLdb + n;
      tile[at] = tile_value<T>(tile, at, q, n, pos[j]);
    }
  }
}

struct TileLayout {
  float *tB, *tC;  // [kT (tile_steps)][kNb + 4]: the group's B_t[n], C_t[n]
  // [kT (tile_steps)][channels + 1] (odd row length: both load orders are bank-conflict free).
  // After the pre-pass: tU = dt*u, tDt = dt, tZ = output gate, tAcc = D*u (+ earlier directions'
  // sum); after the recurrence tAcc holds the tile's output.
  float *tU, *tDt, *tZ, *tAcc;
  i64* pos;  // [2][kT (tile_steps)], alternating per tile
  int ld;
};

template <int kNb, int kT>
__device__ __forceinline__ TileLayout carve_smem(unsigned char* raw, int channels) {
  TileLayout t;
  constexpr int kLdb = kNb + 4;
  t.ld = channels + 1;
  float* f = reinterpret_cast<float*>(raw);
  t.tB = f;
  f += kT * kLdb;
  t.tC = f;
  f += kT * kLdb;
  t.tU = f;
  f += kT * t.ld;
  t.tDt = f;
  f += kT * t.ld;
  t.tZ = f;
  f += kT * t.ld;
  t.tAcc = f;
  f += kT * t.ld;
  t.pos = reinterpret_cast<i64*>(f);  // every tile above is a multiple of 32 floats: aligned
  return t;
}

template <int kT>
__device__ __forceinline__ TileCoords tile_coords(int channels) {
  TileCoords tc;
  const int tid = threadIdx.x;
  tc.cf_c = tid % channels;
  tc.cf_j0 = tid / channels;
  tc.sf_j = tid % kT;
  tc.sf_c0 = tid / kT;
  tc.sf_cstep = blockDim.x / kT;
  return tc;
}

/// The main scan: all directions of `channels` channels of one (batch, group[, chunk]).
///
/// Per tile of kT (tile_steps) steps: positions -> loads (global -> f32 smem) -> pre-pass (the
/// per-step scalar work: softplus, dt*u, D*u + earlier directions, gate; steps split over the
/// lanes, independent across steps so its long precise-math chains overlap) -> recurrence (only
/// the state updates, unrolled over steps) -> store. Keeping softplus/silu out of the recurrence
/// loop matters: in one loop their ~100-cycle dependency chains serialised every step
/// (measured 5-10x slower on H100).
template <typename T, int kS, int kLanes>
__global__ void __launch_bounds__(128, 3) scan_tiled_kernel(Params p, int channels, int bpg) {
  constexpr int kT = tile_steps(kS);
  constexpr int kNb = kS * kLanes;
  constexpr int kLdb = kNb + 4;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const bool with_z = p.z.ptr != nullptr;
  const TileLayout t = carve_smem<kNb, kT>(smem_raw, channels);
  const BlockCoords bc = block_coords(p, bpg, 0);
  const TileCoords tc = tile_coords<kT>(channels);

  const int tid = threadIdx.x;
  const ThreadChannel tch = thread_channel<kLanes>(p, bc, channels);
  const int ch = tch.ch, lane = tch.lane, n_valid = tch.n_valid, d_first = tch.d_first, d = tch.d;
  const bool active = tch.active;
  const int t_begin = tch.t_begin, t_end = tch.t_end;

  const T* ubase = static_cast<const T*>(p.u.ptr) + bc.b * p.u.sb;
  const T* zbase = with_z ? static_cast<const T*>(p.z.ptr) + bc.b * p.z.sb : nullptr;
  T* obase = static_cast<T*>(const_cast<void*>(p.out.ptr)) + bc.b * p.out.sb;
  // Serial directions: f32 running sums. par_dirs: acc holds T slices (see slice_out).
  float* abase = (p.dirs > 1 && !p.par_dirs) ? static_cast<float*>(const_cast<void*>(p.acc.ptr)) + bc.b * p.acc.sb : nullptr;

  int parity = 0;
  const int k_first = p.par_dirs ? bc.k : 0, k_last = p.par_dirs ? bc.k : p.dirs - 1;
  for (int k = k_first; k <= k_last; ++k) {
    float a2[kS], h[kS], dskip, bias;
    load_channel<kS>(p, bc.b, k, d, lane, active, bc.chunk == 0, a2, h, dskip, bias);
    const int gk = k * p.groups + bc.g;
    const T* bbase = static_cast<const T*>(p.B) + bc.b * p.B_sb + gk * p.B_sg;
    const T* cbase = static_cast<const T*>(p.C) + bc.b * p.C_sb + gk * p.C_sg;
    const T* dbase = static_cast<const T*>(p.delta.ptr) + bc.b * p.delta.sb + k * p.delta.sk;
    const T* ukbase = ubase + k * p.u.sk;  // sk = 0 unless each direction has its own u
    // first: nothing summed before this direction; last_dir: this block writes the gated output
    // (with par_dirs every block writes its ungated slice of acc and the merge pass gates).
    const bool first = p.par_dirs || k == 0;
    const bool last_dir = !p.par_dirs && k == p.dirs - 1;
    // Where the tiles of this direction go: the gated output, this direction's slice of acc in T
    // (par_dirs), or the f32 running sum. One pointer, so the choice costs no registers in the
    // tile loop (a pointer per target spilled the N=16 kernel: 10-17% slower).
    const bool to_t = last_dir || p.dirs == 1 || p.par_dirs;
    const bool to_out = last_dir || p.dirs == 1;
    void* dst = to_out     ? static_cast<void*>(obase)
                : p.par_dirs ? static_cast<void*>(static_cast<T*>(const_cast<void*>(p.acc.ptr)) + bc.b * p.acc.sb +
                                                k * p.acc.sk)
                             : static_cast<void*>(abase);
    const SeqP& dst_s = to_out ? p.out : p.acc;
    const float gate_scale = last_dir ? p.out_scale : 1.0f;
    const Parity pu = Parity::of(ukbase, p.u.sd, p.u.sl), pd = Parity::of(dbase, p.delta.sd, p.delta.sl);
    const Parity pz = with_z ? Parity::of(zbase, p.z.sd, p.z.sl) : Parity{};
    float dtsum = 0.0f;

    for (int t0 = t_begin; t0 < t_end; t0 += kT, parity ^= 1) {
      const int nT = min(kT, t_end - t0);
      i64* pos = t.pos + parity * kT;
      if (tid < kT) pos[tid] = tid < nT ? dir_pos(p, k, t0 + tid) : 0;
      __syncthreads();
      issue_seq<kLanes, kT>(t.tU, t.ld, ukbase, p.u.sd, p.u.sl, d_first, n_valid, nT, pos, tc);
      issue_seq<kLanes, kT>(t.tDt, t.ld, dbase, p.delta.sd, p.delta.sl, d_first, n_valid, nT, pos, tc);
      if (with_z && last_dir)
        issue_seq<kLanes, kT>(t.tZ, t.ld, zbase, p.z.sd, p.z.sl, d_first, n_valid, nT, pos, tc);
      if (!first)
        issue_seq<kLanes, kT>(t.tAcc, t.ld, static_cast<const float*>(abase), p.acc.sd, p.acc.sl, d_first,
                          n_valid, nT, pos, tc);
      issue_bc<kNb, kT>(t.tB, bbase, p.B_sn, p.B_sl, p.n_state, nT, pos);
      issue_bc<kNb, kT>(t.tC, cbase, p.C_sn, p.C_sl, p.n_state, nT, pos);
      cp_async_wait_all();
      __syncthreads();

      // Pre-pass: B/C to f32, and this thread's share of the tile's steps (in place).
      convert_bc<kNb, kT>(t.tB, bbase, p.B_sn, p.B_sl, pos);
      convert_bc<kNb, kT>(t.tC, cbase, p.C_sn, p.C_sl, pos);
#pragma unroll 4
      for (int j = lane; j < nT; j += kLanes) {
        const int at = j * t.ld + ch;
        const i64 q = pos[j];
        float dt = tile_value<T>(t.tDt, at, pd, d, q) + bias;
        if (p.softplus) dt = softplus_f(dt);
        const float uu = tile_value<T>(t.tU, at, pu, d, q);
        dtsum += dt;
        t.tDt[at] = dt;
        t.tU[at] = dt * uu;
        t.tAcc[at] = fmaf(dskip, uu, first ? 0.0f : t.tAcc[at]);
        t.tZ[at] = (with_z && last_dir) ? gate_scale * silu(tile_value<T>(t.tZ, at, pz, d, q)) : gate_scale;
      }
      __syncthreads();

      // Recurrence. Only lane 0 of a channel reads and writes tAcc / tZ here.
      auto step = [&](int j) {
        const int at = j * t.ld + ch;
        const float y = lane_sum<kLanes>(
            scan_step<kS, 4>(h, a2, t.tB + j * kLdb + lane * kS, t.tC + j * kLdb + lane * kS, t.tDt[at], t.tU[at]));
        if (lane == 0) t.tAcc[at] = (y + t.tAcc[at]) * t.tZ[at];
      };
      // Two steps in flight give the scheduler independent exp/FMA chains; more only adds
      // registers (the B/C rows of every unrolled step are live at once).
      if (nT == kT) {
#pragma unroll 2
        for (int j = 0; j < kT; ++j) step(j);
      } else {
#pragma unroll 1
        for (int j = 0; j < nT; ++j) step(j);
      }
      __syncthreads();
      if (to_t)
        store_seq<kLanes, kT>(t.tAcc, t.ld, static_cast<T*>(dst), dst_s.sd, dst_s.sl, d_first, n_valid, nT, pos, tc);
      else
        store_seq<kLanes, kT>(t.tAcc, t.ld, static_cast<float*>(dst), dst_s.sd, dst_s.sl, d_first, n_valid, nT, pos, tc);
    }

    // Each lane summed its share of the steps' dt.
    store_channel_end<kS>(p, bc, k, d, lane, active, h, lane_sum<kLanes>(dtsum));
  }
}

/// Chunked path, pass 2: each chunk c >= 1 first combines the end states (scanned from h = 0) and
/// dt sums of the chunks before it into its true initial state H_in (the recurrence is linear:
/// H_in(c) = exp(A * dtsum(c-1)) * H_in(c-1) + h_end(c-1)); the last chunk also writes h_L. It
/// then adds the contribution of H_in to its outputs: out_t += C_t . (H_in * prod exp(dt*A)) *
/// gate_t, until it is negligible. (A separate combine kernel cost one more launch and a serial
/// walk of dependent loads: 8 us per scan at batch 1.)
template <typename T, int kS, int kLanes>
__global__ void __launch_bounds__(128, 3) scan_correct_kernel(Params p, int channels, int bpg) {
  constexpr int kT = tile_steps(kS);
  constexpr int kNb = kS * kLanes;
  constexpr int kLdb = kNb + 4;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const TileLayout t = carve_smem<kNb, kT>(smem_raw, channels);
  const BlockCoords bc = block_coords(p, bpg, 1);
  const TileCoords tc = tile_coords<kT>(channels);

  const int tid = threadIdx.x;
  const ThreadChannel tch = thread_channel<kLanes>(p, bc, channels);
  const int ch = tch.ch, lane = tch.lane, n_valid = tch.n_valid, d_first = tch.d_first, d = tch.d;
  const bool active = tch.active;
  const int t_begin = tch.t_begin, t_end = tch.t_end;
  const int k = bc.k;  // 0 unless par_dirs
  float a2[kS], g[kS], dskip_unused, bias;
  load_channel<kS>(p, bc.b, k, d, lane, active, false, a2, g, dskip_unused, bias);
  const float gmax = carried_state<kS>(p, bc, k, d, lane, active, a2, g);
  const float threshold = correction_line(p, gmax);
  const T* cbase = static_cast<const T*>(p.C) + bc.b * p.C_sb + (k * p.groups + bc.g) * p.C_sg;
  const T* dbase = static_cast<const T*>(p.delta.ptr) + bc.b * p.delta.sb + k * p.delta.sk;
  // The corrected outputs: pass 1's target (Params::pass_target).
  const bool with_gate_z = p.pass_gates_z();
  const float scale = p.pass_scale();
  const T* zbase = with_gate_z ? static_cast<const T*>(p.z.ptr) + bc.b * p.z.sb : nullptr;
  const SeqP& target = p.pass_target();
  T* obase = pass_target_base<T>(p, bc.b, k);
  const Parity pd = Parity::of(dbase, p.delta.sd, p.delta.sl), po = Parity::of(obase, target.sd, target.sl);
  const Parity pz = with_gate_z ? Parity::of(zbase, p.z.sd, p.z.sl) : Parity{};
  // B is not needed: pass 1 included every input term; this adds the homogeneous part only.

  bool live = gmax > 0.0f;
  int parity = 0;
  for (int t0 = t_begin; t0 < t_end; t0 += kT, parity ^= 1) {
    if (!__syncthreads_or(live)) break;
    const int nT = min(kT, t_end - t0);
    i64* pos = t.pos + parity * kT;
    if (tid < kT) pos[tid] = tid < nT ? dir_pos(p, k, t0 + tid) : 0;
    __syncthreads();
    issue_seq<kLanes, kT>(t.tAcc, t.ld, static_cast<const T*>(obase), target.sd, target.sl, d_first, n_valid, nT, pos,
                      tc);
    issue_seq<kLanes, kT>(t.tDt, t.ld, dbase, p.delta.sd, p.delta.sl, d_first, n_valid, nT, pos, tc);
    if (with_gate_z) issue_seq<kLanes, kT>(t.tZ, t.ld, zbase, p.z.sd, p.z.sl, d_first, n_valid, nT, pos, tc);
    issue_bc<kNb, kT>(t.tC, cbase, p.C_sn, p.C_sl, p.n_state, nT, pos);
    cp_async_wait_all();
    __syncthreads();
    convert_bc<kNb, kT>(t.tC, cbase, p.C_sn, p.C_sl, pos);
#pragma unroll 4
    for (int j = lane; j < nT; j += kLanes) {
      const int at = j * t.ld + ch;
      const i64 q = pos[j];
      float dt = tile_value<T>(t.tDt, at, pd, d, q) + bias;
      if (p.softplus) dt = softplus_f(dt);
      t.tDt[at] = dt;
      t.tZ[at] = with_gate_z ? scale * silu(tile_value<T>(t.tZ, at, pz, d, q)) : scale;
      t.tAcc[at] = tile_value<T>(t.tAcc, at, po, d, q);
    }
    __syncthreads();
    auto step = [&](int j) {
      const int at = j * t.ld + ch;
      const float dt = t.tDt[at];
      const float corr = lane_sum<kLanes>(decay_step<kS>(g, a2, t.tC + j * kLdb + lane * kS, dt));
      if (lane == 0) t.tAcc[at] = fmaf(corr, t.tZ[at], t.tAcc[at]);
    };
    if (nT == kT) {
#pragma unroll 2
      for (int j = 0; j < kT; ++j) step(j);
    } else {
#pragma unroll 1
      for (int j = 0; j < nT; ++j) step(j);
    }
    __syncthreads();
    store_seq<kLanes, kT>(t.tAcc, t.ld, obase, target.sd, target.sl, d_first, n_valid, nT, pos, tc);
    float m = 0.0f;
#pragma unroll
    for (int s = 0; s < kS; ++s) m = fmaxf(m, fabsf(g[s]));
    live = m > threshold;
  }
}

/// par_dirs, last pass: out = out_scale * silu(z) * sum_k acc_k at every (b, d, position), summed
/// in f32; one thread per element in acc's own order (so the slices are read coalesced).
template <typename T>
__global__ void scan_merge_kernel(Params p) {
  const i64 total = static_cast<i64>(p.batch) * p.dim * p.seqlen;
  const bool token_major = p.acc.sd == 1;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<i64>(gridDim.x) * blockDim.x) {
    i64 d, l;
    const i64 b = i / (static_cast<i64>(p.dim) * p.seqlen), r = i % (static_cast<i64>(p.dim) * p.seqlen);
    if (token_major) {
      l = r / p.dim;
      d = r % p.dim;
    } else {
      d = r / p.seqlen;
      l = r % p.seqlen;
    }
    const T* a = static_cast<const T*>(p.acc.ptr) + b * p.acc.sb + d * p.acc.sd + l * p.acc.sl;
    float y = 0.0f;
    for (int k = 0; k < p.dirs; ++k) y += to_float(a[k * p.acc.sk]);
    y *= p.out_scale;
    if (p.z.ptr) y *= silu(to_float(static_cast<const T*>(p.z.ptr)[b * p.z.sb + d * p.z.sd + l * p.z.sl]));
    static_cast<T*>(const_cast<void*>(p.out.ptr))[b * p.out.sb + d * p.out.sd + l * p.out.sl] = from_float<T>(y);
  }
}

/// The merge when every tensor (acc slices, out, z) is contiguous along acc's inner axis (D for
/// token-major, L for channel-major) and that axis is a multiple of kVec: kVec elements per
/// thread as 16-byte accesses, one index division per thread, each tensor with its own outer
/// and batch strides (Vim's z is a slice of the in_proj output). The per-element kernel above is
/// ~3x the bytes floor.
/// flat: every tensor is contiguous over the whole (D, L) block of a batch (then the block is one
/// inner axis, e.g. channel-major with L = 197, not a multiple of kVec).
template <typename T, int kVec>
__global__ void scan_merge_vec_kernel(Params p, bool flat) {
  const bool token_major = p.acc.sd == 1;
  const i64 dl = static_cast<i64>(p.dim) * p.seqlen;
  const i64 inner = flat ? dl : token_major ? p.dim : p.seqlen;
  const i64 outer = flat ? 1 : token_major ? p.seqlen : p.dim;
  const i64 vecs_per_row = inner / kVec;
  const i64 total = static_cast<i64>(p.batch) * outer * vecs_per_row;
  using Vec = ::mcv::kernels::cuda::Pack<T, kVec>;
  for (i64 v = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; v < total;
       v += static_cast<i64>(gridDim.x) * blockDim.x) {
    const i64 row = v / vecs_per_row, i = (v - row * vecs_per_row) * kVec;
    const i64 b = row / outer, o = row - b * outer;
    // Offset of (b, outer o, inner i) in a tensor whose inner stride is 1.
    auto at = [&](const SeqP& s) { return b * s.sb + o * (token_major ? s.sl : s.sd) + i; };
    const T* a = static_cast<const T*>(p.acc.ptr) + at(p.acc);
    float y[kVec] = {};
    for (int k = 0; k < p.dirs; ++k) {
      const Vec q = *reinterpret_cast<const Vec*>(a + k * p.acc.sk);
#pragma unroll
      for (int c = 0; c < kVec; ++c) y[c] += to_float(q.e[c]);
    }
    Vec z{}, out;
    if (p.z.ptr) z = *reinterpret_cast<const Vec*>(static_cast<const T*>(p.z.ptr) + at(p.z));
#pragma unroll
    for (int c = 0; c < kVec; ++c) {
      float r = y[c] * p.out_scale;
      if (p.z.ptr) r *= silu(to_float(z.e[c]));
      out.e[c] = from_float<T>(r);
    }
    *reinterpret_cast<Vec*>(static_cast<T*>(const_cast<void*>(p.out.ptr)) + at(p.out)) = out;
  }
}

/// The merge of a cross2d scan with staged column orders (Params::cols_staged): acc is channel
/// rows (batch, 4, D, L) holding slices 0 and 2 at grid positions, 1 and 3 in column order
/// (grid (h, w) at w * H + h). Per block and step one tile of (32 kV)^2 positions of one (batch,
/// channel) plane: the column-order pair summed along h into shared memory, then read back
/// across it, so every global access runs along its tensor's contiguous axis, kV elements per
/// access (kV = 2: H, W even, every base and stride even - cols_merge_pairs; launch.cu hands
/// out and z over in channel rows). A 56 x 56 VMamba plane is one tile.
template <typename T, int kV>
__global__ void scan_merge_cols_kernel(Params p) {
  constexpr int kSide = 32 * kV, kRowsPerPass = 8;
  using Word = ::mcv::kernels::cuda::Pack<T, kV>;
  __shared__ float tile[kSide][kSide + 1];  // [w - w0][h - h0]
  const int H = p.height, W = p.width, tiles_w = (W + kSide - 1) / kSide;
  const int h0 = static_cast<int>(blockIdx.y / tiles_w) * kSide, w0 = static_cast<int>(blockIdx.y % tiles_w) * kSide;
  const int tx = threadIdx.x * kV, ty = threadIdx.y;
  const i64 sk = p.acc.sk;
  auto load = [](const T* at) { return *reinterpret_cast<const Word*>(at); };
  for (i64 plane = blockIdx.x; plane < static_cast<i64>(p.batch) * p.dim; plane += gridDim.x) {
    const i64 b = plane / p.dim, d = plane - b * p.dim;
    const T* a = static_cast<const T*>(p.acc.ptr) + b * p.acc.sb + d * p.acc.sd;
    for (int i = ty; i < kSide; i += kRowsPerPass) {
      const int w = w0 + i, h = h0 + tx;
      if (w < W && h < H) {
        const i64 q = static_cast<i64>(w) * H + h;
        const Word x = load(a + sk + q), y = load(a + 3 * sk + q);
#pragma unroll
        for (int v = 0; v < kV; ++v) tile[i][tx + v] = to_float(x.e[v]) + to_float(y.e[v]);
      }
    }
    __syncthreads();
    const T* z = p.z.ptr ? static_cast<const T*>(p.z.ptr) + b * p.z.sb + d * p.z.sd : nullptr;
    T* out = static_cast<T*>(const_cast<void*>(p.out.ptr)) + b * p.out.sb + d * p.out.sd;
    for (int i = ty; i < kSide; i += kRowsPerPass) {
      const int h = h0 + i, w = w0 + tx;
      if (h < H && w < W) {
        const i64 q = static_cast<i64>(h) * W + w;
        const Word x = load(a + q), y = load(a + 2 * sk + q);
        Word g{}, o;
        if (z) g = load(z + q);
#pragma unroll
        for (int v = 0; v < kV; ++v) {
          float r = (to_float(x.e[v]) + to_float(y.e[v]) + tile[tx + v][i]) * p.out_scale;
          if (z) r *= silu(to_float(g.e[v]));
          o.e[v] = from_float<T>(r);
        }
        *reinterpret_cast<Word*>(out + q) = o;
      }
    }
    __syncthreads();  // the tile is rewritten for the next plane
  }
}

/// The same merge one (batch, channel) plane per block with 16-byte accesses only (kV elements,
/// H and W multiples of kV, every base and stride a multiple of kV: cols_merge_vec_fits): the
/// column-order slices' sum goes whole into shared memory as f32 [w][H + 1] (the padding keeps
/// both phases' accesses within two-way bank conflicts), then each thread sums, gates and stores
/// kV grid positions along a row. The 2-element tile kernel above moves 4 bytes per access and
/// a 64 x 64 tile per plane of 56 x 56 (VMamba's stage 1): H100, bf16, 64 x 192 x 56 x 56, see
/// PERFORMANCE.md.
template <typename T>
__global__ void scan_merge_cols_vec_kernel(Params p) {
  constexpr int kV = 16 / static_cast<int>(sizeof(T));
  using Vec = ::mcv::kernels::cuda::Pack<T, kV>;
  extern __shared__ float cols_sum[];  // [w][H + 1]
  const int H = p.height, W = p.width, ld = H + 1, vecs = H * W / kV;
  const i64 sk = p.acc.sk;
  auto load = [](const T* at) { return *reinterpret_cast<const Vec*>(at); };
  for (i64 plane = blockIdx.x; plane < static_cast<i64>(p.batch) * p.dim; plane += gridDim.x) {
    const i64 b = plane / p.dim, d = plane - b * p.dim;
    const T* a = static_cast<const T*>(p.acc.ptr) + b * p.acc.sb + d * p.acc.sd;
    for (int v = threadIdx.x; v < vecs; v += blockDim.x) {
      const int q = v * kV, w = q / H, h = q - w * H;  // kV steps down column w
      const Vec x = load(a + sk + q), y = load(a + 3 * sk + q);
#pragma unroll
      for (int e = 0; e < kV; ++e) cols_sum[w * ld + h + e] = to_float(x.e[e]) + to_float(y.e[e]);
    }
    __syncthreads();
    const T* z = p.z.ptr ? static_cast<const T*>(p.z.ptr) + b * p.z.sb + d * p.z.sd : nullptr;
    T* out = static_cast<T*>(const_cast<void*>(p.out.ptr)) + b * p.out.sb + d * p.out.sd;
    for (int v = threadIdx.x; v < vecs; v += blockDim.x) {
      const int q = v * kV, h = q / W, w = q - h * W;  // kV positions along row h
      const Vec x = load(a + q), y = load(a + 2 * sk + q);
      Vec g{}, o;
      if (z) g = load(z + q);
#pragma unroll
      for (int e = 0; e < kV; ++e) {
        float r = (to_float(x.e[e]) + to_float(y.e[e]) + cols_sum[(w + e) * ld + h]) * p.out_scale;
        if (z) r *= silu(to_float(g.e[e]));
        o.e[e] = from_float<T>(r);
      }
      *reinterpret_cast<Vec*>(out + q) = o;
    }
    __syncthreads();  // cols_sum is rewritten for the next plane
  }
}

/// Whether scan_merge_cols_vec_kernel applies (the plane kernels' conditions, relayout.cuh, for
/// acc, out and z in channel rows; its tile holds f32 sums).
template <typename T>
bool cols_merge_vec_fits(const Params& p) {
  const auto aligned = [&](const SeqP& s) { return s.sl == 1 && vectors_aligned(s.ptr, sizeof(T), {s.sb, s.sk, s.sd}); };
  return plane_vectors_fit(p.height, p.width, sizeof(T), sizeof(float)) && aligned(p.acc) && aligned(p.out) &&
         (!p.z.ptr || aligned(p.z));
}

/// Whether scan_merge_cols_kernel may move element pairs: no pair straddles a row in either
/// order, every pair is aligned.
template <typename T>
bool cols_merge_pairs(const Params& p) {
  const auto even = [&](const SeqP& s) {
    return reinterpret_cast<std::uintptr_t>(s.ptr) % (2 * sizeof(T)) == 0 && s.sb % 2 == 0 && s.sk % 2 == 0 &&
           s.sd % 2 == 0;
  };
  return p.height % 2 == 0 && p.width % 2 == 0 && even(p.acc) && even(p.out) && (!p.z.ptr || even(p.z));
}

/// 0: per-element merge; 1: vectorised along the inner axis; 2: vectorised over the flat block.
template <typename T, int kVec>
int merge_vector_mode(const Params& p) {
  const bool token_major = p.acc.sd == 1;
  const i64 inner = token_major ? p.dim : p.seqlen, dl = static_cast<i64>(p.dim) * p.seqlen;
  const auto base_ok = [&](const SeqP& s) {
    return s.sb % kVec == 0 && reinterpret_cast<std::uintptr_t>(s.ptr) % (sizeof(T) * kVec) == 0;
  };
  const auto fits = [&](const SeqP& s) {
    const i64 inner_stride = token_major ? s.sd : s.sl, outer_stride = token_major ? s.sl : s.sd;
    return base_ok(s) && inner_stride == 1 && outer_stride % kVec == 0;
  };
  const auto flat = [&](const SeqP& s) { return base_ok(s) && s.sd == p.acc.sd && s.sl == p.acc.sl; };
  if (p.acc.sk % kVec != 0) return 0;
  if (inner % kVec == 0 && fits(p.acc) && fits(p.out) && (!p.z.ptr || fits(p.z))) return 1;
  if (dl % kVec == 0 && flat(p.acc) && flat(p.out) && (!p.z.ptr || flat(p.z))) return 2;
  return 0;
}

/// Fallback for input-independent (fixed) B or C: one thread per channel, direct strided loads,
/// states in a local array. Simple and slow; no model of this library uses fixed B/C.
template <typename T, int kNMax>
__global__ void scan_generic_kernel(Params p) {
  const i64 idx = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<i64>(p.batch) * p.dim) return;
  const int b = static_cast<int>(idx / p.dim), d = static_cast<int>(idx % p.dim), g = d / p.cpg;
  const T* u = static_cast<const T*>(p.u.ptr) + b * p.u.sb + d * p.u.sd;
  const T* z = p.z.ptr ? static_cast<const T*>(p.z.ptr) + b * p.z.sb + d * p.z.sd : nullptr;
  T* out = static_cast<T*>(const_cast<void*>(p.out.ptr)) + b * p.out.sb + d * p.out.sd;
  float* acc = p.dirs > 1 ? static_cast<float*>(const_cast<void*>(p.acc.ptr)) + b * p.acc.sb + d * p.acc.sd : nullptr;
  float h[kNMax], a2[kNMax];
  for (int k = 0; k < p.dirs; ++k) {
    const i64 row = static_cast<i64>(k) * p.dim + d;
    for (int n = 0; n < p.n_state; ++n) {
      a2[n] = p.A[row * p.A_sc + n * p.A_sn] * kLog2e;
      h[n] = p.h0 ? p.h0[b * p.h0_sb + k * p.h0_sk + static_cast<i64>(d) * p.h0_sd + n * p.h0_sn] : 0.0f;
    }
    const float dskip = p.Dskip ? p.Dskip[row * p.D_s] : 0.0f;
    const float bias = p.bias ? p.bias[row * p.bias_s] : 0.0f;
    const int gk = k * p.groups + g;
    const T* bb = static_cast<const T*>(p.B) + (p.B_var ? b * p.B_sb + gk * p.B_sg : row * p.B_sg);
    const T* cc = static_cast<const T*>(p.C) + (p.C_var ? b * p.C_sb + gk * p.C_sg : row * p.C_sg);
    const T* delta = static_cast<const T*>(p.delta.ptr) + b * p.delta.sb + k * p.delta.sk + d * p.delta.sd;
    const i64 bsl = p.B_var ? p.B_sl : 0, csl = p.C_var ? p.C_sl : 0;
    for (int tstep = 0; tstep < p.seqlen; ++tstep) {
      const i64 q = dir_pos(p, k, tstep);
      const float uu = to_float(u[k * p.u.sk + q * p.u.sl]);
      float dt = to_float(delta[q * p.delta.sl]) + bias;
      if (p.softplus) dt = softplus_f(dt);
      const float dtu = dt * uu;
      float y = 0.0f;
      for (int n = 0; n < p.n_state; ++n) {
        const float decay = ex2_approx(dt * a2[n]);
        h[n] = fmaf(decay, h[n], to_float(bb[n * p.B_sn + q * bsl]) * dtu);
        y = fmaf(to_float(cc[n * p.C_sn + q * csl]), h[n], y);
      }
      y = fmaf(dskip, uu, y);
      if (k > 0) y += acc[q * p.acc.sl];
      if (k == p.dirs - 1) {
        y *= p.out_scale;
        if (z) y *= silu(to_float(z[q * p.z.sl]));
        out[q * p.out.sl] = from_float<T>(y);
      } else {
        acc[q * p.acc.sl] = y;
      }
    }
    if (p.hT)
      for (int n = 0; n < p.n_state; ++n)
        p.hT[b * p.hT_sb + k * p.hT_sk + static_cast<i64>(d) * p.hT_sd + n * p.hT_sn] = h[n];
  }
}

inline unsigned grid_size(i64 blocks, const char* what) {
  if (blocks < 1 || blocks > INT_MAX) throw Error(std::string("selective_scan: ") + what, "grid of " + std::to_string(blocks) + " blocks is out of range");
  return static_cast<unsigned>(blocks);
}

/// (device, kernel): the key of the per-kernel settings and facts below, kept once per device.
template <typename Kernel>
std::pair<int, const void*> device_kernel(Kernel kernel) {
  int device = 0;
  cuda_check(cudaGetDevice(&device), "selective_scan: cudaGetDevice");
  return {device, reinterpret_cast<const void*>(kernel)};
}

/// Allows more than 48 KiB of dynamic shared memory for a kernel, and with max_carveout asks
/// for the largest shared-memory carveout (the driver's own choice can leave fewer blocks per SM
/// than the shared memory allows): once per device, kernel and larger size, not per launch
/// (every scan call of a model layer would repeat the driver call).
template <typename Kernel>
void configure_smem(Kernel kernel, std::size_t bytes, bool max_carveout = false) {
  if (bytes <= 48 * 1024 && !max_carveout) return;
  static std::mutex mutex;
  static std::map<std::pair<int, const void*>, std::size_t> allowed;  // (device, kernel) -> bytes
  const auto key = device_kernel(kernel);
  const std::lock_guard<std::mutex> lock(mutex);
  std::size_t& have = allowed[key];
  if (have >= bytes) return;
  if (bytes > 48 * 1024)
    cuda_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
               "selective_scan: cudaFuncSetAttribute");
  if (max_carveout)
    cuda_check(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared),
               "selective_scan: cudaFuncSetAttribute (carveout)");
  have = bytes;
}

/// The architecture (major * 10 + minor) of the kernel's binary the current device runs (the TMA
/// kernels trap when built below sm_90), once per device and kernel.
template <typename Kernel>
int kernel_arch(Kernel kernel) {
  static std::mutex mutex;
  static std::map<std::pair<int, const void*>, int> arch;
  const auto key = device_kernel(kernel);
  const std::lock_guard<std::mutex> lock(mutex);
  if (const auto it = arch.find(key); it != arch.end()) return it->second;
  cudaFuncAttributes a{};
  cuda_check(cudaFuncGetAttributes(&a, kernel), "selective_scan: cudaFuncGetAttributes");
  return arch[key] = a.binaryVersion;
}

template <typename T, int kV>
void launch_merge_cols(const Params& p, cudaStream_t stream) {
  constexpr int kSide = 32 * kV;
  // At most 65535 tiles: cols_staging_fits.
  const unsigned tiles = static_cast<unsigned>(((p.height + kSide - 1) / kSide) * ((p.width + kSide - 1) / kSide));
  const dim3 grid(grid_size(std::min<i64>(static_cast<i64>(p.batch) * p.dim, 1 << 20), "merge"), tiles);
  scan_merge_cols_kernel<T, kV><<<grid, dim3(32, 8), 0, stream>>>(p);
  cuda_check_launch("selective_scan: scan_merge_cols_kernel");
}

/// Whether a launch may add its directions into out (Params::reduce_out): two directions in
/// parallel blocks (two addends onto zero round the same whichever lands first), one pass (a
/// chunk correction reads its own direction's output back), and out dense token-major (zeroed
/// with one memset).
inline bool reduce_out_fits(const Params& p) {
  const SeqP& o = p.out;
  return p.mode == 2 && p.par_dirs && p.dirs == 2 && p.n_chunks == 1 && o.sd == 1 && o.sk == 0 &&
         o.sl == p.dim && (p.batch == 1 || o.sb == static_cast<i64>(p.seqlen) * p.dim);
}

/// kSeg: the pipelined kernel's step segments (cfg.segments; one-state channels without L-chunks);
/// the tiled kernel, where the pipelined one does not apply, runs the same blocks' channels
/// with one thread each.
template <typename T, int kS, int kLanes, int kSeg = 1>
void run_tiled(const Params& p, const LaunchConfig& cfg, cudaStream_t stream) {
  const int channels = cfg.channels_per_block, threads = channels * kLanes;
  const i64 per_chunk = static_cast<i64>(p.batch) * p.groups * cfg.blocks_per_group * p.dir_blocks();
  const unsigned blocks = grid_size(per_chunk * p.n_chunks, "scan");
  Params pp = with_pipe_inputs(p);  // the pipelined kernel's: with its inputs and store choice
  constexpr int kT = pipe_tile_steps<kSeg>();
  pp.coop_rows = pipe_coop_rows<T, kS * kLanes, kT>(p, channels, cfg, pipe_min_blocks<T, kSeg>());
  // MCV_SCAN_TMA=2 (tests): an error, before anything is launched, where pass 1 would not move
  // its rows as TMA boxes.
  const auto require_tma = [&] {
    if (cfg.require_tma) throw Error("selective_scan", "MCV_SCAN_TMA=2, but this launch does not take TMA boxes");
  };
  // MCV_SCAN_WARP_TMA=2 (tests): the same for the warp pipelines.
  const auto require_warp_tma = [&] {
    if (cfg.require_warp_tma)
      throw Error("selective_scan", "MCV_SCAN_WARP_TMA=2, but this launch does not take the warp pipelines");
  };
  bool merged = false;  // the scan added every direction into out itself (Params::reduce_out)
  // L-chunks: the correction by warps per (chunk, channel) where it applies (scan_correct.cuh),
  // after either pass 1; otherwise by the pass-1 kernel's own blocks. H200, S6: see
  // scan_correct.cuh. MCV_SCAN_WARP_CORRECTION=0 keeps the block correction (comparisons,
  // its tests), =2 makes a chunked launch it cannot take an error (tests).
  const bool warp_correction = cfg.allow_warp_correction && warp_correction_fits(p, cfg.require_warp_correction);
  if (p.n_chunks > 1 && cfg.require_warp_correction && !warp_correction)
    throw Error("selective_scan", "MCV_SCAN_WARP_CORRECTION=2, but this chunked launch does not take the warp correction");
  if (cfg.allow_pipe && pipe_supported<T, kS * kLanes, kT>(pp, channels, cfg.smem_optin)) {
    PipeMaps maps{};
    auto launch = [&](auto kernel, unsigned grid, bool boxes, const char* what, bool warp_boxes = false) {
      const std::size_t smem = warp_boxes ? pipe_warp_smem_bytes<T, kS * kLanes, kT, kLanes>(channels)
                                          : pipe_smem_bytes<T, kS * kLanes, kT>(channels, pp.coop_rows, pipe_step_out(pp), boxes);
      configure_smem(kernel, smem, kSeg > 1 || warp_boxes);  // segments, warp pipelines: their blocks per SM need the largest carveout
      kernel<<<grid, threads * kSeg, smem, stream>>>(pp, channels, cfg.blocks_per_group, maps);
      cuda_check_launch(what);
    };
    // Word pairs: 16-bit channel rows on one lane (instantiated only there). TMA boxes: the
    // configurations long aligned rows take (16-bit on one lane; f32 with 4-16 states on one or
    // two lanes), no step segments.
    constexpr bool kPairable = sizeof(T) == 2 && kLanes == 1;
    constexpr int kPairRead = kPairable ? kReadPairs : kReadElems;
    constexpr bool kTmaCapable =
        kSeg == 1 && (sizeof(T) == 2 ? kLanes == 1 : kS >= 4 && kLanes <= 2 && kS * kLanes <= 16);
    // kCols (staged cross2d column orders): the TMA and element-read kernels only (no word pairs).
    auto run_pipe = [&](auto cols) {
      constexpr bool kCols = decltype(cols)::value;
      // Warp pipelines: 16-bit with 16 states on one lane (the SFU-bound body, where the block
      // barrier cost most); f32 with 8 states on each of two lanes on the staged cross2d only.
      // H200, same binary, ms, warp / block boxes: the channel-major SS2D f32 1.657 / 1.711,
      // with column inputs 1.458 / 1.511 (the block-box kernel of staged orders spills 12
      // bytes, the warp one none), but S3 f32 1.202-1.205 / 1.206-1.208, S5 0.0354 / 0.0352 and
      // S6 3.751 / 3.683 (its pass 1 slower).
      constexpr bool kWarpCapable = kTmaCapable && (sizeof(T) == 2 ? kS == 16 : kS == 8 && kLanes == 2 && kCols);
      bool launched = false;
      [[maybe_unused]] constexpr TmaElem kElem =
          sizeof(T) == 4 ? TmaElem::f32 : std::is_same_v<T, __half> ? TmaElem::f16 : TmaElem::bf16;
      if constexpr (kWarpCapable) {
        auto warp_kernel = scan_pipe_kernel<T, kS, kLanes, false, kReadWarpTma, 1, kCols>;
        if (cfg.allow_tma && cfg.allow_warp_tma && pipe_tma_layout(pp, channels, kT, sizeof(T)) &&
            pipe_tma_bc_layout(pp, sizeof(T)) && kernel_arch(warp_kernel) >= 90) {
          constexpr int kWarpRows = WarpTmaGeom<T, kS * kLanes, kT, kLanes>::kRows;  // a warp's box rows
          if (const std::optional<PipeMaps> m = make_pipe_maps(pp, kWarpRows, kT, kElem, kS * kLanes)) {
            maps = *m;
            launch(warp_kernel, blocks, true, "selective_scan: scan_pipe_kernel (warp TMA)", true);
            launched = true;
          }
        }
      }
      if (!launched) require_warp_tma();
      if constexpr (kTmaCapable) {
        auto tma_kernel = scan_pipe_kernel<T, kS, kLanes, false, kReadTma, 1, kCols>;
        // pipe_tma_layout takes channel rows of every staged stream and the target only.
        if (!launched && cfg.allow_tma && pipe_tma_layout(pp, channels, kT, sizeof(T)) && kernel_arch(tma_kernel) >= 90) {
          if (const std::optional<PipeMaps> m = make_pipe_maps(pp, channels, kT, kElem)) {
            maps = *m;
            launch(tma_kernel, blocks, true, "selective_scan: scan_pipe_kernel (TMA)");
            launched = true;
          }
        }
      }
      // Step-row boxes: token-major rows in the configurations the models take (Vim's 16 states:
      // one lane in 16-bit, 8 x 2 lanes in f32; VMamba v2's one state), so that the other
      // buckets add no kernels to the build.
      // cross2d (token-major grids) only with one state in 16-bit: its column orders keep the
      // cp.async rows, and the mixed launch measured slower with 16 states (H100, SS2D N 16 bf16
      // 1.948 -> 2.017 ms on one machine, 1.947 -> 1.887 on another; f32 2.465 -> 2.545) and f32
      // one state (1.200 -> 1.254), faster only for 16-bit one state (0.929 -> 0.923).
      constexpr bool kStepCapable =
          kSeg == 1 && !kCols && (sizeof(T) == 2 ? kLanes == 1 && (kS == 1 || kS == 16) : kS == 8 && kLanes == 2);
      const bool step_order_ok = p.mode != 3 || (kS == 1 && sizeof(T) == 2);
      if constexpr (kStepCapable) {
        auto step_kernel = scan_pipe_kernel<T, kS, kLanes, false, kReadStepTma>;
        // A bidirectional scan into a dense token-major output first tries adding both
        // directions into it (Params::reduce_out: no slices, no merge pass; its pass gates, so z
        // must take boxes too).
        auto try_step = [&](bool reduce) {
          pp.reduce_out = reduce;
          if (pipe_step_tma_layout(pp, channels, kT, sizeof(T)) && kernel_arch(step_kernel) >= 90) {
            if (const std::optional<PipeMaps> m = make_pipe_step_maps(pp, channels, kT, kElem)) {
              maps = *m;
              if (reduce)
                cuda_check(cudaMemsetAsync(const_cast<void*>(p.out.ptr), 0,
                                           static_cast<std::size_t>(p.batch) * p.seqlen * p.dim * sizeof(T), stream),
                           "selective_scan: zeroing the output");
              launch(step_kernel, blocks, true, "selective_scan: scan_pipe_kernel (step TMA)");
              merged = reduce;
              return true;
            }
          }
          pp.reduce_out = false;
          return false;
        };
        if (!launched && cfg.allow_tma && cfg.allow_step_tma && step_order_ok) {
          if (cfg.allow_reduce_out && reduce_out_fits(p)) launched = try_step(true);
          if (!launched) launched = try_step(false);
        }
      }
      if (!launched && cfg.require_step_tma)
        throw Error("selective_scan", "MCV_SCAN_STEP_TMA=2, but this launch does not take step-row boxes");
      const bool pairs = !kCols && kPairable;
      if (!launched) {
        require_tma();
        if (pairs && pipe_pairs<T>(p, kLanes, false))
          launch(scan_pipe_kernel<T, kS, kLanes, false, kPairRead, kSeg>, blocks, false,
                 "selective_scan: scan_pipe_kernel");
        else
          launch(scan_pipe_kernel<T, kS, kLanes, false, kReadElems, kSeg, kCols>, blocks, false,
                 "selective_scan: scan_pipe_kernel");
      }
      if constexpr (kSeg > 1) {
        if (p.n_chunks > 1) throw Error("selective_scan", "step segments with L-chunks (launch configuration)");
      } else if (p.n_chunks > 1 && !warp_correction) {
        const unsigned grid = grid_size(per_chunk * (p.n_chunks - 1), "correct");
        if (pairs && pipe_pairs<T>(p, kLanes, true))
          launch(scan_pipe_kernel<T, kS, kLanes, true, kPairRead>, grid, false,
                 "selective_scan: scan_pipe_kernel (correction)");
        else
          launch(scan_pipe_kernel<T, kS, kLanes, true, kReadElems, 1, kCols>, grid, false,
                 "selective_scan: scan_pipe_kernel (correction)");
      }
    };
    if (p.cols_staged)
      run_pipe(std::true_type{});
    else
      run_pipe(std::false_type{});
  } else {
    require_tma();
    require_warp_tma();
    // The staged column orders are read by the pipelined kernel only (cols_staging_fits admits
    // only launches it takes).
    if (p.cols_staged) throw Error("selective_scan", "staged cross2d column orders without the pipelined kernel");
    const std::size_t smem = tile_smem_bytes(channels, kLanes, kS);
    configure_smem(scan_tiled_kernel<T, kS, kLanes>, smem);
    scan_tiled_kernel<T, kS, kLanes><<<blocks, threads, smem, stream>>>(p, channels, cfg.blocks_per_group);
    cuda_check_launch("selective_scan: scan_tiled_kernel");
    if (p.n_chunks > 1 && !warp_correction) {
      configure_smem(scan_correct_kernel<T, kS, kLanes>, smem);
      scan_correct_kernel<T, kS, kLanes><<<grid_size(per_chunk * (p.n_chunks - 1), "correct"), threads, smem,
                                           stream>>>(p, channels, cfg.blocks_per_group);
      cuda_check_launch("selective_scan: scan_correct_kernel");
    }
  }
  if (warp_correction) launch_warp_correction<T>(p, stream);
  if (cfg.require_reduce_out && !merged)
    throw Error("selective_scan", "MCV_SCAN_REDUCE_OUT=2, but this launch does not add its directions into out");
  if (p.cols_staged) {
    if (cfg.allow_merge_vec && cols_merge_vec_fits<T>(p)) {
      const unsigned grid = grid_size(std::min<i64>(static_cast<i64>(p.batch) * p.dim, 1 << 20), "merge");
      scan_merge_cols_vec_kernel<T><<<grid, plane_block_threads(p.height, p.width, sizeof(T)),
                                      plane_tile_bytes(p.height, p.width, sizeof(float)), stream>>>(p);
      cuda_check_launch("selective_scan: scan_merge_cols_vec_kernel");
    } else if (cols_merge_pairs<T>(p))
      launch_merge_cols<T, 2>(p, stream);
    else
      launch_merge_cols<T, 1>(p, stream);
  } else if (p.par_dirs && !merged) {
    constexpr int kVec = 16 / sizeof(T);
    const i64 total = static_cast<i64>(p.batch) * p.dim * p.seqlen;
    if (const int mode = merge_vector_mode<T, kVec>(p)) {
      const i64 blocks = std::min<i64>((total / kVec + 255) / 256, 1 << 20);
      scan_merge_vec_kernel<T, kVec><<<grid_size(blocks, "merge"), 256, 0, stream>>>(p, mode == 2);
    } else {
      const i64 blocks = std::min<i64>((total + 255) / 256, 1 << 20);
      scan_merge_kernel<T><<<grid_size(blocks, "merge"), 256, 0, stream>>>(p);
    }
    cuda_check_launch("selective_scan: scan_merge_kernel");
  }
}

template <typename T>
void launch_typed(const Params& p, const LaunchConfig& cfg, cudaStream_t stream) {
  if (cfg.generic) {
    const i64 cells = static_cast<i64>(p.batch) * p.dim;
    const unsigned blocks = grid_size((cells + 127) / 128, "generic scan");
    switch (cfg.generic_nmax) {
      case 16: scan_generic_kernel<T, 16><<<blocks, 128, 0, stream>>>(p); break;
      case 64: scan_generic_kernel<T, 64><<<blocks, 128, 0, stream>>>(p); break;
      default: scan_generic_kernel<T, 256><<<blocks, 128, 0, stream>>>(p); break;
    }
    cuda_check_launch("selective_scan: scan_generic_kernel");
    return;
  }
  const int key = cfg.states_per_thread * 100 + cfg.lanes;
  switch (key) {
    case 101: return cfg.segments == 2 ? run_tiled<T, 1, 1, 2>(p, cfg, stream) : run_tiled<T, 1, 1>(p, cfg, stream);
    case 401: return run_tiled<T, 4, 1>(p, cfg, stream);
    case 404: return run_tiled<T, 4, 4>(p, cfg, stream);
    case 801: return run_tiled<T, 8, 1>(p, cfg, stream);
    case 402: return run_tiled<T, 4, 2>(p, cfg, stream);
    case 1601: return run_tiled<T, 16, 1>(p, cfg, stream);
    case 802: return run_tiled<T, 8, 2>(p, cfg, stream);
    case 1602: return run_tiled<T, 16, 2>(p, cfg, stream);
    case 1604: return run_tiled<T, 16, 4>(p, cfg, stream);
    case 1608: return run_tiled<T, 16, 8>(p, cfg, stream);
    case 1616: return run_tiled<T, 16, 16>(p, cfg, stream);
    default:
      throw Error("selective_scan", "no kernel for " + std::to_string(cfg.states_per_thread) +
                                        " states x " + std::to_string(cfg.lanes) + " lanes");
  }
}

}  // namespace mcv::kernels::scan::cuda
