// Indexing ops (soma/ops/indexing.h).
//
// Every op here comes down to two primitives on the row-major flattening of a tensor x:
//   take_flat(x, lin)            out[i] = x.flat[lin[i]]
//   put_flat(x, lin, v, acc)     out = copy of x; out.flat[lin[i]] = v[i]  (+= with acc)
// whose gradients are each other: d take / dx = put into zeros with accumulate; d put / dx =
// g with the written places zeroed (or g itself with acc), d put / dv = take(g). So every
// gradient is built from these two recorded ops and is itself differentiable, to any order.
// The ops differ only in how they compute `lin` (int64, no gradient): basic indexing as a
// strided view over x's row-major layout, advanced indices broadcast and laid out per PyTorch's
// rule, gather / scatter / index_add from their index tensors.
#include "soma/ops/indexing.h"

#include <algorithm>
#include <string_view>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "core/overlap.h"
#include "core/tensor_impl.h"
#include "kernels/kernels.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/reduce.h"
#include "soma/ops/shape.h"

namespace soma {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using indexing::TensorIndex;

indexing::TensorIndex::TensorIndex(const char* s) : kind_(Kind::Ellipsis) {
  SOMA_CHECK(s != nullptr && std::string_view(s) == "...",
             "TensorIndex: the only string index is \"...\" (Ellipsis), got \"",
             s != nullptr ? s : "", "\"");
}

namespace {

void check_defined(const Tensor& x, const char* op) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
}

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t v : s) n *= v;
  return n;
}

