// CUDA side of the core: caching allocator, copies, the per-context stream and handles.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "../src/context_cuda_bridge.h"
#include "../src/cuda_runtime_bridge.h"
#include "mcv/cuda/context.cuh"
#include "mcv/cuda_graph.h"
#include "mcv/device.h"

namespace mcv {

void cuda_check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear a sticky-free error so the next call is not blamed
    throw Error(std::string("cuda: ") + what, cudaGetErrorString(status));
  }
}

void cublas_check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cublas: ") + what, cublasGetStatusString(status));
}

void cudnn_check(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw Error(std::string("cudnn: ") + what, cudnnGetErrorString(status));
}

CudaDeviceGuard::CudaDeviceGuard(int device) {
  cuda_check(cudaGetDevice(&previous_), "cudaGetDevice");
  if (previous_ != device) cuda_check(cudaSetDevice(device), "cudaSetDevice");
}
CudaDeviceGuard::~CudaDeviceGuard() {
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess && current != previous_) cudaSetDevice(previous_);
}

bool cuda_compiled() { return true; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

namespace {

// Caching allocator: freed blocks go to a per-device free list keyed by rounded size and are
// handed out again without cudaMalloc. Sizes round to 512 B below 1 MiB and to 2 MiB above, so
// activations of one model shape reuse each other's blocks. Blocks are reused in host order: all
// of a context's work is on its one stream, so a block freed by the host after queuing work that
// reads it is only reused by work queued later on that stream. Work on two streams that shares
// tensors must synchronise before dropping them.
class CachingAllocator {
 public:
  void* allocate(std::size_t bytes, int device) {
    const std::size_t size = round(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    auto& pool = free_[device];
    auto it = pool.lower_bound(size);
    // A cached block at most twice the request may serve it: bounded waste, more reuse.
    if (it != pool.end() && it->first <= 2 * size) {
      void* p = it->second;
      live_[p] = it->first;
      note_use(device, static_cast<long long>(it->first));
      pool.erase(it);
      return p;
    }
    CudaDeviceGuard guard(device);
    void* p = nullptr;
    cudaError_t status = cudaMalloc(&p, size);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_cached(device);
      status = cudaMalloc(&p, size);
    }
    if (status != cudaSuccess) {
      cudaGetLastError();
      throw Error("cuda allocator", "cannot allocate " + std::to_string(bytes) + " bytes on cuda:" +
                                        std::to_string(device) + ": " + cudaGetErrorString(status));
    }
    live_[p] = size;
    note_use(device, static_cast<long long>(size));
    return p;
  }

  void free(void* p, int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(p);
    if (it == live_.end()) return;
    free_[device].emplace(it->second, p);
    note_use(device, -static_cast<long long>(it->second));
    live_.erase(it);
  }

  CudaMemoryStats stats(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    CudaMemoryStats s;
    s.in_use = static_cast<std::size_t>(in_use_[device]);
    s.peak_in_use = static_cast<std::size_t>(peak_[device]);
    for (auto& [size, p] : free_[device]) s.cached += size;
    return s;
  }
  void reset_peak(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    peak_[device] = in_use_[device];
  }

 private:
  static std::size_t round(std::size_t bytes) {
    constexpr std::size_t kSmall = 512, kLarge = 2u << 20;
    bytes = std::max<std::size_t>(bytes, 1);
    return bytes < (1u << 20) ? (bytes + kSmall - 1) / kSmall * kSmall
                              : (bytes + kLarge - 1) / kLarge * kLarge;
  }
  void release_cached(int device) {
    CudaDeviceGuard guard(device);
    cudaDeviceSynchronize();
    for (auto& [size, p] : free_[device]) cudaFree(p);
    free_[device].clear();
  }

  void note_use(int device, long long delta) {
    in_use_[device] += delta;
    peak_[device] = std::max(peak_[device], in_use_[device]);
  }

  std::mutex mutex_;
  std::unordered_map<int, long long> in_use_, peak_;
  std::unordered_map<int, std::multimap<std::size_t, void*>> free_;
  std::unordered_map<void*, std::size_t> live_;
};

thread_local cudaStream_t tls_current_stream = nullptr;

CachingAllocator& allocator() {
  // Never destroyed: CUDA may already be torn down when static destructors run.
  static auto* instance = new CachingAllocator();
  return *instance;
}

constexpr int kMaxRank = 8;
struct StridedCopyArgs {
  std::int64_t shape[kMaxRank], dst_strides[kMaxRank], src_strides[kMaxRank];
  int rank;
};

template <typename T>
__device__ float load_f(const void* p, std::int64_t i) { return static_cast<float>(static_cast<const T*>(p)[i]); }

__device__ double load_elem(const void* p, std::int64_t i, DType t) {
  switch (t) {
    case DType::f32: return static_cast<const float*>(p)[i];
    case DType::f16: return __half2float(reinterpret_cast<const __half*>(p)[i]);
    case DType::bf16: return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(p)[i]);
    case DType::i32: return static_cast<const int*>(p)[i];
    case DType::i64: return static_cast<double>(static_cast<const long long*>(p)[i]);
    case DType::u8: return static_cast<const unsigned char*>(p)[i];
  }
  return 0;
}

__device__ void store_elem(void* p, std::int64_t i, DType t, double v) {
  switch (t) {
    case DType::f32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    case DType::f16: reinterpret_cast<__half*>(p)[i] = __float2half_rn(static_cast<float>(v)); break;
    case DType::bf16: reinterpret_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(static_cast<float>(v)); break;
    case DType::i32: static_cast<int*>(p)[i] = static_cast<int>(v); break;
    case DType::i64: static_cast<long long*>(p)[i] = static_cast<long long>(v); break;
    case DType::u8: static_cast<unsigned char*>(p)[i] = static_cast<unsigned char>(v); break;
  }
}

__global__ void strided_copy_kernel(void* dst, DType dt, const void* src, DType st,
                                    StridedCopyArgs a, std::int64_t n) {
  for (std::int64_t k = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; k < n;
       k += std::int64_t(gridDim.x) * blockDim.x) {
    std::int64_t rest = k, doff = 0, soff = 0;
    for (int i = a.rank - 1; i >= 0; --i) {
      const std::int64_t idx = rest % a.shape[i];
      rest /= a.shape[i];
      doff += idx * a.dst_strides[i];
      soff += idx * a.src_strides[i];
    }
    if (dt == st && dt == DType::i64)
      static_cast<long long*>(dst)[doff] = static_cast<const long long*>(src)[soff];  // exact
    else
      store_elem(dst, doff, dt, load_elem(src, soff, st));
  }
}

}  // namespace

