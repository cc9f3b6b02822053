// The toolkit's shape ops: permute, movedim, repeat, stack, split/chunk/unbind, flip, roll,
// tril/triu and Tensor.unfold. Each is a view with a differentiable backward (permute, unfold)
// or a composition of differentiable ops (the rest), so all are differentiable twice.
#include <algorithm>
#include <numeric>

#include "autograd/node.h"
#include "core/tensor_impl.h"
#include "ops/shape_internal.h"
#include "ops/trace.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/shape.h"

namespace soma {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

namespace {

void check_defined(const Tensor& x, const char* op) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
}

bool shares_storage(const Tensor& a, const Tensor& b) {
  return a.impl()->storage == b.impl()->storage;
}

// Wraps each of `dims` for a tensor of `ndim` dims and checks that none repeats.
std::vector<int64_t> wrap_unique(const Shape& dims, int64_t ndim, const char* op) {
  std::vector<int64_t> out;
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(ndim, 1)), false);
  for (int64_t d : dims) {
    const int64_t w = detail::wrap_dim(d, ndim, op);
    SOMA_CHECK(!seen[w], op, ": dim ", w, " appears multiple times in the list of dims ", dims);
    seen[w] = true;
    out.push_back(w);
  }
  return out;
}

}  // namespace

static Tensor permute_untraced(const Tensor& x, const Shape& dims) {
  check_defined(x, "permute");
  const int64_t n = x.dim();
  SOMA_CHECK(static_cast<int64_t>(dims.size()) == n, "permute: number of dims ", dims,
             " does not match the number of dims of the input of shape ", x.shape());
  if (n == 0) return view(x, {});  // a new view, as for any other rank
  const std::vector<int64_t> p = wrap_unique(dims, n, "permute");
  Shape shape(n), strides(n), inverse(n);
  for (int64_t i = 0; i < n; ++i) {
    shape[i] = x.size(p[i]);
    strides[i] = x.stride(p[i]);
    inverse[p[i]] = i;
  }
  Tensor out = detail::make_view(x, shape, strides, x.impl()->offset);
  if (needs_grad(x))
    record(out, "permute", {x},
           [inverse](const Tensor& g) -> Grads { return {permute(g, inverse)}; });
  return out;
}

Tensor permute(const Tensor& x, const Shape& dims) {
  trace::Scope ts;
  Tensor out = permute_untraced(x, dims);
  if (ts) ts.record("permute", {x}, out, {{"dims", dims}});
  return out;
}

Tensor movedim(const Tensor& x, const Shape& source, const Shape& destination) {
  check_defined(x, "movedim");
  SOMA_CHECK(source.size() == destination.size(),
             "movedim: Invalid source or destination dims: ", "source (", source,
             " dims) should contain the same number of dims as destination (", destination,
             " dims)");
  const int64_t n = x.dim();
  const std::vector<int64_t> src = wrap_unique(source, n, "movedim");
  const std::vector<int64_t> dst = wrap_unique(destination, n, "movedim");
  if (n == 0) return view(x, {});
  Shape order(n, -1);
  std::vector<bool> used(n, false);
  for (size_t i = 0; i < src.size(); ++i) {
    order[dst[i]] = src[i];
    used[src[i]] = true;
  }
  int64_t next = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (order[i] >= 0) continue;
    while (used[next]) ++next;
    order[i] = next++;
  }
  return permute(x, order);
}

Tensor movedim(const Tensor& x, int64_t source, int64_t destination) {
  return movedim(x, Shape{source}, Shape{destination});
}

Tensor repeat(const Tensor& x, const Shape& repeats) {
  check_defined(x, "repeat");
  const int64_t n = static_cast<int64_t>(repeats.size());
  SOMA_CHECK(n >= x.dim(), "repeat: Number of dimensions of repeat dims (", n,
             ") can not be smaller than number of dimensions of tensor (", x.dim(), ")");
  for (int64_t r : repeats)
    SOMA_CHECK(r >= 0, "repeat: Trying to create tensor with negative dimension ", r, ": repeats ",
               repeats);
  const int64_t lead = n - x.dim();
  Shape paired, expanded, result;
  for (int64_t d = 0; d < n; ++d) {
    const int64_t s = d < lead ? 1 : x.size(d - lead);
    paired.insert(paired.end(), {1, s});
    expanded.insert(expanded.end(), {repeats[d], s});
    result.push_back(repeats[d] * s);
  }
  Tensor out = reshape(expand(reshape(x, paired), expanded), result);
  if (shares_storage(out, x)) out = out.clone();
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  SOMA_CHECK(!tensors.empty(), "stack: expects a non-empty TensorList");
  check_defined(tensors[0], "stack");
  const int64_t d = detail::wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    check_defined(tensors[i], "stack");
    SOMA_CHECK(tensors[i].shape() == tensors[0].shape(),
               "stack: stack expects each tensor to be equal size, but got ", tensors[0].shape(),
               " at entry 0 and ", tensors[i].shape(), " at entry ", i);
    parts.push_back(unsqueeze(tensors[i], d));
  }
  return cat(parts, d);
}

