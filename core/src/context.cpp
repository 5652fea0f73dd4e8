#include "mcv/context.h"

#include <algorithm>

#include "context_cuda_bridge.h"
#include "mcv/error.h"
#include "mcv/tensor.h"
#include "mcv/thread_pool.h"

namespace mcv {

struct Arena::Block {
  std::shared_ptr<Storage> storage;
  std::size_t size() const { return storage->bytes(); }
  char* base() const { return static_cast<char*>(storage->data()); }
};

Arena::Arena(Device device) : device_(device) {}
Arena::~Arena() = default;

std::size_t Arena::capacity() const { return main_ ? main_->size() : 0; }

void Arena::reserve(std::size_t bytes) {
  if (bytes <= capacity()) return;
  MCV_CHECK(used_ == 0 && overflow_.empty(), "arena: reserve while allocations are live");
  main_ = std::make_unique<Block>(Block{Storage::allocate_from_device(bytes, device_)});
}

void* Arena::allocate(std::size_t bytes) {
  const std::size_t aligned = (bytes + 255) / 256 * 256;
  if (used_ + aligned <= capacity()) {
    void* p = main_->base() + used_;
    used_ += aligned;
    high_water_ = std::max(high_water_, used_ + overflow_used_);
    return p;
  }
  // Overflow: a separate block that lives until the next reset; the next reset grows the arena.
  overflow_.push_back(std::make_unique<Block>(Block{Storage::allocate_from_device(std::max<std::size_t>(aligned, 256), device_)}));
  overflow_used_ += aligned;
  high_water_ = std::max(high_water_, used_ + overflow_used_);
  return overflow_.back()->base();
}

void Arena::reset() {
  const bool grow = !overflow_.empty();
  overflow_.clear();
  used_ = 0;
  overflow_used_ = 0;
  if (grow) {
    main_.reset();
    reserve(high_water_);
  }
}

namespace {
thread_local Context* tls_current_context = nullptr;
thread_local bool tls_use_arena = false;
}  // namespace

ContextScope::ContextScope(Context& ctx, bool use_arena)
    : previous_(tls_current_context), previous_use_arena_(tls_use_arena) {
  tls_current_context = &ctx;
  tls_use_arena = use_arena;
  cuda_context_bridge::set_current_stream(ctx.cuda_stream());
}

ContextScope::~ContextScope() {
  tls_current_context = previous_;
  tls_use_arena = previous_use_arena_;
  cuda_context_bridge::set_current_stream(previous_ ? previous_->cuda_stream() : nullptr);
}

Context* ContextScope::current() { return tls_current_context; }

Arena* ContextScope::current_arena(Device device) {
  if (!tls_use_arena || !tls_current_context || !(tls_current_context->device() == device)) return nullptr;
  return &tls_current_context->workspace();
}

Context::Context(Device device)
    : device_(device), threads_(&ThreadPool::shared()), workspace_(device) {
  if (device_.is_cuda()) cuda_ = cuda_context_bridge::create(device_.index);
}

Context::~Context() = default;

ThreadPool& Context::threads() const { return *threads_; }

void Context::synchronize() {
  if (cuda_) cuda_context_bridge::synchronize(*cuda_);
}

void* Context::cuda_stream() const { return cuda_ ? cuda_context_bridge::stream(*cuda_) : nullptr; }

Context::Cuda& Context::cuda() {
  MCV_CHECK(cuda_, "context on ", device_.str(), " has no CUDA state");
  return *cuda_;
}

}  // namespace mcv
