#pragma once
/// \file
/// Execution context: everything an op needs to run on one device. On CUDA it owns a stream and
/// the cuBLAS/cuBLASLt/cuDNN handles (created lazily, never global), and a workspace arena; on the
/// CPU it names the thread pool. Ops take a Context&; two contexts on one GPU run independently.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

#include "mcv/device.h"

namespace mcv {

class ThreadPool;

/// A bump allocator over one device allocation, reset between forward passes, so a forward pass
/// allocates nothing from the device. A request beyond the capacity grows the arena: the old
/// block is kept alive until the next reset (earlier pointers stay valid) and the next reset
/// replaces both by one block of the high-water size.
class Arena {
 public:
  explicit Arena(Device device);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  /// `bytes` aligned to 256 (the widest alignment a cuBLAS/cuDNN workspace wants).
  void* allocate(std::size_t bytes);
  /// Forgets all allocations (the caller guarantees no work still uses them).
  void reset();
  /// The current fill, to hand back an op's scratch with rewind() once its work is queued: work
  /// on the context's one stream runs in order, so whatever reuses the space runs after it.
  struct Mark {
    std::size_t used = 0, overflow_used = 0;
  };
  Mark mark() const { return {used_, overflow_used_}; }
  /// Returns the space taken since `m`. Overflow blocks added since stay allocated until reset
  /// but no longer count as live, so the high-water mark (what the next reset reserves) is the
  /// true peak of simultaneously live scratch.
  void rewind(const Mark& m) {
    used_ = std::min(used_, m.used);
    overflow_used_ = std::min(overflow_used_, m.overflow_used);
  }
  /// Pre-sizes the arena (one allocation).
  void reserve(std::size_t bytes);
  std::size_t capacity() const;
  std::size_t high_water() const { return high_water_; }

 private:
  struct Block;
  Device device_;
  std::unique_ptr<Block> main_;
  std::vector<std::unique_ptr<Block>> overflow_;
  std::size_t used_ = 0, high_water_ = 0, overflow_used_ = 0;
};

/// Makes a context current on this thread for its lifetime: tensor copies and fills on its device
/// are queued on its stream (no device-wide synchronisation), and, with `use_arena`, every new
/// tensor on its device is carved from its workspace arena (freed all at once by the arena's
/// reset). The arena mode is what lets a forward pass run with no cudaMalloc and be captured as a
/// CUDA graph. Scopes nest; the innermost wins.
class ContextScope {
 public:
  ContextScope(class Context& ctx, bool use_arena = false);
  ~ContextScope();
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

  /// The innermost current context on this thread (null when none).
  static class Context* current();
  /// The arena new tensors on `device` come from in the current scope (null when none).
  static Arena* current_arena(Device device);

 private:
  class Context* previous_;
  bool previous_use_arena_;
};

class Context {
 public:
  explicit Context(Device device = Device::cpu());
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Device device() const { return device_; }
  bool is_cuda() const { return device_.is_cuda(); }
  ThreadPool& threads() const;
  Arena& workspace() { return workspace_; }
  /// Waits for all work queued on this context.
  void synchronize();

  /// CUDA state (stream and handles); defined in the CUDA-only header mcv/cuda/context.cuh.
  struct Cuda;
  /// The CUDA stream as an opaque pointer (a cudaStream_t); null for CPU contexts.
  void* cuda_stream() const;
  /// Throws when the context is not a CUDA one.
  Cuda& cuda();

 private:
  Device device_;
  ThreadPool* threads_;
  std::unique_ptr<Cuda, void (*)(Cuda*)> cuda_{nullptr, nullptr};
  Arena workspace_;
};

}  // namespace mcv
