// TensorImpl and Storage: what a Tensor handle points to (internal).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "soma/core/tensor.h"

namespace soma {

/// A reference-counted buffer. `version` counts in-place writes so backward can detect that
/// a tensor it saved was modified.
///
/// Two kinds: soma's own (from the caching allocator, 64-byte aligned, returned to it) and
/// foreign memory (soma::from_blob: any element-aligned address, never given to the allocator;
/// `deleter`, when set, runs once on `data` when the last tensor sharing the storage dies).
struct Storage {
  /// Tag for the foreign-memory constructor.
  struct Foreign {};

  void* data = nullptr;
  size_t nbytes = 0;  // bytes soma may address (for foreign memory: the extent of the view)
  uint64_t version = 0;
  bool foreign = false;
  // Memory handed to code outside soma, whose writes `version` does not count: `exports` open
  // shares (numpy(), __dlpack__), `raw_exported` for good (data_ptr()); `export_epoch` advances
  // at each share's start and end. Caches keyed by `version` (nn::Linear's packed weight) are
  // not used while a share is open and key on the epoch as well (from_blob.h).
  std::atomic<int> exports{0};
  std::atomic<uint64_t> export_epoch{0};
  std::atomic<bool> raw_exported{false};
  std::function<void(void*)> deleter;  // foreign memory only; empty: the caller owns it

  explicit Storage(size_t n) : data(detail::allocate(n)), nbytes(n) {}
  Storage(Foreign, void* ptr, size_t n, std::function<void(void*)> del)
      : data(ptr), nbytes(n), foreign(true), deleter(std::move(del)) {}
  ~Storage() {
    if (!foreign) {
      detail::deallocate(data, nbytes);
    } else if (deleter) {
      deleter(data);  // a throwing deleter terminates (destructors are noexcept)
    }
  }
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
  // Leaf gradient hooks (Tensor::register_hook), run in order before .grad accumulates.
  std::vector<std::pair<unsigned, std::function<Tensor(const Tensor&)>>> hooks;

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
