#pragma once
// Layout copies of the CUDA selective scan (relayout.cu).

#include <cuda_runtime.h>

#include <cstddef>

#include "selective_scan/cuda/scan_params.cuh"

namespace mcv::kernels::scan::cuda {

/// Copies the (batch, slices, D, L) stream `src` into `dst` (any strides; slice k at k * sk, so
/// the K direction slices of a per-direction tensor go in one launch) element by element,
/// without conversion. Coalesced on both sides when one is channel-major (L stride 1) and the
/// other token-major (D stride 1).
void relayout(const SeqP& src, const SeqP& dst, int batch, int slices, int dim, int seqlen, std::size_t elem_bytes,
              cudaStream_t stream);

}  // namespace mcv::kernels::scan::cuda
