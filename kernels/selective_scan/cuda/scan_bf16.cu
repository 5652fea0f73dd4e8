// Selective-scan kernels instantiated for bf16 I/O (one file per dtype so builds parallelise).

#include "selective_scan/cuda/scan_kernels.cuh"

namespace mcv::kernels::scan::cuda {

void launch_scan_bf16(const Params& p, const LaunchConfig& cfg, cudaStream_t stream) {
  launch_typed<__nv_bfloat16>(p, cfg, stream);
}

}  // namespace mcv::kernels::scan::cuda