std::vector<Tensor> split_with_sizes(const Tensor& x, const std::vector<int64_t>& split_sizes,
                                     int64_t dim) {
  check_defined(x, "split_with_sizes");
  SOMA_CHECK(x.dim() > 0, "split_with_sizes: expects at least a 1-dimensional tensor");
  const int64_t d = detail::wrap_dim(dim, x.dim(), "split_with_sizes");
  int64_t total = 0;
  for (int64_t s : split_sizes) {
    SOMA_CHECK(s >= 0, "split_with_sizes: expects split_sizes to have only non-negative entries, ",
               "but got split_sizes=", split_sizes);
    total += s;
  }
  SOMA_CHECK(total == x.size(d), "split_with_sizes: expects split_sizes to sum exactly to ",
             x.size(d), " (input tensor's size at dimension ", d,
             "), but got split_sizes=", split_sizes);
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : split_sizes) {
    out.push_back(narrow(x, d, start, s));
    start += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& split_sizes, int64_t dim) {
  return split_with_sizes(x, split_sizes, dim);
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  check_defined(x, "split");
  SOMA_CHECK(x.dim() > 0, "split: expects at least a 1-dimensional tensor");
  SOMA_CHECK(split_size >= 0, "split: split_size can only be 0 if dimension size is 0, but got ",
             "split_size ", split_size);
  const int64_t d = detail::wrap_dim(dim, x.dim(), "split");
  const int64_t n = x.size(d);
  SOMA_CHECK(split_size > 0 || n == 0, "split: split_size can only be 0 if dimension size is 0, ",
             "but got dimension size of ", n);
  const int64_t pieces =
      split_size == 0 ? 1 : std::max<int64_t>((n + split_size - 1) / split_size, 1);
  std::vector<int64_t> sizes(pieces, split_size);
  sizes.back() = n - split_size * (pieces - 1);
  return split_with_sizes(x, sizes, d);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  check_defined(x, "chunk");
  SOMA_CHECK(x.dim() > 0, "chunk: chunk expects at least a 1-dimensional tensor");
  SOMA_CHECK(chunks > 0, "chunk: chunk expects `chunks` to be greater than 0, got: ", chunks);
  const int64_t d = detail::wrap_dim(dim, x.dim(), "chunk");
  const int64_t n = x.size(d);
  const int64_t split_size = (n + chunks - 1) / chunks;
  if (split_size == 0 && n == 0) return split_with_sizes(x, std::vector<int64_t>(chunks, 0), d);
  return split(x, split_size, d);
}

std::vector<Tensor> unbind(const Tensor& x, int64_t dim) {
  check_defined(x, "unbind");
  SOMA_CHECK(x.dim() > 0, "unbind: dimension specified as ", dim, " but tensor has no dimensions");
  const int64_t d = detail::wrap_dim(dim, x.dim(), "unbind");
  std::vector<Tensor> out;
  for (int64_t i = 0; i < x.size(d); ++i) out.push_back(squeeze(narrow(x, d, i, 1), d));
  return out;
}

Tensor flip(const Tensor& x, const Shape& dims) {
  check_defined(x, "flip");
  const std::vector<int64_t> ds = wrap_unique(dims, x.dim(), "flip");
  Tensor out = x;
  for (int64_t d : ds) {
    if (x.dim() == 0 || x.size(d) <= 1) continue;
    const int64_t n = x.size(d);
    std::vector<int64_t> idx(n);
    for (int64_t i = 0; i < n; ++i) idx[i] = n - 1 - i;
    out = index_select(out, d, tensor(idx));
  }
  if (shares_storage(out, x)) out = out.clone();
  return out;
}

Tensor roll(const Tensor& x, const Shape& shifts, const Shape& dims) {
  check_defined(x, "roll");
  if (dims.empty()) {
    SOMA_CHECK(shifts.size() == 1,
               "roll: shifts and dimensions must align. shifts: ", shifts.size(), ", dims: 0");
    return reshape(roll(reshape(x, {-1}), shifts, {0}), x.shape());
  }
  SOMA_CHECK(shifts.size() == dims.size(),
             "roll: shifts and dimensions must align. shifts: ", shifts.size(),
             ", dims: ", dims.size());
  Tensor out = x;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = detail::wrap_dim(dims[i], x.dim(), "roll");
    const int64_t n = x.dim() == 0 ? 1 : x.size(d);
    if (n == 0 || x.dim() == 0) continue;
    const int64_t s = ((shifts[i] % n) + n) % n;
    if (s == 0) continue;
    out = cat({narrow(out, d, n - s, s), narrow(out, d, 0, n - s)}, d);
  }
  if (shares_storage(out, x)) out = out.clone();
  return out;
}

