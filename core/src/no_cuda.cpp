// Built instead of core/cuda/runtime.cu when the library has no CUDA: every CUDA request is a
// clear error, so a CPU-only build still links and says why a cuda device cannot be used.

#include "context_cuda_bridge.h"
#include "cuda_runtime_bridge.h"
#include <chrono>

#include "mcv/cuda_graph.h"
#include "mcv/device.h"
#include "mcv/error.h"

namespace mcv {

namespace {
[[noreturn]] void no_cuda() { throw Error("cuda", "this mambacv build has no CUDA support (configured without the CUDA toolkit)"); }
}  // namespace

bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }

struct Context::Cuda {};

struct CudaGraph::State {};
CudaGraph::CudaGraph(Context& ctx) : ctx_(ctx) { no_cuda(); }
CudaGraph::~CudaGraph() = default;
void CudaGraph::begin() { no_cuda(); }
void CudaGraph::end() { no_cuda(); }
void CudaGraph::replay() { no_cuda(); }
bool CudaGraph::captured() const { return false; }

struct DeviceTimer::State {
  std::chrono::steady_clock::time_point start;
};
DeviceTimer::DeviceTimer(Context& ctx) : ctx_(ctx), state_(std::make_unique<State>()) {}
DeviceTimer::~DeviceTimer() = default;
void DeviceTimer::start() { state_->start = std::chrono::steady_clock::now(); }
double DeviceTimer::stop_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - state_->start).count();
}

CudaMemoryStats cuda_memory_stats(int) { no_cuda(); }
void reset_cuda_peak_memory(int) { no_cuda(); }

namespace cuda_bridge {
void* device_alloc(std::size_t, int) { no_cuda(); }
void device_free(void*, int) {}
void memcpy(void*, int, const void*, int, std::size_t) { no_cuda(); }
void memset_zero(void*, int, std::size_t) { no_cuda(); }
void strided_copy(void*, DType, const std::int64_t*, const void*, DType, const std::int64_t*,
                  const std::int64_t*, int, int) { no_cuda(); }
}  // namespace cuda_bridge

namespace cuda_context_bridge {
std::unique_ptr<Context::Cuda, void (*)(Context::Cuda*)> create(int) { no_cuda(); }
void synchronize(Context::Cuda&) {}
void* stream(Context::Cuda&) { return nullptr; }
void set_current_stream(void*) {}
}  // namespace cuda_context_bridge

}  // namespace mcv