// The element offsets of a strided geometry, in row-major order of `shape`.
std::vector<int64_t> strided_offsets(const Shape& shape, const Shape& strides, int64_t offset) {
  const int64_t n = numel_of(shape);
  std::vector<int64_t> out(static_cast<size_t>(n));
  if (n == 0) return out;
  const size_t nd = shape.size();
  std::vector<int64_t> c(nd, 0);
  int64_t off = offset;
  for (int64_t i = 0; i < n; ++i) {
    out[static_cast<size_t>(i)] = off;
    for (size_t d = nd; d-- > 0;) {
      if (++c[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= (shape[d] - 1) * strides[d];
      c[d] = 0;
    }
  }
  return out;
}

Tensor long_tensor(const std::vector<int64_t>& values, const Shape& shape) {
  Tensor t = detail::make_tensor(shape, kInt64);
  std::copy(values.begin(), values.end(), t.data<int64_t>());
  return t;
}

Tensor put_flat(const Tensor& x, const Tensor& lin, const Tensor& v, bool accumulate);

// out[i] = x.flat[lin[i]], out shaped like lin; lin holds valid row-major positions of x.
Tensor take_flat(const Tensor& x, const Tensor& lin) {
  const Tensor xc = x.detach().contiguous();
  const Tensor lc = lin.contiguous();
  Tensor out = detail::make_tensor(lin.shape(), x.dtype());
  const int64_t n = lin.numel();
  const int64_t* pl = lc.data<int64_t>();
  detail::dispatch_all(x.dtype(), [&]<typename T>() {
    kernels::call<kernels::TakeFlat<T>>(xc.data<T>(), pl, out.data<T>(), n);
  });
  if (needs_grad(x))
    record(out, "take", {x}, [lin, s = x.shape()](const Tensor& g) -> Grads {
      return {put_flat(zeros(s, g.dtype()), lin, g, true)};
    });
  return out;
}

// A copy of x with x.flat[lin[i]] = v[i] (+= with accumulate); v has lin's numel and x's dtype.
Tensor put_flat(const Tensor& x, const Tensor& lin, const Tensor& v, bool accumulate) {
  Tensor out = detail::make_tensor(x.shape(), x.dtype());
  kernels::call<kernels::Copy>(out, x.detach());
  const Tensor vc = v.detach().contiguous();
  const Tensor lc = lin.contiguous();
  const int64_t n = lin.numel();
  const int64_t* pl = lc.data<int64_t>();
  detail::dispatch_all(x.dtype(), [&]<typename T>() {
    kernels::call<kernels::PutFlat<T>>(out.data<T>(), pl, vc.data<T>(), n, accumulate);
  });
  if (needs_grad(x, v))
    record(out, accumulate ? "index_put_accumulate" : "index_put", {x, v},
           [lin, accumulate, vs = v.shape()](const Tensor& g) -> Grads {
             Tensor gx = accumulate ? g : put_flat(g, lin, zeros(lin.shape(), g.dtype()), false);
             Tensor gv = reshape(take_flat(g, lin), vs);
             return {gx, gv};
           });
  return out;
}

// ---- index lists -------------------------------------------------------------------------
struct Geometry {
  Shape shape, strides;
  int64_t offset = 0;
};

// What an index list does to x: the basic part as a view (`real` over x's storage, `virt` over
// x's row-major layout), then an int64 index tensor for each dim of that view that has one.
struct Plan {
  Geometry real, virt;
  std::vector<Tensor> adv;  // one per view dim; undefined: no tensor index there
  bool advanced = false;
  Shape out_shape;           // shape of x[indices]
  std::vector<int64_t> lin;  // advanced only: row-major positions in x of the result's elements
};

void insert_dim(Geometry& g, size_t d) {
  const int64_t stride = d < g.shape.size() ? g.strides[d] * g.shape[d] : 1;
  g.shape.insert(g.shape.begin() + static_cast<int64_t>(d), 1);
  g.strides.insert(g.strides.begin() + static_cast<int64_t>(d), stride);
}

void new_unit_dim(Plan& p, size_t d) {
  insert_dim(p.real, d);
  insert_dim(p.virt, d);
  p.adv.insert(p.adv.begin() + static_cast<int64_t>(d), Tensor());
}

void bool_index(Plan& p, size_t d, bool value) {
  new_unit_dim(p, d);
  p.adv[d] = value ? zeros({1}, kInt64) : zeros({0}, kInt64);
  p.advanced = true;
}

Plan make_plan(const Tensor& x, const std::vector<TensorIndex>& indices, const char* op) {
  check_defined(x, op);
  int64_t consumed = 0, ellipses = 0;
  for (const TensorIndex& i : indices) {
    if (i.is_integer() || i.is_slice()) {
      ++consumed;
    } else if (i.is_ellipsis()) {
      ++ellipses;
    } else if (i.is_tensor()) {
      const Tensor& t = i.tensor();
      SOMA_CHECK(t.defined(), op, ": an index tensor is undefined");
      const DType dt = t.dtype();
      SOMA_CHECK(dt == kInt64 || dt == kBool || dt == kUInt8, op,
                 ": tensors used as indices must be int64 or bool tensors, got ", dt);
      consumed += dt == kInt64 ? 1 : t.dim();
    }
  }
  SOMA_CHECK(ellipses <= 1, op, ": an index can only have a single ellipsis (...)");
  SOMA_CHECK(consumed <= x.dim(), op, ": too many indices for tensor of dimension ", x.dim(),
             " (shape ", x.shape(), ")");
  Plan p;
  p.real = {x.shape(), x.strides(), x.impl()->offset};
  p.virt = {x.shape(), detail::contiguous_strides(x.shape()), 0};
  p.adv.assign(static_cast<size_t>(x.dim()), Tensor());
  size_t d = 0;
  for (const TensorIndex& i : indices) {
    switch (i.kind()) {
      case TensorIndex::Kind::Integer: {
        const int64_t size = p.real.shape[d];
        int64_t k = i.integer();
        SOMA_CHECK(k >= -size && k < size, op, ": index ", k, " is out of bounds for dimension ", d,
                   " with size ", size, " (shape ", x.shape(), ")");
        if (k < 0) k += size;
        for (Geometry* g : {&p.real, &p.virt}) {
          g->offset += k * g->strides[d];
          g->shape.erase(g->shape.begin() + static_cast<int64_t>(d));
          g->strides.erase(g->strides.begin() + static_cast<int64_t>(d));
        }
        p.adv.erase(p.adv.begin() + static_cast<int64_t>(d));
        break;
      }
      case TensorIndex::Kind::Slice: {
        const int64_t size = p.real.shape[d];
        const indexing::Slice& s = i.slice();
        const int64_t step = s.step.value_or(1);
        SOMA_CHECK(step > 0, op, ": slice step must be greater than zero, got ", step);
        int64_t start = s.start.value_or(0), stop = s.stop.value_or(size);
        if (start < 0) start += size;
        if (stop < 0) stop += size;
        start = std::clamp<int64_t>(start, 0, size);
        stop = std::clamp<int64_t>(stop, 0, size);
        const int64_t len = stop > start ? 1 + (stop - start - 1) / step : 0;  // no overflow
        for (Geometry* g : {&p.real, &p.virt}) {
          g->offset += start * g->strides[d];
          g->shape[d] = len;
          // A step past the end only ever reaches one element: keep its stride from overflowing.
          g->strides[d] *= len > 1 ? step : 1;
        }
        ++d;
        break;
      }
      case TensorIndex::Kind::None:
        new_unit_dim(p, d);
        ++d;
        break;
      case TensorIndex::Kind::Ellipsis:
        d += static_cast<size_t>(x.dim() - consumed);
        break;
      case TensorIndex::Kind::Boolean:
        bool_index(p, d, i.boolean());
        ++d;
        break;
      case TensorIndex::Kind::Tensor: {
        const Tensor& t = i.tensor();
        if (t.dtype() == kInt64) {
          p.adv[d] = t;
          p.advanced = true;
          ++d;
          break;
        }
        const Tensor mask = t.dtype() == kBool ? t : ne(t, Scalar(0));
        if (mask.dim() == 0) {
          bool_index(p, d, mask.item<bool>());
          ++d;
          break;
        }
        for (int64_t j = 0; j < mask.dim(); ++j)
          SOMA_CHECK(mask.size(j) == p.real.shape[d + static_cast<size_t>(j)], op,
                     ": the shape of the mask ", mask.shape(), " at index ", j,
                     " does not match the shape of the indexed tensor ", p.real.shape, " at index ",
                     d + static_cast<size_t>(j));
        const Tensor nz = nonzero(mask);  // [n, k]
        const std::vector<int64_t> v = nz.to_vector<int64_t>();
        const int64_t n = nz.size(0), k = mask.dim();
        for (int64_t j = 0; j < k; ++j) {
          std::vector<int64_t> col(static_cast<size_t>(n));
          for (int64_t r = 0; r < n; ++r)
            col[static_cast<size_t>(r)] = v[static_cast<size_t>(r * k + j)];
          p.adv[d + static_cast<size_t>(j)] = long_tensor(col, {n});
        }
        p.advanced = true;
        d += static_cast<size_t>(k);
        break;
      }
    }
  }
  if (!p.advanced) {
    p.out_shape = p.real.shape;
    return p;
  }
  // Broadcast the index tensors, check and wrap their entries.
  std::vector<size_t> dims;
  Shape b;
  bool first = true;
  for (size_t k = 0; k < p.adv.size(); ++k) {
    if (!p.adv[k].defined()) continue;
    dims.push_back(k);
    b = first ? p.adv[k].shape() : broadcast_shapes(b, p.adv[k].shape(), op);
    first = false;
  }
  const int64_t nb = numel_of(b);
  std::vector<int64_t> adv_off(static_cast<size_t>(nb), 0);
  for (size_t k : dims) {
    const std::vector<int64_t> vals = expand(p.adv[k], b).to_vector<int64_t>();
    const int64_t size = p.virt.shape[k];
    for (int64_t j = 0; j < nb; ++j) {
      int64_t v = vals[static_cast<size_t>(j)];
      SOMA_CHECK(v >= -size && v < size, op, ": index ", v, " is out of bounds for dimension ", k,
                 " with size ", size);
      if (v < 0) v += size;
      adv_off[static_cast<size_t>(j)] += v * p.virt.strides[k];
    }
  }
  // Where the broadcast dims go: in place of the indexed dims when those are adjacent.
  const bool adjacent = dims.back() - dims.front() + 1 == dims.size();
  const Shape bstrides = detail::contiguous_strides(b);
  Shape rest_strides, b_strides;
  auto push_rest = [&](size_t k) {
    p.out_shape.push_back(p.virt.shape[k]);
    rest_strides.push_back(p.virt.strides[k]);
    b_strides.push_back(0);
  };
  auto push_b = [&]() {
    for (size_t j = 0; j < b.size(); ++j) {
      p.out_shape.push_back(b[j]);
      rest_strides.push_back(0);
      b_strides.push_back(bstrides[j]);
    }
  };
  const size_t nd = p.virt.shape.size();
  if (adjacent) {
    for (size_t k = 0; k < dims.front(); ++k) push_rest(k);
    push_b();
    for (size_t k = dims.back() + 1; k < nd; ++k) push_rest(k);
  } else {
    push_b();
    for (size_t k = 0; k < nd; ++k)
      if (!p.adv[k].defined()) push_rest(k);
  }
  const std::vector<int64_t> rest = strided_offsets(p.out_shape, rest_strides, p.virt.offset);
  const std::vector<int64_t> bpos = strided_offsets(p.out_shape, b_strides, 0);
  p.lin.resize(rest.size());
  for (size_t j = 0; j < rest.size(); ++j)
    p.lin[j] = rest[j] + adv_off[static_cast<size_t>(bpos[j])];
  return p;
}

// Row-major positions in x of the elements of x[indices].
Tensor plan_positions(const Plan& p) {
  if (p.advanced) return long_tensor(p.lin, p.out_shape);
  return long_tensor(strided_offsets(p.virt.shape, p.virt.strides, p.virt.offset), p.out_shape);
}

// `values` shaped for a result of shape `target`: leading size-1 dims beyond target's rank are
// dropped (as PyTorch does), then broadcast.
Tensor values_for(const Tensor& values, const Shape& target, const char* op) {
  Tensor v = values;
  if (v.dim() > static_cast<int64_t>(target.size())) {
    const int64_t extra = v.dim() - static_cast<int64_t>(target.size());
    bool ones = true;
    for (int64_t k = 0; k < extra; ++k) ones = ones && v.size(k) == 1;
    SOMA_CHECK(ones, op, ": shape mismatch: value tensor of shape ", values.shape(),
               " cannot be broadcast to indexing result of shape ", target);
    v = reshape(v, Shape(v.shape().begin() + extra, v.shape().end()));
  }
  bool ok = true;
  for (int64_t k = 0; k < v.dim(); ++k) {
    const int64_t have = v.size(v.dim() - 1 - k);
    const int64_t want = target[target.size() - 1 - static_cast<size_t>(k)];
    ok = ok && (have == want || have == 1);
  }
  SOMA_CHECK(ok, op, ": shape mismatch: value tensor of shape ", values.shape(),
             " cannot be broadcast to indexing result of shape ", target);
  return v.shape() == target ? v : expand(v, target);
}

// In-place writes bypass the graph (as soma's other in-place ops): refused where a gradient
// would be lost.
void check_inplace(const Tensor& self, const char* op, const Tensor& other = Tensor()) {
  SOMA_CHECK(self.defined(), op, ": called on an undefined tensor");
  if (!autograd::is_grad_enabled()) return;
  if (self.requires_grad()) {
    SOMA_CHECK(!self.is_leaf(), op, ": a leaf tensor that requires grad (shape ", self.shape(),
               ") cannot be modified in place outside NoGradGuard");
    detail::fail(op, ": in-place operation on a tensor of shape ", self.shape(),
                 " that is part of the autograd graph is not supported; use the out-of-place op");
  }
  SOMA_CHECK(!other.defined() || !other.requires_grad(), op,
             ": in-place operation with an operand that requires grad (shape ", other.shape(),
             ") is not supported outside NoGradGuard");
}

// Writes the out-of-place result `r` (computed from self) into self.
Tensor& commit(Tensor& self, const Tensor& r) {
  kernels::call<kernels::Copy>(self, r);
  ++self.impl()->storage->version;
  return self;
}

void check_index_dtype(const Tensor& index, const char* op) {
  check_defined(index, op);
  SOMA_CHECK(index.dtype() == kInt64, op, ": expected an int64 index tensor, got ", index.dtype());
}

Shape shape_1d(const Tensor& t) {
  return t.dim() == 0 ? Shape{1} : t.shape();
}

// Row-major positions in x (shape xs) of out[i][j][k] -> x[index[i][j][k]][j][k] (dim d).
Tensor along_dim_positions(const Shape& xs, int64_t d, const Tensor& index, const Shape& is,
                           const char* op) {
  Shape cs = detail::contiguous_strides(xs);
  const int64_t step = cs[static_cast<size_t>(d)];
  cs[static_cast<size_t>(d)] = 0;
  std::vector<int64_t> lin = strided_offsets(is, cs, 0);
  const std::vector<int64_t> idx = index.to_vector<int64_t>();
  const int64_t size = xs[static_cast<size_t>(d)];
  for (size_t j = 0; j < lin.size(); ++j) {
    const int64_t v = idx[j];
    SOMA_CHECK(v >= 0 && v < size, op, ": index ", v, " is out of bounds for dimension ", d,
               " with size ", size);
    lin[j] += v * step;
  }
  return long_tensor(lin, index.shape());
}

// Checks shared by gather and scatter: index int64 with x's number of dims.
int64_t check_along_dim(const Tensor& x, int64_t dim, const Tensor& index, const char* op) {
  check_defined(x, op);
  check_index_dtype(index, op);
  const int64_t d = detail::wrap_dim(dim, std::max<int64_t>(x.dim(), 1), op);
  SOMA_CHECK(index.dim() == x.dim() || (x.dim() <= 1 && index.dim() <= 1), op,
             ": index tensor must have the same number of dimensions as the input tensor; index ",
             index.shape(), ", input ", x.shape());
  const Shape xs = shape_1d(x), is = shape_1d(index);
  for (size_t k = 0; k < xs.size(); ++k)
    SOMA_CHECK(static_cast<int64_t>(k) == d || is[k] <= xs[k], op, ": index of shape ",
               index.shape(), " is larger than the input of shape ", x.shape(), " at dimension ", k,
               " (only dimension ", d, " may be larger)");
  return d;
}

Tensor scatter_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src,
                    bool accumulate, const char* op) {
  const int64_t d = check_along_dim(x, dim, index, op);
  check_defined(src, op);
  SOMA_CHECK(src.dtype() == x.dtype(), op, ": expected self.dtype to be equal to src.dtype, got ",
             x.dtype(), " and ", src.dtype());
  SOMA_CHECK(src.dim() == index.dim() || (src.dim() <= 1 && index.dim() <= 1), op,
             ": src must have the same number of dimensions as index; src ", src.shape(),
             ", index ", index.shape());
  const Shape is = shape_1d(index), ss = shape_1d(src);
  for (size_t k = 0; k < is.size(); ++k)
    SOMA_CHECK(is[k] <= ss[k], op, ": index of shape ", index.shape(),
               " is larger than src of shape ", src.shape(), " at dimension ", k);
  const Tensor lin = along_dim_positions(shape_1d(x), d, index, is, op);
  Tensor part = src;
  if (src.shape() != index.shape()) {
    std::vector<TensorIndex> box;
    for (int64_t k : index.shape()) box.emplace_back(indexing::Slice(0, k));
    part = soma::index(src.dim() == index.dim() ? src : reshape(src, index.shape()), box);
  }
  return put_flat(x, lin, part, accumulate);
}

Tensor as_mask(const Tensor& mask, const char* op) {
  check_defined(mask, op);
  SOMA_CHECK(mask.dtype() == kBool || mask.dtype() == kUInt8, op, ": expected a bool mask, got ",
             mask.dtype());
  return mask.dtype() == kBool ? mask : ne(mask, Scalar(0));
}

}  // namespace

