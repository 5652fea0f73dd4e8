#pragma once
// The pipelined selective-scan kernel: the default for every one-direction-per-block scan whose
// per-step tensors (u, delta, z) are stored in rows (channel-major with L contiguous, or
// token-major with D contiguous); scan_kernels.cuh keeps the older tiled kernel for the rest
// (gathers, channel-major column-order cross-scans, serial directions).
//
// Why a second kernel: the tiled kernel ran, per tile, loads -> wait -> pre-pass -> recurrence
// -> store with three block barriers and nothing overlapping the loads, and spent ~260
// instructions per warp-step against ~100 of the recurrence itself (ncu: issue 40 % busy at 12
// warps/SM, latency-bound). Here, per tile of kPipeSteps steps:
//  - the next tile's raw u/delta/z rows are copied with 4-byte cp.async into a second buffer
//    while this tile computes (one word per two 16-bit elements, rows at any alignment: the
//    consumer indexes the 16-bit elements of the copied words directly);
//  - the next tile's B/C words are copied the same way and turned into f32 by the thread that
//    copied them (its own cp.async results need no barrier), into a second f32 buffer;
//  - each thread runs the whole step chain for its own channel from the raw rows: softplus and
//    dt*u for the tile's steps into registers first (independent, so their latencies overlap),
//    then the recurrence with the skip/gate epilogue, writing f32 outputs to a [channel][step]
//    buffer;
//  - ONE block barrier per tile, after which the outputs of this tile are stored coalesced.

#include "selective_scan/cuda/scan_device.cuh"

namespace mcv::kernels::scan::cuda {

/// Steps per tile of the pipelined kernel.
constexpr int kPipeSteps = 16;

/// How a per-step tensor is staged: rows along L per channel (L contiguous), rows along D per
/// step (D contiguous), or neither (the pipelined kernel does not take it).
enum RowKind : int { kChannelRows = 0, kStepRows = 1, kNoRows = 2 };
__host__ __device__ inline int row_kind(const SeqP& s) {
  return s.sl == 1 ? kChannelRows : s.sd == 1 ? kStepRows : kNoRows;
}

/// Shared-memory geometry of one staged per-step tensor, in 32-bit words. Rows are copied in
/// aligned 8-byte units (cp.async of 8 bytes: half the copies of 4-byte words).
template <typename T>
struct RawGeom {
  static constexpr int kE = 4 / static_cast<int>(sizeof(T));         ///< elements per word
  static constexpr int kUnitElems = 8 / static_cast<int>(sizeof(T));  ///< elements per 8-byte unit
  /// A channel row of kPipeSteps elements at any alignment: 5 units (16-bit) or 9 (f32).
  static constexpr int kRowUnits = kPipeSteps / kUnitElems + 1;
  static constexpr int kRowWords = 2 * kRowUnits;
  __host__ __device__ static int step_row_units(int channels) { return (channels + kUnitElems - 1) / kUnitElems; }
  __host__ __device__ static int step_row_words(int channels) { return 2 * step_row_units(channels); }
  __host__ __device__ static int words(int channels) {
    const int a = channels * kRowWords, b = kPipeSteps * step_row_words(channels);
    return ((a > b ? a : b) + 3) & ~3;
  }
};

/// Dynamic shared memory of the pipelined kernel: two buffers of raw u/delta/z, the B/C word
/// staging, two f32 B/C tiles and two f32 output tiles.
template <typename T>
inline std::size_t pipe_smem_bytes(int channels, int n_b) {
  const std::size_t raw = 6ull * RawGeom<T>::words(channels);
  const std::size_t bc_raw = (2ull * kPipeSteps * n_b + 3) & ~std::size_t{3};
  const std::size_t bcf = 4ull * kPipeSteps * (n_b + 4);
  const std::size_t obuf = 2ull * channels * (kPipeSteps + 1);
  return (raw + bc_raw + bcf + obuf) * sizeof(float);
}

/// Buffer b of each double-buffered area is base + b * stride, computed from the shared array
/// (not picked from an array of pointers) so that the compiler keeps shared-memory loads.
struct PipeLayout {
  unsigned* raw;     ///< per buffer (stride raw_stride): u, delta, z areas of raw_words each
  unsigned* bc_raw;  ///< [B | C][kPipeSteps][kNb] copied words
  float* bcf;        ///< per buffer (stride bcf_stride): [B | C][kPipeSteps][kNb + 4] f32
  float* obuf;       ///< per buffer (stride obuf_stride): [channel][kPipeSteps + 1] f32 outputs
  int raw_words, raw_stride, bcf_stride, obuf_stride;
};

template <typename T, int kNb>
__device__ __forceinline__ PipeLayout carve_pipe(unsigned char* smem, int channels) {
  PipeLayout t;
  unsigned* w = reinterpret_cast<unsigned*>(smem);
  t.raw_words = RawGeom<T>::words(channels);
  t.raw_stride = 3 * t.raw_words;
  t.raw = w;
  w += 2 * t.raw_stride;
  t.bc_raw = w;
  w += (2 * kPipeSteps * kNb + 3) & ~3;
  t.bcf_stride = 2 * kPipeSteps * (kNb + 4);  // a multiple of 4 words: LDS.128 stays aligned
  t.bcf = reinterpret_cast<float*>(w);
  w += 2 * t.bcf_stride;
  t.obuf_stride = channels * (kPipeSteps + 1);
  t.obuf = reinterpret_cast<float*>(w);
  return t;
}

/// The steps [t0, t0 + nT) of direction k: when the direction visits positions in order
/// (everything but cross2d's column-major orders) they are the range [p_lo, p_lo + nT),
/// walked backwards when rev.
struct TileSpan {
  int t0, nT, p_lo;
  bool rev, affine;
};
__device__ __forceinline__ TileSpan tile_span(const Params& p, int k, int t0, int nT) {
  TileSpan s;
  s.t0 = t0;
  s.nT = nT;
  s.rev = dir_flipped(p.mode, k);
  s.affine = !(p.mode == 3 && (k & 1));
  s.p_lo = s.rev ? p.seqlen - t0 - nT : t0;
  return s;
}

__device__ __forceinline__ void cp_async8(unsigned* dst, std::uintptr_t src) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(s), "l"(src) : "memory");
}

