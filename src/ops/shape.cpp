// Shape ops: views (reshape, view, transpose, squeeze, unsqueeze, narrow, slice, expand) and
// copies (cat, index_select), each with its backward. Every backward is built from
// differentiable ops (reshape, transpose, sum_to, narrow, and index_add_zeros whose own backward
// is index_select), so all of them can be differentiated twice.
#include "soma/ops/shape.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "core/tensor_impl.h"
#include "kernels/kernels.h"
#include "ops/shape_internal.h"
#include "ops/trace.h"
#include "soma/ops/reduce.h"

namespace soma {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

namespace {

void check_defined(const Tensor& x, const char* op) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
}

// Resolves one -1 in `shape` so that it holds `numel` elements.
Shape infer_shape(const Shape& shape, int64_t numel, const Shape& from, const char* op) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == -1) {
      SOMA_CHECK(infer < 0, op, ": only one dimension can be -1, got ", shape);
      infer = static_cast<int64_t>(d);
    } else {
      SOMA_CHECK(out[d] >= 0, op, ": invalid size ", out[d], " in shape ", shape);
      known *= out[d];
    }
  }
  if (infer >= 0) {
    SOMA_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape,
               " is invalid for input of shape ", from, " (", numel, " elements)");
    out[infer] = numel / known;
  }
  SOMA_CHECK(detail::checked_numel(out, op) == numel, op, ": shape ", shape,
             " is invalid for input of shape ", from, " (", numel, " elements)");
  return out;
}

// The strides under which `new_shape` views the elements of a tensor of shape `old_shape` and
// strides `old_strides` in the same row-major order, or nullopt when no strides do (ATen's
// computeStride, so view and reshape alias exactly when PyTorch's do). The old dims fall into
// blocks within which they are contiguous (stride[d] == size[d+1] * stride[d+1], size-1 dims
// join either side); the new shape must split into blocks of the same element counts.
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides,
                                  const Shape& new_shape) {
  const int64_t new_dims = static_cast<int64_t>(new_shape.size());
  if (old_shape.empty()) return Shape(new_shape.size(), 1);
  int64_t numel = 1;
  for (const int64_t n : old_shape) numel *= n;
  if (numel == 0 && old_shape == new_shape) return old_strides;
  Shape strides(new_shape.size());
  if (numel == 0) {  // as if resized: contiguous, a size-0 dim counting as 1
    for (int64_t d = new_dims - 1; d >= 0; --d)
      strides[d] = d == new_dims - 1 ? 1 : std::max<int64_t>(new_shape[d + 1], 1) * strides[d + 1];
    return strides;
  }
  int64_t view_d = new_dims - 1;
  int64_t base_stride = old_strides.back();  // stride of the block's innermost element
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    // the block ends at d unless the dim outside it continues it
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        strides[view_d] = view_numel * base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return strides;
}

// A view of x with new geometry whose gradient is reshaped back to x's shape.
Tensor shaped_view(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset,
                   const char* op) {
  Tensor out = detail::make_view(x, shape, strides, offset);
  if (needs_grad(x))
    record(out, op, {x}, [s = x.shape()](const Tensor& g) -> Grads { return {reshape(g, s)}; });
  return out;
}

}  // namespace

static Tensor view_untraced(const Tensor& x, const Shape& shape) {
  check_defined(x, "view");
  const Shape s = infer_shape(shape, x.numel(), x.shape(), "view");
  const std::optional<Shape> strides = view_strides(x.shape(), x.strides(), s);
  SOMA_CHECK(strides.has_value(), "view: shape ", shape, " is not compatible with the size ",
             x.shape(), " and strides ", x.strides(),
             " of the input (a dimension would span two of its non-contiguous blocks); use "
             "reshape, which copies then");
  return shaped_view(x, s, *strides, x.impl()->offset, "view");
}

Tensor view(const Tensor& x, const Shape& shape) {
  trace::Scope ts;
  Tensor out = view_untraced(x, shape);
  if (ts) ts.record("reshape", {x}, out);
  return out;
}

static Tensor reshape_untraced(const Tensor& x, const Shape& shape) {
  check_defined(x, "reshape");
  const Shape s = infer_shape(shape, x.numel(), x.shape(), "reshape");
  if (s == x.shape()) return x;
  if (const std::optional<Shape> strides = view_strides(x.shape(), x.strides(), s))
    return shaped_view(x, s, *strides, x.impl()->offset, "reshape");
  const Tensor c = x.contiguous();
  return shaped_view(c, s, detail::contiguous_strides(s), c.impl()->offset, "reshape");
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  trace::Scope ts;
  Tensor out = reshape_untraced(x, shape);
  if (ts) ts.record("reshape", {x}, out);
  return out;
}

