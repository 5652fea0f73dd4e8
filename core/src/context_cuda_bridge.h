#pragma once
// Creates and drives Context::Cuda without CUDA headers in context.cpp (see cuda_runtime_bridge.h).
#include <memory>

#include "mcv/context.h"

namespace mcv::cuda_context_bridge {
std::unique_ptr<Context::Cuda, void (*)(Context::Cuda*)> create(int device);
void synchronize(Context::Cuda& cuda);
void* stream(Context::Cuda& cuda);
/// The stream tensor copies/fills use on this thread (null: the legacy default stream).
void set_current_stream(void* stream);
}  // namespace mcv::cuda_context_bridge
