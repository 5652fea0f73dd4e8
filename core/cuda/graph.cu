// CUDA graphs, event timers and allocator statistics (mcv/cuda_graph.h).

#include <chrono>

#include "mcv/cuda/context.cuh"
#include "mcv/cuda_graph.h"

namespace mcv {

struct CudaGraph::State {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool capturing = false;
};

CudaGraph::CudaGraph(Context& ctx) : ctx_(ctx), state_(std::make_unique<State>()) {
  MCV_CHECK(ctx.is_cuda(), "cuda graph: context on ", ctx.device().str(), " is not a CUDA context");
}

CudaGraph::~CudaGraph() {
  if (state_->exec) cudaGraphExecDestroy(state_->exec);
  if (state_->graph) cudaGraphDestroy(state_->graph);
}

void CudaGraph::begin() {
  MCV_CHECK(!state_->capturing && !state_->exec, "cuda graph: already captured");
  CudaDeviceGuard guard(ctx_.device().index);
  // Thread-local mode: other threads (image decoders) may use CUDA while this one captures.
  cuda_check(cudaStreamBeginCapture(ctx_.cuda().stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  state_->capturing = true;
}

void CudaGraph::end() {
  MCV_CHECK(state_->capturing, "cuda graph: end() without begin()");
  state_->capturing = false;
  CudaDeviceGuard guard(ctx_.device().index);
  cuda_check(cudaStreamEndCapture(ctx_.cuda().stream, &state_->graph), "cudaStreamEndCapture");
  cuda_check(cudaGraphInstantiate(&state_->exec, state_->graph, 0), "cudaGraphInstantiate");
}

void CudaGraph::replay() {
  MCV_CHECK(state_->exec, "cuda graph: replay before capture");
  cuda_check(cudaGraphLaunch(state_->exec, ctx_.cuda().stream), "cudaGraphLaunch");
}

bool CudaGraph::captured() const { return state_->exec != nullptr; }

struct DeviceTimer::State {
  cudaEvent_t begin = nullptr, end = nullptr;
  std::chrono::steady_clock::time_point host_start;
};

DeviceTimer::DeviceTimer(Context& ctx) : ctx_(ctx), state_(std::make_unique<State>()) {
  if (ctx.is_cuda()) {
    CudaDeviceGuard guard(ctx.device().index);
    cuda_check(cudaEventCreate(&state_->begin), "cudaEventCreate");
    cuda_check(cudaEventCreate(&state_->end), "cudaEventCreate");
  }
}

DeviceTimer::~DeviceTimer() {
  if (state_->begin) cudaEventDestroy(state_->begin);
  if (state_->end) cudaEventDestroy(state_->end);
}

void DeviceTimer::start() {
  if (ctx_.is_cuda())
    cuda_check(cudaEventRecord(state_->begin, ctx_.cuda().stream), "cudaEventRecord");
  else
    state_->host_start = std::chrono::steady_clock::now();
}

double DeviceTimer::stop_ms() {
  if (!ctx_.is_cuda())
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - state_->host_start).count();
  cuda_check(cudaEventRecord(state_->end, ctx_.cuda().stream), "cudaEventRecord");
  cuda_check(cudaEventSynchronize(state_->end), "cudaEventSynchronize");
  float ms = 0;
  cuda_check(cudaEventElapsedTime(&ms, state_->begin, state_->end), "cudaEventElapsedTime");
  return ms;
}

}  // namespace mcv