// ---- indexing ------------------------------------------------------------------------------
Tensor index(const Tensor& x, const std::vector<TensorIndex>& indices) {
  // x[idx] with one int64 tensor of in-range indices (a batch gathered from a dataset):
  // one index_select of rows (result idx.shape + x.shape[1:], PyTorch's), instead of the
  // general plan's per-element positions. Negative or out-of-range indices take the general
  // path (which wraps the negative ones and reports the others).
  if (indices.size() == 1 && indices[0].is_tensor() && x.defined() && x.dim() >= 1) {
    const Tensor& idx = indices[0].tensor();
    if (idx.defined() && idx.dtype() == kInt64 && idx.dim() >= 1) {
      const Tensor flat = idx.reshape({-1}).contiguous();
      const int64_t* v = flat.data<int64_t>();
      const int64_t rows = x.size(0);
      bool in_range = true;
      for (int64_t i = 0; i < flat.numel() && in_range; ++i) in_range = v[i] >= 0 && v[i] < rows;
      if (in_range) {
        Shape shape = idx.shape();
        shape.insert(shape.end(), x.shape().begin() + 1, x.shape().end());
        return index_select(x, 0, flat).reshape(shape);
      }
    }
  }
  Plan p = make_plan(x, indices, "index");
  if (p.advanced) return take_flat(x, long_tensor(p.lin, p.out_shape));
  Tensor out = detail::make_view(x, p.real.shape, p.real.strides, p.real.offset);
  if (needs_grad(x))
    record(out, "index", {x}, [s = x.shape(), v = p.virt](const Tensor& g) -> Grads {
      const Tensor lin = long_tensor(strided_offsets(v.shape, v.strides, v.offset), v.shape);
      return {put_flat(zeros(s, g.dtype()), lin, g, true)};
    });
  return out;
}