/// Starts the copies of one per-step tensor's tile (channels d_first .. d_first + n_valid) into
/// `dst`. Channel rows: row c holds the aligned 8-byte units covering positions [p_lo, p_lo + nT)
/// of channel c (units holding none of them are skipped). Step rows: row j holds the units of
/// channels d_first.. at the step's position (8-byte aligned: checked by pipe_supported). Each
/// thread keeps one unit column and walks rows by pointer increments.
template <typename T>
__device__ __forceinline__ void issue_rows(unsigned* dst, const T* base, const SeqP& s, int kind, int d_first,
                                           int n_valid, int channels, const TileSpan& sp, const Params& p, int k) {
  using G = RawGeom<T>;
  if (kind == kChannelRows) {
    const int cstep = blockDim.x / G::kRowUnits;
    const int w = threadIdx.x % G::kRowUnits, c0 = threadIdx.x / G::kRowUnits;
    if (c0 >= cstep) return;
    // Unit w of a row starting m bytes into its first unit holds wanted elements iff 8w < m + nT * size.
    const unsigned end = static_cast<unsigned>(sp.nT) * sizeof(T), w8 = 8u * w;
    const char* a0 = reinterpret_cast<const char*>(base + static_cast<i64>(d_first + c0) * s.sd + sp.p_lo);
    const i64 row_step = static_cast<i64>(cstep) * s.sd * static_cast<i64>(sizeof(T));
    unsigned* d = dst + c0 * G::kRowWords + 2 * w;
    for (int c = c0; c < n_valid; c += cstep, a0 += row_step, d += cstep * G::kRowWords) {
      const unsigned m = static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(a0)) & 7u;
      if (w8 < m + end) cp_async8(d, reinterpret_cast<std::uintptr_t>(a0 - m + w8));
    }
  } else {
    const int units = G::step_row_units(n_valid), ld = G::step_row_words(channels);
    const int jstep = blockDim.x / units;
    const int u = threadIdx.x % units, j0 = threadIdx.x / units;
    if (j0 >= jstep) return;
    const std::uintptr_t first = reinterpret_cast<std::uintptr_t>(base + d_first) + 8u * u;
    constexpr i64 kBytes = sizeof(T);
    if (sp.affine) {
      const i64 p0 = sp.rev ? sp.p_lo + sp.nT - 1 : sp.p_lo, row = (sp.rev ? -s.sl : s.sl) * kBytes;
      for (int j = j0; j < sp.nT; j += jstep)
        cp_async8(dst + j * ld + 2 * u, first + static_cast<std::uintptr_t>(p0 * s.sl * kBytes + j * row));
    } else {
      for (int j = j0; j < sp.nT; j += jstep)
        cp_async8(dst + j * ld + 2 * u, first + static_cast<std::uintptr_t>(dir_pos(p, k, sp.t0 + j) * s.sl * kBytes));
    }
  }
}

