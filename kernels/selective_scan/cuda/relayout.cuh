#pragma once
// Layout copies of the CUDA selective scan (relayout.cu).

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "selective_scan/cuda/scan_params.cuh"

namespace mcv::kernels::scan::cuda {

/// Copies the (batch, slices, D, L) stream `src` into `dst` (any strides; slice k at k * sk, so
/// the K direction slices of a per-direction tensor go in one launch) element by element,
/// without conversion. Coalesced on both sides when one is channel-major (L stride 1) and the
/// other token-major (D stride 1).
void relayout(const SeqP& src, const SeqP& dst, int batch, int slices, int dim, int seqlen, std::size_t elem_bytes,
              cudaStream_t stream);

/// The plane kernels (transpose_planes; the staged cross2d's merge, scan_kernels.cuh): one H x W
/// plane per block through a [w][H + 1] shared-memory tile, every global access a whole 16-byte
/// vector along a row of either order. Their common conditions and launch shape:
/// the plane in whole vectors along both orders' rows and the tile (of tile_elem_bytes elements)
/// in the default 48 KB of shared memory;
inline std::size_t plane_tile_bytes(int height, int width, std::size_t tile_elem_bytes) {
  return static_cast<std::size_t>(width) * (height + 1) * tile_elem_bytes;
}
inline bool plane_vectors_fit(int height, int width, std::size_t elem_bytes, std::size_t tile_elem_bytes) {
  const int v = 16 / static_cast<int>(elem_bytes);
  return height % v == 0 && width % v == 0 && plane_tile_bytes(height, width, tile_elem_bytes) <= 48 * 1024;
}
/// a base 16-byte aligned and element strides that keep it so;
inline bool vectors_aligned(const void* ptr, std::size_t elem_bytes, std::initializer_list<std::int64_t> strides) {
  const std::int64_t v = 16 / static_cast<std::int64_t>(elem_bytes);
  bool ok = reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0;
  for (const std::int64_t s : strides) ok = ok && s % v == 0;
  return ok;
}
/// and blocks of whole warps taking about per_thread of the plane's vectors each (56 x 56 bf16:
/// 392 vectors, 224 threads for 2).
inline int plane_block_threads(int height, int width, std::size_t elem_bytes, int per_thread = 2) {
  const int vecs = height * width / (16 / static_cast<int>(elem_bytes));
  return std::clamp((vecs / per_thread + 31) / 32 * 32, 64, 512);
}

/// One tensor's H x W planes to transpose: plane i of batch b from src + b src_sb + i src_sp
/// (element (h, w) at h W + w) to dst + b dst_sb + i dst_sp (element (h, w) at w H + h), for i
/// below `planes`; strides in elements.
struct PlaneCopy {
  const void* src = nullptr;
  void* dst = nullptr;
  std::int64_t src_sb = 0, src_sp = 0, dst_sb = 0, dst_sp = 0;
  int planes = 0;
};

/// Whether transpose_planes takes `c`: 16-byte accesses along both sides' rows (H and W
/// multiples of 16 / elem_bytes, every base and stride aligned to them) and a plane that fits
/// the default 48 KB of shared memory.
bool transpose_planes_fit(const PlaneCopy& c, int height, int width, std::size_t elem_bytes);

/// Transposes the planes of every copy in `copies` (each accepted by transpose_planes_fit), in
/// as few launches as the kernel's parameter block holds: one plane per block and step, read
/// and written as whole 16-byte vectors through shared memory. (relayout() moves 4-byte words
/// per access and measured 75 % of the copy bandwidth on VMamba's 56 x 56 planes.)
void transpose_planes(const PlaneCopy* copies, int count, int batch, int height, int width, std::size_t elem_bytes,
                      cudaStream_t stream);

}  // namespace mcv::kernels::scan::cuda
