#pragma once
// The pipelined selective-scan kernel: the default for every one-direction-per-block scan whose
// per-step tensors (u, delta, z) are stored in rows (channel-major with L contiguous, or
// token-major with D contiguous); scan_kernels.cuh keeps the older tiled kernel for the rest
// (gathers, channel-major column-order cross-scans, serial directions).
//
// Why a second kernel: the tiled kernel ran, per tile, loads -> wait -> pre-pass -> recurrence
// -> store with three block barriers and nothing overlapping the loads, and spent ~260
// instructions per warp-step against ~100 of the recurrence itself (ncu: issue 40 % busy at 12
// warps/SM, latency-bound). Here, per tile of kPipeSteps steps (twice that with step segments):
//  - the next tile's u/delta/z are copied with cp.async into a second buffer while this tile
//    computes. Channel rows (L contiguous): the aligned 16-byte units (8-byte for f32 with
//    fewer than 4 states: RawGeom) holding each channel's positions, at any alignment,
//    consecutive threads on consecutive units; the consumer indexes the elements in place
//    (16-bit rows on one lane: two steps per 32-bit load). Step rows (D contiguous): 8-byte
//    units of the block's channels per step;
//  - B/C are copied two tiles ahead (whole 16-byte units of each state's row when L is
//    contiguous), so the ones of the next tile have landed before this tile starts and every
//    thread can help turn them into f32 (a second f32 buffer) without a barrier of its own;
//  - each thread runs the whole step chain for its own channel from the raw rows: softplus and
//    dt*u for the tile's steps into registers first (independent, so their latencies overlap),
//    the recurrence, then the skip/gate epilogue, writing outputs (I/O type) to a staging row;
//  - ONE block barrier per tile. Channel-row outputs are then stored by each channel's thread in
//    whole 16-byte units (the unit the next tile completes is carried over); step-row outputs
//    are stored cooperatively, coalesced.
// (H100, S1 bf16: with cooperative 8-byte row copies, word-by-word B/C and element stores, these
// took ~75 of 200 instructions per warp-step and most of the stall samples; now ~51 of 178.
// docs/notes/selective_scan.md has the measurements and the variants that lost.)
// Where every channel row is 16-byte aligned (kReadTma: L a multiple of 8 for 16-bit I/O, 4
// for f32) the u/delta/z tiles instead arrive as one TMA box per tensor (scan_tma.cuh), issued
// by one thread onto an mbarrier, and the output tile leaves as one box: no copy or store loops
// on the compute threads (H100: S3 bf16 1.355 -> 1.153 ms, S4 bf16 0.715 -> 0.545, S6 bf16
// 4.30 -> 3.76, S3 f32 1.660 -> 1.371, S6 f32 4.98 -> 4.21). Token-major 16-bit rows take
// [steps x channels] boxes the same way (kReadStepTma), and a bidirectional launch on them adds
// both directions into the output by reduce-add boxes instead of a merge pass (Params::
// reduce_out; H100, Vim's layout bf16: 0.2198 -> 0.1728 ms).

#include <type_traits>

#include "selective_scan/chunking.h"
#include "selective_scan/cuda/scan_device.cuh"
#include "selective_scan/cuda/scan_tma.cuh"

