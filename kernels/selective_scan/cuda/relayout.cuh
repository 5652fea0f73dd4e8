#pragma once
// Layout copies of the CUDA selective scan (relayout.cu).

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "selective_scan/cuda/scan_params.cuh"

namespace mcv::kernels::scan::cuda {

/// Copies the (batch, slices, D, L) stream `src` into `dst` (any strides; slice k at k * sk, so
/// the K direction slices of a per-direction tensor go in one launch) element by element,
/// without conversion. Coalesced on both sides when one is channel-major (L stride 1) and the
/// other token-major (D stride 1).
void relayout(const SeqP& src, const SeqP& dst, int batch, int slices, int dim, int seqlen, std::size_t elem_bytes,
              cudaStream_t stream);

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