Tensor index_put(const Tensor& x, const std::vector<TensorIndex>& indices, const Tensor& values,
                 bool accumulate) {
  Plan p = make_plan(x, indices, "index_put");
  check_defined(values, "index_put");
  SOMA_CHECK(values.dtype() == x.dtype(), "index_put: the values' dtype ", values.dtype(),
             " does not match the tensor's dtype ", x.dtype());
  const Tensor v = values_for(values, p.out_shape, "index_put");
  return put_flat(x, plan_positions(p), v, accumulate);
}

Tensor& index_put_(Tensor& x, const std::vector<TensorIndex>& indices, const Tensor& values,
                   bool accumulate) {
  check_inplace(x, "index_put_", values);
  detail::check_no_internal_overlap(x, "index_put_");
  const Tensor r = index_put(x.detach(), indices, values.detach(), accumulate);
  return commit(x, r);
}

Tensor& index_put_(Tensor& x, const std::vector<TensorIndex>& indices, const Scalar& value) {
  check_defined(x, "index_put_");
  return index_put_(x, indices, full({}, value, x.dtype()), false);
}

// ---- gather / scatter ------------------------------------------------------------------------
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  const int64_t d = check_along_dim(x, dim, index, "gather");
  return take_flat(x, along_dim_positions(shape_1d(x), d, index, shape_1d(index), "gather"));
}

Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_impl(x, dim, index, src, false, "scatter");
}

Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Scalar& value) {
  check_defined(x, "scatter");
  check_index_dtype(index, "scatter");
  return scatter_impl(x, dim, index, full(index.shape(), value, x.dtype()), false, "scatter");
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_impl(x, dim, index, src, true, "scatter_add");
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source,
                 const Scalar& alpha) {
  const char* op = "index_add";
  check_defined(x, op);
  check_defined(source, op);
  check_index_dtype(index, op);
  SOMA_CHECK(index.dim() <= 1, op, ": index must be a vector, got shape ", index.shape());
  SOMA_CHECK(source.dtype() == x.dtype(), op, ": self (", x.dtype(), ") and source (",
             source.dtype(), ") must have the same dtype");
  const int64_t d = detail::wrap_dim(dim, std::max<int64_t>(x.dim(), 1), op);
  const Shape xs = shape_1d(x);
  Shape want = xs;
  want[static_cast<size_t>(d)] = index.numel();
  const Shape ss = shape_1d(source);
  SOMA_CHECK(ss == want && (source.dim() == x.dim() || x.dim() <= 1), op, ": source of shape ",
             source.shape(), " does not fit self of shape ", x.shape(), " and an index of ",
             index.numel(), " entries along dimension ", d, " (expected ", want, ")");
  SOMA_CHECK(is_floating(x.dtype()) || !alpha.is_floating_point(), op,
             ": for integral input tensors, alpha must not be a floating point number");
  // Position of each source element: its own coordinates with index[j] along d.
  Shape cs = detail::contiguous_strides(xs);
  const int64_t step = cs[static_cast<size_t>(d)];
  cs[static_cast<size_t>(d)] = 0;
  std::vector<int64_t> lin = strided_offsets(ss, cs, 0);
  Shape pick(ss.size(), 0);
  pick[static_cast<size_t>(d)] = 1;
  const std::vector<int64_t> j = strided_offsets(ss, pick, 0);
  const std::vector<int64_t> idx = index.to_vector<int64_t>();
  const int64_t size = xs[static_cast<size_t>(d)];
  for (int64_t v : idx)
    SOMA_CHECK(v >= 0 && v < size, op, ": index ", v, " is out of bounds for dimension ", d,
               " with size ", size);
  for (size_t k = 0; k < lin.size(); ++k) lin[k] += idx[static_cast<size_t>(j[k])] * step;
  const bool unit = alpha.is_floating_point() ? alpha.to_double() == 1.0 : alpha.to_long() == 1;
  const Tensor src = unit ? source : mul(source, alpha);
  return put_flat(x, long_tensor(lin, source.shape()), src, true);
}

