#include "mcv/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <sstream>

#include "cuda_runtime_bridge.h"
#include "mcv/context.h"
#include "mcv/error.h"

namespace mcv {

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (std::int64_t extent : shape) {
    MCV_CHECK(extent >= 0, "shape ", shape_str(shape), ": negative extent");
    if (extent != 0 && n > std::numeric_limits<std::int64_t>::max() / extent)
      throw Error("shape " + shape_str(shape), "element count overflows int64");
    n *= extent;
  }
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  std::int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= std::max<std::int64_t>(shape[i], 1);
  }
  return strides;
}

Storage::Storage(void* data, std::size_t bytes, Device device, std::function<void(void*)> deleter)
    : data_(data), bytes_(bytes), device_(device), deleter_(std::move(deleter)) {}

Storage::~Storage() {
  if (deleter_) deleter_(data_);
}

std::shared_ptr<Storage> Storage::allocate(std::size_t bytes, Device device) {
  if (Arena* arena = ContextScope::current_arena(device)) {
    // Arena memory is released by the arena's reset, not by the tensor.
    return std::make_shared<Storage>(bytes ? arena->allocate(bytes) : nullptr, bytes, device, nullptr);
  }
  return allocate_from_device(bytes, device);
}

std::shared_ptr<Storage> Storage::allocate_from_device(std::size_t bytes, Device device) {
  if (device.is_cuda()) {
    void* p = bytes ? cuda_bridge::device_alloc(bytes, device.index) : nullptr;
    const int index = device.index;
    return std::make_shared<Storage>(p, bytes, device, [index](void* q) {
      if (q) cuda_bridge::device_free(q, index);
    });
  }
  // 64-byte alignment: one cache line, and the widest vector load (AVX-512).
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw Error("cpu allocator", "out of memory allocating " + std::to_string(bytes) + " bytes");
  return std::make_shared<Storage>(p, bytes, device, [](void* q) { std::free(q); });
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  const std::int64_t n = shape_numel(shape);
  t.storage_ = Storage::allocate(static_cast<std::size_t>(n) * dtype_size(dtype), device);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (device.is_cuda())
    cuda_bridge::memset_zero(t.raw_data(), device.index, t.nbytes());
  else
    std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Tensor Tensor::from_blob(void* data, const Shape& shape, DType dtype, Device device,
                         std::shared_ptr<void> owner) {
  Tensor t;
  const std::size_t bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  t.storage_ = std::make_shared<Storage>(data, bytes, device,
                                         [owner = std::move(owner)](void*) mutable { owner.reset(); });
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  MCV_CHECK(shape_numel(shape) == static_cast<std::int64_t>(values.size()), "from_vector: ",
            values.size(), " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, DType::f32);
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

static int normalise_dim(int d, int rank, const char* what) {
  const int n = d < 0 ? d + rank : d;
  MCV_CHECK(n >= 0 && n < rank, what, ": dimension ", d, " out of range for rank ", rank);
  return n;
}

std::int64_t Tensor::size(int d) const { return shape_[normalise_dim(d, dim(), "size")]; }
std::int64_t Tensor::stride(int d) const { return strides_[normalise_dim(d, dim(), "stride")]; }
std::int64_t Tensor::numel() const { return shape_numel(shape_); }

bool Tensor::is_contiguous() const {
  std::int64_t expected = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (shape_[i] == 1) continue;
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  MCV_CHECK(storage_, "tensor: access to an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_;
}

Tensor Tensor::view(const Shape& shape) const {
  MCV_CHECK(is_contiguous(), "view: tensor ", describe(), " is not contiguous");
  Shape resolved = shape;
  int inferred = -1;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      MCV_CHECK(inferred < 0, "view: more than one -1 in ", shape_str(shape));
      inferred = static_cast<int>(i);
    } else {
      MCV_CHECK(resolved[i] >= 0, "view: negative extent in ", shape_str(shape));
      known *= resolved[i];
    }
  }
  if (inferred >= 0) {
    MCV_CHECK(known != 0 && numel() % known == 0, "view: cannot infer -1 in ", shape_str(shape),
              " for ", numel(), " elements");
    resolved[inferred] = numel() / known;
  }
  MCV_CHECK(shape_numel(resolved) == numel(), "view: shape ", shape_str(shape), " does not match ",
            numel(), " elements of ", describe());
  Tensor t = *this;
  t.shape_ = resolved;
  t.strides_ = contiguous_strides(resolved);
  return t;
}

Tensor Tensor::slice(int d, std::int64_t start, std::int64_t end) const {
  d = normalise_dim(d, dim(), "slice");
  MCV_CHECK(0 <= start && start <= end && end <= shape_[d], "slice: [", start, ", ", end,
            ") out of range for dimension ", d, " of ", describe());
  Tensor t = *this;
  t.offset_ += static_cast<std::size_t>(start * strides_[d]) * element_size();
  t.shape_[d] = end - start;
  return t;
}

Tensor Tensor::select(int d, std::int64_t i) const {
  d = normalise_dim(d, dim(), "select");
  MCV_CHECK(0 <= i && i < shape_[d], "select: index ", i, " out of range for ", describe());
  Tensor t = slice(d, i, i + 1);
  t.shape_.erase(t.shape_.begin() + d);
  t.strides_.erase(t.strides_.begin() + d);
  return t;
}

Tensor Tensor::permute(const std::vector<int>& order) const {
  MCV_CHECK(static_cast<int>(order.size()) == dim(), "permute: order has ", order.size(),
            " entries for rank ", dim());
  std::vector<bool> seen(order.size(), false);
  Tensor t = *this;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const int src = normalise_dim(order[i], dim(), "permute");
    MCV_CHECK(!seen[src], "permute: dimension ", src, " repeated");
    seen[src] = true;
    t.shape_[i] = shape_[src];
    t.strides_[i] = strides_[src];
  }
  return t;
}

Tensor Tensor::transpose(int a, int b) const {
  std::vector<int> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalise_dim(a, dim(), "transpose")], order[normalise_dim(b, dim(), "transpose")]);
  return permute(order);
}

