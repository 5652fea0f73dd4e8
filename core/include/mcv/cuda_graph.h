#pragma once
/// \file
/// Device-side timing and CUDA graph capture behind headers free of CUDA types, so model and
/// benchmark code stays plain C++. Every call on a CPU context or a build without CUDA throws
/// mcv::Error, except DeviceTimer, which falls back to the host clock on the CPU.

#include <cstddef>
#include <memory>

#include "mcv/context.h"

namespace mcv {

/// Captures the work a context queues between begin() and end() into a CUDA graph, then replays
/// it with one launch. The captured work must not allocate device memory or synchronise: run it
/// under ContextScope(ctx, /*use_arena=*/true) with an arena already sized by a warm-up pass.
class CudaGraph {
 public:
  explicit CudaGraph(Context& ctx);
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  void begin();
  void end();
  /// Queues one replay on the context's stream (asynchronous).
  void replay();
  bool captured() const;

 private:
  struct State;
  [[maybe_unused]] Context& ctx_;  // unused by the CPU-only build (no_cuda.cpp)
  std::unique_ptr<State> state_;
};

/// Times work queued on a context: CUDA events on CUDA, the host clock (after the work, which
/// is synchronous) on the CPU.
class DeviceTimer {
 public:
  explicit DeviceTimer(Context& ctx);
  ~DeviceTimer();
  DeviceTimer(const DeviceTimer&) = delete;
  DeviceTimer& operator=(const DeviceTimer&) = delete;
  void start();
  /// Milliseconds since start(), waiting for the queued work to finish.
  double stop_ms();

 private:
  struct State;
  [[maybe_unused]] Context& ctx_;  // unused by the CPU-only build (no_cuda.cpp)
  std::unique_ptr<State> state_;
};

/// Device memory of the caching allocator on one GPU, in bytes.
struct CudaMemoryStats {
  std::size_t in_use = 0, peak_in_use = 0, cached = 0;
};
CudaMemoryStats cuda_memory_stats(int device);
/// Resets the peak to the current use.
void reset_cuda_peak_memory(int device);

}  // namespace mcv
