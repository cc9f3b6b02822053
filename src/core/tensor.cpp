// Tensor metadata, element access, creation and printing (core: no kernels, no autograd).
// The methods that copy through a kernel (contiguous, clone, to) are in ops/tensor_copy.cpp,
// the autograd entry points (requires_grad_, backward, ...) in autograd/tensor_autograd.cpp.
#include "soma/core/tensor.h"

#include <cmath>
#include <iomanip>
#include <limits>
#include <ostream>

#include "core/convert.h"
#include "core/dispatch.h"
#include "core/random_fill.h"
#include "core/tensor_impl.h"
#include "soma/core/error.h"

namespace soma {

// ---- detail --------------------------------------------------------------------------------
namespace detail {

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    strides[d] = s;
    s *= shape[d] > 0 ? shape[d] : 1;
  }
  return strides;
}

int64_t checked_numel(const Shape& shape, const char* op) {
  int64_t n = 1;
  for (int64_t s : shape) {
    SOMA_CHECK(s >= 0, op, ": invalid shape ", shape, " (negative size)");
    SOMA_CHECK(s == 0 || n <= std::numeric_limits<int64_t>::max() / s, op, ": shape ", shape,
               " has too many elements");
    n *= s;
  }
  return n;
}

bool is_contiguous(const Shape& shape, const Shape& strides) {
  int64_t expected = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (strides[d] != expected) return false;
    expected *= shape[d];
  }
  return true;
}

Tensor make_tensor(const Shape& shape, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->numel = checked_numel(shape, "empty");
  SOMA_CHECK(impl->numel <= (int64_t{1} << 40), "empty: shape ", shape, " (", impl->numel,
             " elements) is too large");
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(impl->numel) * element_size(dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->numel = checked_numel(shape, "view");
  impl->dtype = base.dtype();
  impl->contiguous = is_contiguous(shape, strides);
  return Tensor(std::move(impl));
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t n = ndim == 0 ? 1 : ndim;  // a 0-d tensor accepts dim 0 and -1
  SOMA_CHECK(dim >= -n && dim < n, op, ": dimension ", dim, " is out of range for a tensor with ",
             ndim, " dims (expected [", -n, ", ", n - 1, "])");
  return dim < 0 ? dim + n : dim;
}

}  // namespace detail

namespace detail {

const TensorImpl& impl_of(const Tensor& t, const char* op) {
  SOMA_CHECK(t.defined(), op, ": called on an undefined tensor");
  return *t.impl();
}

}  // namespace detail

using detail::impl_of;

// ---- metadata ------------------------------------------------------------------------------
const Shape& Tensor::shape() const {
  return impl_of(*this, "shape").shape;
}
int64_t Tensor::size(int64_t dim) const {
  const TensorImpl& impl = impl_of(*this, "size");
  SOMA_CHECK(!impl.shape.empty(), "size: a 0-d tensor has no dimension ", dim);
  return impl.shape[detail::wrap_dim(dim, impl.shape.size(), "size")];
}
const Shape& Tensor::strides() const {
  return impl_of(*this, "strides").strides;
}
int64_t Tensor::stride(int64_t dim) const {
  const TensorImpl& impl = impl_of(*this, "stride");
  SOMA_CHECK(!impl.shape.empty(), "stride: a 0-d tensor has no dimension ", dim);
  return impl.strides[detail::wrap_dim(dim, impl.shape.size(), "stride")];
}
int64_t Tensor::dim() const {
  return static_cast<int64_t>(impl_of(*this, "dim").shape.size());
}
int64_t Tensor::numel() const {
  return impl_of(*this, "numel").numel;
}
DType Tensor::dtype() const {
  return impl_of(*this, "dtype").dtype;
}
bool Tensor::is_contiguous() const {
  return impl_of(*this, "is_contiguous").contiguous;
}

