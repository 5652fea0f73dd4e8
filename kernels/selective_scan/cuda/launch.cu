// CUDA selective scan: Problem -> kernel parameters, launch geometry, workspace.

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "mcv/cuda/context.cuh"
#include "mcv/error.h"
#include "selective_scan/chunking.h"
#include "selective_scan/cuda/relayout.cuh"
#include "selective_scan/cuda/scan_params.cuh"
#include "selective_scan/scan_problem.h"

namespace mcv::kernels::scan {

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return (end && *end == 0 && x > 0 && x < (1 << 20)) ? static_cast<int>(x) : fallback;
}

/// Whether an on-by-default path is switched off (NAME=0), for comparisons and tests.
bool env_off(const char* name) {
  const char* v = std::getenv(name);
  return v && std::string(v) == "0";
}

cuda::SeqP seq(const SeqView& v) { return {v.data, v.sb, v.sk, v.sd, v.sl}; }

int round_up(int x, int m) { return (x + m - 1) / m * m; }

}  // namespace

void run_cuda(Context& ctx, const Problem& pr) {
  auto& cu = ctx.cuda();
  CudaDeviceGuard guard(cu.device);
  cuda::Params p;
  p.batch = static_cast<int>(pr.batch);
  p.dim = static_cast<int>(pr.dim);
  p.seqlen = static_cast<int>(pr.seqlen);
  p.n_state = static_cast<int>(pr.n_state);
  p.groups = static_cast<int>(pr.groups);
  p.dirs = pr.dirs;
  p.cpg = static_cast<int>(pr.channels_per_group());
  p.mode = static_cast<int>(pr.directions);
  p.height = pr.directions == ScanDirections::cross2d ? static_cast<int>(pr.height) : 1;
  p.width = pr.directions == ScanDirections::cross2d ? static_cast<int>(pr.width) : 1;
  p.height_div = ::mcv::kernels::cuda::FastDiv(static_cast<std::uint32_t>(p.height));
  p.softplus = pr.softplus;
  p.out_scale = pr.out_scale;
  p.u = seq(pr.u);
  p.delta = seq(pr.delta);
  p.z = seq(pr.z);
  p.out = seq(pr.out);
  p.B = pr.B.data;
  p.B_sb = pr.B.sb;
  p.B_sg = pr.B.sg;
  p.B_sn = pr.B.sn;
  p.B_sl = pr.B.sl;
  p.B_var = pr.B.variable;
  p.C = pr.C.data;
  p.C_sb = pr.C.sb;
  p.C_sg = pr.C.sg;
  p.C_sn = pr.C.sn;
  p.C_sl = pr.C.sl;
  p.C_var = pr.C.variable;
  p.A = pr.A.data;
  p.A_sc = pr.A.sc;
  p.A_sn = pr.A.sn;
  p.Dskip = pr.D.data;
  p.D_s = pr.D.s;
  p.bias = pr.bias.data;
  p.bias_s = pr.bias.s;
  p.h0 = pr.h0.data;
  p.h0_sb = pr.h0.sb;
  p.h0_sk = pr.h0.sk;
  p.h0_sd = pr.h0.sd;
  p.h0_sn = pr.h0.sn;
  p.hT = pr.hT.data;
  p.hT_sb = pr.hT.sb;
  p.hT_sk = pr.hT.sk;
  p.hT_sd = pr.hT.sd;
  p.hT_sn = pr.hT.sn;

  cuda::LaunchConfig cfg;
  const int sms = std::max(1, cu.props.multiProcessorCount);
  cfg.smem_optin = static_cast<std::size_t>(cu.props.sharedMemPerBlockOptin);
  cfg.smem_per_sm = static_cast<std::size_t>(cu.props.sharedMemPerMultiprocessor);
  cfg.smem_reserved = static_cast<std::size_t>(cu.props.reservedSharedMemPerBlock);
  cfg.allow_coop_rows = !env_off("MCV_SCAN_COOP_ROWS");
  // Channel rows that are 16-byte aligned move as TMA boxes (scan_tma.cuh);
  // MCV_SCAN_TMA=0 keeps the cp.async copies (comparisons, their tests); =2 makes a launch that
  // cannot take them an error (tests that mean to exercise them).
  cfg.allow_tma = !env_off("MCV_SCAN_TMA");
  cfg.require_tma = env_int("MCV_SCAN_TMA", 0) == 2;
  // 16-bit rows with 16 states on one lane, and f32 with 8 states on each of two on the staged
  // cross2d, as warp pipelines (scan_pipe.cuh, WarpTmaGeom): every warp with its own boxes and no
  // block barrier. MCV_SCAN_WARP_TMA=0 keeps one box per block; =2 makes a launch that does not
  // take them an error (tests that mean to exercise them).
  cfg.allow_warp_tma = !env_off("MCV_SCAN_WARP_TMA");
  cfg.require_warp_tma = env_int("MCV_SCAN_WARP_TMA", 0) == 2;
  // Token-major 16-bit rows as [16 steps x channels] boxes (scan_pipe.cuh, kReadStepTma; under
  // MCV_SCAN_TMA too): MCV_SCAN_STEP_TMA=0 keeps the cp.async rows, =2 makes a launch that
  // does not take them an error (tests).
  cfg.allow_step_tma = !env_off("MCV_SCAN_STEP_TMA");
  cfg.require_step_tma = env_int("MCV_SCAN_STEP_TMA", 0) == 2;
  // Bidirectional scans on them add both directions into the output by reduce-add box stores
  // instead of writing two slices for a merge pass (Params::reduce_out); MCV_SCAN_REDUCE_OUT=0
  // keeps the slices and the merge, =2 makes a launch that does not add them an error (tests).
  cfg.allow_reduce_out = !env_off("MCV_SCAN_REDUCE_OUT");
  cfg.require_reduce_out = env_int("MCV_SCAN_REDUCE_OUT", 0) == 2;
  cfg.allow_merge_vec = !env_off("MCV_SCAN_MERGE_VEC");
  // L-chunks corrected by one warp per (chunk, channel) where the layout allows
  // (scan_correct.cuh); MCV_SCAN_WARP_CORRECTION=0 keeps the pass kernels' block correction, =2
  // makes a chunked launch that does not take it an error (tests).
  cfg.allow_warp_correction = !env_off("MCV_SCAN_WARP_CORRECTION");
  cfg.require_warp_correction = env_int("MCV_SCAN_WARP_CORRECTION", 0) == 2;
  // The pipelined kernel wherever the layouts allow (scan_pipe.cuh); MCV_SCAN_PIPE=0 keeps the
  // older tiled kernel everywhere (for comparisons and its tests).
  cfg.allow_pipe = !env_off("MCV_SCAN_PIPE");
  // Several directions run in separate blocks (summed by a merge pass) rather than one after the
  // other in each channel's thread: K times the parallelism for the latency-bound recurrence.
  // MCV_SCAN_SERIAL_DIRS=1 restores the serial form (for comparisons).
  // (The fixed-B/C generic kernel always runs directions serially.)
  p.par_dirs = p.dirs > 1 && p.B_var && p.C_var && env_int("MCV_SCAN_SERIAL_DIRS", 0) != 1;
  // Cross-scans with their column orders staged as transposed channel rows (below, where the
  // copies are made): decided here, since the kernel choice depends on the rows it will read.
  const int cols_mode = env_off("MCV_SCAN_COLS") ? 0 : env_int("MCV_SCAN_COLS", 1);
  const bool stage = cfg.allow_pipe && p.par_dirs && p.mode == 3 && !env_off("MCV_SCAN_STAGE");
  const bool stage_cols = stage && cols_mode != 0 && (cols_mode == 2 || p.u.sl == 1) && cuda::cols_staging_fits(p);
  // Independent recurrences: channels x directions run in parallel.
  const long long channels = static_cast<long long>(p.batch) * p.dim * p.dir_blocks();
  if (!p.B_var || !p.C_var) {
    cfg.generic = true;
    cfg.generic_nmax = p.n_state <= 16 ? 16 : p.n_state <= 64 ? 64 : 256;
  } else {
    // N bucket: kS states per thread x lanes threads per channel.
    int states = 16, lanes = 1;
    if (p.n_state == 1) states = 1;
    else if (p.n_state <= 4) states = 4;
    else if (p.n_state <= 8) states = 8;
    else if (p.n_state > 16) {
      const int q = (p.n_state + 15) / 16;
      lanes = q <= 2 ? 2 : q <= 4 ? 4 : q <= 8 ? 8 : 16;
    }
    // Too few channels to fill the GPU (small batch, or several directions run one after the
    // other by each channel's thread): split each channel's states over 2 or 4 lanes.
    // Measured on H100 (bf16): S5 (20k channels) 1.4x faster with 2 lanes; S1 (49k) 1.2-1.7x
    // slower with 2-4; VMamba SS2D fused token-major (12k channels x 4 directions) 1.18x faster
    // with 4 lanes than with 2.
    const long long target = 256LL * sms;
    const int want_lanes = env_int("MCV_SCAN_LANES", 0);
    // f32 N in 9..16: two lanes of 8 states (half the shared memory and registers per channel).
    // H100, pipelined kernel: S1 f32 0.172 -> 0.150 ms, S3 f32 2.98 -> 2.00 ms (bf16 loses:
    // S3 1.59 -> 1.88 ms).
    if (pr.dtype == DType::f32 && !want_lanes && p.n_state > 8 && p.n_state <= 16) {
      states = 8;
      lanes = 2;
    }
    if (p.n_state <= 16) {
      const bool long_seq = p.dir_blocks() == 1 && p.seqlen >= 2048;  // will be L-chunked instead
      // Long single-direction sequences: more L-chunks rather than lanes for 16-bit I/O (H100,
      // S6 bf16: 1 lane x 32 chunks 5.11-5.15 ms against 2 x 16 5.51 ms; f32 1 lane 8.3 ms).
      const int long_lanes = pr.dtype == DType::f32 ? 2 : 1;
      const int max_lanes = want_lanes ? want_lanes : long_seq ? long_lanes : channels * 2 < target ? 4 : 2;
      while (states >= 8 && lanes < max_lanes && (want_lanes || channels * lanes < target)) {
        states /= 2;
        lanes *= 2;
      }
    }
    cfg.states_per_thread = states;
    cfg.lanes = lanes;
    // One state per channel and enough channels not to need L-chunks (below): two threads per
    // channel, each taking half of every tile's steps (scan_pipe.cuh, pipe_min_blocks).
    // MCV_SCAN_SEGMENTS=1 keeps one thread per channel, =2 takes segments wherever they apply
    // (comparisons, tests); then no L-chunks.
    const bool one_dir_blocks = p.dirs == 1 || p.par_dirs;  // segments and L-chunks need them
    const int want_segments = env_int("MCV_SCAN_SEGMENTS", 0), want_chunks = env_int("MCV_SCAN_CHUNKS", 0);
    const bool seg_fit = states == 1 && lanes == 1 && one_dir_blocks && want_chunks <= 1;
    // f32 with channel rows only: H100, S4 (49k channels, 3136 steps) f32 1.556 -> 1.146 ms,
    // where one thread per channel waits on its 8-byte row copies (ncu: 0.27 issued per cycle,
    // 37 % long-scoreboard stalls; with segments 0.44); bf16 0.711 -> 0.767, where the 16-byte
    // copies leave less to hide than the segments' extra instructions (+22 % per channel-step)
    // cost; VMamba-T f32 (token-major cross-scans) 57.24 -> 57.87 ms per batch of 128.
    const bool channel_rows = (p.mode != 3 && p.u.sl == 1 && p.delta.sl == 1) || stage_cols;
    const bool seg_default = pr.dtype == DType::f32 && channel_rows && channels >= target;
    cfg.segments = seg_fit && (want_segments ? want_segments == 2 : seg_default) ? 2 : 1;
    // Channels per block: 128 threads' worth; MCV_SCAN_MAX_CHANNELS lowers it (for tuning).
    // (Channels per block a multiple of 32 / lanes, also with segments: the tiled kernel, which
    // runs them where the pipelined one does not apply, needs blocks of whole warps.)
    const int unit = std::max(1, 32 / lanes);
    const int max_channels =
        std::min(128 / (lanes * cfg.segments), std::max(unit, env_int("MCV_SCAN_MAX_CHANNELS", 128)));
    const int blocks = (p.cpg + max_channels - 1) / max_channels;
    cfg.channels_per_block = std::min(max_channels, round_up((p.cpg + blocks - 1) / blocks, unit));
    cfg.blocks_per_group = (p.cpg + cfg.channels_per_block - 1) / cfg.channels_per_block;

    // Still too few threads (small batch; long sequences): scan L-chunks in parallel (one
    // direction per block only). Each chunk after the first costs a correction pass over its
    // start (until its initial state has decayed), so more chunks are not free: S6 (1536
    // channels, L 262144) measured 2 lanes x {8, 11, 16, 17} chunks = {15.6, 11.8, 9.2, 14.3} ms,
    // 4 x 11 = 14.0, 1 x 22 = 13.3 (H100, bf16, older kernels; session 15, with the correction
    // stopped by output type, ms: bf16 24 / 32 / 40 / 48 chunks 3.79 / 3.04 / 3.51 / 3.53; f32
    // 16 / 24 / 40 / 48 chunks 4.19 / 5.27 / 5.52 / 5.41). So: as many chunks as fill the
    // resident blocks once (wave_filling_chunks, chunking.h). Chunks are at least
    // min_chunk steps (1024 for long sequences, where the correction of slowly decaying states
    // is long; one or two tiles for short vision sequences at batch 1, where the alternative is
    // a few hundred dependent steps).
    const long long threads = channels * lanes;
    const int min_chunk = env_int("MCV_SCAN_MIN_CHUNK", p.seqlen >= 16384 ? 1024 : p.seqlen >= 1024 ? 64 : 32);
    int chunks = want_chunks;
    if (chunks == 0 && cfg.segments == 1 && one_dir_blocks && threads < target && p.seqlen >= 2 * min_chunk) {
      const long long per_chunk = static_cast<long long>(p.batch) * p.groups * cfg.blocks_per_group * p.dir_blocks();
      chunks = wave_filling_chunks(sms, per_chunk, cfg.channels_per_block * lanes, p.seqlen, min_chunk);
    }
    if (one_dir_blocks && chunks > 1) {
      p.chunk_len = round_up((p.seqlen + chunks - 1) / chunks, cuda::kChunkQuantum);
      p.n_chunks = (p.seqlen + p.chunk_len - 1) / p.chunk_len;
      // The correction of a chunk's outputs stops where what is left of the carried state is 16x
      // under the output type's rounding (unit roundoff 2^-24 f32, 2^-11 f16, 2^-8 bf16) of the
      // channel's largest carried state: it only decays further, and sum C g is dominated by the
      // slowest state once the others are far below the line. Pass 1 already rounds the
      // provisional 16-bit outputs before the correction adds to them. (2^-40 took 40/28 as many
      // steps as 2^-28: S6 bf16 6.50 -> 6.00 ms. 16-bit outputs stopped at 2^-28 too until
      // session 15.) MCV_SCAN_CORRECTION_BITS=b stops it at 2^-b instead (comparisons, tests).
      p.correction_exponent = -env_int("MCV_SCAN_CORRECTION_BITS",
                                       pr.dtype == DType::f32 ? 28 : pr.dtype == DType::f16 ? 15 : 12);
    }
  }

  // Scratch from the context's workspace arena: no cudaMalloc in the op once it is sized. It is
  // handed back once the kernels are queued (stream order), so the per-direction slices of one
  // layer's scan are reused by the next instead of adding up over a forward pass.
  Arena& ws = ctx.workspace();
  const Arena::Mark ws_mark = ws.mark();
  const std::size_t elem = dtype_size(pr.dtype);
  const cudaStream_t stream = cu.stream;
  // Channel-major cross2d: the column-major orders step through a channel's H x W plane W
  // elements apart, so every step's element is its own 32-byte sector and the pipelined kernel's
  // 16-byte row copies do not apply; that shape ran on the tiled kernel at 13x its floor (H100,
  // VMamba SS2D at S3 size, bf16: 8.30 ms against 1.93 token-major), and a pipelined variant
  // gathering one 4-byte word per channel and step was slower still (12.2 ms). Instead the
  // channel-major streams are copied once to token-major scratch (rows padded to 8 elements, so
  // every token row is 16-byte aligned) and the output copied back: one layout copy shared by
  // the four directions, which stay index maps: 2.34 ms (f32 10.96 -> 3.21). MCV_SCAN_STAGE=0
  // turns it off (for comparisons).
  //
  // Column orders staged (the default where u is in channel rows): instead, u, delta's and B/C's
  // column-order slices (k = 1, 3) are copied once transposed per H x W plane (W x H: column
  // order L-contiguous), the row orders read u, delta's slices 0, 2, B and C in place (u and
  // delta not in channel rows are copied to them first), so every direction walks channel rows -
  // TMA boxes where aligned - and writes its slice of acc in its own order; the merge pass
  // transposes the column-order slices back (scan_merge_cols_kernel). H100, VMamba SS2D at S3
  // size, channel-major grid, ms: N 16 bf16 2.36 -> 1.62, f32 3.30 -> 2.27; N 1 bf16 1.32 ->
  // 0.83, f32 1.99 -> 1.77. A token-major grid stays on the token-major kernel, which needs none
  // of the copies (staged: N 16 bf16 1.96 -> 2.03 ms, f32 2.54 -> 3.11, the copies of its four
  // token-major delta slices being most of the difference). MCV_SCAN_COLS=2 stages every
  // layout (tests), =0 none.
  // Element `elems` of a tensor at base.
  auto at = [&](const void* base, std::int64_t elems) {
    return static_cast<char*>(const_cast<void*>(base)) + static_cast<std::size_t>(elems) * elem;
  };
  // The H x W planes of a tensor as relayout() streams (batch, plane, h, w): plane i of batch b
  // at ptr + b sb + i sp, element (h, w) at (cols ? w H + h : h W + w) sl.
  auto planes_view = [&](const void* ptr, std::int64_t sb, std::int64_t sp, std::int64_t sl, bool cols) {
    return cuda::SeqP{ptr, sb, sp, cols ? sl : p.width * sl, cols ? p.height * sl : sl};
  };
  // Column directions' delta, B and C given column-major (Problem::cols_transposed) on a path
  // that reads them at grid positions (everything but the staged column orders, which take them
  // as they are): copied back to grid order first, in channel rows.
  if (pr.cols_transposed && !stage_cols) {
    const std::int64_t L = p.seqlen, D = p.dim;
    // `planes` planes of each batch, column-major where col, to grid order at to + b to_sb + i to_sp.
    auto to_grid = [&](const void* from, std::int64_t sb, std::int64_t sp, std::int64_t sl, int planes, bool col,
                       void* to, std::int64_t to_sb, std::int64_t to_sp) {
      cuda::relayout(planes_view(from, sb, sp, sl, col), planes_view(to, to_sb, to_sp, 1, false), p.batch, planes,
                     p.height, p.width, elem, stream);
    };
    char* delta = static_cast<char*>(ws.allocate(static_cast<std::size_t>(p.batch) * p.dirs * D * L * elem));
    for (int k = 0; k < p.dirs; ++k)
      to_grid(at(p.delta.ptr, k * p.delta.sk), p.delta.sb, p.delta.sd, p.delta.sl, p.dim, k & 1,
              at(delta, k * D * L), p.dirs * D * L, L);
    p.delta = {delta, p.dirs * D * L, D * L, L, 1};
    const std::int64_t KG = static_cast<std::int64_t>(p.dirs) * p.groups, N = p.n_state;
    auto bc_to_grid = [&](const void*& ptr, std::int64_t& sb, std::int64_t& sg, std::int64_t& sn, std::int64_t& sl) {
      char* to = static_cast<char*>(ws.allocate(static_cast<std::size_t>(p.batch) * KG * N * L * elem));
      for (std::int64_t slot = 0; slot < KG; ++slot)
        to_grid(at(ptr, slot * sg), sb, sn, sl, p.n_state, (slot / p.groups) & 1,
                at(to, slot * N * L), KG * N * L, L);
      ptr = to;
      sb = KG * N * L;
      sg = N * L;
      sn = L;
      sl = 1;
    };
    if (p.B_var) bc_to_grid(p.B, p.B_sb, p.B_sg, p.B_sn, p.B_sl);
    if (p.C_var) bc_to_grid(p.C, p.C_sb, p.C_sg, p.C_sn, p.C_sl);
  }
  cuda::SeqP out_final = p.out;
  // u, delta and z not in the layout the scan will read are copied to scratch(slices) (delta
  // with its K slices), and an output not in it is written to scratch(1) and copied back after.
  auto restage = [&](auto&& in_layout, auto&& scratch) {
    for (cuda::SeqP* s : {&p.u, &p.delta, &p.z})
      if (s->ptr && !in_layout(*s)) {
        const int slices = s->sk != 0 ? p.dirs : 1;
        const cuda::SeqP t = scratch(slices);
        cuda::relayout(*s, t, p.batch, slices, p.dim, p.seqlen, elem, stream);
        *s = t;
      }
    if (!in_layout(p.out)) p.out = scratch(1);
  };
  if (stage_cols) {
    const std::int64_t D = p.dim, L = p.seqlen;
    // Contiguous channel rows (batch, slices, D, L).
    auto rows = [&](int slices) -> cuda::SeqP {
      void* m = ws.allocate(static_cast<std::size_t>(p.batch) * slices * D * L * elem);
      return {m, slices * D * L, slices > 1 ? D * L : 0, L, 1};
    };
    restage([](const cuda::SeqP& s) { return s.sl == 1; }, rows);
    // `planes` H x W planes (plane i of batch b at from + b sb + i plane, element (h, w) at
    // (h W + w) sl) into W x H planes, L-contiguous (at to + b to_sb + i to_plane): the relayout
    // of (H, W) "channel x step" tiles with the planes as its slices.
    // Planes with contiguous, aligned rows are gathered for transpose_planes (16-byte accesses,
    // few launches; MCV_SCAN_TRANSPOSE_VEC=0: never), the others copied at once by relayout().
    std::vector<cuda::PlaneCopy> plane_copies;
    const bool vec_transposes = !env_off("MCV_SCAN_TRANSPOSE_VEC");
    auto transpose = [&](const void* from, std::int64_t sb, std::int64_t plane, std::int64_t sl, int planes,
                         const void* to, std::int64_t to_sb, std::int64_t to_plane) {
      const cuda::PlaneCopy pc{from, const_cast<void*>(to), sb, plane, to_sb, to_plane, planes};
      if (vec_transposes && sl == 1 && cuda::transpose_planes_fit(pc, p.height, p.width, elem)) {
        plane_copies.push_back(pc);
        return;
      }
      cuda::relayout(planes_view(from, sb, plane, sl, false), planes_view(to, to_sb, to_plane, 1, true), p.batch,
                     planes, p.height, p.width, elem, stream);
    };
    // The copies keep the direction slots of what they stand for (Params::cols: the kernel
    // addresses both the same way); only the odd directions' slots are written.
    // Column inputs already column-major (Problem::cols_transposed) are read as they are: only u
    // is copied.
    cuda::DirInputs& c = p.cols;
    const std::int64_t KG = static_cast<std::int64_t>(p.dirs) * p.groups, N = p.n_state;
    c.u = rows(1);
    transpose(p.u.ptr, p.u.sb, p.u.sd, 1, p.dim, c.u.ptr, c.u.sb, c.u.sd);
    if (pr.cols_transposed) {
      c.delta = p.delta;
    } else {
      c.delta = rows(p.dirs);
      for (int k = 1; k < p.dirs; k += 2)
        transpose(at(p.delta.ptr, k * p.delta.sk), p.delta.sb, p.delta.sd, 1, p.dim, at(c.delta.ptr, k * c.delta.sk),
                  c.delta.sb, c.delta.sd);
    }
    // B and C, (batch, K G, N, L): per odd direction and group, the states as the planes.
    auto transpose_bc = [&](const void* from, std::int64_t sb, std::int64_t sg, std::int64_t sn, std::int64_t sl) {
      void* to = ws.allocate(static_cast<std::size_t>(p.batch * KG * N * L) * elem);
      for (int k = 1; k < p.dirs; k += 2)
        for (std::int64_t g = 0; g < p.groups; ++g) {
          const std::int64_t slot = k * p.groups + g;
          transpose(at(from, slot * sg), sb, sn, sl, p.n_state, at(to, slot * N * L), KG * N * L, L);
        }
      return to;
    };
    if (pr.cols_transposed) {
      c.B = p.B;
      c.C = p.C;
      c.B_sb = p.B_sb, c.B_sg = p.B_sg, c.B_sn = p.B_sn, c.B_sl = p.B_sl;
      c.C_sb = p.C_sb, c.C_sg = p.C_sg, c.C_sn = p.C_sn, c.C_sl = p.C_sl;
    } else {
      c.B = transpose_bc(p.B, p.B_sb, p.B_sg, p.B_sn, p.B_sl);
      c.C = transpose_bc(p.C, p.C_sb, p.C_sg, p.C_sn, p.C_sl);
      c.B_sb = c.C_sb = KG * N * L;
      c.B_sg = c.C_sg = N * L;
      c.B_sn = c.C_sn = L;
      c.B_sl = c.C_sl = 1;
    }
    cuda::transpose_planes(plane_copies.data(), static_cast<int>(plane_copies.size()), p.batch, p.height, p.width,
                           elem, stream);
    p.cols_staged = true;
  } else if (stage) {
    const std::int64_t ld = round_up(p.dim, 8), L = p.seqlen;
    // Token-major rows padded to 8 elements.
    restage([](const cuda::SeqP& s) { return s.sd == 1; }, [&](int slices) -> cuda::SeqP {
      void* m = ws.allocate(static_cast<std::size_t>(p.batch) * slices * L * ld * elem);
      return {m, slices * L * ld, slices > 1 ? L * ld : 0, 1, ld};
    });
  }
  if (p.dirs > 1) {
    // Serial directions: one f32 running sum. par_dirs: one slice per direction in the I/O type,
    // as the official CrossScan path stores its per-direction outputs (half the bytes of f32;
    // the merge sums them in f32). Either in the output's order, so the tiles store and the
    // merge pass reads them coalesced.
    const std::int64_t slices = p.par_dirs ? p.dirs : 1, D = p.dim, L = p.seqlen;
    const std::size_t acc_elem = p.par_dirs ? elem : sizeof(float);
    void* acc = ws.allocate(static_cast<std::size_t>(p.batch) * slices * D * L * acc_elem);
    if (p.out.sd == 1 && !p.cols_staged)
      p.acc = {acc, slices * D * L, D * L, 1, D};
    else
      p.acc = {acc, slices * D * L, D * L, L, 1};
  }
  if (p.n_chunks > 1) {
    const std::size_t cells = static_cast<std::size_t>(p.n_chunks) * channels;
    p.chunk_h = static_cast<float*>(ws.allocate(cells * p.n_state * sizeof(float)));
    p.chunk_dtsum = static_cast<float*>(ws.allocate(cells * sizeof(float)));
  }

  switch (pr.dtype) {
    case DType::f32: cuda::launch_scan_f32(p, cfg, stream); break;
    case DType::f16: cuda::launch_scan_f16(p, cfg, stream); break;
    case DType::bf16: cuda::launch_scan_bf16(p, cfg, stream); break;
    default: throw Error("selective_scan", "unsupported dtype on the CUDA path");
  }
  if (p.out.ptr != out_final.ptr) cuda::relayout(p.out, out_final, p.batch, 1, p.dim, p.seqlen, elem, stream);
  ws.rewind(ws_mark);
}

}  // namespace mcv::kernels::scan
