#pragma once
// Kernel parameters of the CUDA selective scan: sizes, element strides and pointers, filled once
// by launch.cu from the validated scan::Problem. Plain data, passed by value to every kernel.

#include <cuda_runtime.h>

#include <cstdint>

#include "common/cuda_math.cuh"

namespace mcv::kernels::scan::cuda {

/// A per-step channel stream (u, delta, z, out, acc): element (b, k, d, l) at
/// b*sb + k*sk + d*sd + l*sl.
struct SeqP {
  const void* ptr = nullptr;
  std::int64_t sb = 0, sk = 0, sd = 0, sl = 0;
};

/// A direction's input streams as the pipelined kernel reads them: u and delta (slice k), B and
/// C (group k * G + g, strides as in Params).
struct DirInputs {
  SeqP u, delta;
  const void* B = nullptr;
  const void* C = nullptr;
  std::int64_t B_sb = 0, B_sg = 0, B_sn = 0, B_sl = 0;
  std::int64_t C_sb = 0, C_sg = 0, C_sn = 0, C_sl = 0;
};

struct Params {
  int batch = 0, dim = 0, seqlen = 0, n_state = 0;
  int groups = 1;  ///< G per direction
  int dirs = 1;    ///< K
  int cpg = 0;     ///< channels per group, D / G
  int mode = 0;    ///< ScanDirections as int: 0 forward, 1 reverse, 2 bidirectional, 3 cross2d
  int height = 1, width = 1;
  ::mcv::kernels::cuda::FastDiv height_div;  ///< cross2d: t / height for the column-major orders
  bool softplus = false;
  float out_scale = 1.0f;

  SeqP u, delta, z, out;  ///< z.ptr null when absent
  SeqP acc;               ///< K > 1: partial sums (f32) or per-direction slices (par_dirs, I/O type)

  const void* B = nullptr;
  std::int64_t B_sb = 0, B_sg = 0, B_sn = 0, B_sl = 0;  ///< fixed B: B_sg = row (k*D+d) stride
  bool B_var = true;
  const void* C = nullptr;
  std::int64_t C_sb = 0, C_sg = 0, C_sn = 0, C_sl = 0;
  bool C_var = true;

  const float* A = nullptr;
  std::int64_t A_sc = 0, A_sn = 0;
  const float* Dskip = nullptr;
  std::int64_t D_s = 0;
  const float* bias = nullptr;
  std::int64_t bias_s = 0;
  const float* h0 = nullptr;
  std::int64_t h0_sb = 0, h0_sk = 0, h0_sd = 0, h0_sn = 0;
  float* hT = nullptr;
  std::int64_t hT_sb = 0, hT_sk = 0, hT_sd = 0, hT_sn = 0;