// ---- element access ------------------------------------------------------------------------
template <typename T>
T Tensor::item() const {
  const TensorImpl& impl = impl_of(*this, "item");
  SOMA_CHECK(impl.numel == 1, "item: only a one-element tensor can be converted to a scalar, got ",
             "shape ", impl.shape);
  return detail::dispatch_all(impl.dtype, [&]<typename S>() {
    return detail::convert<T>(*reinterpret_cast<const S*>(impl.bytes()));
  });
}
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template int64_t Tensor::item<int64_t>() const;
template int Tensor::item<int>() const;
template bool Tensor::item<bool>() const;
template uint8_t Tensor::item<uint8_t>() const;
template int8_t Tensor::item<int8_t>() const;
template BFloat16 Tensor::item<BFloat16>() const;
template Half Tensor::item<Half>() const;

template <typename T>
std::vector<T> Tensor::to_vector() const {
  impl_of(*this, "to_vector");
  Tensor c = detach().to(dtype_of<T>()).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template std::vector<int8_t> Tensor::to_vector<int8_t>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<BFloat16> Tensor::to_vector<BFloat16>() const;
template std::vector<Half> Tensor::to_vector<Half>() const;

template <typename T>
T* Tensor::data() {
  const TensorImpl& impl = impl_of(*this, "data");
  SOMA_CHECK(impl.dtype == dtype_of<T>(), "data: tensor has dtype ", impl.dtype, ", requested ",
             dtype_of<T>());
  return reinterpret_cast<T*>(impl.bytes());
}
template <typename T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}
template float* Tensor::data<float>();
template double* Tensor::data<double>();
template int64_t* Tensor::data<int64_t>();
template bool* Tensor::data<bool>();
template uint8_t* Tensor::data<uint8_t>();
template int8_t* Tensor::data<int8_t>();
template int32_t* Tensor::data<int32_t>();
template BFloat16* Tensor::data<BFloat16>();
template Half* Tensor::data<Half>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const int64_t* Tensor::data<int64_t>() const;
template const bool* Tensor::data<bool>() const;
template const uint8_t* Tensor::data<uint8_t>() const;
template const int8_t* Tensor::data<int8_t>() const;
template const int32_t* Tensor::data<int32_t>() const;
template const BFloat16* Tensor::data<BFloat16>() const;
template const Half* Tensor::data<Half>() const;

// ---- printing ------------------------------------------------------------------------------
std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  detail::append(os, shape);
  return os.str();
}

