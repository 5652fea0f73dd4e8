#pragma once
// Device activations shared by the CUDA ops. Precise libm calls (expf, log1pf): the oracles are f32
// PyTorch without fast math. The selective-scan kernels keep their own MUFU-based approximations.

namespace mcv::kernels::cuda {

/// PyTorch's softplus (beta 1, threshold 20).
__device__ __forceinline__ float softplus(float v) { return v <= 20.0f ? log1pf(expf(v)) : v; }
__device__ __forceinline__ float silu(float v) { return v / (1.0f + expf(-v)); }

}  // namespace mcv::kernels::cuda