static Tensor flatten_untraced(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  check_defined(x, "flatten");
  if (x.dim() == 0) return reshape(x, {1});
  const int64_t s = detail::wrap_dim(start_dim, x.dim(), "flatten");
  const int64_t e = detail::wrap_dim(end_dim, x.dim(), "flatten");
  SOMA_CHECK(s <= e, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim,
             " for shape ", x.shape());
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  int64_t merged = 1;
  for (int64_t d = s; d <= e; ++d) merged *= x.size(d);
  shape.push_back(merged);
  shape.insert(shape.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, shape);
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  trace::Scope ts;
  Tensor out = flatten_untraced(x, start_dim, end_dim);
  if (ts) ts.record("flatten", {x}, out, {{"start_dim", start_dim}, {"end_dim", end_dim}});
  return out;
}

static Tensor transpose_untraced(const Tensor& x, int64_t dim0, int64_t dim1) {
  check_defined(x, "transpose");
  if (x.dim() == 0) return x;
  const int64_t a = detail::wrap_dim(dim0, x.dim(), "transpose");
  const int64_t b = detail::wrap_dim(dim1, x.dim(), "transpose");
  Shape shape = x.shape(), strides = x.strides();
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  Tensor out = detail::make_view(x, shape, strides, x.impl()->offset);
  if (needs_grad(x))
    record(out, "transpose", {x},
           [a, b](const Tensor& g) -> Grads { return {transpose(g, a, b)}; });
  return out;
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  trace::Scope ts;
  Tensor out = transpose_untraced(x, dim0, dim1);
  if (ts) ts.record("transpose", {x}, out, {{"dim0", dim0}, {"dim1", dim1}});
  return out;
}

Tensor t(const Tensor& x) {
  check_defined(x, "t");
  SOMA_CHECK(x.dim() <= 2, "t: expects a tensor with at most 2 dims, got shape ", x.shape(),
             "; use transpose(dim0, dim1)");
  return x.dim() < 2 ? x : transpose(x, 0, 1);
}

Tensor squeeze(const Tensor& x) {
  check_defined(x, "squeeze");
  Shape shape, strides;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.size(d) == 1) continue;
    shape.push_back(x.size(d));
    strides.push_back(x.stride(d));
  }
  return shaped_view(x, shape, strides, x.impl()->offset, "squeeze");
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  check_defined(x, "squeeze");
  if (x.dim() == 0) return x;
  const int64_t d = detail::wrap_dim(dim, x.dim(), "squeeze");
  if (x.size(d) != 1) return x;
  Shape shape = x.shape(), strides = x.strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return shaped_view(x, shape, strides, x.impl()->offset, "squeeze");
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  check_defined(x, "unsqueeze");
  const int64_t d = detail::wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape(), strides = x.strides();
  const int64_t stride = d < x.dim() ? x.stride(d) * x.size(d) : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  return shaped_view(x, shape, strides, x.impl()->offset, "unsqueeze");
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  check_defined(x, "narrow");
  SOMA_CHECK(x.dim() > 0, "narrow: cannot narrow a 0-d tensor");
  const int64_t d = detail::wrap_dim(dim, x.dim(), "narrow");
  SOMA_CHECK(start >= 0 && length >= 0 && start + length <= x.size(d), "narrow: start ", start,
             " and length ", length, " are out of range for dimension ", dim, " of size ",
             x.size(d), " (shape ", x.shape(), ")");
  return slice(x, d, start, start + length, 1);
}