/// Where this thread's channel `ch` finds step j of a staged tensor: element base + j * step of
/// the raw area viewed as T.
struct RowRef {
  int base, step;
};
template <typename T>
__device__ __forceinline__ RowRef row_ref(const T* tensor_base, const SeqP& s, int kind, int d, int ch, int channels,
                                          const TileSpan& sp) {
  using G = RawGeom<T>;
  RowRef r;
  if (kind == kChannelRows) {
    const std::uintptr_t a0 = reinterpret_cast<std::uintptr_t>(tensor_base + static_cast<i64>(d) * s.sd + sp.p_lo);
    const int misalign = static_cast<int>((a0 & 7u) / sizeof(T));
    r.base = ch * G::kRowWords * G::kE + misalign + (sp.rev ? sp.nT - 1 : 0);
    r.step = sp.rev ? -1 : 1;
  } else {
    r.base = ch;
    r.step = G::step_row_words(channels) * G::kE;
  }
  return r;
}


/// Calls fn(i, j, n, ok, off) for this thread's B (or C) elements of the tile: slot i <
/// kPipeSteps * kNb, step j, state n (consecutive threads on the tensor's contiguous axis), ok
/// when j < nT and n < n_state, off the element offset (32 bits: pipe_supported). issue_bc_pipe
/// and convert_bc_pipe visit the same slots, so each thread converts exactly the words it
/// copied. The position map is chosen once per call, not per element.
template <int kNb, typename Fn>
__device__ __forceinline__ void for_each_bc(int sn, int sl, int n_state, const TileSpan& sp, const Params& p, int k,
                                            Fn&& fn) {
  constexpr int kPer = kPipeSteps * kNb;
  const bool n_fast = sn == 1;
  auto coords = [&](int i, int& j, int& n) {
    j = n_fast ? i / kNb : i % kPipeSteps;
    n = n_fast ? i % kNb : i / kPipeSteps;
  };
  if (sp.affine) {
    const int first = (sp.rev ? sp.p_lo + sp.nT - 1 : sp.p_lo) * sl, step = sp.rev ? -sl : sl;
    for (int i = threadIdx.x; i < kPer; i += blockDim.x) {
      int j, n;
      coords(i, j, n);
      fn(i, j, n, j < sp.nT && n < n_state, first + n * sn + j * step);
    }
  } else {
    for (int i = threadIdx.x; i < kPer; i += blockDim.x) {
      int j, n;
      coords(i, j, n);
      const bool ok = j < sp.nT && n < n_state;
      fn(i, j, n, ok, ok ? n * sn + static_cast<int>(dir_pos(p, k, sp.t0 + j)) * sl : 0);
    }
  }
}