namespace {

Tensor triangle(const Tensor& x, int64_t diagonal, bool lower, const char* op) {
  check_defined(x, op);
  SOMA_CHECK(x.dim() >= 2, op, ": input tensor must have at least 2 dimensions, got shape ",
             x.shape());
  const int64_t rows = x.size(-2), cols = x.size(-1);
  std::vector<int64_t> keep(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      keep[i * cols + j] = lower ? (j - i <= diagonal) : (j - i >= diagonal);
  const Tensor mask = tensor(keep, {rows, cols}).to(kBool);
  return where(mask, x, zeros({}, x.dtype()));
}

}  // namespace

Tensor tril(const Tensor& x, int64_t diagonal) {
  return triangle(x, diagonal, true, "tril");
}

Tensor triu(const Tensor& x, int64_t diagonal) {
  return triangle(x, diagonal, false, "triu");
}

Tensor unfold(const Tensor& x, int64_t dimension, int64_t size, int64_t step) {
  check_defined(x, "unfold");
  const int64_t d = detail::wrap_dim(dimension, x.dim(), "unfold");
  const int64_t n = x.dim() == 0 ? 1 : x.size(d);
  SOMA_CHECK(size >= 0 && size <= n, "unfold: maximum size for tensor at dimension ", d, " is ", n,
             " but size is ", size);
  SOMA_CHECK(step > 0, "unfold: step is ", step, " but must be > 0");
  if (x.dim() == 0) return reshape(x, {size});
  const int64_t windows = (n - size) / step + 1;
  Shape shape = x.shape(), strides = x.strides();
  shape[d] = windows;
  strides[d] = x.stride(d) * step;
  shape.push_back(size);
  strides.push_back(x.stride(d));
  Tensor out = detail::make_view(x, shape, strides, x.impl()->offset);
  if (needs_grad(x)) {
    record(out, "unfold", {x}, [s = x.shape(), d, size, step, windows](const Tensor& g) -> Grads {
      // window w, element k came from position w * step + k: add the windows back
      Shape merged = s;
      merged[d] = windows * size;
      const Tensor rows = reshape(movedim(g, -1, d + 1), merged);
      std::vector<int64_t> idx(static_cast<size_t>(windows * size));
      for (int64_t w = 0; w < windows; ++w)
        for (int64_t k = 0; k < size; ++k) idx[w * size + k] = w * step + k;
      return {ops::index_add_zeros(rows, s, d, tensor(idx, {windows * size}))};
    });
  }
  return out;
}

// ---- method forms --------------------------------------------------------------------------
Tensor Tensor::permute(const Shape& dims) const {
  return soma::permute(*this, dims);
}
Tensor Tensor::repeat(const Shape& repeats) const {
  return soma::repeat(*this, repeats);
}
std::vector<Tensor> Tensor::split(int64_t split_size, int64_t dim) const {
  return soma::split(*this, split_size, dim);
}
std::vector<Tensor> Tensor::split(const std::vector<int64_t>& split_sizes, int64_t dim) const {
  return soma::split(*this, split_sizes, dim);
}
std::vector<Tensor> Tensor::split_with_sizes(const std::vector<int64_t>& split_sizes,
                                             int64_t dim) const {
  return soma::split_with_sizes(*this, split_sizes, dim);
}
std::vector<Tensor> Tensor::chunk(int64_t chunks, int64_t dim) const {
  return soma::chunk(*this, chunks, dim);
}
std::vector<Tensor> Tensor::unbind(int64_t dim) const {
  return soma::unbind(*this, dim);
}
Tensor Tensor::flip(const Shape& dims) const {
  return soma::flip(*this, dims);
}
Tensor Tensor::roll(const Shape& shifts, const Shape& dims) const {
  return soma::roll(*this, shifts, dims);
}
Tensor Tensor::movedim(int64_t source, int64_t destination) const {
  return soma::movedim(*this, source, destination);
}
Tensor Tensor::movedim(const Shape& source, const Shape& destination) const {
  return soma::movedim(*this, source, destination);
}
Tensor Tensor::tril(int64_t diagonal) const {
  return soma::tril(*this, diagonal);
}
Tensor Tensor::triu(int64_t diagonal) const {
  return soma::triu(*this, diagonal);
}
Tensor Tensor::unfold(int64_t dimension, int64_t size, int64_t step) const {
  return soma::unfold(*this, dimension, size, step);
}

}  // namespace soma