Tensor expand(const Tensor& x, const Shape& size) {
  check_defined(x, "expand");
  const int64_t n = static_cast<int64_t>(size.size());
  SOMA_CHECK(n >= x.dim(), "expand: the number of sizes provided (", n, ") must be at least ",
             "the number of dimensions of the tensor (", x.dim(), "); target ", size, ", tensor ",
             x.shape());
  const int64_t lead = n - x.dim();
  Shape shape(n), strides(n, 0);
  for (int64_t d = 0; d < n; ++d) {
    if (d < lead) {
      SOMA_CHECK(size[d] >= 0, "expand: size ", size[d], " is not allowed in the new leading ",
                 "dimension ", d, "; target ", size, ", tensor ", x.shape());
      shape[d] = size[d];
      continue;
    }
    const int64_t have = x.size(d - lead);
    if (size[d] == -1 || size[d] == have) {
      shape[d] = have;
      strides[d] = x.stride(d - lead);
    } else {
      SOMA_CHECK(have == 1 && size[d] >= 0, "expand: the expanded size (", size[d],
                 ") must match the existing size (", have, ") at non-singleton dimension ", d,
                 "; target ", size, ", tensor ", x.shape());
      shape[d] = size[d];
    }
  }
  Tensor out = detail::make_view(x, shape, strides, x.impl()->offset);
  if (needs_grad(x))
    record(out, "expand", {x},
           [s = x.shape()](const Tensor& g) -> Grads { return {sum_to(g, s)}; });
  return out;
}

Tensor expand_as(const Tensor& x, const Tensor& other) {
  check_defined(other, "expand_as");
  return expand(x, other.shape());
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  check_defined(x, "slice");
  SOMA_CHECK(x.dim() > 0, "slice: cannot slice a 0-d tensor");
  SOMA_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t d = detail::wrap_dim(dim, x.dim(), "slice");
  const int64_t n = x.size(d);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = x.shape(), strides = x.strides();
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  Tensor out = detail::make_view(x, shape, strides, x.impl()->offset + start * x.stride(d));
  if (needs_grad(x)) {
    record(out, "slice", {x}, [s = x.shape(), d, start, step](const Tensor& g) -> Grads {
      // the picked positions start, start + step, ... receive g; the rest 0
      std::vector<int64_t> index(static_cast<size_t>(g.size(d)));
      for (size_t i = 0; i < index.size(); ++i) index[i] = start + static_cast<int64_t>(i) * step;
      return {ops::index_add_zeros(g, s, d, tensor(index, {g.size(d)}))};
    });
  }
  return out;
}

static Tensor cat_untraced(const std::vector<Tensor>& tensors, int64_t dim) {
  SOMA_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  const Tensor& first = tensors[0];
  check_defined(first, "cat");
  SOMA_CHECK(first.dim() > 0,
             "cat: zero-dimensional tensor (at position 0) cannot be concatenated");
  const int64_t d = detail::wrap_dim(dim, first.dim(), "cat");
  Shape shape = first.shape();
  shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check_defined(t, "cat");
    SOMA_CHECK(t.dtype() == first.dtype(), "cat: tensor ", i, " has dtype ", t.dtype(),
               ", tensor 0 has ", first.dtype());
    bool ok = t.dim() == first.dim();
    for (int64_t k = 0; ok && k < t.dim(); ++k) ok = k == d || t.size(k) == first.size(k);
    SOMA_CHECK(ok, "cat: tensor ", i, " has shape ", t.shape(), " but tensor 0 has shape ",
               first.shape(), " (sizes must match except in dimension ", d, ")");
    shape[d] += t.size(d);
  }
  Tensor out = detail::make_tensor(shape, first.dtype());
  std::vector<int64_t> sizes;
  int64_t offset = 0;
  for (const Tensor& t : tensors) {
    Tensor part = detail::make_view(out, t.shape(), out.strides(), offset * out.stride(d));
    kernels::call<kernels::Copy>(part, t);
    sizes.push_back(t.size(d));
    offset += t.size(d);
  }
  if (needs_grad(tensors)) {
    record(out, "cat", tensors, [d, sizes](const Tensor& g) -> Grads {
      Grads grads;
      int64_t start = 0;
      for (int64_t n : sizes) {
        grads.push_back(narrow(g, d, start, n));
        start += n;
      }
      return grads;
    });
  }
  return out;
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  trace::Scope ts;
  Tensor out = cat_untraced(tensors, dim);
  if (ts) ts.record("cat", tensors, out, {{"dim", dim}});
  return out;
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_defined(x, "index_select");
  check_defined(index, "index_select");
  SOMA_CHECK(index.dtype() == kInt64, "index_select: index must be int64, got ", index.dtype());
  SOMA_CHECK(index.dim() <= 1, "index_select: index must be 1-D, got shape ", index.shape());
  const int64_t d = detail::wrap_dim(dim, x.dim(), "index_select");
  const int64_t size = x.dim() == 0 ? 1 : x.size(d);
  const std::vector<int64_t> idx = index.to_vector<int64_t>();
  for (int64_t i : idx)
    SOMA_CHECK(i >= 0 && i < size, "index_select: index ", i, " is out of range for dimension ",
               dim, " of size ", size, " (shape ", x.shape(), ")");
  const Tensor xc = x.contiguous();
  Shape shape = x.shape();
  if (!shape.empty()) shape[d] = static_cast<int64_t>(idx.size());
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < x.dim(); ++k) {
    if (k < d) outer *= x.size(k);
    if (k > d) inner *= x.size(k);
  }
  const int64_t m = static_cast<int64_t>(idx.size());
  const size_t row_bytes = static_cast<size_t>(inner) * element_size(x.dtype());
  Tensor out = detail::make_tensor(shape, x.dtype());
  const char* src = xc.impl()->bytes();
  char* dst = out.impl()->bytes();
  kernels::call<kernels::GatherRows>(src, dst, outer, size, idx.data(), m,
                                     static_cast<int64_t>(row_bytes));
  if (needs_grad(x)) {
    // index_add: rows picked several times receive the sum of their gradients
    const Tensor index1 = reshape(index, {-1});
    record(out, "index_select", {x}, [s = x.shape(), d, index1](const Tensor& g) -> Grads {
      return {ops::index_add_zeros(g, s, d, index1)};
    });
  }
  return out;
}