namespace {

// Prints dimension `d` of the contiguous values `v` (row-major, `shape`), summarising dims
// longer than 6 as "first 3, ..., last 3" when `summarise` is set.
void print_dim(std::ostream& os, const std::vector<double>& v, const Shape& shape, size_t d,
               int64_t offset, bool summarise, bool integral, int indent) {
  if (shape.empty()) {
    os << v[0];
    return;
  }
  int64_t inner = 1;
  for (size_t k = d + 1; k < shape.size(); ++k) inner *= shape[k];
  os << '[';
  const int64_t n = shape[d];
  for (int64_t i = 0; i < n; ++i) {
    if (summarise && n > 6 && i == 3) {
      os << (d + 1 == shape.size() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - 3;
    }
    if (d + 1 == shape.size()) {
      const double x = v[offset + i];
      if (integral)
        os << static_cast<int64_t>(x);
      else
        os << x;
    } else {
      print_dim(os, v, shape, d + 1, offset + i * inner, summarise, integral, indent + 1);
    }
    if (i + 1 < n) os << (d + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  os << ']';
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  std::vector<double> v = t.to_vector<double>();
  std::ostringstream body;
  body << std::setprecision(4);
  print_dim(body, v, t.shape(), 0, 0, t.numel() > 1000, !is_floating(t.dtype()), 7);
  os << "tensor(" << body.str() << ", shape=" << shape_str(t.shape()) << ", dtype=" << t.dtype();
  if (t.requires_grad()) os << ", requires_grad=true";
  return os << ')';
}

// ---- creation ------------------------------------------------------------------------------
namespace {

template <typename T>
Tensor from_values(const std::vector<T>& values, const Shape& shape) {
  const Shape s = shape == Shape{-1} ? Shape{static_cast<int64_t>(values.size())} : shape;
  const int64_t n = detail::checked_numel(s, "tensor");
  SOMA_CHECK(n == static_cast<int64_t>(values.size()), "tensor: ", values.size(),
             " values cannot fill shape ", s, " (", n, " elements)");
  Tensor out = detail::make_tensor(s, dtype_of<T>());
  std::copy(values.begin(), values.end(), out.data<T>());
  return out;
}

}  // namespace

Tensor tensor(const std::vector<float>& values, const Shape& shape) {
  return from_values(values, shape);
}
Tensor tensor(const std::vector<double>& values, const Shape& shape) {
  return from_values(values, shape);
}
Tensor tensor(const std::vector<int64_t>& values, const Shape& shape) {
  return from_values(values, shape);
}

Tensor tensor(std::initializer_list<float> values, const Shape& shape) {
  return from_values(std::vector<float>(values), shape);
}

Tensor empty(const Shape& shape, DType dtype) {
  return detail::make_tensor(shape, dtype);
}
Tensor zeros(const Shape& shape, DType dtype) {
  return full(shape, 0, dtype);
}
Tensor ones(const Shape& shape, DType dtype) {
  return full(shape, 1, dtype);
}

Tensor full(const Shape& shape, const Scalar& value, DType dtype) {
  if (value.is_floating_point() && is_integral(dtype, /*include_bool=*/false)) {
    // Like PyTorch's checked conversion: truncation is fine, overflow and nan are errors.
    const double v = value.to_double();
    SOMA_CHECK(v > -9223372036854775808.0 && v < 9223372036854775808.0, "full: value ", v,
               " cannot be converted to ", dtype, " without overflow");
  }
  Tensor out = detail::make_tensor(shape, dtype);
  detail::dispatch_all(
      dtype, [&]<typename T>() { std::fill_n(out.data<T>(), out.numel(), value.to<T>()); });
  return out;
}

Tensor arange(int64_t end, DType dtype) {
  return arange(0.0, static_cast<double>(end), 1.0, dtype);
}

Tensor arange(double start, double end, double step, DType dtype) {
  SOMA_CHECK(step != 0 && std::isfinite(start) && std::isfinite(end) && std::isfinite(step),
             "arange: invalid range start=", start, " end=", end, " step=", step);
  const double count = std::ceil((end - start) / step);
  SOMA_CHECK(count <= double(int64_t{1} << 40), "arange: range start=", start, " end=", end,
             " step=", step, " has too many elements");
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  Tensor out = detail::make_tensor({n}, dtype);
  SOMA_CHECK(dtype != kBool, "arange: not implemented for dtype bool");
  detail::dispatch_all(dtype, [&]<typename T>() {
    T* p = out.data<T>();
    for (int64_t i = 0; i < n; ++i)
      p[i] = detail::convert<T>(start + static_cast<double>(i) * step);
  });
  return out;
}

Tensor rand(const Shape& shape, DType dtype) {
  Tensor out = detail::make_tensor(shape, dtype);
  detail::dispatch_float(dtype, "rand",
                         [&]<typename T>() { detail::fill_uniform(out.data<T>(), out.numel()); });
  return out;
}

Tensor randn(const Shape& shape, DType dtype) {
  Tensor out = detail::make_tensor(shape, dtype);
  detail::dispatch_float(dtype, "randn",
                         [&]<typename T>() { detail::fill_normal(out.data<T>(), out.numel()); });
  return out;
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype) {
  SOMA_CHECK(low < high, "randint: low (", low, ") must be less than high (", high, ")");
  Tensor out = detail::make_tensor(shape, kInt64);
  detail::fill_randint(out.data<int64_t>(), out.numel(), low, high);
  return out.to(dtype);
}

Tensor empty_like(const Tensor& t) {
  return empty(t.shape(), t.dtype());
}
Tensor zeros_like(const Tensor& t) {
  return zeros(t.shape(), t.dtype());
}
Tensor ones_like(const Tensor& t) {
  return ones(t.shape(), t.dtype());
}
Tensor full_like(const Tensor& t, const Scalar& value) {
  return full(t.shape(), value, t.dtype());
}
Tensor rand_like(const Tensor& t) {
  return rand(t.shape(), t.dtype());
}
Tensor randn_like(const Tensor& t) {
  return randn(t.shape(), t.dtype());
}

}  // namespace soma