// ---- masks -------------------------------------------------------------------------------
Tensor masked_fill(const Tensor& x, const Tensor& mask, const Tensor& value) {
  check_defined(x, "masked_fill");
  check_defined(value, "masked_fill");
  const Tensor m = as_mask(mask, "masked_fill");
  SOMA_CHECK(value.dim() == 0, "masked_fill: only supports a 0-dimensional value tensor, got ",
             "shape ", value.shape());
  const Tensor v = value.dtype() == x.dtype() ? value : value.to(x.dtype());
  return where(m, v, x);
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, const Scalar& value) {
  check_defined(x, "masked_fill");
  return masked_fill(x, mask, full({}, value, x.dtype()));
}

Tensor masked_select(const Tensor& x, const Tensor& mask) {
  check_defined(x, "masked_select");
  const Tensor m = as_mask(mask, "masked_select");
  const Shape b = broadcast_shapes(x.shape(), m.shape(), "masked_select");
  const Tensor xb = x.shape() == b ? x : expand(x, b);
  const std::vector<int64_t> mv = expand(m, b).to(kInt64).to_vector<int64_t>();
  std::vector<int64_t> lin;
  for (size_t k = 0; k < mv.size(); ++k)
    if (mv[k] != 0) lin.push_back(static_cast<int64_t>(k));
  const int64_t n = static_cast<int64_t>(lin.size());
  return take_flat(xb, long_tensor(lin, {n}));
}

