#pragma once
// How many L-chunks a scan with too few threads for the GPU takes (cuda/launch.cu). Host
// arithmetic only, apart from the launcher so that the CPU tests can check it.

#include <algorithm>
#include <cstdint>

namespace mcv::kernels::scan {

/// Blocks of 128 threads per SM the pipelined scan kernel is built for (its launch bounds,
/// scan_pipe.cuh pipe_min_blocks; the tiled kernel's are the same): three at 168 registers.
/// MCV_SCAN_PIPE_MIN_BLOCKS overrides it for experiments (MCV_SCAN_CUDA_FLAGS=-D...), and the
/// chunk count below follows.
#ifndef MCV_SCAN_PIPE_MIN_BLOCKS
#define MCV_SCAN_PIPE_MIN_BLOCKS 3
#endif
inline constexpr int kScanBlocksPerSm = MCV_SCAN_PIPE_MIN_BLOCKS;
/// Warps per SM those blocks hold.
inline constexpr int kResidentWarpsPerSm = 4 * kScanBlocksPerSm;

/// As many chunks as fill the resident blocks once, within [1, ceil(seqlen / min_chunk)]. The
/// blocks of one wave all run about as long, so a launch takes one block's chunk: filling every
/// slot makes the chunks as short as they can be, and one chunk more than fits starts a second
/// wave of its own (H200, S6: bf16 12 blocks a chunk, 396 resident - 31 / 32 / 33 / 34 chunks
/// 2.828 / 2.743 / 2.683 / 3.41 ms; f32 24 a chunk - 16 / 17 chunks 3.30 / 4.78).
inline int wave_filling_chunks(int sms, std::int64_t blocks_per_chunk, int block_threads, std::int64_t seqlen,
                               int min_chunk) {
  const int block_warps = (block_threads + 31) / 32;
  const std::int64_t resident = static_cast<std::int64_t>(sms) * std::max(1, kResidentWarpsPerSm / block_warps);
  const std::int64_t max_chunks = (seqlen + min_chunk - 1) / min_chunk;
  return static_cast<int>(std::clamp<std::int64_t>(resident / std::max<std::int64_t>(1, blocks_per_chunk), 1,
                                                   std::max<std::int64_t>(1, max_chunks)));
}

}  // namespace mcv::kernels::scan
