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
  /// A second stream for an op's independent parts (the staged cross-scan's column orders run
  /// beside its row orders): fork_side() makes it wait for what `stream` has queued and returns
  /// it; join_side() makes `stream` wait for what it has queued. Forked and joined within one op,
  /// so callers (and CUDA graph captures of `stream`) see one stream.
  cudaStream_t fork_side();
  void join_side();
  cudaEvent_t side_join_event() const { return side_join_; }
  /// Creates the side stream and its events (with `stream`, not on first use: an op may first
  /// fork inside a graph capture).
  void create_side();

  ~Cuda();

 private:
  cublasHandle_t cublas_ = nullptr;
  cublasLtHandle_t cublas_lt_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  cudaStream_t side_ = nullptr;
  cudaEvent_t side_fork_ = nullptr, side_join_ = nullptr;
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
