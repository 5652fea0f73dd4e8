#pragma once
// Hopper tensor-memory-accelerator (TMA) pieces of the pipelined selective scan: the tensor maps
// of its channel-row and step-row streams (built on the host with the driver's
// cuTensorMapEncodeTiled) and the device wrappers of the bulk tensor copies (loads, stores,
// reduce-add stores) and the mbarriers they complete on.
//
// Why: with 16-byte aligned rows (L a multiple of 8 for 16-bit I/O) one elected thread moves a
// tile's [channels x 16 steps] box of u, delta and z with one instruction each, and the output
// box back, where the cp.async loops and the cooperative stores cost every thread ~12 of S4's
// 74 instructions per warp-step (docs/notes/selective_scan.md, "Where it stands"). One 1D bulk
// copy per 32-byte row segment was measured 25-50 % slower ("Bulk row copies"): the copy engine
// pays per operation, so a box holds many rows - the block's, or for the warp pipelines a warp's
// 32 (1 KB boxes, five per warp and tile with B and C: measured faster, "Warp pipelines").
//
// The boxes land swizzled, the swizzle span = the row (16 steps: 32 bytes for 16-bit I/O, 64
// for f32): in a buffer aligned to 1024 bytes, the 16-byte chunks of row c are permuted by XOR
// with bits of c (tma_swizzle_chunks), so a warp's per-thread row reads spread over 8 banks
// (4-way conflicts, as the padded rows of the cp.async path) where dense rows would be 8-way
// (32-byte rows) or 16-way (64-byte rows).

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <optional>

#include "selective_scan/cuda/scan_params.cuh"
#if defined(__CUDACC__)
#include "selective_scan/cuda/scan_device.cuh"  // smem_u32
#endif

namespace mcv::kernels::scan::cuda {

/// Tensor maps of one pipelined launch: u, delta, z (when gated) and the pass's target, each a
/// 4D view (L, D, K or 1, batch) of its stream; k_* = 1 where the stream has a direction axis
/// (coordinate k), else 0. Passed as a __grid_constant__ kernel parameter (TMA reads the map
/// from parameter space).
struct PipeMaps {
  CUtensorMap u[2], delta[2];  ///< by Params::in: [1] the staged column orders' copies, if any
  CUtensorMap z, out;
  /// Warp pipelines only: B and C as 4D views (L, N, K G slot, batch) of their state rows, boxes
  /// of [N bucket x tile] elements; by Params::in as u and delta.
  CUtensorMap B[2], C[2];
  int k_u = 0, k_delta = 0, k_z = 0, k_out = 0;
};

/// Row widths (bytes) with a swizzle mode of their own span.
constexpr bool tma_row_bytes_ok(int bytes) { return bytes == 32 || bytes == 64 || bytes == 128; }
/// The 16-byte chunk of row `row` (rows of row_bytes, from a 1024-byte boundary) that holds
/// logical chunk c is c ^ tma_swizzle_chunks: the swizzle XORs address bits 4.. with bits 7..
/// (CU_TENSOR_MAP_SWIZZLE_32B/64B/128B).
__host__ __device__ constexpr int tma_swizzle_chunks(int row, int row_bytes) {
  return ((row * row_bytes) >> 7) & (row_bytes / 16 - 1);
}
/// Alignment of the swizzled buffers (the swizzle pattern is a function of address bits 4-9).
constexpr int kTmaAlign = 1024;

/// Whether this launch's channel-row streams can move as TMA boxes: channel rows and kT-step
/// tiles of a swizzle span (tma_row_bytes_ok), every stream and the target with 16-byte aligned rows at
/// each (batch, direction, channel), whole blocks of a group where there are several groups (a
/// box of another group's rows would be stored over), chunk starts on tile boundaries. The device and the kernel binary
/// (sm_90 or newer) are checked by the caller.
bool pipe_tma_layout(const Params& p, int channels, int tile_steps, int elem_bytes);

/// Whether B and C (and their staged column-order copies) can move as TMA boxes too (the warp
/// pipelines): state rows (L contiguous) starting 16-byte aligned at every (batch, slot, state).
bool pipe_tma_bc_layout(const Params& p, int elem_bytes);

/// Whether this launch's step-row streams (D contiguous: token-major) can move as [tile_steps x
/// channels] boxes (kReadStepTma): u, delta, z (when gated) and the target in step rows that
/// start 16-byte aligned at every (batch, direction, position), channel blocks of whole 16-byte
/// units, whole blocks of a group where there are several groups, chunk starts on tile
/// boundaries. cross2d's column orders qualify too: their blocks keep the cp.async rows.
bool pipe_step_tma_layout(const Params& p, int channels, int tile_steps, int elem_bytes);

/// The I/O element types of the maps.
enum class TmaElem { f32, f16, bf16 };
/// The maps of pipe_tma_layout's streams for boxes of [box_rows x tile_steps] elements (the
/// block's channels, or a warp's 32), and with bc_states > 0 those of B and C for boxes of
/// [bc_states x tile_steps]; none when the driver lacks cuTensorMapEncodeTiled or rejects a map
/// (the caller then keeps the cp.async copies).
std::optional<PipeMaps> make_pipe_maps(const Params& p, int box_rows, int tile_steps, TmaElem elem, int bc_states = 0);
/// The maps of pipe_step_tma_layout's streams: 4D views (D, L, K or 1, batch), unswizzled boxes of
/// [tile_steps x channels] (channels innermost).
std::optional<PipeMaps> make_pipe_step_maps(const Params& p, int channels, int tile_steps, TmaElem elem);

#if defined(__CUDACC__)

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define MCV_SCAN_HAS_TMA 1
#else
#define MCV_SCAN_HAS_TMA 0
#endif

/// Arrival count 1 (the issuing thread's expect_tx); made visible to the async proxy.
__device__ __forceinline__ void mbar_init(std::uint64_t* bar) {
#if MCV_SCAN_HAS_TMA
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(smem_u32(bar)) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#else
  __trap();
#endif
}

/// The issuing thread's arrival, announcing `bytes` of bulk copies that complete the phase.
__device__ __forceinline__ void mbar_expect_tx(std::uint64_t* bar, unsigned bytes) {
#if MCV_SCAN_HAS_TMA
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
#else
  __trap();
#endif
}

/// Waits until the phase of parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(std::uint64_t* bar, unsigned parity) {
#if MCV_SCAN_HAS_TMA
  unsigned done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(smem_u32(bar)), "r"(parity)
        : "memory");
  } while (!done);