namespace mcv::kernels::scan::cuda {

/// Steps per tile of the pipelined kernel. (8-step tiles, measured on an H200: every shape
/// slower, S4 bf16 0.62 -> 1.03 ms, S5 0.048 -> 0.062: the per-tile work doubles per step.)
constexpr int kPipeSteps = 16;

/// Step segments (kSeg > 1; one state per channel, one lane): the kSeg threads of a channel
/// take consecutive segments of kPipeSteps / kSeg steps of every kPipeSteps steps of a tile.
/// Each scans its segment from h = 0 and keeps the product P of its decays; the segments' maps
/// h -> P h + g are then chained over the channel's threads by a shuffle scan that starts from
/// the tile's carried state, and each output gets its C * P(step) * h_in term. Three more
/// instructions per step (P, C * P, the correction) and a shuffle scan per kPipeSteps buy kSeg
/// times the threads, for launches that are one wave of three warps per scheduler and wait on
/// latency. launch.cu takes them for f32 (H100, S4: the 8-byte row copies of one thread per
/// channel left 0.27 issued per cycle, 37 % long-scoreboard stalls; 1.556 -> 1.151 ms); for
/// 16-bit I/O they measured slower (S4 bf16 0.711 -> 0.767 ms: issue 0.52 -> 0.61, but 22 %
/// more instructions per channel-step), so there they are a forced option (MCV_SCAN_SEGMENTS=2).
///
/// Blocks of 128 threads per SM the kernel is built for (its register budget): six with 16-bit
/// segments (80 registers: the one wave of S4 needs 5.8), otherwise kScanBlocksPerSm (chunking.h,
/// which derives the L-chunk count from it): three, 168 registers (f32 segments' 32-step rows
/// take 62 KB of shared memory per block, so three is all an SM holds).
template <typename T, int kSeg>
constexpr int pipe_min_blocks() {
  return kSeg > 1 && sizeof(T) == 2 ? 6 : kScanBlocksPerSm;
}
/// Steps per tile: with segments, two per thread's group of kPipeSteps / kSeg steps, so that
/// the per-tile work of each thread (copy loops, row offsets, stores) is spread over as many of
/// its steps as without segments.
template <int kSeg>
constexpr int pipe_tile_steps() {
  return kSeg > 1 ? 2 * kPipeSteps : kPipeSteps;
}

/// Threads with 2 to this many states read the skip/gate operands (u, z) in the pre-pass and
/// keep u and the gate in registers for the epilogue; with 16 states the 32 extra live
/// registers cost the recurrence more than the re-reads save. H200, ms, against re-reading in
/// the epilogue: bf16 S5 (4 states x 2 lanes) 0.0480 -> 0.0455, f32 (8 states x 2 lanes) S1
/// 0.1280 -> 0.1251, S2 0.2448 -> 0.2407, S3 1.738 -> 1.702, S6 5.24 -> 5.12; with 16 states
/// bf16 S1 0.1028 -> 0.1036, S6 4.41 -> 4.51; with one state S4 0.6163 -> 0.6187 (bf16), 1.368
/// -> 1.371 (f32). On the H100 only S5 bf16 moved (0.0485 -> 0.0456; f32 within 1 %). A
/// compile-time knob for measurements (0 turns it off).
#ifndef MCV_SCAN_EARLY_EPILOGUE_MAX_STATES
#define MCV_SCAN_EARLY_EPILOGUE_MAX_STATES 8
#endif

/// How a per-step tensor is staged: rows along L per channel (L contiguous), rows along D per
/// step (D contiguous), or neither (the pipelined kernel does not take it).
enum RowKind : int { kChannelRows = 0, kStepRows = 1, kNoRows = 2 };
__host__ __device__ inline int row_kind(const SeqP& s) {
  return s.sl == 1 ? kChannelRows : s.sd == 1 ? kStepRows : kNoRows;
}

/// A tile's kT elements of a row (L contiguous) at any alignment, copied as aligned kBytes
/// units: kRowUnits of them (kRowElems elements, kRowWords words) always suffice.
template <typename T, int kBytes, int kT>
struct UnitGeom {
  static constexpr int kUnitElems = kBytes / static_cast<int>(sizeof(T));
  static constexpr int kRowUnits = kT / kUnitElems + 1;
  static constexpr int kRowElems = kRowUnits * kUnitElems;
  static constexpr int kRowWords = kRowUnits * kBytes / 4;
};
/// B/C state rows and the output staging rows: 16-byte units (16-byte stores out).
template <typename T, int kT>
using Unit16 = UnitGeom<T, 16, kT>;

/// Shared-memory geometry of one staged per-step tensor, in 32-bit words (kNb: states per
/// channel of the kernel, kS * kLanes; kT steps per tile).
template <typename T, int kNb, int kT>
struct RawGeom {
  static constexpr int kE = 4 / static_cast<int>(sizeof(T));  ///< elements per word
  /// Channel rows: 16-byte units (3 per 16-step row for 16-bit elements, read in word pairs;
  /// 5 for f32), except f32 with fewer than 4 states per channel: 8-byte units (9 per row), whose
  /// 18-word row stride keeps the per-step loads at most 2-way bank-conflicted where 16-byte
  /// units (20 words) make them 4-way. Only the small recurrence of few states feels the
  /// conflicts more than the copies saved (H100, f32, 16- against 8-byte units after the
  /// copies became .cg: S1 0.1387 -> 0.1336 ms, S3 1.826 -> 1.740, S6 5.485 -> 5.252, S5
  /// 0.0570 -> 0.0553, but S4 (N = 1) 1.555 -> 1.767).
  static constexpr int kUnitBytes = sizeof(T) == 4 && kNb < 4 ? 8 : 16;
  using Row = UnitGeom<T, kUnitBytes, kT>;
  static constexpr int kRowWords = Row::kRowWords;
  /// Step rows: aligned 8-byte units from the block's first channel on.
  static constexpr int kStepUnitElems = 8 / static_cast<int>(sizeof(T));
  __host__ __device__ static int step_row_units(int channels) {
    return (channels + kStepUnitElems - 1) / kStepUnitElems;
  }
  __host__ __device__ static int step_row_words(int channels) { return 2 * step_row_units(channels); }
  __host__ __device__ static int words(int channels) {
    const int a = channels * kRowWords, b = kT * step_row_words(channels);
    return ((a > b ? a : b) + 3) & ~3;
  }
};

/// Words of the B/C copy area: word slots of the element-wise copies, or 16-byte units of the
/// kNb state rows of B and C.
template <typename T, int kNb, int kT>
__host__ __device__ constexpr int bc_raw_words() {
  const int words = 2 * kT * kNb, rows = 2 * kNb * Unit16<T, kT>::kRowWords;
  return ((words > rows ? words : rows) + 3) & ~3;
}

/// Elements (I/O type) of the output staging: one Unit16 row per channel (channel-row
/// targets; two buffers of them with coop_rows) and, where a pass may store step rows
/// (step_out: pipe_step_out), two buffers of [channel][kT + 1] (the cooperative step-row store).
template <typename T, int kT>
__host__ __device__ inline int obuf_elems(int channels, bool coop_rows, bool step_out) {
  const int own = (coop_rows ? 2 : 1) * channels * Unit16<T, kT>::kRowElems;
  const int steps = step_out ? 2 * channels * (kT + 1) : 0;
  return own > steps ? own : steps;
}

/// The row width of the f32 B/C tiles: 4 floats of padding from 4 states on (bank spread, and
/// 16-byte rows for the LDS.128 of scan_step); none for one state (every thread of a block reads
/// the same word of a step: broadcast), which keeps the 32-step tiles of step segments within
/// six blocks per SM.
template <int kNb>
__host__ __device__ constexpr int bc_ld() {
  return kNb >= 4 ? kNb + 4 : kNb;
}

/// Words of the per-row offsets (RowUnits::m) of the B/C state rows, per B/C copy buffer.
template <int kNb>
__host__ __device__ constexpr int bc_m_words() {
  return (2 * kNb + 3) & ~3;
}

/// Words of one staged tensor's TMA box: [channels][kT] elements, no padding (scan_tma.cuh).
template <typename T, int kT>
__host__ __device__ constexpr int tma_area_words(int channels) {
  return channels * kT * static_cast<int>(sizeof(T)) / 4;
}

/// Dynamic shared memory of the pipelined kernel: two buffers of raw u/delta/z, two B/C copy
/// buffers with their row offsets, two f32 B/C tiles and the output staging. With TMA boxes
/// (`tma`): the raw buffers and two staging buffers as dense boxes from a 1024-byte boundary
/// (the slack to reach it included), and the raw buffers' two mbarriers.
template <typename T, int kNb, int kT>
inline std::size_t pipe_smem_bytes(int channels, bool coop_rows, bool step_out, bool tma = false) {
  const std::size_t bc = 2ull * (bc_raw_words<T, kNb, kT>() + bc_m_words<kNb>()) + 4ull * kT * bc_ld<kNb>();
  if (tma) return kTmaAlign + (8ull * tma_area_words<T, kT>(channels) + bc) * sizeof(float) + 16;
  const std::size_t raw = 6ull * RawGeom<T, kNb, kT>::words(channels);
  const std::size_t obuf =
      (static_cast<std::size_t>(obuf_elems<T, kT>(channels, coop_rows, step_out)) * sizeof(T) + 15) / 16 * 4;
  return (raw + bc + obuf) * sizeof(float);
}

/// Warp pipelines (kReadWarpTma): each warp of a block moves and scans its own channels (32 /
/// kLanes: 32 of 16-bit one-lane kernels, 16 of f32's two lanes) as if it were a block - its own
/// u/delta/z boxes of those rows and B/C boxes, its own mbarriers, its own f32 B/C tile and output
/// staging, its own box stores - so that no barrier couples the warps of a block. Why: with one
/// box per block, the tile-end __syncthreads (B/C converted by all threads, buffers released, the
/// staging complete before the block's store) was 15 % of the stall samples of S3 bf16 (H100,
/// ncu), and blocks of 2 warps instead of 3-4 already measured S3 4 % faster. Per warp, from a
/// 1024-byte boundary (bytes): two stages of [u | delta | z | B | C] boxes, two output staging
/// boxes, the f32 B/C tile, the two stages' mbarriers.
template <typename T, int kNb, int kT, int kLanes>
struct WarpTmaGeom {
  static constexpr int kRows = 32 / kLanes;                               ///< the warp's channels
  static constexpr int kBox = kRows * kT * static_cast<int>(sizeof(T));  ///< one stream's rows
  static constexpr int kBcBox = kNb * kT * static_cast<int>(sizeof(T));  ///< B or C: kNb state rows
  static constexpr int kStage = 3 * kBox + 2 * kBcBox;
  static constexpr int kObuf = 2 * kStage;
  static constexpr int kBcf = kObuf + 2 * kBox;
  static constexpr int kBar = kBcf + 2 * kT * bc_ld<kNb>() * 4;
  static constexpr int kBytes = (kBar + 16 + kTmaAlign - 1) / kTmaAlign * kTmaAlign;
};
template <typename T, int kNb, int kT, int kLanes>
inline std::size_t pipe_warp_smem_bytes(int channels) {
  using G = WarpTmaGeom<T, kNb, kT, kLanes>;
  return kTmaAlign + static_cast<std::size_t>(channels / G::kRows) * G::kBytes;
}

/// Buffer b of each double-buffered area is base + b * stride, computed from the shared array
/// (not picked from an array of pointers) so that the compiler keeps shared-memory loads.
struct PipeLayout {
  unsigned* raw;     ///< per buffer (stride raw_stride): u, delta, z areas of raw_words each
  unsigned* bc_raw;  ///< per buffer (stride bc_raw_words + bc_m_words): B/C copies, then the
                     ///< state rows' offsets m (int)
  float* bcf;        ///< per buffer (stride bcf_stride): [B | C][kT][bc_ld] f32
  void* obuf;        ///< output staging, I/O type (obuf_elems; TMA: two [channels][kT] boxes)
  std::uint64_t* bar;  ///< TMA: the raw buffers' mbarriers
  int raw_words, raw_stride, bcf_stride;
};

/// Warp pipelines: warp w's areas (WarpTmaGeom) in the layout's terms - raw stages with the B/C
/// boxes after z (raw + 3 raw_words), a single f32 B/C tile (bcf_stride 0), two staging boxes.
template <typename T, int kNb, int kT, int kLanes>
__device__ __forceinline__ PipeLayout carve_warp_pipe(unsigned char* smem, int warp) {
  using G = WarpTmaGeom<T, kNb, kT, kLanes>;
  static_assert(G::kBox % kTmaAlign == 0 && G::kBcBox % 128 == 0, "boxes keep the swizzle's and TMA's alignment");
  const unsigned pad = (kTmaAlign - (smem_u32(smem) & (kTmaAlign - 1))) & (kTmaAlign - 1);
  unsigned char* w = smem + pad + warp * G::kBytes;
  PipeLayout t;
  t.raw = reinterpret_cast<unsigned*>(w);
  t.raw_words = G::kBox / 4;
  t.raw_stride = G::kStage / 4;
  t.bc_raw = nullptr;
  t.obuf = w + G::kObuf;
  t.bcf = reinterpret_cast<float*>(w + G::kBcf);
  t.bcf_stride = 0;
  t.bar = reinterpret_cast<std::uint64_t*>(w + G::kBar);
  return t;
}

template <typename T, int kNb, int kT, bool kTma>
__device__ __forceinline__ PipeLayout carve_pipe(unsigned char* smem, int channels) {
  PipeLayout t;
  // TMA: the raw boxes, then the staging boxes, from a 1024-byte boundary (all multiples of
  // 1024 bytes: channels % 32 == 0).
  const unsigned pad = kTma ? (kTmaAlign - (smem_u32(smem) & (kTmaAlign - 1))) & (kTmaAlign - 1) : 0;
  unsigned* w = reinterpret_cast<unsigned*>(smem + pad);
  t.raw_words = kTma ? tma_area_words<T, kT>(channels) : RawGeom<T, kNb, kT>::words(channels);
  t.raw_stride = 3 * t.raw_words;
  t.raw = w;
  w += 2 * t.raw_stride;
  if constexpr (kTma) {
    t.obuf = w;
    w += 2 * t.raw_words;
  }
  t.bc_raw = w;
  w += 2 * (bc_raw_words<T, kNb, kT>() + bc_m_words<kNb>());
  t.bcf_stride = 2 * kT * bc_ld<kNb>();  // a multiple of 4 words: LDS.128 stays aligned
  t.bcf = reinterpret_cast<float*>(w);
  w += 2 * t.bcf_stride;
  if constexpr (kTma)
    t.bar = reinterpret_cast<std::uint64_t*>(w);
  else
    t.obuf = w;
  return t;
}

/// The steps [t0, t0 + nT) of direction k: when the direction visits positions in order
/// (everything but cross2d's column-major orders, unless staged) they are the range [p_lo, p_lo
/// + nT), walked backwards when rev.
struct TileSpan {
  int t0, nT, p_lo;
  bool rev, affine;
};
__device__ __forceinline__ TileSpan tile_span(const Params& p, int k, int t0, int nT) {
  TileSpan s;
  s.t0 = t0;
  s.nT = nT;
  s.rev = dir_flipped(p.mode, k);
  s.affine = !rows_transposed(p, k);
  s.p_lo = s.rev ? p.seqlen - t0 - nT : t0;
  return s;
}

/// Calls fn(j, position) for the tile's steps j = j0, j0 + jstep, ... < nT: positions in order (or
/// reversed) for affine spans, walked by ColWalk along column orders.
template <typename Fn>
__device__ __forceinline__ void for_tile_steps(const TileSpan& sp, const Params& p, int k, int j0, int jstep, Fn&& fn) {
  if (sp.affine) {
    const i64 p0 = sp.rev ? sp.p_lo + sp.nT - 1 : sp.p_lo, dp = sp.rev ? -1 : 1;
    for (int j = j0; j < sp.nT; j += jstep) fn(j, p0 + j * dp);
  } else {
    ColWalk cw(p, k, sp.t0 + j0);
    for (int j = j0; j < sp.nT; j += jstep, cw.advance(jstep)) fn(j, cw.pos());
  }
}

__device__ __forceinline__ void cp_async8(unsigned* dst, std::uintptr_t src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(smem_u32(dst)), "l"(src) : "memory");
}
/// 16-byte copies bypass L1 (.cg): the data is read once, from shared memory, and L1 shares its
/// storage and data path with shared memory. H100 against .ca: S1 bf16 0.1139 -> 0.1065 ms, S3
/// 1.380 -> 1.336, S4 0.768 -> 0.748, S6 4.50 -> 4.405 (two runs each; adding an L2::256B
/// prefetch hint lost half of that and slowed S5). 8-byte copies have no .cg form.
__device__ __forceinline__ void cp_async16(unsigned* dst, std::uintptr_t src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_u32(dst)), "l"(src) : "memory");
}

/// The aligned kBytes units holding positions [p_lo, p_lo + nT) of a row (element 0 at `row`,
/// L contiguous): the first unit's address, the element offset m of p_lo in it, and the index
/// of the last unit.
struct RowUnits {
  std::uintptr_t a0;
  int m, last;
};
template <int kBytes, typename T>
__device__ __forceinline__ RowUnits row_units(const T* row, int p_lo, int nT) {
  const auto first = reinterpret_cast<std::uintptr_t>(row + p_lo);
  RowUnits r;
  r.a0 = first & ~static_cast<std::uintptr_t>(kBytes - 1);
  r.m = static_cast<int>((first & (kBytes - 1u)) / sizeof(T));
  r.last = static_cast<int>((r.m + nT - 1) / (kBytes / static_cast<int>(sizeof(T))));
  return r;
}

template <int kBytes>
__device__ __forceinline__ void cp_async_unit(unsigned* dst, std::uintptr_t src) {
  if constexpr (kBytes == 16) cp_async16(dst, src);
  else cp_async8(dst, src);
}

/// Whether a block's step rows (D contiguous) move as 16-byte units: every row start 16-byte
/// aligned and the block's channels whole units (its staged rows, [step][channels], then start
/// 16-byte aligned as well). Else 8-byte units (8-byte alignment: pipe_supported).
template <typename T>
__device__ __forceinline__ bool step_rows_wide(std::uintptr_t first, i64 sl, int channels, int n_valid) {
  constexpr int kE = 16 / static_cast<int>(sizeof(T));
  return (first & 15u) == 0 && ((sl * static_cast<i64>(sizeof(T))) & 15) == 0 && channels % kE == 0 && n_valid > 0 &&
         n_valid % kE == 0;
}

/// Whether kernels of kNb states per thread's channel move step rows by 16-byte units and
/// ColWalk (issue_rows, store_step_rows): below 16. The 16-state kernels (168 registers) lost with
/// them (H100, same machine: token-major cross2d N 16 f32 2.464 -> 2.570 ms, bf16 1.950 -> 1.959;
/// Vim's model layout f32, whose step-box kernel only compiled the column-order store in, 0.209 ->
/// 0.227) where one state gained (VMamba's layout bf16 0.924 -> 0.795 ms, f32 1.204 -> 1.148).
template <int kNb>
constexpr bool step_rows_lean() {
  return kNb < 16;
}

