#pragma once
/// \file
/// Tensor: dtype, shape, element strides, device and shared storage. Views share storage; every
/// copy (across devices or dtypes) is explicit.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "mcv/device.h"
#include "mcv/dtype.h"

namespace mcv {

using Shape = std::vector<std::int64_t>;

/// Human-readable "[2, 3, 4]".
std::string shape_str(const Shape& shape);
/// Product of the extents; throws on negative extents or overflow past int64.
std::int64_t shape_numel(const Shape& shape);
/// Row-major strides (in elements) for `shape`.
Shape contiguous_strides(const Shape& shape);

/// A block of memory on one device. The deleter frees it (or drops an owner such as an mmap).
class Storage {
 public:
  Storage(void* data, std::size_t bytes, Device device, std::function<void(void*)> deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  /// Fresh, uninitialised memory (64-byte aligned on the CPU): from the current ContextScope's
  /// arena when one is active for `device`, else from the device's allocator.
  static std::shared_ptr<Storage> allocate(std::size_t bytes, Device device);
  /// Always from the device's allocator (what an arena itself is made of).
  static std::shared_ptr<Storage> allocate_from_device(std::size_t bytes, Device device);

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  std::size_t bytes_;
  Device device_;
  std::function<void(void*)> deleter_;
};

class Tensor {
 public:
  /// An undefined tensor (no storage); `defined()` is false.
  Tensor() = default;

  /// Uninitialised contiguous tensor.
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::cpu());
  /// Wraps memory owned elsewhere; `owner` keeps it alive (may be null for memory that outlives
  /// every use, such as test data on the stack).
  static Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device,
                          std::shared_ptr<void> owner);
  /// Copies host values into a new CPU f32 tensor.
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int dim() const { return static_cast<int>(shape_.size()); }
  /// Extent of dimension `d` (negative counts from the back).
  std::int64_t size(int d) const;
  std::int64_t stride(int d) const;
  std::int64_t numel() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  std::size_t element_size() const { return dtype_size(dtype_); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  /// Offset of element 0 from the storage start, in bytes.
  std::size_t byte_offset() const { return offset_; }

  void* raw_data() const;
  template <typename T>
  T* data() const { return static_cast<T*>(raw_data()); }

  // Views (share storage).
  /// Same elements, new shape; requires a contiguous tensor. One extent may be -1.
  Tensor view(const Shape& shape) const;
  /// Elements [start, end) of dimension `d`.
  Tensor slice(int d, std::int64_t start, std::int64_t end) const;
  /// Index `i` of dimension `d`, dropping that dimension.
  Tensor select(int d, std::int64_t i) const;
  Tensor permute(const std::vector<int>& order) const;
  Tensor transpose(int a, int b) const;
  Tensor unsqueeze(int d) const;

  // Explicit copies.
  /// A contiguous copy (or this tensor when already contiguous).
  Tensor contiguous() const;
  /// A contiguous copy on `device` (always a copy, even to the same device).
  Tensor to(Device device) const;
  /// A contiguous copy converted to `dtype` (on the same device).
  Tensor to(DType dtype) const;
  Tensor clone() const { return to(device()); }
  /// Copies `src` (same shape; any strides; same or other device/dtype) into this tensor.
  void copy_from(const Tensor& src);
  /// Fills every element with `value` (converted to the dtype).
  void fill(double value);

  /// Reads element `index` (flat row-major over the logical shape) as double; CPU only. For
  /// tests and small tools, not hot loops.
  double item(std::int64_t flat_index) const;
  /// Converts to a host std::vector<float> (any dtype, any device; copies).
  std::vector<float> to_vector() const;

  std::string describe() const;  ///< "f32[2, 3] cpu"

 private:
  std::shared_ptr<Storage> storage_;
  std::size_t offset_ = 0;
  Shape shape_;
  Shape strides_;
  DType dtype_ = DType::f32;
};

}  // namespace mcv
