#include "common/op_checks.h"

#include <cstddef>

namespace mcv::kernels::op_checks {

namespace {

// [lo, hi): the bytes t's elements span.
void byte_range(const Tensor& t, std::size_t* lo, std::size_t* hi) {
  std::size_t last = 0;
  for (int i = 0; i < t.dim(); ++i) last += static_cast<std::size_t>(t.size(i) - 1) * t.stride(i);
  *lo = t.byte_offset();
  *hi = t.byte_offset() + (last + 1) * t.element_size();
}

}  // namespace

bool same_view(const Tensor& a, const Tensor& b) {
  return a.defined() && b.defined() && a.storage() == b.storage() && a.byte_offset() == b.byte_offset() &&
         a.shape() == b.shape() && a.strides() == b.strides() && a.dtype() == b.dtype();
}

bool overlaps(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.storage() != b.storage()) return false;
  std::size_t alo, ahi, blo, bhi;
  byte_range(a, &alo, &ahi);
  byte_range(b, &blo, &bhi);
  return alo < bhi && blo < ahi;
}

void no_cuda(const char* op) { throw Error(std::string(op) + ": context", "this build has no CUDA support"); }

void Checker::fail(const std::string& what, const std::string& problem) const {
  throw Error(std::string(op_) + ": " + what, problem);
}

void Checker::no_cuda() const { op_checks::no_cuda(op_); }

void Checker::present(const char* name, const Tensor& t) const {
  if (!t.defined()) fail(name, "is required but was not given");
  if (t.device() != device_)
    fail(name, "is on " + t.device().str() + " but the context runs on " + device_.str());
  for (int i = 0; i < t.dim(); ++i) {
    if (t.size(i) == 0) fail(name, "is empty (shape " + shape_str(t.shape()) + ")");
    // Negative strides would break the overlap checks and the kernels' index math.
    if (t.stride(i) < 0) fail(name, "negative strides are not supported");
  }
}

void Checker::shape(const char* name, const Tensor& t, const Shape& want) const {
  if (t.shape() != want) fail(name, "expected shape " + shape_str(want) + " but got " + shape_str(t.shape()));
}

void Checker::dims(const char* name, const Tensor& t, int want, const char* layout) const {
  if (t.dim() != want) fail(name, std::string("expected ") + layout + " but got shape " + shape_str(t.shape()));
}

void Checker::io_dtype(const char* name, const Tensor& t) const {
  if (!is_floating(t.dtype()))
    fail(name, std::string("dtype ") + dtype_name(t.dtype()) + " is not supported (f32, f16, bf16)");
}

void Checker::dtype(const char* name, const Tensor& t, DType want) const {
  if (t.dtype() != want)
    fail(name, std::string("expected dtype ") + dtype_name(want) + " but got " + dtype_name(t.dtype()));
}

void Checker::dtype_f32_or(const char* name, const Tensor& t, DType io) const {
  if (t.dtype() != DType::f32 && t.dtype() != io)
    fail(name, std::string("expected dtype f32") + (io == DType::f32 ? "" : std::string(" or ") + dtype_name(io)) +
                   " but got " + dtype_name(t.dtype()));
}

void Checker::unit_inner_stride(const char* name, const Tensor& t) const {
  if (t.dim() > 0 && t.size(-1) > 1 && t.stride(-1) != 1)
    fail(name, "the last dimension must have stride 1 (got strides " + shape_str(t.strides()) + ")");
}

void Checker::contiguous(const char* name, const Tensor& t) const {
  if (!t.is_contiguous())
    fail(name, "must be contiguous (got shape " + shape_str(t.shape()) + ", strides " + shape_str(t.strides()) +
                   "; use .contiguous())");
}

void Checker::no_overlap(const char* a_name, const Tensor& a, const char* b_name, const Tensor& b) const {
  if (overlaps(a, b)) fail(a_name, std::string("must not overlap ") + b_name);
}

}  // namespace mcv::kernels::op_checks