/// Starts the copies of one per-step tensor's tile into `dst`. Channel rows: the aligned units
/// (RawGeom::kUnitBytes) holding the tile's positions of channel d_first + c go to row c
/// (kRowWords words). Step rows: row j holds the units of channels d_first.. at the step's
/// position (16-byte units where step_rows_wide, else 8-byte: aligned, checked by
/// pipe_supported); each thread keeps one unit column and walks rows (ColWalk along column
/// orders; both below 16 states per channel: step_rows_lean).
template <typename T, int kNb, int kT>
__device__ __forceinline__ void issue_rows(unsigned* dst, const T* base, const SeqP& s, int kind,
                                           const ThreadChannel& tc, int channels, const TileSpan& sp, const Params& p,
                                           int k) {
  using G = RawGeom<T, kNb, kT>;
  if (kind == kChannelRows) {
    // Consecutive threads take consecutive units of a row (coalesced); row c of the area holds
    // channel d_first + c.
    using R = typename G::Row;
    constexpr unsigned kB = G::kUnitBytes;
    const int rstep = blockDim.x / R::kRowUnits;
    const int w = threadIdx.x % R::kRowUnits, c0 = threadIdx.x / R::kRowUnits;
    if (c0 >= rstep) return;
    const unsigned span = static_cast<unsigned>(sp.nT) * sizeof(T), wb = kB * w;
    const T* a = base + static_cast<i64>(tc.d_first + c0) * s.sd + sp.p_lo;
    const i64 a_step = static_cast<i64>(rstep) * s.sd;
    unsigned* d = dst + c0 * R::kRowWords + (kB / 4) * w;
    for (int c = c0; c < tc.n_valid; c += rstep, a += a_step, d += rstep * R::kRowWords) {
      const auto first = reinterpret_cast<std::uintptr_t>(a);
      const unsigned m = static_cast<unsigned>(first) & (kB - 1);
      if (wb < m + span) cp_async_unit<kB>(d, first - m + wb);  // the unit holds wanted elements
    }
  } else {
    if constexpr (!step_rows_lean<kNb>()) {
      // 8-byte units, dir_pos per step: the code the 16-state kernels were measured with.
      const int units = G::step_row_units(tc.n_valid), ld = G::step_row_words(channels);
      const int jstep = blockDim.x / units;
      const int u = threadIdx.x % units, j0 = threadIdx.x / units;
      if (j0 >= jstep) return;
      const std::uintptr_t first = reinterpret_cast<std::uintptr_t>(base + tc.d_first) + 8u * u;
      constexpr i64 kBytes = sizeof(T);
      if (sp.affine) {
        const i64 p0 = sp.rev ? sp.p_lo + sp.nT - 1 : sp.p_lo, row = (sp.rev ? -s.sl : s.sl) * kBytes;
        for (int j = j0; j < sp.nT; j += jstep)
          cp_async8(dst + j * ld + 2 * u, first + static_cast<std::uintptr_t>(p0 * s.sl * kBytes + j * row));
      } else {
        for (int j = j0; j < sp.nT; j += jstep)
          cp_async8(dst + j * ld + 2 * u, first + static_cast<std::uintptr_t>(dir_pos(p, k, sp.t0 + j) * s.sl * kBytes));
      }
      return;
    }
    const std::uintptr_t first0 = reinterpret_cast<std::uintptr_t>(base + tc.d_first);
    const bool wide = step_rows_wide<T>(first0, s.sl, channels, tc.n_valid);
    const int ue = wide ? 16 / static_cast<int>(sizeof(T)) : G::kStepUnitElems;  // elements per unit
    const int units = (tc.n_valid + ue - 1) / ue, ld = G::step_row_words(channels);
    const int jstep = blockDim.x / units;
    const int u = threadIdx.x % units, j0 = threadIdx.x / units;
    if (j0 >= jstep) return;
    const std::uintptr_t first = first0 + static_cast<std::uintptr_t>(ue * sizeof(T)) * u;
    unsigned* d = dst + u * (ue * static_cast<int>(sizeof(T)) / 4);
    const i64 row_bytes = s.sl * static_cast<i64>(sizeof(T));
    auto copy = [&](int j, i64 pos) {
      const std::uintptr_t src = first + static_cast<std::uintptr_t>(pos * row_bytes);
      if (wide)
        cp_async16(d + j * ld, src);
      else
        cp_async8(d + j * ld, src);
    };
    for_tile_steps(sp, p, k, j0, jstep, copy);
  }
}

/// Where this thread's channel finds step j of a staged tensor: element base + j * step of the
/// raw area viewed as T.
struct RowRef {
  int base, step;
  __device__ __forceinline__ int at(int j) const { return base + j * step; }
  /// The reference whose step 0 is this one's step j0.
  __device__ __forceinline__ RowRef from(int j0) const { return {at(j0), step}; }
};
template <typename T, int kNb, int kT>
__device__ __forceinline__ RowRef row_ref(const T* tensor_base, const SeqP& s, int kind, const ThreadChannel& tc,
                                          int channels, const TileSpan& sp) {
  using G = RawGeom<T, kNb, kT>;
  RowRef r;
  if (kind == kChannelRows) {
    const int m = row_units<G::kUnitBytes>(tensor_base + static_cast<i64>(tc.d) * s.sd, sp.p_lo, sp.nT).m;
    r.base = tc.ch * G::Row::kRowElems + m + (sp.rev ? sp.nT - 1 : 0);
    r.step = sp.rev ? -1 : 1;
  } else {
    r.base = tc.ch;
    r.step = G::step_row_words(channels) * G::kE;
  }
  return r;
}

/// Where this thread's channel puts step j of a channel-row output in its staging row
/// (store_own_row, store_rows_coop; `row0`: the first element of the staging buffer's row 0):
/// element base + j * step.
template <typename T, int kT>
__device__ __forceinline__ RowRef stage_ref(const T* target_base, const SeqP& s, const ThreadChannel& tc,
                                            const TileSpan& sp, int row0) {
  const int m = row_units<16>(target_base + static_cast<i64>(tc.d) * s.sd, sp.p_lo, sp.nT).m;
  return {row0 + tc.ch * Unit16<T, kT>::kRowElems + m + (sp.rev ? sp.nT - 1 : 0), sp.rev ? -1 : 1};
}

/// Stores this tile's channel-row outputs (staging rows from `stage`, whole 16-byte units:
/// pipe_coop_rows) with consecutive threads on consecutive units of a row, so the units of one
/// 32-byte sector leave in one request (a thread per row wrote half-sectors: twice the L2
/// write requests).
template <typename T, int kT>
__device__ __forceinline__ void store_rows_coop(const T* stage, T* target_base, const SeqP& s, int d_first,
                                                int n_valid, const TileSpan& sp) {
  constexpr int kU = Unit16<T, kT>::kUnitElems;
  const int units = sp.nT / kU;
  for (int i = threadIdx.x; i < n_valid * units; i += blockDim.x) {
    const int c = i / units, w = i - c * units;
    const uint4 v = *reinterpret_cast<const uint4*>(stage + c * Unit16<T, kT>::kRowElems + w * kU);
    *reinterpret_cast<uint4*>(target_base + static_cast<i64>(d_first + c) * s.sd + sp.p_lo + w * kU) = v;
  }
}

/// Step j of a staged tensor, element by element: raw[r.at(j)] (Ref: RowRef, or SwzRef for the
/// TMA boxes).
template <typename T, typename Ref = RowRef>
struct ElemReader {
  const T* raw;
  Ref r;
  __device__ __forceinline__ float at(int j) const { return to_float(raw[r.at(j)]); }
  /// The reader whose step 0 is this one's step j0.
  __device__ __forceinline__ ElemReader from(int j0) const { return {raw, r.from(j0)}; }
};

/// The byte_perm selectors that take one 16-bit half of a word to where it becomes a value:
/// bf16 into the high half (an f32's bits), f16 into the low half (converted after).
template <typename T>
struct HalfSelect {
  static constexpr bool kBf = std::is_same_v<T, __nv_bfloat16>;
  static constexpr unsigned kLo = kBf ? 0x1044u : 0x4410u, kHi = kBf ? 0x3244u : 0x4432u;
};
/// The value of a 16-bit element placed by a HalfSelect selector.
template <typename T>
__device__ __forceinline__ float half_value(unsigned bits) {
  if constexpr (std::is_same_v<T, __half>)
    return __half2float(__ushort_as_half(static_cast<unsigned short>(bits)));
  else
    return __uint_as_float(bits);
}

/// Step j of a 16-bit channel row, two steps per 32-bit load: with j unrolled, the words
/// W_q = w[wbase + q * wstep] (q = j / 2, in step order) are loaded once each, pair q =
/// byte_perm(W_q, W_q+1, sel_pair) holds steps 2q and 2q + 1 whatever the row's alignment and
/// direction, and one more byte_perm moves step j's half into place. Half the shared-memory
/// loads of ElemReader: rows of 16-byte units are read 4-way bank-conflicted (every thread
/// reads the same word of its unit), so the loads, not the byte_perms, are what cost.
template <typename T>
struct PairReader {
  const unsigned* w;
  int wbase, wstep;
  unsigned sel_pair, sel_even, sel_odd;
  __device__ __forceinline__ float at(int j) const {
    const int q = j >> 1;
    const unsigned pair = __byte_perm(w[wbase + q * wstep], w[wbase + (q + 1) * wstep], sel_pair);
    return half_value<T>(__byte_perm(pair, 0u, (j & 1) ? sel_odd : sel_even));
  }
  /// The reader whose step 0 is this one's step j0 (even: pairs stay pairs).
  __device__ __forceinline__ PairReader from(int j0) const {
    return {w, wbase + (j0 >> 1) * wstep, wstep, sel_pair, sel_even, sel_odd};
  }
};

/// The PairReader of a full tile's channel row, from the row's RowRef (row_ref: its base is
/// ch * kRowElems + m, plus nT - 1 when reversed).
template <typename T, int kT>
__device__ __forceinline__ PairReader<T> pair_reader(const unsigned* area, const RowRef& ref, const ThreadChannel& tc,
                                                     const TileSpan& sp) {
  static_assert(sizeof(T) == 2, "pairs of 16-bit elements");
  const int m = ref.base - tc.ch * Unit16<T, kT>::kRowElems - (sp.rev ? sp.nT - 1 : 0);
  constexpr unsigned kLo = HalfSelect<T>::kLo, kHi = HalfSelect<T>::kHi;
  const unsigned sel_m = (m & 1) ? 0x5432u : 0x3210u;  // an odd offset straddles two words
  const int rw = tc.ch * Unit16<T, kT>::kRowWords + (m >> 1);  // 16-bit T: 16-byte units
  PairReader<T> r;
  r.w = area;
  r.wbase = sp.rev ? rw + kT / 2 : rw;
  r.wstep = sp.rev ? -1 : 1;
  r.sel_pair = sp.rev ? sel_m ^ 0x4444u : sel_m;  // reversed: the words swap places
  r.sel_even = sp.rev ? kHi : kLo;
  r.sel_odd = sp.rev ? kLo : kHi;
  return r;
}

