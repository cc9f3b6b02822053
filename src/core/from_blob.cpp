// soma::from_blob: tensors over foreign memory (a Storage that never enters the allocator).
#include "soma/core/from_blob.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <utility>

#include "core/tensor_impl.h"
#include "soma/core/error.h"

namespace soma {

Tensor from_blob(void* data, const Shape& shape, const Shape& strides, Deleter deleter,
                 DType dtype) {
  const int64_t numel = detail::checked_numel(shape, "from_blob");
  SOMA_CHECK(strides.size() == shape.size(), "from_blob: strides ", strides, " have ",
             strides.size(), " entries for shape ", shape, " with ", shape.size(), " dims");
  const int64_t esize = static_cast<int64_t>(element_size(dtype));
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  // Highest element offset addressed, checked for overflow (sizes and strides are >= 0).
  int64_t last = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    SOMA_CHECK(strides[d] >= 0 || shape[d] <= 1, "from_blob: negative stride ", strides[d],
               " in dim ", d, " (shape ", shape, ", strides ", strides,
               "); soma needs non-negative strides: copy the array to a positive-stride layout "
               "first");
    if (shape[d] <= 1 || strides[d] == 0) continue;
    SOMA_CHECK(strides[d] <= (kMax - last) / (shape[d] - 1), "from_blob: shape ", shape,
               " with strides ", strides, " addresses more than 2^63 elements");
    last += (shape[d] - 1) * strides[d];
  }
  size_t nbytes = 0;
  if (numel > 0) {
    SOMA_CHECK(data != nullptr, "from_blob: data is null for shape ", shape, " (", numel,
               " elements)");
    SOMA_CHECK(last < kMax / esize, "from_blob: shape ", shape, " with strides ", strides,
               " addresses ", last, " elements of ", esize, " bytes, more than 2^63 bytes");
    const auto address = reinterpret_cast<std::uintptr_t>(data);
    SOMA_CHECK(address % static_cast<std::uintptr_t>(esize) == 0, "from_blob: data ", data,
               " is not aligned to the ", esize, "-byte element size of ", dtype,
               " (soma's kernels need element-aligned memory; copy it to an aligned buffer)");
    SOMA_CHECK(address <= std::numeric_limits<std::uintptr_t>::max() -
                              static_cast<std::uintptr_t>((last + 1) * esize),
               "from_blob: data ", data, " plus the addressed extent of ", (last + 1) * esize,
               " bytes wraps around the address space");
    nbytes = static_cast<size_t>((last + 1) * esize);
  }

  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = strides;
  impl->numel = numel;
  impl->dtype = dtype;
  impl->contiguous = detail::is_contiguous(shape, strides);
  // Last, so nothing after it can throw: a failed from_blob never calls the deleter.
  impl->storage = std::make_shared<Storage>(Storage::Foreign{}, data, nbytes, std::move(deleter));
  return Tensor(std::move(impl));
}

void begin_external_share(const Tensor& t) {
  if (!t.defined()) return;
  Storage& s = *t.impl()->storage;
  s.exports.fetch_add(1);
  s.export_epoch.fetch_add(1);
}

void end_external_share(const Tensor& t) {
  if (!t.defined()) return;
  Storage& s = *t.impl()->storage;
  s.export_epoch.fetch_add(1);  // before the count drops: a cache never sees 0 with the old epoch
  int open = s.exports.load();
  do {
    SOMA_CHECK(open > 0, "end_external_share: no share of this tensor's memory is open");
  } while (!s.exports.compare_exchange_weak(open, open - 1));
}

void mark_shared_externally(const Tensor& t) {
  if (!t.defined()) return;
  Storage& s = *t.impl()->storage;
  s.raw_exported.store(true);
  s.export_epoch.fetch_add(1);
}

Tensor from_blob(void* data, const Shape& shape, const Shape& strides, DType dtype) {
  return from_blob(data, shape, strides, Deleter(), dtype);
}

Tensor from_blob(void* data, const Shape& shape, Deleter deleter, DType dtype) {
  detail::checked_numel(shape, "from_blob");  // before contiguous_strides reads the sizes
  return from_blob(data, shape, detail::contiguous_strides(shape), std::move(deleter), dtype);
}

Tensor from_blob(void* data, const Shape& shape, DType dtype) {
  return from_blob(data, shape, Deleter(), dtype);
}

}  // namespace soma