/// Starts the copies of the words holding the tile's B (or C) elements, each into the copying
/// thread's own slot raw[i].
template <typename T, int kNb>
__device__ __forceinline__ void issue_bc_pipe(unsigned* raw, const T* base, int sn, int sl, int n_state,
                                              const TileSpan& sp, const Params& p, int k) {
  for_each_bc<kNb>(sn, sl, n_state, sp, p, k, [&](int i, int, int, bool ok, int off) {
    if (ok) cp_async_word(raw + i, base + off, true);
  });
}

/// This thread's copied B (or C) words -> f32 dst[j][n] (row kNb + 4); zero past n_state, so
/// the padding states of a bucket add nothing.
template <typename T, int kNb>
__device__ __forceinline__ void convert_bc_pipe(float* dst, const unsigned* raw, const T* base, int sn, int sl,
                                                int n_state, const TileSpan& sp, const Params& p, int k) {
  const unsigned base_half = static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(base) >> 1);
  for_each_bc<kNb>(sn, sl, n_state, sp, p, k, [&](int i, int j, int n, bool ok, int off) {
    dst[j * (kNb + 4) + n] = ok ? word_value<T>(raw[i], (base_half + static_cast<unsigned>(off)) & 1u) : 0.0f;
  });
}

/// Stores a tile's outputs obuf[c][j] to dst (channel d_first + c, step j of the span). Along L
/// rows when dst is L-contiguous and the positions are a range (each thread keeps one step and
/// walks channels by pointer increments), else step by step with consecutive threads on
/// consecutive channels (coalesced when D is contiguous).
template <typename T>
__device__ __forceinline__ void store_pipe(const float* obuf, T* base, const SeqP& s, int d_first, int n_valid,
                                           const TileSpan& sp, const Params& p, int k) {
  constexpr int kLd = kPipeSteps + 1;
  if (s.sl == 1 && sp.affine) {
    const int cstep = blockDim.x / kPipeSteps;
    const int j = threadIdx.x % kPipeSteps, c0 = threadIdx.x / kPipeSteps;
    if (j >= sp.nT) return;
    const int pos = sp.rev ? sp.p_lo + sp.nT - 1 - j : sp.p_lo + j;
    T* out = base + static_cast<i64>(d_first + c0) * s.sd + pos;
    const i64 out_step = static_cast<i64>(cstep) * s.sd;
    const float* o = obuf + c0 * kLd + j;
    for (int c = c0; c < n_valid; c += cstep, out += out_step, o += cstep * kLd) *out = from_float<T>(*o);
  } else {
    // One channel per thread (blockDim >= n_valid), every step of the tile.
    const int c = threadIdx.x;
    if (c >= n_valid) return;
    T* out = base + static_cast<i64>(d_first + c) * s.sd;
    const float* o = obuf + c * kLd;
    if (sp.affine) {
      const i64 p0 = sp.rev ? sp.p_lo + sp.nT - 1 : sp.p_lo, step = sp.rev ? -s.sl : s.sl;
      out += p0 * s.sl;
      for (int j = 0; j < sp.nT; ++j, out += step) *out = from_float<T>(o[j]);
    } else {
      for (int j = 0; j < sp.nT; ++j) out[dir_pos(p, k, sp.t0 + j) * s.sl] = from_float<T>(o[j]);
    }
  }
}

