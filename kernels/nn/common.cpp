// Shared pieces of the nn ops: the nn-specific argument checks (the common ones are
// common/op_checks.h's), host element conversion, activations.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "nn/nn_internal.h"

namespace mcv::kernels {

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::none: return "none";
    case Activation::relu: return "relu";
    case Activation::gelu: return "gelu";
    case Activation::gelu_tanh: return "gelu_tanh";
    case Activation::silu: return "silu";
  }
  return "?";
}

Activation parse_activation(std::string_view text) {
  if (text == "none" || text == "identity") return Activation::none;
  if (text == "relu") return Activation::relu;
  if (text == "gelu") return Activation::gelu;
  if (text == "gelu_tanh") return Activation::gelu_tanh;
  if (text == "silu" || text == "swish") return Activation::silu;
  throw Error("activation '" + std::string(text) + "'",
              "unknown (expected none, relu, gelu, gelu_tanh or silu)");
}

namespace nn_detail {

Vec Check::vec(const char* name, const Tensor& t, std::int64_t c, DType io, bool required) const {
  if (!t.defined()) {
    if (required) fail(name, "is required but was not given");
    return {};
  }
  present(name, t);
  shape(name, t, {c});
  dtype_f32_or(name, t, io);
  contiguous(name, t);
  return Vec{t.raw_data(), t.dtype() == DType::f32};
}

Rows Check::rows(const char* name, const Tensor& t) const {
  if (t.dim() < 1) fail(name, "must have at least one dimension");
  Rows r;
  r.data = t.raw_data();
  r.dtype = t.dtype();
  r.cols = t.size(-1);
  unit_inner_stride(name, t);
  // Leading dimensions must collapse into one: each (non-unit) stride equals the next one times
  // its extent.
  r.rows = 1;
  r.ld = r.cols;
  std::int64_t inner_stride = -1, inner_extent = 1;
  for (int i = t.dim() - 2; i >= 0; --i) {
    if (t.size(i) == 1) continue;
    if (inner_stride < 0) {
      r.ld = t.stride(i);
    } else if (t.stride(i) != inner_stride * inner_extent) {
      fail(name, "leading dimensions of shape " + shape_str(t.shape()) + " with strides " +
                     shape_str(t.strides()) + " do not collapse into rows; use .contiguous()");
    }
    inner_stride = t.stride(i);
    inner_extent = t.size(i);
    r.rows *= t.size(i);
  }
  if (r.rows > 1 && r.ld < r.cols)
    fail(name, "rows overlap (row stride " + std::to_string(r.ld) + " < " + std::to_string(r.cols) + ")");
  return r;
}

bool Check::alias_or_disjoint(const char* out_name, const Tensor& out, const char* in_name,
                              const Tensor& in) const {
  if (same_view(out, in)) return true;
  if (overlaps(out, in)) fail(out_name, std::string("overlaps ") + in_name + " without being the same view");
  return false;
}

void Check::writable(const char* name, const Tensor& t) const {
  std::vector<std::pair<std::int64_t, std::int64_t>> dims;  // (stride, extent)
  for (int i = 0; i < t.dim(); ++i)
    if (t.size(i) > 1) dims.emplace_back(t.stride(i), t.size(i));
  std::sort(dims.begin(), dims.end());
  std::int64_t span = 1;  // elements covered by the dimensions so far
  for (const auto& [stride, extent] : dims) {
    if (stride < span)
      fail(name, "has strides " + shape_str(t.strides()) + " under which elements share memory");
    span = stride * (extent - 1) + span;
  }
}

void load_floats(const void* src, DType t, std::int64_t n, float* dst) {
  switch (t) {
    case DType::f32:
      if (src != dst) std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case DType::bf16: {
      const auto* s = static_cast<const std::uint16_t*>(src);
      for (std::int64_t i = 0; i < n; ++i) dst[i] = f32_from_bits(static_cast<std::uint32_t>(s[i]) << 16);
      return;
    }
    case DType::f16: {
      const auto* s = static_cast<const Half*>(src);
      for (std::int64_t i = 0; i < n; ++i) dst[i] = from_half(s[i]);
      return;
    }
    default: throw Error("nn", std::string("unsupported dtype ") + dtype_name(t));
  }
}

void store_floats(const float* src, std::int64_t n, void* dst, DType t) {
  switch (t) {
    case DType::f32:
      if (src != dst) std::memmove(dst, src, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case DType::bf16: {
      auto* d = static_cast<BFloat16*>(dst);
      for (std::int64_t i = 0; i < n; ++i) d[i] = to_bf16(src[i]);
      return;
    }
    case DType::f16: {
      auto* d = static_cast<Half*>(dst);
      for (std::int64_t i = 0; i < n; ++i) d[i] = to_half(src[i]);
      return;
    }
    default: throw Error("nn", std::string("unsupported dtype ") + dtype_name(t));
  }
}

void load_vec(const Vec& v, std::int64_t n, DType io, float* dst, float fill) {
  if (!v.data) {
    std::fill(dst, dst + n, fill);
    return;
  }
  load_floats(v.data, v.f32 ? DType::f32 : io, n, dst);
}

void apply_activation(Activation act, float* v, std::int64_t n) {
  switch (act) {
    case Activation::none: return;
    case Activation::relu:
      for (std::int64_t i = 0; i < n; ++i) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
      return;
    case Activation::gelu:
      for (std::int64_t i = 0; i < n; ++i) v[i] = 0.5f * v[i] * (1.0f + std::erf(v[i] * 0.70710678118654752f));
      return;
    case Activation::gelu_tanh:
      for (std::int64_t i = 0; i < n; ++i) {
        const float x = v[i];
        v[i] = 0.5f * x * (1.0f + std::tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
      }
      return;
    case Activation::silu:
      for (std::int64_t i = 0; i < n; ++i) v[i] = v[i] / (1.0f + std::exp(-v[i]));
      return;
  }
}

}  // namespace nn_detail
}  // namespace mcv::kernels
