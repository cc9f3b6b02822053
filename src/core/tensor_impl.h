// TensorImpl and Storage: what a Tensor handle points to (internal).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "core/allocator.h"
#include "soma/core/tensor.h"

namespace soma {

/// A reference-counted buffer. `version` counts in-place writes so backward can detect that
/// a tensor it saved was modified.
struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  uint64_t version = 0;

  explicit Storage(size_t n) : data(detail::allocate(n)), nbytes(n) {}
  ~Storage() { detail::deallocate(data, nbytes); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements
  int64_t numel = 1;
  DType dtype = kFloat32;
  bool contiguous = true;
  bool requires_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;         // producer (non-leaf) or null
  std::weak_ptr<autograd::Node> grad_accumulator;  // leaf: cached AccumulateGrad node
  Tensor grad;

  char* bytes() const {
    return static_cast<char*>(storage->data) + offset * static_cast<int64_t>(element_size(dtype));
  }
};

namespace detail {

/// Row-major strides of `shape`.
Shape contiguous_strides(const Shape& shape);
/// Product of sizes (checked for overflow and negative sizes; `op` names the caller).
int64_t checked_numel(const Shape& shape, const char* op);
/// Whether `strides` are the row-major strides of `shape` (size-1 dims ignored).
bool is_contiguous(const Shape& shape, const Shape& strides);
/// A new tensor with fresh contiguous storage.
Tensor make_tensor(const Shape& shape, DType dtype);
/// A view of `base`'s storage with the given geometry (no autograd).
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);
/// Wraps negative `dim` and checks it is in range for a tensor with `ndim` dims.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
/// `t`'s implementation; soma::Error naming `op` when `t` is undefined.
const TensorImpl& impl_of(const Tensor& t, const char* op);

}  // namespace detail
}  // namespace soma