/// The pipelined scan: one direction (k = the block's direction with par_dirs) of `channels`
/// channels of one (batch, group[, chunk]); kLanes threads per channel split its states.
/// kCorrect: the chunked path's second pass over chunks c >= 1 - it starts from the chunk's
/// carried state H_in, decays it step by step (no input term: pass 1 had them all) and adds
/// C . (H_in * decay) * gate to the outputs pass 1 wrote, until the decayed state is negligible
/// for every channel of the block (kCorrectionExponent).
template <typename T, int kS, int kLanes, bool kCorrect>
__global__ void __launch_bounds__(128, 3) scan_pipe_kernel(Params p, int channels, int bpg) {
  constexpr int kT = kPipeSteps;
  constexpr int kNb = kS * kLanes;
  constexpr int kLdb = kNb + 4;
  constexpr int kLdo = kT + 1;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const PipeLayout t = carve_pipe<T, kNb>(smem_raw, channels);
  const BlockCoords bc = block_coords(p, bpg, kCorrect ? 1 : 0);

  const ThreadChannel tch = thread_channel<kLanes>(p, bc, channels);
  const int ch = tch.ch, lane = tch.lane, n_valid = tch.n_valid, d_first = tch.d_first, d = tch.d;
  const bool active = tch.active;
  const int t_begin = tch.t_begin, t_end = tch.t_end;
  const int k = bc.k;  // 0 unless par_dirs

  float a2[kS], h[kS], dskip, bias;
  load_channel<kS>(p, bc.b, k, d, lane, active, !kCorrect && bc.chunk == 0, a2, h, dskip, bias);
  float threshold = 0.0f;
  if constexpr (kCorrect) {
    const float hmax = carried_state<kS>(p, bc, k, d, lane, active, a2, h);
    if (!__syncthreads_or(hmax > 0.0f)) return;  // nothing carried into this chunk
    threshold = ldexpf(hmax, kCorrectionExponent);
  }

  const int gk = k * p.groups + bc.g;
  const T* bbase = static_cast<const T*>(p.B) + bc.b * p.B_sb + gk * p.B_sg;
  const T* cbase = static_cast<const T*>(p.C) + bc.b * p.C_sb + gk * p.C_sg;
  const T* ubase = static_cast<const T*>(p.u.ptr) + bc.b * p.u.sb + k * p.u.sk;
  const T* dbase = static_cast<const T*>(p.delta.ptr) + bc.b * p.delta.sb + k * p.delta.sk;
  const bool gate_z = p.pass_gates_z();
  const T* zbase = gate_z ? static_cast<const T*>(p.z.ptr) + bc.b * p.z.sb : nullptr;
  const SeqP& dst_s = p.pass_target();
  T* obase = pass_target_base<T>(p, bc.b, k);
  const float scale = p.pass_scale();
  const bool softplus = p.softplus;
  // The first staged tensor: u, or for the correction the outputs pass 1 wrote.
  const SeqP& first_s = kCorrect ? dst_s : p.u;
  const T* first_base = kCorrect ? obase : ubase;
  const int ku = row_kind(first_s), kd = row_kind(p.delta), kz = gate_z ? row_kind(p.z) : kChannelRows;
  const int bsn = static_cast<int>(p.B_sn), bsl = static_cast<int>(p.B_sl);
  const int csn = static_cast<int>(p.C_sn), csl = static_cast<int>(p.C_sl);

  // The spans are recomputed where needed (a few integer operations per tile) rather than kept
  // live across the recurrence, where registers are the limit.
  auto span_at = [&](int t0) { return tile_span(p, k, t0, min(kT, t_end - t0)); };
  auto issue = [&](int t0, int buf) {
    const TileSpan sp = span_at(t0);
    unsigned* r = t.raw + buf * t.raw_stride;
    issue_rows(r, first_base, first_s, ku, d_first, n_valid, channels, sp, p, k);
    issue_rows(r + t.raw_words, dbase, p.delta, kd, d_first, n_valid, channels, sp, p, k);
    if (gate_z) issue_rows(r + 2 * t.raw_words, zbase, p.z, kz, d_first, n_valid, channels, sp, p, k);
    if constexpr (!kCorrect) issue_bc_pipe<T, kNb>(t.bc_raw, bbase, bsn, bsl, p.n_state, sp, p, k);
    issue_bc_pipe<T, kNb>(t.bc_raw + kT * kNb, cbase, csn, csl, p.n_state, sp, p, k);
    cp_async_commit();
  };
  auto convert = [&](int t0, int buf) {
    const TileSpan sp = span_at(t0);
    float* f = t.bcf + buf * t.bcf_stride;
    if constexpr (!kCorrect) convert_bc_pipe<T, kNb>(f, t.bc_raw, bbase, bsn, bsl, p.n_state, sp, p, k);
    convert_bc_pipe<T, kNb>(f + kT * kLdb, t.bc_raw + kT * kNb, cbase, csn, csl, p.n_state, sp, p, k);
  };

  const int n_tiles = (t_end - t_begin + kT - 1) / kT;
  issue(t_begin, 0);
  cp_async_wait_committed();
  convert(t_begin, 0);
  __syncthreads();

  float dtsum = 0.0f;
  for (int i = 0; i < n_tiles; ++i) {
    const int buf = i & 1, t0 = t_begin + i * kT;
    const TileSpan sp = span_at(t0);
    const bool more = i + 1 < n_tiles;
    if (more) issue(t0 + kT, buf ^ 1);

    {
      const unsigned* r = t.raw + buf * t.raw_stride;
      const T* ru = reinterpret_cast<const T*>(r);
      const T* rd = reinterpret_cast<const T*>(r + t.raw_words);
      const T* rz = reinterpret_cast<const T*>(r + 2 * t.raw_words);
      const RowRef fu = row_ref(first_base, first_s, ku, d, ch, channels, sp);
      const RowRef fd = row_ref(dbase, p.delta, kd, d, ch, channels, sp);
      const RowRef fz = gate_z ? row_ref(zbase, p.z, kz, d, ch, channels, sp) : RowRef{0, 0};
      const float* bt = t.bcf + buf * t.bcf_stride + lane * kS;
      const float* ct = bt + kT * kLdb;
      float* ob = t.obuf + buf * t.obuf_stride + ch * kLdo;
      // Branch-free per step (selects, not branches, for the run-time options), so that the
      // unrolled steps form one basic block the compiler can interleave.
      auto pre = [&](int j, float& dt, float& dtu) {
        const float x = to_float(rd[fd.base + j * fd.step]) + bias;
        dt = select_f(softplus, softplus_f(x), x);
        dtu = kCorrect ? 0.0f : dt * to_float(ru[fu.base + j * fu.step]);
      };
      auto post = [&](int j, float y) {
        const float g = silu_f(to_float(rz[fz.base + j * fz.step]));  // z area unused (finite or not) when !gate_z
        const float gate = select_f(gate_z, scale * g, scale);
        const float first = to_float(ru[fu.base + j * fu.step]);  // u, or pass 1's output
        return kCorrect ? fmaf(y, gate, first) : fmaf(dskip, first, y) * gate;
      };
      auto recur = [&](int j, float dt, float dtu) {
        if constexpr (kCorrect)
          return lane_sum<kLanes>(decay_step<kS>(h, a2, ct + j * kLdb, dt));
        else
          return lane_sum<kLanes>(scan_step<kS>(h, a2, bt + j * kLdb, ct + j * kLdb, dt, dtu));
      };
      if (sp.nT == kT) {
        // Every step's softplus and dt*u first (independent chains whose latencies overlap),
        // then the recurrence back to back. (H100, bf16: in groups of 8 steps, or capped at 128
        // registers for a fourth block per SM, S1 took 0.131 / 0.140 ms against 0.119.)
        // 16-bit I/O with kLanes > 1: the lanes of a channel split the per-step scalar work
        // instead of each repeating it (lane r does the pre- and post-pass of steps
        // q * kLanes + r and shuffles dt, dt*u to the others). H100: S5 bf16 0.054 -> 0.050 ms;
        // with f32 the same split spilled (8 states x 2 lanes) and was slower (S1 f32 0.135 ->
        // 0.157, S5 f32 0.058 -> 0.088), so f32 lanes keep repeating it.
        constexpr bool kSplit = kLanes > 1 && sizeof(T) == 2;
        constexpr int kL = kSplit ? kLanes : 1;  // lanes sharing the scalar work
        constexpr int kQ = kT / kL;
        const int r0 = kSplit ? lane : 0;
        float dt[kQ], dtu[kQ], ys[kQ] = {};
#pragma unroll
        for (int q = 0; q < kQ; ++q) pre(q * kL + r0, dt[q], dtu[q]);
#pragma unroll
        for (int j = 0; j < kT; ++j) {
          const int q = j / kL, r = j % kL;
          float dtj = dt[q], dtuj = dtu[q];
          if constexpr (kSplit) {
            dtj = __shfl_sync(0xffffffffu, dtj, r, kLanes);
            if constexpr (!kCorrect) dtuj = __shfl_sync(0xffffffffu, dtuj, r, kLanes);
          }
          dtsum += dtj;
          const float y = recur(j, dtj, dtuj);
          if constexpr (kSplit) {
            ys[q] = select_f(r == lane, y, ys[q]);
          } else {
            const float o = post(j, y);
            if (lane == 0) ob[j] = o;
          }
        }
        if constexpr (kSplit) {
#pragma unroll
          for (int q = 0; q < kQ; ++q) ob[q * kLanes + lane] = post(q * kLanes + lane, ys[q]);
        }
      } else {
#pragma unroll 1
        for (int j = 0; j < sp.nT; ++j) {
          float dt, dtu;
          pre(j, dt, dtu);
          dtsum += dt;
          const float o = post(j, recur(j, dt, dtu));
          if (lane == 0) ob[j] = o;
        }
      }
    }

    cp_async_wait_committed();
    if (more) convert(t0 + kT, buf ^ 1);
    bool live = true;
    if constexpr (kCorrect) {
      float m = 0.0f;
#pragma unroll
      for (int s = 0; s < kS; ++s) m = fmaxf(m, fabsf(h[s]));
      live = __syncthreads_or(m > threshold);
    } else {
      __syncthreads();
    }
    store_pipe(t.obuf + buf * t.obuf_stride, obase, dst_s, d_first, n_valid, sp, p, k);
    if (!live) break;  // the next tile's copies have landed (waited for above): nothing in flight
  }

  if constexpr (!kCorrect)
    store_channel_end<kS>(p, bc, k, d, lane, active, h, dtsum);  // every lane summed all of its steps' dt
}