Tensor Tensor::unsqueeze(int d) const {
  const int n = d < 0 ? d + dim() + 1 : d;
  MCV_CHECK(n >= 0 && n <= dim(), "unsqueeze: dimension ", d, " out of range for rank ", dim());
  Tensor t = *this;
  const std::int64_t stride = n < dim() ? strides_[n] * shape_[n] : 1;
  t.shape_.insert(t.shape_.begin() + n, 1);
  t.strides_.insert(t.strides_.begin() + n, stride);
  return t;
}

namespace {

double load_as_double(const void* p, DType t) {
  switch (t) {
    case DType::f32: return *static_cast<const float*>(p);
    case DType::f16: return from_half(*static_cast<const Half*>(p));
    case DType::bf16: return from_bf16(*static_cast<const BFloat16*>(p));
    case DType::i32: return *static_cast<const std::int32_t*>(p);
    case DType::i64: return static_cast<double>(*static_cast<const std::int64_t*>(p));
    case DType::u8: return *static_cast<const std::uint8_t*>(p);
  }
  return 0;
}

void store_from_double(void* p, DType t, double v) {
  switch (t) {
    case DType::f32: *static_cast<float*>(p) = static_cast<float>(v); break;
    case DType::f16: *static_cast<Half*>(p) = to_half(static_cast<float>(v)); break;
    case DType::bf16: *static_cast<BFloat16*>(p) = to_bf16(static_cast<float>(v)); break;
    case DType::i32: *static_cast<std::int32_t*>(p) = static_cast<std::int32_t>(v); break;
    case DType::i64: *static_cast<std::int64_t*>(p) = static_cast<std::int64_t>(v); break;
    case DType::u8: *static_cast<std::uint8_t*>(p) = static_cast<std::uint8_t>(v); break;
  }
}

// Host strided copy with conversion. Integers go through double, which is exact for i32/u8 and
// for i64 up to 2^53; same-dtype copies are bytewise and exact for everything.
void host_strided_copy(char* dst, DType dt, const Shape& dst_strides, const char* src, DType st,
                       const Shape& src_strides, const Shape& shape) {
  const int rank = static_cast<int>(shape.size());
  const std::int64_t n = shape_numel(shape);
  if (n == 0) return;
  const std::size_t de = dtype_size(dt), se = dtype_size(st);
  std::vector<std::int64_t> index(rank, 0);
  std::int64_t doff = 0, soff = 0;
  for (std::int64_t k = 0; k < n; ++k) {
    char* d = dst + doff * static_cast<std::int64_t>(de);
    const char* s = src + soff * static_cast<std::int64_t>(se);
    if (dt == st)
      std::memcpy(d, s, de);
    else if (dt == DType::f32 && st == DType::bf16)
      *reinterpret_cast<float*>(d) = from_bf16(*reinterpret_cast<const BFloat16*>(s));
    else
      store_from_double(d, dt, load_as_double(s, st));
    for (int i = rank - 1; i >= 0; --i) {
      if (++index[i] < shape[i]) {
        doff += dst_strides[i];
        soff += src_strides[i];
        break;
      }
      doff -= dst_strides[i] * (shape[i] - 1);
      soff -= src_strides[i] * (shape[i] - 1);
      index[i] = 0;
    }
  }
}

}  // namespace