  // K > 1 with par_dirs: each direction runs in its own blocks as a one-direction scan whose
  // output (y_k + D_k u, no gate) goes to its slice of acc (batch, K, D, L; I/O type), and a merge pass
  // sums the slices, gates and writes out. Without it one thread runs every direction in turn
  // and acc holds the running sum (4x less parallelism for VMamba's cross-scan).
  bool par_dirs = false;
  /// cross2d with par_dirs, column orders staged (launch.cu): the column-major directions (odd k)
  /// read `cols` - u (batch, D, L) with each H x W plane transposed to W x H, so that column
  /// order is L-contiguous; delta (batch, 4, D, L) and B, C (batch, 4 G, N, L) transposed the
  /// same way in the slots of the odd directions - the row-major ones u, delta, B and C as given,
  /// u and delta in channel rows. Every direction then walks its streams as ranges (reversed for
  /// k >= 2) and writes its acc slice in its own order - column order for odd k, which the merge
  /// pass transposes back.
  bool cols_staged = false;
  DirInputs cols;
  /// The pipelined kernel's inputs of direction k: in[0] u, delta, B, C as above; in[1] cols,
  /// read by odd k where staged (the kernel's kCols). Set by with_pipe_inputs on the host.
  DirInputs in[2];
  /// The pipelined kernel stores channel-row outputs cooperatively from two staging buffers
  /// (store_rows_coop): chosen on the host where every unit is whole (pipe_coop_rows).
  bool coop_rows = false;
  /// Bidirectional with par_dirs on the step-row boxes (scan_kernels.cuh): each direction adds
  /// its gated, scaled output into out (zeroed first) by TMA reduce-add box stores, and no acc
  /// or merge pass is needed. Two addends onto zero: round(a + b) whichever lands first, so the
  /// result does not depend on the order.
  bool reduce_out = false;
  __host__ __device__ int dir_blocks() const { return par_dirs ? dirs : 1; }
  // A one-direction-per-block pass (dirs == 1 or par_dirs) writes the gated, scaled output, or
  // with par_dirs its direction's ungated slice of acc (the merge pass sums, scales and gates),
  // or with reduce_out adds its gated, scaled output into out.
  __host__ __device__ bool merged_by_pass() const { return par_dirs && !reduce_out; }
  __host__ __device__ bool pass_gates_z() const { return !merged_by_pass() && z.ptr != nullptr; }
  __host__ __device__ const SeqP& pass_target() const { return merged_by_pass() ? acc : out; }
  __host__ __device__ float pass_scale() const { return merged_by_pass() ? 1.0f : out_scale; }