/// Whether the pipelined kernel takes this launch: one direction per block, variable B/C, and
/// u, delta (and z when this pass gates) stored in rows: L-contiguous rows need positions that
/// are ranges (no column-major cross-scan order); D-contiguous 16-bit rows must start on a
/// 4-byte word at every (batch, direction, position, channel block).
template <typename T>
inline bool pipe_supported(const Params& p, int channels, int n_b, std::size_t smem_limit) {
  if (!p.B_var || !p.C_var || (p.dirs > 1 && !p.par_dirs)) return false;
  if (pipe_smem_bytes<T>(channels, n_b) > smem_limit) return false;
  const bool gate_z = p.pass_gates_z();
  // Step rows are copied in 8-byte units from channel d_first on: every row start (batch,
  // direction, position, channel block) must be 8-byte aligned, and D a whole number of units
  // (no unit crosses the end of a row).
  constexpr int kUnit = RawGeom<T>::kUnitElems;
  auto ok = [&](const SeqP& s) {
    switch (row_kind(s)) {
      case kChannelRows: return p.mode != 3;
      case kStepRows:
        return reinterpret_cast<std::uintptr_t>(s.ptr) % 8 == 0 && s.sb % kUnit == 0 && s.sk % kUnit == 0 &&
               s.sl % kUnit == 0 && channels % kUnit == 0 && p.dim % kUnit == 0 &&
               (p.groups == 1 || p.cpg % kUnit == 0);
      default: return false;
    }
  };
  // B/C element offsets within a (batch, group) in 32 bits.
  const auto bc_span = [&](std::int64_t sn, std::int64_t sl) {
    return sn >= 0 && sl >= 0 && (p.n_state - 1) * sn + (static_cast<std::int64_t>(p.seqlen) - 1) * sl < (1ll << 31);
  };
  // The chunked path's correction reads back the outputs of pass 1 as rows.
  const bool target_ok = p.n_chunks == 1 || ok(p.pass_target());
  return ok(p.u) && ok(p.delta) && (!gate_z || ok(p.z)) && target_ok && bc_span(p.B_sn, p.B_sl) &&
         bc_span(p.C_sn, p.C_sl);
}

}  // namespace mcv::kernels::scan::cuda