void Tensor::copy_from(const Tensor& src) {
  MCV_CHECK(defined() && src.defined(), "copy_from: undefined tensor");
  MCV_CHECK(shape_ == src.shape_, "copy_from: shape ", shape_str(src.shape_), " into ",
            shape_str(shape_));
  if (numel() == 0) return;
  const Device dd = device(), sd = src.device();
  if (dd.is_cpu() && sd.is_cpu()) {
    if (dtype_ == src.dtype_ && is_contiguous() && src.is_contiguous()) {
      std::memmove(raw_data(), src.raw_data(), nbytes());
      return;
    }
    host_strided_copy(static_cast<char*>(raw_data()), dtype_, strides_,
                      static_cast<const char*>(src.raw_data()), src.dtype_, src.strides_, shape_);
    return;
  }
  if (dd.is_cuda() && sd.is_cuda() && dd == sd) {
    MCV_CHECK(dim() <= 8, "copy_from: rank ", dim(), " above 8 on CUDA");
    cuda_bridge::strided_copy(raw_data(), dtype_, strides_.data(), src.raw_data(), src.dtype_,
                              src.strides_.data(), shape_.data(), dim(), dd.index);
    return;
  }
  // Across devices: make the source contiguous where it lives, move bytes, convert on arrival.
  const Tensor packed = src.contiguous();
  if (dtype_ == src.dtype_ && is_contiguous()) {
    cuda_bridge::memcpy(raw_data(), dd.is_cuda() ? dd.index : -1, packed.raw_data(),
                        sd.is_cuda() ? sd.index : -1, nbytes());
    return;
  }
  Tensor staged = Tensor::empty(shape_, src.dtype_, dd);
  cuda_bridge::memcpy(staged.raw_data(), dd.is_cuda() ? dd.index : -1, packed.raw_data(),
                      sd.is_cuda() ? sd.index : -1, staged.nbytes());
  copy_from(staged);
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor t = empty(shape_, dtype_, device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device target) const {
  Tensor t = empty(shape_, dtype_, target);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(DType target) const {
  Tensor t = empty(shape_, target, device());
  t.copy_from(*this);
  return t;
}

void Tensor::fill(double value) {
  Tensor one = empty({1}, dtype_);
  store_from_double(one.raw_data(), dtype_, value);
  Tensor host = device().is_cpu() ? *this : empty(shape_, dtype_);
  const std::size_t es = element_size();
  if (host.is_contiguous()) {
    char* p = static_cast<char*>(host.raw_data());
    for (std::int64_t i = 0, n = numel(); i < n; ++i) std::memcpy(p + i * es, one.raw_data(), es);
  } else {
    Tensor broadcast = one;
    broadcast.shape_ = shape_;
    broadcast.strides_ = Shape(shape_.size(), 0);
    host.copy_from(broadcast);
  }
  if (!device().is_cpu()) copy_from(host);
}

double Tensor::item(std::int64_t flat_index) const {
  MCV_CHECK(device().is_cpu(), "item: tensor ", describe(), " is not on the CPU");
  MCV_CHECK(flat_index >= 0 && flat_index < numel(), "item: index ", flat_index, " out of range");
  std::int64_t off = 0, rest = flat_index;
  for (int i = dim() - 1; i >= 0; --i) {
    off += (rest % shape_[i]) * strides_[i];
    rest /= shape_[i];
  }
  return load_as_double(static_cast<const char*>(raw_data()) + off * static_cast<std::int64_t>(element_size()), dtype_);
}

std::vector<float> Tensor::to_vector() const {
  const Tensor host = (device().is_cpu() ? *this : to(Device::cpu())).to(DType::f32);
  const float* p = host.data<float>();
  return std::vector<float>(p, p + host.numel());
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + " " + device().str();
}

}  // namespace mcv