  // Long sequences with few channels: L is split into n_chunks ranges of chunk_len steps scanned
  // in parallel from h = 0; chunk_h (n_chunks, dir_blocks, batch, D, n_state) and chunk_dtsum
  // (n_chunks, dir_blocks, batch, D) carry each chunk's end state and sum of dt to the combine
  // pass. Only for one direction per block (dirs == 1 or par_dirs).
  int n_chunks = 1, chunk_len = 0;
  /// A chunk's correction stops once every carried |H_in * decay| of its block is below
  /// 2^correction_exponent of the block's |H_in| max (launch.cu: by output type).
  int correction_exponent = -28;
  float* chunk_h = nullptr;
  float* chunk_dtsum = nullptr;
};

/// Whether the B/C element offsets within a (batch, group) fit 32 bits (the pipelined kernel
/// keeps them so: pipe_supported).
inline bool bc_offsets_fit(const Params& p) {
  const auto fits = [&](std::int64_t sn, std::int64_t sl) {
    return sn >= 0 && sl >= 0 && (p.n_state - 1) * sn + (static_cast<std::int64_t>(p.seqlen) - 1) * sl < (1ll << 31);
  };
  return fits(p.B_sn, p.B_sl) && fits(p.C_sn, p.C_sl);
}

/// p with its pipelined-kernel inputs (Params::in) filled in.
inline Params with_pipe_inputs(Params p) {
  p.in[0] = {p.u, p.delta, p.B, p.C, p.B_sb, p.B_sg, p.B_sn, p.B_sl, p.C_sb, p.C_sg, p.C_sn, p.C_sl};
  p.in[1] = p.cols_staged ? p.cols : p.in[0];
  return p;
}

/// Whether launch.cu may stage cross2d's column orders (Params::cols_staged): only the pipelined
/// kernel reads the staged copies, so its conditions that do not depend on them must hold.
/// The merge's 32 x 32 tiles of a plane (its smallest) must fit a grid dimension.
inline bool cols_staging_fits(const Params& p) {
  const std::int64_t merge_tiles = ((p.height + 31ll) / 32) * ((p.width + 31ll) / 32);
  return p.mode == 3 && p.par_dirs && p.B_var && p.C_var && bc_offsets_fit(p) &&
         static_cast<std::int64_t>(p.n_state) * p.seqlen < (1ll << 31) &&  // the staged B/C's offsets
         merge_tiles <= 65535;
}

/// Launch geometry chosen by launch.cu.
struct LaunchConfig {
  int states_per_thread = 16;  ///< kS
  int lanes = 1;               ///< threads sharing one channel's states (N = kS * lanes bucket)
  int segments = 1;            ///< threads sharing each tile's steps (pipelined kernel, kSeg)
  int channels_per_block = 0;
  int blocks_per_group = 0;
  bool generic = false;        ///< fixed B or C: the simple per-channel kernel
  int generic_nmax = 16;
  bool allow_pipe = true;      ///< the pipelined kernel where it applies (MCV_SCAN_PIPE=0: never)
  std::size_t smem_optin = 48 * 1024;  ///< the device's shared memory per block limit
  std::size_t smem_per_sm = 0;          ///< shared memory per multiprocessor
  std::size_t smem_reserved = 0;        ///< shared memory the system reserves per block
  bool allow_coop_rows = true;          ///< MCV_SCAN_COOP_ROWS=0: never (comparisons)
  bool allow_tma = true;                ///< TMA boxes where they apply (MCV_SCAN_TMA=0: never)
  bool require_tma = false;             ///< MCV_SCAN_TMA=2: an error where they do not (tests)
  bool allow_warp_tma = true;           ///< warp pipelines where they apply (MCV_SCAN_WARP_TMA=0: never)
  bool require_warp_tma = false;        ///< MCV_SCAN_WARP_TMA=2: an error where they do not (tests)
  bool allow_step_tma = true;           ///< step-row boxes where they apply (MCV_SCAN_STEP_TMA=0: never)
  bool require_step_tma = false;        ///< MCV_SCAN_STEP_TMA=2: an error where they do not (tests)
  bool allow_reduce_out = true;         ///< Params::reduce_out where it applies (MCV_SCAN_REDUCE_OUT=0: never)
  bool require_reduce_out = false;      ///< MCV_SCAN_REDUCE_OUT=2: an error where it does not (tests)
  /// Staged cross2d: the 16-byte plane merge where it applies (MCV_SCAN_MERGE_VEC=0: the tile
  /// merge always; comparisons, tests).
  bool allow_merge_vec = true;
  /// L-chunks: the warp correction where it applies (MCV_SCAN_WARP_CORRECTION=0: never, =2: also
  /// on short token-major chunks, and an error where it does not apply; scan_correct.cuh).
  bool allow_warp_correction = true;
  bool require_warp_correction = false;
};

/// Steps staged per shared-memory tile. 16 for the N=16 bucket: half the shared memory per
/// channel, and the tile's loads wait less before the recurrence starts (H200, bf16: S1 0.224 ->
/// 0.179 ms, S3 3.03 -> 2.55 ms; f32 S1 0.232 -> 0.154 ms); 32 for smaller N, where the extra
/// barrier per 16 steps cost more than it saved (S4 1.71 -> 2.24 ms, S5 0.081 -> 0.100 ms with 16).
constexpr int tile_steps(int states_per_thread) { return states_per_thread >= 16 ? 16 : 32; }
/// Chunk lengths are multiples of this (every tile size divides it).
constexpr int kChunkQuantum = 32;

/// Dynamic shared memory of the tiled kernels: B/C tiles, four [step][channel] f32 tiles, and
/// two tiles' positions.
inline std::size_t tile_smem_bytes(int channels, int lanes, int states) {
  const int nb = states * lanes;
  const std::size_t steps = static_cast<std::size_t>(tile_steps(states));
  const std::size_t bc = 2ull * steps * (nb + 4) * sizeof(float);
  const std::size_t seq = 4ull * steps * (channels + 1) * sizeof(float);
  return bc + seq + 2ull * steps * sizeof(std::int64_t);
}

// One entry point per I/O dtype (scan_<type>.cu, generated by scan_instances.cmake with the
// run_tiled instances in part files).
void launch_scan_f32(const Params& p, const LaunchConfig& cfg, cudaStream_t stream);
void launch_scan_f16(const Params& p, const LaunchConfig& cfg, cudaStream_t stream);
void launch_scan_bf16(const Params& p, const LaunchConfig& cfg, cudaStream_t stream);

}  // namespace mcv::kernels::scan::cuda