/// Where a thread's channel finds step j of a TMA box (scan_tma.cuh): element j ^ x of its row,
/// x = kT - 1 when the tile is reversed (a reversed tile's box ends at its first step), XOR the
/// swizzle's permutation of the row's 16-byte chunks - one mask per thread, folded into the
/// row's first element.
template <typename T, int kT>
__device__ __forceinline__ int tma_elem_base(int ch, bool rev) {
  constexpr int kRowBytes = kT * static_cast<int>(sizeof(T));
  static_assert(tma_row_bytes_ok(kRowBytes), "TMA rows are one swizzle span");
  const int swizzle = tma_swizzle_chunks(ch, kRowBytes) * (16 / static_cast<int>(sizeof(T)));
  return (ch * kT) ^ ((rev ? kT - 1 : 0) ^ swizzle);
}
/// Step j of a TMA box row (reader input, ElemReader<T, SwzRef>) or of its output staging:
/// element base ^ j (base: tma_elem_base, plus the buffer's first element for the staging).
struct SwzRef {
  int base;
  __device__ __forceinline__ int at(int j) const { return base ^ j; }
};
/// Step j of a TMA box row, two steps per 32-bit load (steps 2q and 2q + 1 share word q ^ x):
/// the 16-byte alignment of the box rows leaves no pair straddling two words (PairReader).
template <typename T>
struct SwzPairReader {
  static_assert(sizeof(T) == 2, "pairs of 16-bit elements");
  const unsigned* w;
  int base;  ///< tma_elem_base / 2
  unsigned sel_even, sel_odd;
  __device__ __forceinline__ SwzPairReader(const unsigned* area, int elem_base, bool rev)
      : w(area),
        base(elem_base >> 1),
        sel_even(rev ? HalfSelect<T>::kHi : HalfSelect<T>::kLo),
        sel_odd(rev ? HalfSelect<T>::kLo : HalfSelect<T>::kHi) {}
  __device__ __forceinline__ float at(int j) const {
    return half_value<T>(__byte_perm(w[base ^ (j >> 1)], 0u, (j & 1) ? sel_odd : sel_even));
  }
};