#else
  __trap();
#endif
}

/// Box (x.., d.., k, b) of `map` into shared memory at dst, completing on `bar`.
__device__ __forceinline__ void tma_load_box(void* dst, const CUtensorMap* map, int x, int d, int k, int b,
                                             std::uint64_t* bar) {
#if MCV_SCAN_HAS_TMA
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], "
      "[%6];\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(x), "r"(d), "r"(k), "r"(b), "r"(smem_u32(bar))
      : "memory");
#else
  __trap();
#endif
}

/// Shared memory at src -> box (c0.., c1.., c2, c3) of `map` (elements past the tensor's end are
/// not written; a negative start coordinate faults: illegal instruction on an H100, where loads
/// take one), as one bulk group; with `add`, added element-wise into what is there (the map's
/// element type, rounded once per addition).
__device__ __forceinline__ void tma_store_box(const CUtensorMap* map, const void* src, int c0, int c1, int c2, int c3,
                                              bool add = false) {
#if MCV_SCAN_HAS_TMA
  const auto m = reinterpret_cast<std::uint64_t>(map);
  if (add)
    asm volatile(
        "cp.reduce.async.bulk.tensor.4d.global.shared::cta.add.tile.bulk_group [%0, {%2, %3, %4, %5}], [%1];\n" ::"l"(m),
        "r"(smem_u32(src)), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
        : "memory");
  else
    asm volatile("cp.async.bulk.tensor.4d.global.shared::cta.tile.bulk_group [%0, {%2, %3, %4, %5}], [%1];\n" ::"l"(m),
                 "r"(smem_u32(src)), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
                 : "memory");
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#else
  __trap();
#endif
}

/// Waits until this thread's bulk stores have read their shared-memory sources (read) or
/// completed.
__device__ __forceinline__ void bulk_wait_read() {
#if MCV_SCAN_HAS_TMA
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void bulk_wait_done() {
#if MCV_SCAN_HAS_TMA
  asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
#endif
}

/// Orders this thread's shared-memory writes before bulk copies issued after a barrier.
__device__ __forceinline__ void fence_async_shared() {
#if MCV_SCAN_HAS_TMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

#endif  // __CUDACC__

}  // namespace mcv::kernels::scan::cuda
