#pragma once
// The chunked path's correction as one warp per (chunk, channel), its 32 lanes on 32 consecutive
// steps (scan_correct.cu); for token-major streams one warp per (chunk, 32 channels), a lane per
// channel (scan_correct_lanes_kernel there). The block correction of the pipelined and tiled
// kernels runs every channel of a block until the block's slowest carried state has decayed, one
// serial chain per channel; these run each channel only as far as its own carried state needs,
// and the first spreads a long head over the lanes instead of one thread's chain.
//
// Why it can: chunk c's correction adds g_t * sum_n C_t[n] H_in[n] 2^(a2[n] S_t) to its outputs,
// S_t the sum of dt over the chunk's steps up to t. The only serial part is S_t, a prefix sum of
// one scalar per channel (a warp scan per 32 steps); every term is then independent. With
// softplus, dt >= 0, so S_t only grows and each state's last step above the stop line is known
// ahead: the state is dropped from the sum once S_t passes it, and the channel stops when every
// state has.
//
// Measured (H200, S6 = batch 1, D 1536, L 262144, N 16; ms bf16 / f32; PERFORMANCE.md
// "session 23"): the block correction 2.89 / 3.67 (pass 1 alone 2.64 / 3.17); warps with one step
// per lane 2.93 / 3.49 (issue-bound: ~300 instructions per 32 steps); four consecutive steps per
// lane 2.85 / 3.38; the direction a compile-time constant (64-bit address arithmetic per element
// had been a third of the loop) 2.88 / 3.32; H_in by one combine pass instead of each warp
// walking the chunks before its own 2.82 / 3.33; whole segments without per-step guards, 12
// blocks per SM 2.74 / 3.32; with 33 chunks (session 24) 2.682 / 3.31; the next segment kept as
// loaded words, converted at use (load_word: the conversion had made each prefetch wait at once;
// ncu: 33 % of the stalls on long scoreboard) 2.667 / 3.32 (session 25).

#include <cuda_runtime.h>

#include "selective_scan/cuda/scan_params.cuh"

namespace mcv::kernels::scan::cuda {

/// Whether a warp correction applies to a chunked launch: softplus on (S_t grows), the steps
/// walked in order (forward, reverse, bidirectional; not cross2d's column orders), and either
/// every stream it reads (delta, z, C) and the pass's target in rows contiguous along L, so that
/// a warp's 32 steps are one coalesced access (one warp per (chunk, channel)), or - the models'
/// token-major layout - delta, z and the target with channels contiguous at each step, N <= 16
/// and a warp's 32 channels in one channel group (one warp per (chunk, 32 channels), each lane
/// its channel's steps in order: scan_correct_lanes_kernel; chunks of 1,024 steps or more unless
/// forced, e.g. by MCV_SCAN_WARP_CORRECTION=2).
bool warp_correction_fits(const Params& p, bool forced = false);

/// The correction of chunks 1 .. n_chunks - 1 after pass 1 (which wrote chunk_h, chunk_dtsum and
/// the provisional outputs); also writes the final state where asked. Defined for float, __half
/// and __nv_bfloat16 in scan_correct.cu.
template <typename T>
void launch_warp_correction(const Params& p, cudaStream_t stream);

}  // namespace mcv::kernels::scan::cuda
