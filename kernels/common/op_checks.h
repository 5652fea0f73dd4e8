#pragma once
// Argument checks shared by the ops: every message names the op and the tensor
// ("ssd_chunk_scan: B: ..."), and every check runs before any work is queued. Private to the
// kernels library.

#include <string>

#include "mcv/context.h"
#include "mcv/error.h"
#include "mcv/tensor.h"

namespace mcv::kernels::op_checks {

/// True when a and b are the very same view (storage, offset, shape, strides, dtype).
bool same_view(const Tensor& a, const Tensor& b);
/// Conservative: two views of one storage whose byte ranges intersect count as overlapping.
bool overlaps(const Tensor& a, const Tensor& b);

/// Throws "<op>: context: this build has no CUDA support", for a CUDA context in a CPU-only build.
[[noreturn]] void no_cuda(const char* op);

/// Validation with messages "<op>: <tensor>: <problem>".
class Checker {
 public:
  Checker(const char* op, const Context& ctx) : op_(op), device_(ctx.device()) {}

  [[noreturn]] void fail(const std::string& what, const std::string& problem) const;
  /// no_cuda(op).
  [[noreturn]] void no_cuda() const;

  /// Defined, on the context's device, no zero extents, no negative strides.
  void present(const char* name, const Tensor& t) const;
  void shape(const char* name, const Tensor& t, const Shape& want) const;
  /// t.dim() == want; `layout` names the dimensions for the message, e.g. "(batch, L, C)".
  void dims(const char* name, const Tensor& t, int want, const char* layout) const;
  /// f32, f16 or bf16.
  void io_dtype(const char* name, const Tensor& t) const;
  void dtype(const char* name, const Tensor& t, DType want) const;
  /// f32 or the I/O dtype (parameters may be kept in f32 for any I/O dtype).
  void dtype_f32_or(const char* name, const Tensor& t, DType io) const;
  /// The last dimension is contiguous (a size-1 dimension counts as contiguous).
  void unit_inner_stride(const char* name, const Tensor& t) const;
  void contiguous(const char* name, const Tensor& t) const;
  /// Fails when a and b overlap (see overlaps()); undefined tensors never do.
  void no_overlap(const char* a_name, const Tensor& a, const char* b_name, const Tensor& b) const;

 protected:
  const char* op_;
  Device device_;
};

}  // namespace mcv::kernels::op_checks