Tensor nonzero(const Tensor& x) {
  check_defined(x, "nonzero");
  const Tensor xc = x.detach().contiguous();
  const int64_t nd = x.dim();
  const Shape& shape = x.shape();
  std::vector<int64_t> coords;
  detail::dispatch_all(x.dtype(), [&]<typename T>() {
    const T* px = xc.data<T>();
    const int64_t n = x.numel();
    std::vector<int64_t> c(static_cast<size_t>(nd), 0);
    for (int64_t i = 0; i < n; ++i) {
      if (px[i] != T(0)) coords.insert(coords.end(), c.begin(), c.end());
      for (int64_t d = nd; d-- > 0;) {
        if (++c[static_cast<size_t>(d)] < shape[static_cast<size_t>(d)]) break;
        c[static_cast<size_t>(d)] = 0;
      }
    }
  });
  if (nd == 0) {
    // A 0-d tensor: one row of no coordinates when its value is nonzero.
    bool nonzero_value = false;
    detail::dispatch_all(x.dtype(), [&]<typename T>() { nonzero_value = xc.data<T>()[0] != T(0); });
    return zeros({nonzero_value ? 1 : 0, 0}, kInt64);
  }
  return long_tensor(coords, {static_cast<int64_t>(coords.size()) / nd, nd});
}

