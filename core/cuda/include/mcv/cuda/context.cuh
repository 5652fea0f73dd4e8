#pragma once
// CUDA-only view of mcv::Context: the stream and library handles. Included by .cu files only.

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

#include "mcv/context.h"
#include "mcv/error.h"

namespace mcv {

/// Throws mcv::Error("cuda: <what>: <error string>") when `status` is not cudaSuccess.
void cuda_check(cudaError_t status, const char* what);
void cublas_check(cublasStatus_t status, const char* what);
void cudnn_check(cudnnStatus_t status, const char* what);

/// Checks the last launch (configuration errors surface here, asynchronous faults at the next sync).
inline void cuda_check_launch(const char* kernel) { cuda_check(cudaGetLastError(), kernel); }

struct Context::Cuda {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaDeviceProp props{};
  // Library handles are created on first use: a kernel-only workload pays for none of them.
  cublasHandle_t cublas();
  cublasLtHandle_t cublas_lt();
  cudnnHandle_t cudnn();

  ~Cuda();

 private:
  cublasHandle_t cublas_ = nullptr;
  cublasLtHandle_t cublas_lt_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
};

/// Makes `device` current for this thread for the lifetime of the guard.
class CudaDeviceGuard {
 public:
  explicit CudaDeviceGuard(int device);
  ~CudaDeviceGuard();

 private:
  int previous_ = -1;
};

}  // namespace mcv
