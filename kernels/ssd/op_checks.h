#pragma once
// Argument checks shared by the conv1d, ssm_step and ssd ops: every message names the op and the
// tensor ("ssd_chunk_scan: B: ..."), and every check runs before any work is queued.

#include <cstdint>
#include <string>

#include "mcv/context.h"
#include "mcv/error.h"
#include "mcv/tensor.h"

namespace mcv::kernels::op_checks {

class Checker {
 public:
  Checker(const char* op, const Context& ctx) : op_(op), device_(ctx.device()) {}

  [[noreturn]] void fail(const std::string& what, const std::string& problem) const {
    throw Error(std::string(op_) + ": " + what, problem);
  }

  /// Defined, on the context's device, no zero extents, no negative strides.
  void present(const char* name, const Tensor& t) const {
    if (!t.defined()) fail(name, "is required but was not given");
    if (t.device() != device_)
      fail(name, "is on " + t.device().str() + " but the context runs on " + device_.str());
    for (int i = 0; i < t.dim(); ++i) {
      if (t.size(i) == 0) fail(name, "is empty (shape " + shape_str(t.shape()) + ")");
      // Negative strides would break the overlap checks and the kernels' index math.
      if (t.stride(i) < 0) fail(name, "negative strides are not supported");
    }
  }
  void shape(const char* name, const Tensor& t, const Shape& want) const {
    if (t.shape() != want)
      fail(name, "expected shape " + shape_str(want) + " but got " + shape_str(t.shape()));
  }
  void dims(const char* name, const Tensor& t, int want, const char* layout) const {
    if (t.dim() != want)
      fail(name, std::string("expected ") + layout + " but got shape " + shape_str(t.shape()));
  }
  void io_dtype(const char* name, const Tensor& t) const {
    if (t.dtype() != DType::f32 && t.dtype() != DType::f16 && t.dtype() != DType::bf16)
      fail(name, std::string("dtype ") + dtype_name(t.dtype()) + " is not supported (f32, f16, bf16)");
  }
  void dtype(const char* name, const Tensor& t, DType want) const {
    if (t.dtype() != want)
      fail(name, std::string("expected dtype ") + dtype_name(want) + " but got " + dtype_name(t.dtype()));
  }
  void dtype_f32_or(const char* name, const Tensor& t, DType io) const {
    if (t.dtype() != DType::f32 && t.dtype() != io)
      fail(name, std::string("expected dtype f32") + (io == DType::f32 ? "" : std::string(" or ") + dtype_name(io)) +
                     " but got " + dtype_name(t.dtype()));
  }
  /// The last dimension is contiguous (a size-1 dimension counts as contiguous).
  void unit_inner_stride(const char* name, const Tensor& t) const {
    if (t.dim() > 0 && t.size(-1) > 1 && t.stride(-1) != 1)
      fail(name, "the last dimension must have stride 1 (got strides " + shape_str(t.strides()) + ")");
  }
  void contiguous(const char* name, const Tensor& t) const {
    if (!t.is_contiguous()) fail(name, "must be contiguous (got strides " + shape_str(t.strides()) + ")");
  }
  /// Conservative: two views of one storage whose byte ranges intersect count as overlapping.
  void no_overlap(const char* a_name, const Tensor& a, const char* b_name, const Tensor& b) const {
    if (!a.defined() || !b.defined() || a.storage() != b.storage()) return;
    auto range = [](const Tensor& t, std::size_t* lo, std::size_t* hi) {
      std::size_t last = 0;
      for (int i = 0; i < t.dim(); ++i) last += static_cast<std::size_t>(t.size(i) - 1) * t.stride(i);
      *lo = t.byte_offset();
      *hi = t.byte_offset() + (last + 1) * t.element_size();
    };
    std::size_t alo, ahi, blo, bhi;
    range(a, &alo, &ahi);
    range(b, &blo, &bhi);
    if (alo < bhi && blo < ahi) fail(a_name, std::string("must not overlap ") + b_name);
  }

 private:
  const char* op_;
  Device device_;
};

}  // namespace mcv::kernels::op_checks