Tensor take(const Tensor& x, const Tensor& index) {
  check_defined(x, "take");
  check_index_dtype(index, "take");
  const int64_t n = x.numel();
  std::vector<int64_t> lin = index.to_vector<int64_t>();
  for (int64_t& v : lin) {
    SOMA_CHECK(v >= -n && v < n, "take: out of range: tried to access index ", v,
               " on a tensor of ", n, " elements");
    if (v < 0) v += n;
  }
  return take_flat(x, long_tensor(lin, index.shape()));
}

// ---- method forms --------------------------------------------------------------------------
Tensor Tensor::index(std::initializer_list<TensorIndex> indices) const {
  return soma::index(*this, std::vector<TensorIndex>(indices));
}
Tensor Tensor::index(const std::vector<TensorIndex>& indices) const {
  return soma::index(*this, indices);
}
Tensor& Tensor::index_put_(std::initializer_list<TensorIndex> indices, const Tensor& values,
                           bool accumulate) {
  return soma::index_put_(*this, std::vector<TensorIndex>(indices), values, accumulate);
}
Tensor& Tensor::index_put_(const std::vector<TensorIndex>& indices, const Tensor& values,
                           bool accumulate) {
  return soma::index_put_(*this, indices, values, accumulate);
}
Tensor& Tensor::index_put_(std::initializer_list<TensorIndex> indices, const Scalar& value) {
  return soma::index_put_(*this, std::vector<TensorIndex>(indices), value);
}
Tensor& Tensor::index_put_(const std::vector<TensorIndex>& indices, const Scalar& value) {
  return soma::index_put_(*this, indices, value);
}
Tensor Tensor::index_put(std::initializer_list<TensorIndex> indices, const Tensor& values,
                         bool accumulate) const {
  return soma::index_put(*this, std::vector<TensorIndex>(indices), values, accumulate);
}
Tensor Tensor::index_put(const std::vector<TensorIndex>& indices, const Tensor& values,
                         bool accumulate) const {
  return soma::index_put(*this, indices, values, accumulate);
}
Tensor Tensor::gather(int64_t dim, const Tensor& index) const {
  return soma::gather(*this, dim, index);
}
Tensor Tensor::scatter(int64_t dim, const Tensor& index, const Tensor& src) const {
  return soma::scatter(*this, dim, index, src);
}
Tensor Tensor::scatter(int64_t dim, const Tensor& index, const Scalar& value) const {
  return soma::scatter(*this, dim, index, value);
}
Tensor& Tensor::scatter_(int64_t dim, const Tensor& index, const Tensor& src) {
  check_inplace(*this, "scatter_", src);
  detail::check_no_internal_overlap(*this, "scatter_");
  return commit(*this, soma::scatter(detach(), dim, index, src.detach()));
}
Tensor& Tensor::scatter_(int64_t dim, const Tensor& index, const Scalar& value) {
  check_inplace(*this, "scatter_");
  detail::check_no_internal_overlap(*this, "scatter_");
  return commit(*this, soma::scatter(detach(), dim, index, value));
}
Tensor Tensor::scatter_add(int64_t dim, const Tensor& index, const Tensor& src) const {
  return soma::scatter_add(*this, dim, index, src);
}
Tensor& Tensor::scatter_add_(int64_t dim, const Tensor& index, const Tensor& src) {
  check_inplace(*this, "scatter_add_", src);
  detail::check_no_internal_overlap(*this, "scatter_add_");
  return commit(*this, soma::scatter_add(detach(), dim, index, src.detach()));
}
Tensor Tensor::index_add(int64_t dim, const Tensor& index, const Tensor& source,
                         const Scalar& alpha) const {
  return soma::index_add(*this, dim, index, source, alpha);
}
Tensor& Tensor::index_add_(int64_t dim, const Tensor& index, const Tensor& source,
                           const Scalar& alpha) {
  check_inplace(*this, "index_add_", source);
  detail::check_no_internal_overlap(*this, "index_add_");
  return commit(*this, soma::index_add(detach(), dim, index, source.detach(), alpha));
}
Tensor Tensor::masked_fill(const Tensor& mask, const Tensor& value) const {
  return soma::masked_fill(*this, mask, value);
}
Tensor Tensor::masked_fill(const Tensor& mask, const Scalar& value) const {
  return soma::masked_fill(*this, mask, value);
}
Tensor& Tensor::masked_fill_(const Tensor& mask, const Tensor& value) {
  check_inplace(*this, "masked_fill_", value);
  detail::check_no_internal_overlap(*this, "masked_fill_");
  const Tensor m = as_mask(mask, "masked_fill_");
  SOMA_CHECK(broadcast_shapes(shape(), m.shape(), "masked_fill_") == shape(),
             "masked_fill_: mask of shape ", m.shape(), " cannot be broadcast to the shape ",
             shape(), " of the tensor");
  return commit(*this, soma::masked_fill(detach(), m, value.detach()));
}
Tensor& Tensor::masked_fill_(const Tensor& mask, const Scalar& value) {
  check_defined(*this, "masked_fill_");
  return masked_fill_(mask, full({}, value, dtype()));
}
Tensor Tensor::masked_select(const Tensor& mask) const {
  return soma::masked_select(*this, mask);
}
Tensor Tensor::nonzero() const {
  return soma::nonzero(*this);
}
Tensor Tensor::take(const Tensor& index) const {
  return soma::take(*this, index);
}

}  // namespace soma
