// Selective-scan kernels instantiated for f32 I/O (one file per dtype so builds parallelise).

#include "selective_scan/cuda/scan_kernels.cuh"

namespace mcv::kernels::scan::cuda {

void launch_scan_f32(const Params& p, const LaunchConfig& cfg, cudaStream_t stream) {
  launch_typed<float>(p, cfg, stream);
}

}  // namespace mcv::kernels::scan::cuda