/// Calls fn(i, j, n, ok, off) for this thread's B (or C) elements of the tile: slot i <
/// kT * kNb, step j, state n (consecutive threads on the tensor's contiguous axis), ok
/// when j < nT and n < n_state, off the element offset (32 bits: pipe_supported). issue_bc_pipe
/// and convert_bc_pipe visit the same slots, so each thread converts exactly the words it
/// copied. The position map is chosen once per call, not per element.
template <int kNb, int kT, typename Fn>
__device__ __forceinline__ void for_each_bc(int sn, int sl, int n_state, const TileSpan& sp, const Params& p, int k,
                                            Fn&& fn) {
  constexpr int kPer = kT * kNb;
  const bool n_fast = sn == 1;
  auto coords = [&](int i, int& j, int& n) {
    j = n_fast ? i / kNb : i % kT;
    n = n_fast ? i % kNb : i / kT;
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
template <typename T, int kNb, int kT>
__device__ __forceinline__ void issue_bc_pipe(unsigned* raw, const T* base, int sn, int sl, int n_state,
                                              const TileSpan& sp, const Params& p, int k) {
  for_each_bc<kNb, kT>(sn, sl, n_state, sp, p, k, [&](int i, int, int, bool ok, int off) {
    if (ok) cp_async_word(raw + i, base + off, true);
  });
}

/// This thread's copied B (or C) words -> f32 dst[j][n] (row bc_ld); zero past n_state, so
/// the padding states of a bucket add nothing.
template <typename T, int kNb, int kT>
__device__ __forceinline__ void convert_bc_pipe(float* dst, const unsigned* raw, const T* base, int sn, int sl,
                                                int n_state, const TileSpan& sp, const Params& p, int k) {
  const unsigned base_half = static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(base) >> 1);
  for_each_bc<kNb, kT>(sn, sl, n_state, sp, p, k, [&](int i, int j, int n, bool ok, int off) {
    dst[j * bc_ld<kNb>() + n] = ok ? word_value<T>(raw[i], (base_half + static_cast<unsigned>(off)) & 1u) : 0.0f;
  });
}

/// B and C stored as state rows (L contiguous) with positions a range: whole 16-byte units of
/// each state's row segment are copied, each by one thread. Calls fn(r, w, units) for this
/// thread's units: row r of the copy area (kRows = the first tensor's kNb states, then the
/// second's), unit w of that row (states past n_state are skipped).
template <typename T, int kNb, int kRows, int kT, typename Fn>
__device__ __forceinline__ void for_each_bc_unit(const T* first, int first_sn, const T* second, int second_sn,
                                                 int n_state, const TileSpan& sp, Fn&& fn) {
  constexpr int kU = Unit16<T, kT>::kRowUnits;
  for (int i = threadIdx.x; i < kRows * kU; i += blockDim.x) {
    const int r = i / kU, w = i - r * kU, n = r % kNb;
    if (n >= n_state) continue;
    const bool one = r < kNb;
    const RowUnits u = row_units<16>((one ? first : second) + n * (one ? first_sn : second_sn), sp.p_lo, sp.nT);
    if (w <= u.last) fn(r, w, u);
  }
}

/// Stores the outputs of a tile (I/O type; step j of channel c at obuf[c * c_step + j * j_step]:
/// [c][kT + 1] for the cp.async kernels, [j][channels] with step-row boxes) to dst (channel
/// d_first + c, step j of the span) step by step, consecutive threads on consecutive channels
/// (coalesced when D is contiguous): the store for step-row targets and for column-order
/// cross-scans.
template <typename T, int kT>
__device__ __forceinline__ void store_steps(const T* obuf, T* base, const SeqP& s, int d_first, int n_valid,
                                            const TileSpan& sp, const Params& p, int k, int c_step = kT + 1,
                                            int j_step = 1) {
  const int c = threadIdx.x;  // one channel per thread (blockDim >= n_valid)
  if (c >= n_valid) return;
  T* out = base + static_cast<i64>(d_first + c) * s.sd;
  const T* o = obuf + c * c_step;
  if (sp.affine) {
    const i64 p0 = sp.rev ? sp.p_lo + sp.nT - 1 : sp.p_lo, step = sp.rev ? -s.sl : s.sl;
    out += p0 * s.sl;
    for (int j = 0; j < sp.nT; ++j, out += step) *out = o[j * j_step];
  } else {
    for (int j = 0; j < sp.nT; ++j) out[dir_pos(p, k, sp.t0 + j) * s.sl] = o[j * j_step];
  }
}

/// Stores a tile staged as [kT][channels] (step j of channel c at element j * channels + c) to a
/// step-row target (D contiguous): consecutive threads on consecutive 16-byte units of a step's
/// row, positions walked by ColWalk along column orders - against store_steps' one 2-byte store
/// and one dir_pos per channel and step (H100, VMamba's token-major cross2d: ~25 instructions per
/// stored element in the column-order blocks). store_steps where the rows are not whole aligned
/// 16-byte units (step_rows_wide), and for the 16-state kernels (step_rows_lean).
template <typename T, int kNb, int kT>
__device__ __forceinline__ void store_step_rows(const T* stage, T* base, const SeqP& s, int d_first, int n_valid,
                                                int channels, const TileSpan& sp, const Params& p, int k) {
  T* first = base + static_cast<i64>(d_first) * s.sd;
  if (!step_rows_lean<kNb>() || s.sd != 1 ||
      !step_rows_wide<T>(reinterpret_cast<std::uintptr_t>(first), s.sl, channels, n_valid)) {
    store_steps<T, kT>(stage, base, s, d_first, n_valid, sp, p, k, 1, channels);
    return;
  }
  constexpr int kE = 16 / static_cast<int>(sizeof(T));
  const int units = n_valid / kE, jstep = blockDim.x / units;
  const int u = threadIdx.x % units, j0 = threadIdx.x / units;
  if (j0 >= jstep) return;
  first += u * kE;
  const T* src = stage + u * kE;
  auto put = [&](int j, i64 pos) {
    *reinterpret_cast<uint4*>(first + pos * s.sl) = *reinterpret_cast<const uint4*>(src + j * channels);
  };
  for_tile_steps(sp, p, k, j0, jstep, put);
}

/// Channel-row target (L contiguous, positions a range): this tile's outputs of the row at
/// `row` (element 0) sit in the thread's staging row at element m + p - p_lo, p in [p_lo, p_lo
/// + nT), m the offset of p_lo in its 16-byte unit. Stores every unit whose positions in the
/// write range [w_lo, w_hi) are all produced: whole units with one 16-byte store, units holding
/// positions outside the range element by element. With `keep` (more tiles follow) the unit
/// the next tile completes is not stored but moved to where that tile's staging puts it (the
/// next tile starts at p_lo_next).
template <typename T, int kT>
__device__ __forceinline__ void store_own_row(T* stage, T* row, const TileSpan& sp, int w_lo, int w_hi, bool keep,
                                              int p_lo_next) {
  constexpr int kU = Unit16<T, kT>::kUnitElems;
  const RowUnits u = row_units<16>(row, sp.p_lo, sp.nT);
  const bool tail_open = (u.m + sp.nT) % kU != 0;  // the last unit holds positions after the tile
  const int pend = !keep ? -1 : sp.rev ? (u.m != 0 ? 0 : -1) : (tail_open ? u.last : -1);
  const int q_first = sp.p_lo - u.m;  // position of the first unit's first element
  T* g = row + q_first;
#pragma unroll
  for (int w = 0; w < Unit16<T, kT>::kRowUnits; ++w) {
    if (w > u.last || w == pend) continue;
    const int q0 = q_first + w * kU;
    if (q0 >= w_lo && q0 + kU <= w_hi) {
      *reinterpret_cast<uint4*>(g + w * kU) = *reinterpret_cast<const uint4*>(stage + w * kU);
    } else {
#pragma unroll 1
      for (int e = 0; e < kU; ++e)
        if (q0 + e >= w_lo && q0 + e < w_hi) g[w * kU + e] = stage[w * kU + e];
    }
  }
  if (pend >= 0) {
    const auto next_a0 = reinterpret_cast<std::uintptr_t>(row + p_lo_next) & ~std::uintptr_t{15};
    const int to = sp.rev ? static_cast<int>((u.a0 - next_a0) >> 4) : 0;
    *reinterpret_cast<uint4*>(stage + to * kU) = *reinterpret_cast<const uint4*>(stage + pend * kU);
  }
}

/// How the pipelined kernel stages and reads u/delta/z: element by element from padded rows of
/// cp.async units; 16-bit rows two steps per load (PairReader); TMA boxes of the block's rows
/// (scan_tma.cuh, SwzPairReader; the output leaves as a box too); or TMA boxes per warp, B/C
/// included (the warp pipelines, WarpTmaGeom); or step rows (D contiguous: the models'
/// token-major layout) as [kT steps x channels] boxes, dense, for the blocks whose direction
/// visits positions in order, the column orders of a cross2d launch keeping the cp.async rows
/// into the same layout (kReadStepTma; 16-bit on one lane, f32 on one or two).
enum PipeRead : int { kReadElems = 0, kReadPairs = 1, kReadTma = 2, kReadWarpTma = 3, kReadStepTma = 4 };

/// The pipelined scan: one direction (k = the block's direction with par_dirs) of `channels`
/// channels of one (batch, group[, chunk]); kLanes threads per channel split its states.
/// kCorrect: the chunked path's second pass over chunks c >= 1 - it starts from the chunk's
/// carried state H_in, decays it step by step (no input term: pass 1 had them all) and adds
/// C . (H_in * decay) * gate to the outputs pass 1 wrote, until the decayed state is negligible
/// for every channel of the block (Params::correction_exponent).
/// kCols: launches with staged cross2d column orders (Params::cols_staged), whose odd directions
/// read Params::in[1]; a template choice, so that the address arithmetic of every other launch
/// stays as it was (an index chosen at run time cost the f32 TMA kernel ~2 % on S3/S5/S6).
template <typename T, int kS, int kLanes, bool kCorrect, int kRead, int kSeg = 1, bool kCols = false>
__global__ void __launch_bounds__(128, pipe_min_blocks<T, kSeg>())
    scan_pipe_kernel(Params p, int channels, int bpg, const __grid_constant__ PipeMaps maps) {
  constexpr bool kPairs = kRead == kReadPairs, kWarp = kRead == kReadWarpTma, kTma = kRead == kReadTma || kWarp;
  // kStep: step-row boxes; kBoxes: any TMA boxes (their mbarriers, dense areas and box stores).
  constexpr bool kStep = kRead == kReadStepTma, kBoxes = kTma || kStep;
  static_assert(!kStep || ((sizeof(T) == 4 || kLanes == 1) && kSeg == 1 && !kCorrect && !kCols),
                "step-row boxes: pass 1, 16-bit rows on one lane (f32 on any), no segments or staged column orders");
  static_assert(!kWarp || (sizeof(T) == 2 ? kLanes == 1 : kLanes == 2),
                "warp pipelines: 16-bit rows on one lane, f32 on two");
  static_assert(!kPairs || (sizeof(T) == 2 && kLanes == 1), "word pairs: 16-bit elements, one lane");
  static_assert(!kTma || (kSeg == 1 && !kCorrect && (sizeof(T) == 4 || kLanes == 1)),
                "TMA boxes: pass 1, no step segments; 16-bit rows on one lane (pair reads)");
  static_assert(kSeg == 1 || (kS == 1 && kLanes == 1 && !kCorrect), "step segments: one state, one lane, no correction");
  constexpr int kT = pipe_tile_steps<kSeg>();
  constexpr int kNb = kS * kLanes;
  constexpr int kLdb = bc_ld<kNb>();
  constexpr int kLdo = kT + 1;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  // Warp pipelines (WarpTmaGeom): the warp's own areas, boxes of its rows, issued by its lane 0.
  using WarpGeom = WarpTmaGeom<T, kNb, kT, kLanes>;
  const int warp = static_cast<int>(threadIdx.x) >> 5, wlane = static_cast<int>(threadIdx.x) & 31;
  const PipeLayout t = [&] {
    if constexpr (kWarp)
      return carve_warp_pipe<T, kNb, kT, kLanes>(smem_raw, warp);
    else
      return carve_pipe<T, kNb, kT, kBoxes>(smem_raw, channels);
  }();
  const bool issuer = kWarp ? wlane == 0 : threadIdx.x == 0;
  if constexpr (kBoxes) {
    if (issuer) {
      mbar_init(t.bar);
      mbar_init(t.bar + 1);
    }
    if constexpr (kWarp) __syncwarp();
  }
  const BlockCoords bc = block_coords(p, bpg, kCorrect ? 1 : 0);

  const ThreadChannel tch = thread_channel<kLanes * kSeg>(p, bc, channels);
  // lane: the thread's share of the channel's states; seg: its share of each tile's steps.
  const int lane = kSeg > 1 ? 0 : tch.lane, seg = kSeg > 1 ? tch.lane : 0;
  const int ch = tch.ch, n_valid = tch.n_valid, d_first = tch.d_first, d = tch.d;
  const bool active = tch.active;
  const int t_begin = tch.t_begin, t_end = tch.t_end;
  const int k = bc.k;  // 0 unless par_dirs
  // TMA: the rows of a box (the block's channels, or the warp's), this thread's row in it and
  // the first row's channel.
  const int box_rows = kWarp ? WarpGeom::kRows : channels, box_row = kWarp ? ch & (WarpGeom::kRows - 1) : ch;
  const int box_d = kWarp ? d_first + warp * WarpGeom::kRows : d_first;

  float a2[kS], h[kS], dskip, bias;
  load_channel<kS>(p, bc.b, k, d, lane, active, !kCorrect && bc.chunk == 0, a2, h, dskip, bias);
  float threshold = 0.0f;
  if constexpr (kCorrect) {
    const float hmax = carried_state<kS>(p, bc, k, d, lane, active, a2, h);
    if (!__syncthreads_or(hmax > 0.0f)) return;  // nothing carried into this chunk
    threshold = correction_line(p, hmax);
  }

  // This direction's inputs: as given, or a staged column order's copies (Params::in).
  const int in_k = kCols ? k & 1 : 0;
  const DirInputs& in = p.in[in_k];
  const SeqP &us = in.u, &ds = in.delta;
  const int gk = k * p.groups + bc.g;
  const T* bbase = static_cast<const T*>(in.B) + bc.b * in.B_sb + gk * in.B_sg;
  const T* cbase = static_cast<const T*>(in.C) + bc.b * in.C_sb + gk * in.C_sg;
  const T* ubase = static_cast<const T*>(us.ptr) + bc.b * us.sb + k * us.sk;
  const T* dbase = static_cast<const T*>(ds.ptr) + bc.b * ds.sb + k * ds.sk;
  const bool gate_z = p.pass_gates_z();
  const T* zbase = gate_z ? static_cast<const T*>(p.z.ptr) + bc.b * p.z.sb : nullptr;
  const SeqP& dst_s = p.pass_target();
  T* obase = pass_target_base<T>(p, bc.b, k);
  const float scale = p.pass_scale();
  const bool softplus = p.softplus;
  // The first staged tensor: u, or for the correction the outputs pass 1 wrote.
  const SeqP& first_s = kCorrect ? dst_s : us;
  const T* first_base = kCorrect ? obase : ubase;
  const int ku = row_kind(first_s), kd = row_kind(ds), kz = gate_z ? row_kind(p.z) : kChannelRows;
  const int bsn = static_cast<int>(in.B_sn), bsl = static_cast<int>(in.B_sl);
  const int csn = static_cast<int>(in.C_sn), csl = static_cast<int>(in.C_sl);
  const bool rev = dir_flipped(p.mode, k), affine = !rows_transposed(p, k);
  // Step-row boxes for this block: its direction visits positions in order (block-uniform).
  const bool step_boxes = kStep && affine;
  // B/C as state rows: unit copies (below); else word by word.
  const bool bc_rows = affine && csl == 1 && (kCorrect || bsl == 1);
  // Channel-row target: each channel's thread stores its own row from a staging row, in 16-byte
  // units; positions [w_lo_all, w_hi_all) are this pass's.
  const bool own_out = affine && row_kind(dst_s) == kChannelRows;
  // Whole units only: the block stores its rows together from two staging buffers (tile parity:
  // the next tile writes the other while this one's units are stored).
  const bool coop_rows = p.coop_rows && own_out;
  const int w_lo_all = rev ? p.seqlen - t_end : t_begin, w_hi_all = rev ? p.seqlen - t_begin : t_end;
  T* const obuf = static_cast<T*>(t.obuf);

  // The spans are recomputed where needed (a few integer operations per tile) rather than kept
  // live across the recurrence, where registers are the limit.
  auto span_at = [&](int t0) { return tile_span(p, k, t0, min(kT, t_end - t0)); };
  constexpr int kBcRows = kCorrect ? kNb : 2 * kNb;
  constexpr int kBcStride = bc_raw_words<T, kNb, kT>() + bc_m_words<kNb>();
  // u/delta/z are copied one tile ahead (raw buffer buf), B/C two tiles ahead (B/C buffer = the
  // tile's parity): the B/C of tile i + 1 have then landed and been made visible by the barrier
  // that ended tile i - 1, so during tile i every thread can convert any of them (below)
  // without a barrier of its own.
  // TMA: one box per tensor, the block's channels x kT steps (a reversed tile's box ends at its
  // first step; elements outside the tensor read as zero), completing on the buffer's mbarrier.
  auto box_x = [&](const TileSpan& sp) { return sp.rev ? sp.p_lo + sp.nT - kT : sp.p_lo; };
  auto issue_rows3 = [&](int t0, int buf) {
    const TileSpan sp = span_at(t0);
    unsigned* r = t.raw + buf * t.raw_stride;
    if constexpr (kTma) {
      if (issuer) {
        const int x = box_x(sp), b = bc.b;
        constexpr unsigned kBcBytes = kWarp ? 2u * WarpGeom::kBcBox : 0u;
        mbar_expect_tx(t.bar + buf, (gate_z ? 3u : 2u) * 4u * static_cast<unsigned>(t.raw_words) + kBcBytes);
        tma_load_box(r, &maps.u[in_k], x, box_d, k * maps.k_u, b, t.bar + buf);
        tma_load_box(r + t.raw_words, &maps.delta[in_k], x, box_d, k * maps.k_delta, b, t.bar + buf);
        if (gate_z) tma_load_box(r + 2 * t.raw_words, &maps.z, x, box_d, k * maps.k_z, b, t.bar + buf);
        if constexpr (kWarp) {  // B and C: state rows (L, N, slot, batch), after z
          unsigned* bcr = r + 3 * t.raw_words;
          tma_load_box(bcr, &maps.B[in_k], x, 0, gk, b, t.bar + buf);
          tma_load_box(bcr + WarpGeom::kBcBox / 4, &maps.C[in_k], x, 0, gk, b, t.bar + buf);
        }
      }
      return;
    }
    if constexpr (kStep) {
      // Step rows: boxes (channels, kT positions) at (d, position, k, b) of (D, L, K, batch).
      if (step_boxes) {
        if (issuer) {
          const int x = box_x(sp), b = bc.b;
          mbar_expect_tx(t.bar + buf, (gate_z ? 3u : 2u) * 4u * static_cast<unsigned>(t.raw_words));
          tma_load_box(r, &maps.u[0], box_d, x, k * maps.k_u, b, t.bar + buf);
          tma_load_box(r + t.raw_words, &maps.delta[0], box_d, x, k * maps.k_delta, b, t.bar + buf);
          if (gate_z) tma_load_box(r + 2 * t.raw_words, &maps.z, box_d, x, k * maps.k_z, b, t.bar + buf);
        }
        return;
      }
    }
    issue_rows<T, kNb, kT>(r, first_base, first_s, ku, tch, channels, sp, p, k);
    issue_rows<T, kNb, kT>(r + t.raw_words, dbase, ds, kd, tch, channels, sp, p, k);
    if (gate_z) issue_rows<T, kNb, kT>(r + 2 * t.raw_words, zbase, p.z, kz, tch, channels, sp, p, k);
  };
  auto issue_bc = [&](int t0, int bb) {
    const TileSpan sp = span_at(t0);
    unsigned* raw = t.bc_raw + bb * kBcStride;
    if (bc_rows) {
      int* ms = reinterpret_cast<int*>(raw + bc_raw_words<T, kNb, kT>());
      for_each_bc_unit<T, kNb, kBcRows, kT>(kCorrect ? cbase : bbase, kCorrect ? csn : bsn, cbase, csn, p.n_state, sp,
                                        [&](int row, int w, const RowUnits& u) {
                                          cp_async16(raw + row * Unit16<T, kT>::kRowWords + 4 * w, u.a0 + 16u * w);
                                          if (w == 0) ms[row] = u.m;
                                        });
    } else {
      if constexpr (!kCorrect) issue_bc_pipe<T, kNb, kT>(raw, bbase, bsn, bsl, p.n_state, sp, p, k);
      issue_bc_pipe<T, kNb, kT>(raw + kT * kNb, cbase, csn, csl, p.n_state, sp, p, k);
    }
  };
  // State rows: thread i converts step j of kG consecutive states of one tensor (any thread's
  // copies: they are visible, see above) into one 16-byte store of the f32 tile; states past
  // n_state read 0. Other layouts: each thread its own copied words.
  auto convert = [&](int t0, int bb, int fb) {
    const TileSpan sp = span_at(t0);
    const unsigned* raw = t.bc_raw + bb * kBcStride;
    float* f = t.bcf + fb * t.bcf_stride;
    if (bc_rows) {
      constexpr int kG = kNb >= 4 ? 4 : kNb, kGroups = kNb / kG, kTensors = kCorrect ? 1 : 2;
      const int* ms = reinterpret_cast<const int*>(raw + bc_raw_words<T, kNb, kT>());
      const T* rows = reinterpret_cast<const T*>(raw);
      const int jlast = sp.rev ? sp.nT - 1 : 0, jsign = sp.rev ? -1 : 1;  // step j is row element m + jlast + jsign * j
      for (int i = threadIdx.x; i < kTensors * kT * kGroups; i += blockDim.x) {
        const int g = i % kGroups, j = (i / kGroups) % kT, tensor = i / (kGroups * kT);
        if (j >= sp.nT) continue;
        const int row0 = tensor * kNb + g * kG;
        const T* src = rows + row0 * Unit16<T, kT>::kRowElems + jlast + jsign * j;
        int m[kG];
        if constexpr (kG == 4) {
          const int4 m4 = *reinterpret_cast<const int4*>(ms + row0);
          m[0] = m4.x, m[1] = m4.y, m[2] = m4.z, m[3] = m4.w;
        } else {
#pragma unroll
          for (int e = 0; e < kG; ++e) m[e] = ms[row0 + e];
        }
        float v[kG];
#pragma unroll
        for (int e = 0; e < kG; ++e) {
          // Rows past n_state were not copied (their offset is stale: masked into the row).
          const float x = to_float(src[e * Unit16<T, kT>::kRowElems + (m[e] & (Unit16<T, kT>::kUnitElems - 1))]);
          v[e] = select_f(g * kG + e < p.n_state, x, 0.0f);
        }
        float* dst = f + ((kCorrect || tensor == 1) ? kT * kLdb : 0) + j * kLdb + g * kG;
        if constexpr (kG == 4)
          *reinterpret_cast<float4*>(dst) = make_float4(v[0], v[1], v[2], v[3]);
        else
#pragma unroll
          for (int e = 0; e < kG; ++e) dst[e] = v[e];
      }
    } else {
      if constexpr (!kCorrect) convert_bc_pipe<T, kNb, kT>(f, raw, bbase, bsn, bsl, p.n_state, sp, p, k);
      convert_bc_pipe<T, kNb, kT>(f + kT * kLdb, raw + kT * kNb, cbase, csn, csl, p.n_state, sp, p, k);
    }
  };

  // Warp pipelines: this tile's B/C boxes (kNb state rows of kT steps each, box order) -> the
  // warp's f32 tile [B | C][step][bc_ld], one row per lane; reversed tiles read their rows back
  // to front (step j = box element kT - 1 - j). TMA filled rows past n_state and positions
  // outside the sequence with zeros.
  auto convert_warp = [&](const unsigned* r, bool rev) {
    constexpr int kW = kT * static_cast<int>(sizeof(T)) / 4;  // words per row
    const unsigned* rows = r + 3 * t.raw_words;
#pragma unroll
    for (int row = wlane; row < 2 * kNb; row += 32) {
      unsigned w[kW];
#pragma unroll
      for (int q = 0; q < kW / 4; ++q) reinterpret_cast<uint4*>(w)[q] = reinterpret_cast<const uint4*>(rows + row * kW)[q];
      float* dst = t.bcf + (row / kNb) * kT * kLdb + row % kNb;
      if constexpr (sizeof(T) == 4) {
#pragma unroll
        for (int j = 0; j < kT; ++j) dst[j * kLdb] = __uint_as_float(rev ? w[kT - 1 - j] : w[j]);
      } else {
        const unsigned sel_even = rev ? HalfSelect<T>::kHi : HalfSelect<T>::kLo;
        const unsigned sel_odd = rev ? HalfSelect<T>::kLo : HalfSelect<T>::kHi;
#pragma unroll
        for (int j = 0; j < kT; ++j) {
          const unsigned word = rev ? w[kW - 1 - j / 2] : w[j / 2];
          dst[j * kLdb] = half_value<T>(__byte_perm(word, 0u, (j & 1) ? sel_odd : sel_even));
        }
      }
    }
  };

  // Tile buffer buf's staging rows with coop_rows: recomputed at each use, not kept live across
  // the recurrence (held in a register per tile, S3 bf16 took 1.355 ms against 1.307 on an H100).
  auto coop_stage = [&](int buf) { return coop_rows ? buf * channels * Unit16<T, kT>::kRowElems : 0; };
  const int n_tiles = (t_end - t_begin + kT - 1) / kT;
  issue_rows3(t_begin, 0);
  if constexpr (!kWarp) {
    issue_bc(t_begin, 0);
    if (n_tiles > 1) issue_bc(t_begin + kT, 1);
    cp_async_wait_all();
    __syncthreads();
    convert(t_begin, 0, 0);
    __syncthreads();
  }

  float dtsum = 0.0f;
  for (int i = 0; i < n_tiles; ++i) {
    const int buf = i & 1, t0 = t_begin + i * kT;
    const TileSpan sp = span_at(t0);
    const bool more = i + 1 < n_tiles;
    if (more) issue_rows3(t0 + kT, buf ^ 1);
    if constexpr (!kWarp) {
      if (i + 2 < n_tiles) issue_bc(t0 + 2 * kT, buf);  // B/C buffer buf: its tile i was converted in tile i - 1
      cp_async_commit();
    }
    if (kTma || step_boxes) mbar_wait(t.bar + buf, (i >> 1) & 1);  // this tile's boxes (the buffer's (i / 2)-th use)
    const unsigned* r = t.raw + buf * t.raw_stride;  // this tile's raw buffer
    if constexpr (kWarp) {
      convert_warp(r, sp.rev);  // the single f32 tile: the last tile's reads ended at its __syncwarp
      __syncwarp();
    }

    {
      const T* ru = reinterpret_cast<const T*>(r);
      const T* rd = reinterpret_cast<const T*>(r + t.raw_words);
      const T* rz = reinterpret_cast<const T*>(r + 2 * t.raw_words);
      const int eb = kTma ? tma_elem_base<T, kT>(box_row, sp.rev) : 0;  // TMA: the thread's row of a box
      // Step-row boxes: row j of a box is position x + j (box_x), so a reversed tile's step j is
      // row kT - 1 - j; the cp.async step rows hold step j in row j.
      const RowRef step_in = step_boxes && sp.rev ? RowRef{ch + (kT - 1) * channels, -channels} : RowRef{ch, channels};
      auto in_ref = [&](const T* tensor_base, const SeqP& s, int kind) {
        if constexpr (kTma)
          return RowRef{};
        else if constexpr (kStep)
          return step_in;
        else
          return row_ref<T, kNb, kT>(tensor_base, s, kind, tch, channels, sp);
      };
      const RowRef fu = in_ref(first_base, first_s, ku);
      const RowRef fd = in_ref(dbase, ds, kd);
      const RowRef fz = gate_z ? in_ref(zbase, p.z, kz) : RowRef{0, 0};
      // Outputs: the channel's staging row (own_out: a single buffer, the same thread stores it
      // before the next tile writes; coop_rows: this tile's buffer), or [channel][kLdo] of this
      // tile's buffer; TMA: its row of this tile's box.
      const auto fo = [&] {
        if constexpr (kTma)
          return SwzRef{buf * box_rows * kT + eb};
        else if constexpr (kStep)
          return RowRef{buf * channels * kT + step_in.base, step_in.step};  // the tile's staging box
        else
          return own_out ? stage_ref<T, kT>(obase, dst_s, tch, sp, coop_stage(buf))
                         : RowRef{buf * channels * kLdo + ch * kLdo, 1};
      }();
      const float* bt = t.bcf + buf * t.bcf_stride + lane * kS;
      const float* ct = bt + kT * kLdb;
      // Branch-free per step (selects, not branches, for the run-time options), so that the
      // unrolled steps form one basic block the compiler can interleave. U, Dl, Z: readers of
      // u (or pass 1's output), delta and z.
      auto pre = [&](const auto& U, const auto& Dl, int j, float& dt, float& dtu) {
        const float x = Dl.at(j) + bias;
        dt = select_f(softplus, softplus_io<T, kS, kStep>(x), x);
        dtu = kCorrect ? 0.0f : dt * U.at(j);
      };
      auto gate_at = [&](const auto& Z, int j) {
        return select_f(gate_z, scale * silu(Z.at(j)), scale);  // z area unused (finite or not) when !gate_z
      };
      // first: u, or pass 1's output
      auto out_value = [&](float first, float gate, float y) {
        return kCorrect ? fmaf(y, gate, first) : fmaf(dskip, first, y) * gate;
      };
      auto out_of = [&](float first, float gate, float y) { return from_float<T>(out_value(first, gate, y)); };
      auto post_value = [&](const auto& U, const auto& Z, int j, float y) {
        return out_value(U.at(j), gate_at(Z, j), y);
      };
      auto post = [&](const auto& U, const auto& Z, int j, float y) { return from_float<T>(post_value(U, Z, j, y)); };
      // scan_step's sum chains: four for f32 on step-row boxes, where the lanes do not split (see
      // scan_step), otherwise one.
      constexpr int kYChains = sizeof(T) == 4 && kStep ? 4 : 1;
      auto recur = [&](int j, float dt, float dtu) {
        if constexpr (kCorrect)
          return lane_sum<kLanes>(decay_step<kS>(h, a2, ct + j * kLdb, dt));
        else
          return lane_sum<kLanes>(scan_step<kS, kYChains>(h, a2, bt + j * kLdb, ct + j * kLdb, dt, dtu));
      };
      // kLanes > 1: the lanes of a channel split a full tile's scalar work (below); f32 only on
      // TMA channel-row boxes, the block's or a warp's (see full_tile).
      constexpr bool kSplit = kLanes > 1 && (sizeof(T) == 2 || kTma);
      constexpr int kL = kSplit ? kLanes : 1;  // lanes sharing the scalar work
      // The correction's recurrence over a full tile, by blocks of states: [0, 1), [1, 2), [2, 4),
      // [4, 8), [8, 16) of the thread's kS, each over the tile's steps, a block only while one of
      // its states is above the threshold on some lane of the warp (warp-uniform branches, once
      // per tile). The carried states decay at their own rates - state n of the S4D-real init at
      // n + 1 times the slowest - so most of a long correction runs on the slowest few, and a
      // block left out only holds states already under the line the whole correction stops at
      // (they would only decay further). ys[] receives the tile's sum C g (lane-summed; with
      // kSplit at the lanes' own steps, as the recurrence below). H100, S6: bf16 3.04 -> 2.90
      // ms, f32 4.19 -> 4.11 against the per-step correction.
      auto correct_tile = [&](const auto& dt, auto& ys) {
        // Sums over the thread's states: in ys itself unless the lanes split the steps.
        float dts[kT];
        [[maybe_unused]] float ysplit[kSplit ? kT : 1];
        auto yc = [&](int j) -> float& {
          if constexpr (kSplit)
            return ysplit[j];
          else
            return ys[j];
        };
#pragma unroll
        for (int j = 0; j < kT; ++j) {
          dts[j] = kSplit ? __shfl_sync(0xffffffffu, dt[j / kL], j % kL, kLanes) : dt[j];
          dtsum += dts[j];
          yc(j) = 0.0f;
        }
        int above = 0;  // 1 + the highest state above the threshold
#pragma unroll
        for (int s = 0; s < kS; ++s) above = !(fabsf(h[s]) <= threshold) ? s + 1 : above;  // NaN: above
        above = __reduce_max_sync(0xffffffffu, above);
        auto states = [&](auto lo_c, auto hi_c) {
          constexpr int kLo = decltype(lo_c)::value, kHi = decltype(hi_c)::value < kS ? decltype(hi_c)::value : kS;
          if constexpr (kLo < kHi) {
            if (kLo == 0 || above > kLo) {
#pragma unroll
              for (int j = 0; j < kT; ++j) {
#pragma unroll
                for (int st = kLo; st < kHi; ++st) {
                  h[st] *= ex2_approx(dts[j] * a2[st]);
                  yc(j) = fmaf(ct[j * kLdb + st], h[st], yc(j));
                }
              }
            }
          }
        };
        states(std::integral_constant<int, 0>{}, std::integral_constant<int, 1>{});
        states(std::integral_constant<int, 1>{}, std::integral_constant<int, 2>{});
        states(std::integral_constant<int, 2>{}, std::integral_constant<int, 4>{});
        states(std::integral_constant<int, 4>{}, std::integral_constant<int, 8>{});
        states(std::integral_constant<int, 8>{}, std::integral_constant<int, 16>{});
#pragma unroll
        for (int j = 0; j < kT; ++j) {
          const float y = lane_sum<kLanes>(yc(j));
          if constexpr (kSplit)
            ys[j / kL] = select_f(j % kL == lane, y, ys[j / kL]);
          else
            ys[j] = y;
        }
      };
      // A full tile: every step's softplus and dt*u first (independent chains whose latencies
      // overlap), then the recurrence back to back. (H100, bf16: in groups of 8 steps, or capped
      // at 128 registers for a fourth block per SM, S1 took 0.131 / 0.140 ms against 0.119.)
      // kSplit: the lanes of a channel split the per-step scalar work instead of each repeating
      // it (lane r does the pre- and post-pass of steps q * kLanes + r and shuffles dt, dt*u to
      // the others). H100: S5 bf16 0.054 -> 0.050 ms. f32 (8 states x 2 lanes; 4 x 2 for S5)
      // on TMA boxes too since session 20 (H200, ms): S3 1.371 -> 1.205, S5 0.0412 -> 0.0352, S6
      // 4.096 -> 3.67 (pass 1; splitting its correction too gained 0.5 % more), the channel-major
      // SS2D 1.840 -> 1.707. Not on f32 element reads or step-row boxes, which lost or stayed:
      // S1/S2 (L = 197, element reads) within 0.5 % while that kernel spilled 20 bytes,
      // token-major cross2d N 16 2.392 -> 2.596, Vim's model layout 0.2068 -> 0.2133. (Step rows
      // padded so that a channel's two lanes read different banks left the cross2d at 2.596: the
      // bank conflict is not its cause; the spill is the remaining suspect.)
      auto full_tile = [&](const auto& U, const auto& Dl, const auto& Z) {
        constexpr int kQ = kT / kL;
        constexpr bool kEarly = !kCorrect && kS > 1 && kS <= MCV_SCAN_EARLY_EPILOGUE_MAX_STATES;
        constexpr int kQe = kEarly ? kQ : 1;
        const int r0 = kSplit ? lane : 0;
        float dt[kQ], dtu[kQ], ys[kQ] = {};
        [[maybe_unused]] float uq[kQe], gt[kQe];  // kEarly: u and the gate of step q * kL + r0
#pragma unroll
        for (int q = 0; q < kQ; ++q) {
          pre(U, Dl, q * kL + r0, dt[q], dtu[q]);
          if constexpr (kEarly) {
            const int j = q * kL + r0;
            uq[q] = U.at(j);
            gt[q] = gate_at(Z, j);
          }
        }
        auto post_q = [&](int q, int j, float y) {
          if constexpr (kEarly)
            return out_of(uq[q], gt[q], y);
          else
            return post(U, Z, j, y);
        };
        // The correction by state blocks, except with 16 states per thread in f32 or on staged
        // column orders, where holding the tile's dt and sums at once spilled (ptxas, sm_90).
        constexpr bool kStateBlocks = kCorrect && !(kS == 16 && (sizeof(T) == 4 || kCols));
        if constexpr (kStateBlocks) {
          correct_tile(dt, ys);
        } else {
#pragma unroll
          for (int j = 0; j < kT; ++j) {
            const int q = j / kL;
            float dtj = dt[q], dtuj = dtu[q];
            if constexpr (kSplit) {
              dtj = __shfl_sync(0xffffffffu, dtj, j % kL, kLanes);
              if constexpr (!kCorrect) dtuj = __shfl_sync(0xffffffffu, dtuj, j % kL, kLanes);
            }
            dtsum += dtj;
            const float y = recur(j, dtj, dtuj);
            if constexpr (kSplit)
              ys[q] = select_f(j % kL == lane, y, ys[q]);
            else
              ys[j] = y;
          }
        }
        // The skip/gate epilogue after the recurrence (ys[] takes the registers dt[] and dtu[]
        // free), all of its loads before the staging stores: the compiler keeps shared loads in
        // order with stores it cannot prove apart, so a store between two steps' loads would
        // make PairReader load each word twice.
        if constexpr (kSplit) {
#pragma unroll
          for (int q = 0; q < kQ; ++q) {
            const int j = q * kLanes + lane;
            obuf[fo.at(j)] = post_q(q, j, ys[q]);
          }
        } else if constexpr (kWarp && !kEarly && sizeof(T) == 2) {
          // Two steps per 32-bit store: in a box row (16-byte aligned) steps 2q and 2q + 1 share
          // word (base ^ 2q) / 2 = base / 2 ^ q, the later step in the high half unless the tile
          // is reversed (its row runs backwards: the halves swapped). One packed conversion, one
          // byte permute and one store per two steps instead of two 16-bit stores with their
          // addresses.
          float o[kT];
#pragma unroll
          for (int j = 0; j < kT; ++j) o[j] = post_value(U, Z, j, ys[j]);
          unsigned* ow = static_cast<unsigned*>(t.obuf);
          const int wb = fo.base >> 1;
          const unsigned sel = sp.rev ? 0x1032u : 0x3210u;
#pragma unroll
          for (int q = 0; q < kT / 2; ++q) ow[wb ^ q] = __byte_perm(::mcv::kernels::cuda::pack2<T>(o[2 * q], o[2 * q + 1]), 0u, sel);
        } else {
          T o[kT];
#pragma unroll
          for (int j = 0; j < kT; ++j) o[j] = post_q(j, j, ys[j]);
          if (lane == 0) {
#pragma unroll
            for (int j = 0; j < kT; ++j) obuf[fo.at(j)] = o[j];
          }
        }
      };
      // kSeg > 1: in each kPipeSteps steps of the tile, this thread's segment of kQ steps
      // (pipe_min_blocks), from h = 0 with its decay product, chained to the others' through
      // the channel's shuffle scan.
      auto seg_tile = [&](const auto& U, const auto& Dl, const auto& Z) {
        constexpr int kQ = kPipeSteps / kSeg;
#pragma unroll 1
        for (int part = 0; part < kT / kPipeSteps; ++part) {
          const int j0 = part * kPipeSteps + seg * kQ;
          const auto u = U.from(j0);
          const auto dl = Dl.from(j0);
          const auto z = Z.from(j0);
          const float* bs = bt + j0 * kLdb;
          const float* cs = ct + j0 * kLdb;
          float dt[kQ], dtu[kQ], ys[kQ], cdecay[kQ];
#pragma unroll
          for (int q = 0; q < kQ; ++q) pre(u, dl, q, dt[q], dtu[q]);
          float g = 0.0f, decay = 1.0f;
#pragma unroll
          for (int q = 0; q < kQ; ++q) {
            dtsum += dt[q];
            const float e = ex2_approx(dt[q] * a2[0]);
            g = fmaf(e, g, bs[q * kLdb] * dtu[q]);
            decay *= e;
            ys[q] = cs[q * kLdb] * g;
            cdecay[q] = cs[q * kLdb] * decay;
          }
          // Inclusive scan of the segment maps h -> decay * h + g (earlier segments applied
          // first), then this segment's start state and the tile's end state from the carry h.
          float pi = decay, gi = g;
#pragma unroll
          for (int off = 1; off < kSeg; off <<= 1) {
            const float pu = __shfl_up_sync(0xffffffffu, pi, off, kSeg), gu = __shfl_up_sync(0xffffffffu, gi, off, kSeg);
            const bool take = seg >= off;
            gi = select_f(take, fmaf(pi, gu, gi), gi);
            pi = select_f(take, pi * pu, pi);
          }
          const float pe = __shfl_up_sync(0xffffffffu, pi, 1, kSeg), ge = __shfl_up_sync(0xffffffffu, gi, 1, kSeg);
          const float h_in = select_f(seg == 0, h[0], fmaf(pe, h[0], ge));
          h[0] = fmaf(__shfl_sync(0xffffffffu, pi, kSeg - 1, kSeg), h[0], __shfl_sync(0xffffffffu, gi, kSeg - 1, kSeg));
          T o[kQ];
#pragma unroll
          for (int q = 0; q < kQ; ++q) o[q] = post(u, z, q, fmaf(cdecay[q], h_in, ys[q]));
#pragma unroll
          for (int q = 0; q < kQ; ++q) obuf[fo.at(j0 + q)] = o[q];
        }
      };
      auto tile = [&](const auto& U, const auto& Dl, const auto& Z) {
        if constexpr (kSeg > 1)
          seg_tile(U, Dl, Z);
        else
          full_tile(U, Dl, Z);
      };
      // A partial tile (the pass's last): step by step, by the first segment's thread.
      auto partial = [&](const auto& U, const auto& Dl, const auto& Z) {
        if (seg == 0) {
#pragma unroll 1
          for (int j = 0; j < sp.nT; ++j) {
            float dt, dtu;
            pre(U, Dl, j, dt, dtu);
            dtsum += dt;
            const T o = post(U, Z, j, recur(j, dt, dtu));
            if (lane == 0) obuf[fo.at(j)] = o;
          }
        }
        if constexpr (kSeg > 1) h[0] = __shfl_sync(0xffffffffu, h[0], 0, kSeg);
      };
      const ElemReader<T> eu{ru, fu}, ed{rd, fd}, ez{rz, fz};
      if constexpr (kTma) {
        const ElemReader<T, SwzRef> su{ru, {eb}}, sd{rd, {eb}}, sz{rz, {eb}};
        if (sp.nT == kT) {
          if constexpr (sizeof(T) == 2)
            tile(SwzPairReader<T>(r, eb, sp.rev), SwzPairReader<T>(r + t.raw_words, eb, sp.rev),
                 SwzPairReader<T>(r + 2 * t.raw_words, eb, sp.rev));
          else
            tile(su, sd, sz);
        } else {
          partial(su, sd, sz);
        }
      } else if (sp.nT == kT) {
        // kPairs (16-bit channel rows on one lane, pipe_pairs): two steps per shared-memory
        // load. A template choice rather than a run-time branch: two unrolled tile bodies in
        // one kernel doubled its code and the instruction-cache stalls (H100, S1 bf16).
        if constexpr (kPairs) {
          const PairReader<T> pu = pair_reader<T, kT>(r, fu, tch, sp);
          const PairReader<T> pd = pair_reader<T, kT>(r + t.raw_words, fd, tch, sp);
          const PairReader<T> pz = gate_z ? pair_reader<T, kT>(r + 2 * t.raw_words, fz, tch, sp) : PairReader<T>{r, 0, 0, 0, 0, 0};
          tile(pu, pd, pz);
        } else {
          tile(eu, ed, ez);
        }
      } else {
        partial(eu, ed, ez);
      }
    }

    if constexpr (!kWarp) {
      if (more) convert(t0 + kT, buf ^ 1, buf ^ 1);  // landed before the barrier that ended tile i - 1
    }
    if constexpr (kBoxes) {
      fence_async_shared();  // this thread's staging writes, before the box store issued after the barrier
      if (issuer) bulk_wait_read();  // the previous tile's box store has read the other staging buffer
    }
    if constexpr (!kWarp) cp_async_wait_committed();
    bool live = true;
    if constexpr (kCorrect) {
      float m = 0.0f;
#pragma unroll
      for (int s = 0; s < kS; ++s) m = fmaxf(m, fabsf(h[s]));
      live = __syncthreads_or(m > threshold);
    } else if constexpr (kWarp) {
      __syncwarp();
    } else {
      __syncthreads();
    }
    if constexpr (kTma) {
      const int x = box_x(sp);
      const T* stage = obuf + buf * box_rows * kT;
      if (x >= 0) {
        if (issuer) tma_store_box(&maps.out, stage, x, box_d, k * maps.k_out, bc.b);
      } else if (active) {
        // A reversed partial tile, whose box starts before position 0: the TMA store faults on
        // a negative start (H100: illegal instruction; loads take it), so each thread stores its
        // row's positions [0, nT) = box elements [-x, kT) itself.
        T* row = obase + static_cast<i64>(d) * dst_s.sd;
        const int forward = tma_elem_base<T, kT>(box_row, false);  // box element e at forward ^ e
        if (lane == 0)
          for (int q = 0; q < sp.nT; ++q) row[q] = stage[forward ^ (q - x)];
      }
    } else if (kStep) {
      const T* stage = obuf + buf * channels * kT;  // [kT][channels]
      const int x = box_x(sp);
      if (step_boxes && x >= 0) {
        if (issuer) tma_store_box(&maps.out, stage, box_d, x, k * maps.k_out, bc.b, p.reduce_out);
      } else if (step_boxes) {
        // A reversed partial tile starting before position 0 (box stores fault on a negative
        // start): positions [0, nT) are box rows [-x, kT), stored (or added) by each channel's
        // thread.
        if (active && lane == 0) {
          T* col = obase + static_cast<i64>(d) * dst_s.sd;
          for (int q = 0; q < sp.nT; ++q) {
            const T v = stage[(q - x) * channels + ch];
            if (p.reduce_out)
              atomicAdd(col + q * dst_s.sl, v);
            else
              col[q * dst_s.sl] = v;
          }
        }
      } else {
        store_step_rows<T, kNb, kT>(stage, obase, dst_s, d_first, n_valid, channels, sp, p, k);
      }
    } else if (coop_rows) {
      store_rows_coop<T, kT>(obuf + coop_stage(buf), obase, dst_s, d_first, n_valid, sp);
    } else if (own_out) {
      if (active && lane == 0 && seg == 0) {
        const bool keep = more && live;
        store_own_row<T, kT>(obuf + ch * Unit16<T, kT>::kRowElems, obase + static_cast<i64>(d) * dst_s.sd, sp,
                      rev ? sp.p_lo : w_lo_all, rev ? w_hi_all : sp.p_lo + sp.nT, keep,
                      keep ? span_at(t0 + kT).p_lo : 0);
      }
      if constexpr (kLanes * kSeg > 1) __syncwarp();  // the other lanes write the staging row next
    } else {
      store_steps<T, kT>(obuf + buf * channels * kLdo, obase, dst_s, d_first, n_valid, sp, p, k);
    }
    if (!live) break;  // the next tile's copies have landed (waited for above): nothing in flight
  }

  if constexpr (kBoxes) {
    if (issuer) bulk_wait_done();  // the staging stays in use until the last box is out
  }
  if constexpr (kSeg > 1) dtsum = lane_sum<kSeg>(dtsum);  // each segment summed its own steps' dt
  if constexpr (!kCorrect)
    store_channel_end<kS>(p, bc, k, d, lane, active && seg == 0, h, dtsum);  // dtsum: all of the channel's steps
}

/// Whether cross2d's column orders walk the rows of u, delta and the target column by column
/// (not staged as transposed copies: Params::cols_staged).
inline bool rows_column_order(const Params& p) { return p.mode == 3 && !p.cols_staged; }

/// Whether a pass of the pipelined kernel may stage step-row outputs (obuf_elems): targets
/// with D contiguous, and cross-scans walking column orders (they store step by step).
inline bool pipe_step_out(const Params& p) {
  return rows_column_order(p) || row_kind(p.pass_target()) != kChannelRows;
}

/// Whether the pipelined kernel's channel-row outputs may be stored cooperatively (Params::
/// coop_rows): every unit whole - the target's rows 16-byte aligned at every (batch, direction,
/// channel), the tiles' position ranges multiples of a unit in either direction - and the
/// second staging buffer still leaving min_blocks per SM (the launch bounds, pipe_min_blocks).
/// Not for f32 with fewer than 4 states (8-byte row units, RawGeom), where it measured slower
/// (H100, S4 f32 1.556 -> 1.656 ms) while every other shape with whole units gained (bf16 S3 1.320 ->
/// 1.305, S4 0.748 -> 0.717, S6 4.485 -> 4.266; f32 S3 1.714 -> 1.646, S5 0.0554 -> 0.0507,
/// S6 5.16 -> 4.955).
template <typename T, int kNb, int kT>
inline bool pipe_coop_rows(const Params& p, int channels, const LaunchConfig& cfg, int min_blocks) {
  if constexpr (sizeof(T) == 4 && kNb < 4) return false;
  constexpr int kU = Unit16<T, kT>::kUnitElems;
  const SeqP& s = p.pass_target();
  const bool whole = !rows_column_order(p) && row_kind(s) == kChannelRows &&
                     reinterpret_cast<std::uintptr_t>(s.ptr) % 16 == 0 &&
                     s.sb % kU == 0 && s.sk % kU == 0 && s.sd % kU == 0 && p.seqlen % kU == 0 &&
                     (p.n_chunks == 1 || p.chunk_len % kU == 0);
  const std::size_t bytes = pipe_smem_bytes<T, kNb, kT>(channels, true, pipe_step_out(p)) + cfg.smem_reserved;
  return cfg.allow_coop_rows && whole && min_blocks * bytes <= cfg.smem_per_sm;
}

/// Whether the pipelined kernel takes this launch: one direction per block, variable B/C, and
/// u, delta (and z when this pass gates) stored in rows: L-contiguous rows need positions that
/// are ranges (no column-major cross-scan order); D-contiguous 16-bit rows must start on a
/// 4-byte word at every (batch, direction, position, channel block).
template <typename T, int kNb, int kT>
inline bool pipe_supported(const Params& p, int channels, std::size_t smem_limit) {
  if (!p.B_var || !p.C_var || (p.dirs > 1 && !p.par_dirs)) return false;
  if (pipe_smem_bytes<T, kNb, kT>(channels, p.coop_rows, pipe_step_out(p)) > smem_limit) return false;
  const bool gate_z = p.pass_gates_z();
  // Step rows are copied in 8-byte units from channel d_first on: every row start (batch,
  // direction, position, channel block) must be 8-byte aligned, and D a whole number of units
  // (no unit crosses the end of a row).
  constexpr int kUnit = RawGeom<T, kNb, kT>::kStepUnitElems;
  auto ok = [&](const SeqP& s) {
    switch (row_kind(s)) {
      case kChannelRows: return !rows_column_order(p);
      case kStepRows:
        return reinterpret_cast<std::uintptr_t>(s.ptr) % 8 == 0 && s.sb % kUnit == 0 && s.sk % kUnit == 0 &&
               s.sl % kUnit == 0 && channels % kUnit == 0 && p.dim % kUnit == 0 &&
               (p.groups == 1 || p.cpg % kUnit == 0);
      default: return false;
    }
  };
  // The chunked path's correction reads back the outputs of pass 1 as rows.
  const bool target_ok = p.n_chunks == 1 || ok(p.pass_target());
  const bool cols_ok = !p.cols_staged || (ok(p.cols.u) && ok(p.cols.delta));
  return ok(p.u) && ok(p.delta) && cols_ok && (!gate_z || ok(p.z)) && target_ok && bc_offsets_fit(p);
}

/// Whether the pipelined kernel's pass reads every staged tensor as 16-bit channel rows on one
/// lane, so that it can take the word-pair reads (kPairs). `correction`: the chunked path's
/// second pass, whose first staged tensor is pass 1's output instead of u.
template <typename T>
inline bool pipe_pairs(const Params& p, int lanes, bool correction) {
  if (sizeof(T) != 2 || lanes != 1) return false;
  const SeqP& first = correction ? p.pass_target() : p.u;
  return row_kind(first) == kChannelRows && row_kind(p.delta) == kChannelRows &&
         (!p.pass_gates_z() || row_kind(p.z) == kChannelRows);
}

}  // namespace mcv::kernels::scan::cuda