CudaMemoryStats cuda_memory_stats(int device) { return allocator().stats(device); }
void reset_cuda_peak_memory(int device) { allocator().reset_peak(device); }

namespace cuda_bridge {

void* device_alloc(std::size_t bytes, int device) { return allocator().allocate(bytes, device); }
void device_free(void* ptr, int device) { allocator().free(ptr, device); }

void memcpy(void* dst, int dst_device, const void* src, int src_device, std::size_t bytes) {
  const cudaMemcpyKind kind = dst_device < 0 ? (src_device < 0 ? cudaMemcpyHostToHost : cudaMemcpyDeviceToHost)
                                             : (src_device < 0 ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice);
  CudaDeviceGuard guard(dst_device >= 0 ? dst_device : std::max(src_device, 0));
  // Queued on the current stream so it orders after the work that produced `src`; the host
  // waits for copies that touch host memory (it reads or reuses that memory next).
  cuda_check(cudaMemcpyAsync(dst, src, bytes, kind, tls_current_stream), "cudaMemcpyAsync");
  if (kind != cudaMemcpyDeviceToDevice) cuda_check(cudaStreamSynchronize(tls_current_stream), "cudaMemcpyAsync");
}

void memset_zero(void* dst, int device, std::size_t bytes) {
  CudaDeviceGuard guard(device);
  cuda_check(cudaMemsetAsync(dst, 0, bytes, tls_current_stream), "cudaMemsetAsync");
}

void strided_copy(void* dst, DType dst_dtype, const std::int64_t* dst_strides, const void* src,
                  DType src_dtype, const std::int64_t* src_strides, const std::int64_t* shape,
                  int rank, int device) {
  StridedCopyArgs a{};
  a.rank = rank;
  std::int64_t n = 1;
  for (int i = 0; i < rank; ++i) {
    a.shape[i] = shape[i];
    a.dst_strides[i] = dst_strides[i];
    a.src_strides[i] = src_strides[i];
    n *= shape[i];
  }
  if (n == 0) return;
  CudaDeviceGuard guard(device);
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<std::int64_t>((n + threads - 1) / threads, 65535));
  strided_copy_kernel<<<blocks, threads, 0, tls_current_stream>>>(dst, dst_dtype, src, src_dtype, a, n);
  cuda_check_launch("strided_copy_kernel");
}

}  // namespace cuda_bridge

// ---- Context::Cuda ----

Context::Cuda::~Cuda() {
  if (cudnn_) cudnnDestroy(cudnn_);
  if (cublas_lt_) cublasLtDestroy(cublas_lt_);
  if (cublas_) cublasDestroy(cublas_);
  if (stream) cudaStreamDestroy(stream);
}

cublasHandle_t Context::Cuda::cublas() {
  if (!cublas_) {
    CudaDeviceGuard guard(device);
    cublas_check(cublasCreate(&cublas_), "cublasCreate");
    cublas_check(cublasSetStream(cublas_, stream), "cublasSetStream");
  }
  return cublas_;
}

cublasLtHandle_t Context::Cuda::cublas_lt() {
  if (!cublas_lt_) cublas_check(cublasLtCreate(&cublas_lt_), "cublasLtCreate");
  return cublas_lt_;
}

cudnnHandle_t Context::Cuda::cudnn() {
  if (!cudnn_) {
    CudaDeviceGuard guard(device);
    cudnn_check(cudnnCreate(&cudnn_), "cudnnCreate");
    cudnn_check(cudnnSetStream(cudnn_, stream), "cudnnSetStream");
  }
  return cudnn_;
}

namespace cuda_context_bridge {

std::unique_ptr<Context::Cuda, void (*)(Context::Cuda*)> create(int device) {
  const int count = cuda_device_count();
  MCV_CHECK(device >= 0 && device < count, "cuda:", device, ": no such CUDA device (", count,
            " visible)");
  std::unique_ptr<Context::Cuda, void (*)(Context::Cuda*)> cuda(new Context::Cuda(),
                                                                [](Context::Cuda* c) { delete c; });
  cuda->device = device;
  CudaDeviceGuard guard(device);
  cuda_check(cudaGetDeviceProperties(&cuda->props, device), "cudaGetDeviceProperties");
  // A blocking stream: work queued on the legacy default stream (copies made outside any
  // ContextScope) orders after it, so results are never read early.
  cuda_check(cudaStreamCreate(&cuda->stream), "cudaStreamCreate");
  return cuda;
}

void synchronize(Context::Cuda& cuda) { cuda_check(cudaStreamSynchronize(cuda.stream), "cudaStreamSynchronize"); }
void* stream(Context::Cuda& cuda) { return cuda.stream; }
void set_current_stream(void* stream) { tls_current_stream = static_cast<cudaStream_t>(stream); }

}  // namespace cuda_context_bridge

}  // namespace mcv