namespace ops {

Tensor index_add_zeros(const Tensor& src, const Shape& shape, int64_t dim, const Tensor& index) {
  const int64_t n = static_cast<int64_t>(shape.size());
  const int64_t d = n == 0 ? 0 : detail::wrap_dim(dim, n, "index_add");
  const int64_t size = n == 0 ? 1 : shape[d];
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < n; ++k) {
    if (k < d) outer *= shape[k];
    if (k > d) inner *= shape[k];
  }
  const std::vector<int64_t> idx = index.to_vector<int64_t>();
  const int64_t m = static_cast<int64_t>(idx.size());
  SOMA_CHECK(src.numel() == outer * m * inner, "index_add: source of shape ", src.shape(),
             " does not match ", m, " indices into shape ", shape, " along dim ", d);
  for (int64_t i : idx)
    SOMA_CHECK(i >= 0 && i < size, "index_add: index ", i, " is out of range for size ", size);
  Tensor out = zeros(shape, src.dtype());
  const Tensor sc = src.detach().contiguous();
  detail::dispatch_float(src.dtype(), "index_add", [&]<typename T>() {
    kernels::call<kernels::IndexAddRows<T>>(sc.data<T>(), out.data<T>(), outer, size, idx.data(), m,
                                            inner);
  });
  if (needs_grad(src))
    record(out, "index_add", {src}, [d, n, index](const Tensor& g) -> Grads {
      return {n == 0 ? reshape(g, {}) : index_select(g, d, index)};
    });
  return out;
}

}  // namespace ops

// ---- method forms --------------------------------------------------------------------------
Tensor Tensor::reshape(const Shape& s) const {
  return soma::reshape(*this, s);
}
Tensor Tensor::view(const Shape& s) const {
  return soma::view(*this, s);
}
Tensor Tensor::flatten(int64_t s, int64_t e) const {
  return soma::flatten(*this, s, e);
}
Tensor Tensor::transpose(int64_t a, int64_t b) const {
  return soma::transpose(*this, a, b);
}
Tensor Tensor::t() const {
  return soma::t(*this);
}
Tensor Tensor::squeeze() const {
  return soma::squeeze(*this);
}
Tensor Tensor::squeeze(int64_t d) const {
  return soma::squeeze(*this, d);
}
Tensor Tensor::unsqueeze(int64_t d) const {
  return soma::unsqueeze(*this, d);
}
Tensor Tensor::narrow(int64_t d, int64_t s, int64_t n) const {
  return soma::narrow(*this, d, s, n);
}
Tensor Tensor::expand(const Shape& size) const {
  return soma::expand(*this, size);
}
Tensor Tensor::expand_as(const Tensor& other) const {
  return soma::expand_as(*this, other);
}
Tensor Tensor::slice(int64_t d, int64_t s, int64_t e, int64_t st) const {
  return soma::slice(*this, d, s, e, st);
}
Tensor Tensor::index_select(int64_t d, const Tensor& i) const {
  return soma::index_select(*this, d, i);
}

}  // namespace soma
