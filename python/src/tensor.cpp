// soma.Tensor: metadata, conversions, operators, indexing and the methods of soma::Tensor whose
// free-function forms (soma.exp(x), ...) are bound next to them.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "soma_py.h"

namespace soma::python {
namespace {

using indexing::TensorIndex;

// ---- helpers ---------------------------------------------------------------------------------

/// A 0-d tensor holding a Python number, in the dtype its kind gives (bool, int64, float64): a
/// 0-d tensor takes part in type promotion like the number itself (reflected ops, 2 ** x).
Tensor scalar_tensor(const Scalar& s) {
  return full({}, s, s.type());
}

/// dim=None | int | sequence of ints -> the dims to reduce (empty: all).
std::vector<int64_t> dims_of(const py::object& dim) {
  std::vector<int64_t> dims;
  if (dim.is_none()) return dims;
  if (PyIndex_Check(dim.ptr())) {
    dims.push_back(dim.cast<int64_t>());
    return dims;
  }
  for (py::handle h : dim) dims.push_back(h.cast<int64_t>());
  return dims;
}

template <typename T>
py::object list_of(const T* data, const Shape& shape, const Shape& strides, size_t d) {
  if (d == shape.size()) {
    if constexpr (std::is_same_v<T, bool>)
      return py::bool_(*data);
    else if constexpr (std::is_floating_point_v<T>)
      return py::float_(static_cast<double>(*data));
    else if constexpr (is_reduced_float_v<T>)
      return py::float_(static_cast<double>(static_cast<float>(*data)));
    else
      return py::int_(static_cast<int64_t>(*data));
  }
  py::list out(shape[d]);
  for (int64_t i = 0; i < shape[d]; ++i)
    out[i] = list_of(data + i * strides[d], shape, strides, d + 1);
  return out;
}

py::object tolist(const Tensor& t) {
  switch (t.dtype()) {
    case kFloat32:
      return list_of(t.data<float>(), t.shape(), t.strides(), 0);
    case kFloat64:
      return list_of(t.data<double>(), t.shape(), t.strides(), 0);
    case kInt64:
      return list_of(t.data<int64_t>(), t.shape(), t.strides(), 0);
    case kBool:
      return list_of(t.data<bool>(), t.shape(), t.strides(), 0);
    case kUInt8:
      return list_of(t.data<uint8_t>(), t.shape(), t.strides(), 0);
    case kInt8:
      return list_of(t.data<int8_t>(), t.shape(), t.strides(), 0);
    case kInt32:
      return list_of(t.data<int32_t>(), t.shape(), t.strides(), 0);
    case kBFloat16:
      return list_of(t.data<BFloat16>(), t.shape(), t.strides(), 0);
    case kFloat16:
      return list_of(t.data<Half>(), t.shape(), t.strides(), 0);
  }
  return py::none();
}

/// torch.return_types-like named pairs (values, indices), created on first use.
py::object named_pair(const char* name, std::tuple<Tensor, Tensor> r) {
  static py::dict* types = new py::dict();  // leaked: outlives the interpreter's teardown order
  py::object type;
  if (types->contains(name)) {
    type = (*types)[name];
  } else {
    type = py::module_::import("collections")
               .attr("namedtuple")(name, py::make_tuple("values", "indices"));
    type.attr("__module__") = "soma.return_types";
    (*types)[name] = type;
  }
  return type(std::get<0>(r), std::get<1>(r));
}

int64_t matmul_work(const Tensor& a, const Tensor& b) {
  return a.numel() * (b.dim() >= 2 ? b.size(-1) : 1);
}

/// Converts `value` for an assignment into `self` (x[key] = value, copy_ and friends).
Tensor value_for(const Tensor& self, py::handle value) {
  if (py::isinstance<Tensor>(value)) return value.cast<Tensor>();
  return tensor_from_data(value, self.dtype());
}

bool is_tensor_like_index(py::handle h) {
  return py::isinstance<Tensor>(h) || PyList_Check(h.ptr()) || py::hasattr(h, "__array__");
}

TensorIndex index_of(py::handle h) {
  PyObject* o = h.ptr();
  if (o == Py_None) return indexing::None;
  if (o == Py_Ellipsis) return indexing::Ellipsis;
  if (PyBool_Check(o)) return TensorIndex(o == Py_True);
  if (PyLong_Check(o)) return TensorIndex(h.cast<int64_t>());
  if (PySlice_Check(o)) {
    auto* s = reinterpret_cast<PySliceObject*>(o);
    auto bound = [](PyObject* b) -> std::optional<int64_t> {
      if (b == Py_None) return std::nullopt;
      return py::handle(b).cast<int64_t>();
    };
    return indexing::Slice(bound(s->start), bound(s->stop), bound(s->step));
  }
  if (py::isinstance<Tensor>(h)) return h.cast<Tensor>();
  if (is_tensor_like_index(h)) return tensor_from_data(h, std::nullopt);
  if (PyIndex_Check(o)) return TensorIndex(h.cast<int64_t>());
  throw py::index_error(
      "soma: only integers, slices, None, Ellipsis, bools and int64 or bool "
      "tensors are valid indices (got " +
      std::string(py::str(py::type::of(h).attr("__name__"))) + ")");
}

bool is_bool_dtype(const Tensor& t) {
  return t.dtype() == kBool;
}

Tensor logical_bool(const Tensor& a, const Tensor& b, const char* op) {
  SOMA_CHECK(is_bool_dtype(a) && is_bool_dtype(b), "Tensor.", op,
             ": only bool tensors are supported (got ", a.dtype(), " and ", b.dtype(), ")");
  std::string o(op);
  if (o == "__and__") return a.mul(b);
  if (o == "__or__") return a.to(kInt64).add(b.to(kInt64)).ne(0);
  return a.ne(b);  // __xor__
}

using Unary = Tensor (Tensor::*)() const;
struct UnaryEntry {
  const char* name;
  Unary fn;
  const char* doc;
};

}  // namespace

std::vector<TensorIndex> indices_from_key(py::handle key) {
  std::vector<TensorIndex> out;
  if (PyTuple_Check(key.ptr())) {
    for (py::handle h : key) out.push_back(index_of(h));
  } else {
    out.push_back(index_of(key));
  }
  return out;
}

py::object item_object(const Tensor& t) {
  switch (t.dtype()) {
    case kFloat32:
    case kFloat64:
    case kBFloat16:
    case kFloat16:
      return py::float_(t.item<double>());
    case kInt64:
    case kUInt8:
    case kInt8:
    case kInt32:
      return py::int_(t.item<int64_t>());
    case kBool:
      return py::bool_(t.item<bool>());
  }
  return py::none();
}

void bind_tensor(py::module_& m) {
  py::class_<Tensor> cls(m, "Tensor",
                         "An n-dimensional array with reverse-mode autograd (soma::Tensor). "
                         "Copying the handle shares storage; use clone() for a deep copy.");
  cls.attr("__array_priority__") = 1000;  // ndarray + Tensor defers to Tensor.__radd__
  cls.def(py::init([]() { return empty({0}); }), "An empty float32 tensor of shape [0].")
      .def(py::init([](const Tensor& other) { return other; }), py::arg("other"),
           "A handle sharing other's storage and autograd state (what a Python subclass such "
           "as a Parameter wraps).");

  // ---- metadata ---------------------------------------------------------------------------
  cls.def_property_readonly(
         "shape", [](const Tensor& t) { return size_object(t.shape()); },
         "The sizes of the dimensions (a soma.Size).")
      .def(
          "size",
          [](const Tensor& t, std::optional<int64_t> dim) -> py::object {
            if (dim) return py::int_(t.size(*dim));
            return size_object(t.shape());
          },
          py::arg("dim") = py::none(),
          "The shape (a soma.Size), or the size of dimension `dim` (negative counts from the end).")
      .def(
          "stride",
          [](const Tensor& t, std::optional<int64_t> dim) -> py::object {
            if (dim) return py::int_(t.stride(*dim));
            return py::cast(t.strides());
          },
          py::arg("dim") = py::none(), "Strides in elements (all, or of one dim).")
      .def_property_readonly("dtype", &Tensor::dtype, "The element type.")
      .def_property_readonly("ndim", &Tensor::dim, "The number of dimensions.")
      .def("dim", &Tensor::dim, "The number of dimensions.")
      .def("ndimension", &Tensor::dim, "The number of dimensions.")
      .def("numel", &Tensor::numel, "The number of elements.")
      .def("nelement", &Tensor::numel, "The number of elements.")
      .def(
          "element_size", [](const Tensor& t) { return element_size(t.dtype()); },
          "Bytes per element.")
      .def("is_contiguous", &Tensor::is_contiguous, "Whether the strides are row-major.")
      .def(
          "is_floating_point", [](const Tensor& t) { return is_floating(t.dtype()); },
          "Whether the dtype is floating point (float32, float64, bfloat16, float16).")
      .def_property_readonly(
          "device", [](const Tensor&) { return "cpu"; }, "Always \"cpu\" (soma runs on the CPU).")
      .def_property_readonly(
          "is_cuda", [](const Tensor&) { return false; }, "Always False.")
      .def(
          "data_ptr",
          [](const Tensor& t) {
            mark_shared_externally(t);  // the address may be written through (ctypes)
            return reinterpret_cast<uintptr_t>(data_address(t));
          },
          "The address of the first element.");

  // ---- conversions --------------------------------------------------------------------------
  cls.def("item", &item_object,
          "The single element of a one-element tensor as a Python float, int or bool.")
      .def("tolist", &tolist, "The elements as nested Python lists (a number for a 0-d tensor).")
      .def("contiguous", &Tensor::contiguous,
           "The tensor itself when contiguous, else a contiguous copy (differentiable).")
      .def("clone", &Tensor::clone, "A deep copy with its own storage (differentiable).")
      .def("detach", &Tensor::detach, "A tensor sharing storage with this one, outside the graph.")
      .def(
          "to",
          [](const Tensor& t, py::object target, bool copy) {
            DType d = t.dtype();
            if (py::isinstance<Tensor>(target)) {
              d = target.cast<Tensor>().dtype();
            } else if (!dtype_from_object(target, d)) {
              if (!(py::isinstance<py::str>(target) && target.cast<std::string>() == "cpu"))
                throw py::type_error("Tensor.to: expected a soma.dtype, a Tensor or \"cpu\"");
            }
            Tensor r = t.to(d);
            return copy && r.impl() == t.impl() ? t.clone() : r;
          },
          py::arg("dtype"), py::arg("copy") = false,
          "A copy converted to `dtype` (or other's dtype; the tensor itself when it already has "
          "it, unless copy=True). \"cpu\" is accepted and changes nothing.")
      .def(
          "float", [](const Tensor& t) { return t.to(kFloat32); }, "to(soma.float32)")
      .def(
          "double", [](const Tensor& t) { return t.to(kFloat64); }, "to(soma.float64)")
      .def(
          "long", [](const Tensor& t) { return t.to(kInt64); }, "to(soma.int64)")
      .def(
          "bool", [](const Tensor& t) { return t.to(kBool); }, "to(soma.bool)")
      .def(
          "byte", [](const Tensor& t) { return t.to(kUInt8); }, "to(soma.uint8)")
      .def(
          "char", [](const Tensor& t) { return t.to(kInt8); }, "to(soma.int8)")
      .def(
          "int", [](const Tensor& t) { return t.to(kInt32); }, "to(soma.int32)")
      .def(
          "half", [](const Tensor& t) { return t.to(kFloat16); }, "to(soma.float16)")
      .def(
          "bfloat16", [](const Tensor& t) { return t.to(kBFloat16); }, "to(soma.bfloat16)")
      .def(
          "cpu", [](const Tensor& t) { return t; }, "The tensor itself (soma runs on the CPU).")
      .def(
          "type_as", [](const Tensor& t, const Tensor& o) { return t.to(o.dtype()); },
          py::arg("other"), "to(other.dtype)");

  // ---- Python protocols ---------------------------------------------------------------------
  cls.def("__len__",
          [](const Tensor& t) {
            if (t.dim() == 0) throw py::type_error("len() of a 0-d tensor");
            return t.size(0);
          })
      .def("__iter__",
           [](const Tensor& t) {
             if (t.dim() == 0) throw py::type_error("iteration over a 0-d tensor");
             return py::iter(py::cast(t.unbind(0)));
           })
      .def("__bool__",
           [](const Tensor& t) {
             SOMA_CHECK(t.numel() == 1, "Boolean value of Tensor with ", t.numel(),
                        " values is ambiguous (shape ", t.shape(), ")");
             return t.item<bool>();
           })
      .def("__float__",
           [](const Tensor& t) {
             SOMA_CHECK(t.numel() == 1,
                        "float(): only one element tensors can be converted to "
                        "Python scalars (shape ",
                        t.shape(), ")");
             return t.item<double>();
           })
      .def("__int__",
           [](const Tensor& t) {
             SOMA_CHECK(t.numel() == 1,
                        "int(): only one element tensors can be converted to "
                        "Python scalars (shape ",
                        t.shape(), ")");
             return t.item<int64_t>();
           })
      .def("__index__",
           [](const Tensor& t) {
             if (!is_integral(t.dtype(), true) || t.numel() != 1)
               throw py::type_error(
                   "only integer tensors of a single element can be converted "
                   "to an index");
             return t.item<int64_t>();
           })
      .def("__hash__", [](py::handle self) { return reinterpret_cast<intptr_t>(self.ptr()); })
      .def("__getitem__",
           [](const Tensor& t, py::handle key) { return t.index(indices_from_key(key)); })
      .def("__setitem__", [](Tensor& t, py::handle key, py::handle value) {
        auto idx = indices_from_key(key);
        if (!py::isinstance<Tensor>(value) &&
            (PyFloat_Check(value.ptr()) || PyLong_Check(value.ptr()))) {
          t.index_put_(idx, value.cast<Scalar>());
          return;
        }
        Tensor v = value_for(t, value);
        t.index_put_(idx, v.dtype() == t.dtype() ? v : v.to(t.dtype()));
      });

  // ---- operators ----------------------------------------------------------------------------
  // Tensor overloads first: pybind11 tries them in order, and tensor-tensor is the common case.
  cls.def("__add__",
          [](const Tensor& a, const Tensor& b) {
            HeavyScope g(std::max(a.numel(), b.numel()));
            return add(a, b);
          })
      .def("__add__", [](const Tensor& a, Scalar b) { return add(a, b); })
      .def("__radd__", [](const Tensor& a, Scalar b) { return add(a, b); })
      .def("__sub__",
           [](const Tensor& a, const Tensor& b) {
             HeavyScope g(std::max(a.numel(), b.numel()));
             return sub(a, b);
           })
      .def("__sub__", [](const Tensor& a, Scalar b) { return sub(a, b); })
      .def("__rsub__", [](const Tensor& a, Scalar b) { return rsub(a, b); })
      .def("__mul__",
           [](const Tensor& a, const Tensor& b) {
             HeavyScope g(std::max(a.numel(), b.numel()));
             return mul(a, b);
           })
      .def("__mul__", [](const Tensor& a, Scalar b) { return mul(a, b); })
      .def("__rmul__", [](const Tensor& a, Scalar b) { return mul(a, b); })
      .def("__truediv__",
           [](const Tensor& a, const Tensor& b) {
             HeavyScope g(std::max(a.numel(), b.numel()));
             return div(a, b);
           })
      .def("__truediv__", [](const Tensor& a, Scalar b) { return div(a, b); })
      .def("__rtruediv__", [](const Tensor& a, Scalar b) { return rdiv(a, b); })
      .def("__floordiv__", [](const Tensor& a, const Tensor& b) { return floor_divide(a, b); })
      .def("__floordiv__", [](const Tensor& a, Scalar b) { return floor_divide(a, b); })
      .def("__rfloordiv__",
           [](const Tensor& a, Scalar b) { return floor_divide(scalar_tensor(b), a); })
      .def("__mod__", [](const Tensor& a, const Tensor& b) { return remainder(a, b); })
      .def("__mod__", [](const Tensor& a, Scalar b) { return remainder(a, b); })
      .def("__rmod__", [](const Tensor& a, Scalar b) { return remainder(scalar_tensor(b), a); })
      .def("__pow__", [](const Tensor& a, const Tensor& b) { return pow(a, b); })
      .def("__pow__", [](const Tensor& a, double b) { return pow(a, b); })
      .def("__rpow__",
           [](const Tensor& a, Scalar b) {
             // soma::pow(Tensor, Tensor) wants one dtype: both in the promoted one.
             DType d = result_type(b, a);
             return pow(full({}, b, d), a.dtype() == d ? a : a.to(d));
           })
      .def("__matmul__",
           [](const Tensor& a, const Tensor& b) {
             HeavyScope g(matmul_work(a, b));
             return matmul(a, b);
           })
      .def("__neg__", [](const Tensor& a) { return neg(a); })
      .def("__pos__", [](const Tensor& a) { return a; })
      .def("__abs__", [](const Tensor& a) { return abs(a); })
      .def("__invert__",
           [](const Tensor& a) {
             if (a.dtype() == kBool) return a.eq(false);
             SOMA_CHECK(a.dtype() == kInt64, "Tensor.__invert__: bool or int64 tensors only (got ",
                        a.dtype(), ")");
             return a.neg().sub(1);
           })
      .def("__and__",
           [](const Tensor& a, const Tensor& b) { return logical_bool(a, b, "__and__"); })
      .def("__or__", [](const Tensor& a, const Tensor& b) { return logical_bool(a, b, "__or__"); })
      .def("__xor__",
           [](const Tensor& a, const Tensor& b) { return logical_bool(a, b, "__xor__"); })
      .def("__lt__", [](const Tensor& a, const Tensor& b) { return lt(a, b); })
      .def("__lt__", [](const Tensor& a, Scalar b) { return lt(a, b); })
      .def("__le__", [](const Tensor& a, const Tensor& b) { return le(a, b); })
      .def("__le__", [](const Tensor& a, Scalar b) { return le(a, b); })
      .def("__gt__", [](const Tensor& a, const Tensor& b) { return gt(a, b); })
      .def("__gt__", [](const Tensor& a, Scalar b) { return gt(a, b); })
      .def("__ge__", [](const Tensor& a, const Tensor& b) { return ge(a, b); })
      .def("__ge__", [](const Tensor& a, Scalar b) { return ge(a, b); })
      .def("__eq__", [](const Tensor& a, const Tensor& b) { return eq(a, b); })
      .def("__eq__", [](const Tensor& a, Scalar b) { return eq(a, b); })
      .def("__eq__", [](const Tensor&, py::handle) { return py::object(py::bool_(false)); })
      .def("__ne__", [](const Tensor& a, const Tensor& b) { return ne(a, b); })
      .def("__ne__", [](const Tensor& a, Scalar b) { return ne(a, b); })
      .def("__ne__", [](const Tensor&, py::handle) { return py::object(py::bool_(true)); });
  // ndarray (or list) <op> Tensor: NumPy defers to these (__array_priority__), as with torch;
  // the other operand is copied into a tensor.
  cls.def("__radd__",
          [](const Tensor& a, py::handle b) { return add(tensor_from_data(b, std::nullopt), a); })
      .def("__rsub__",
           [](const Tensor& a, py::handle b) { return sub(tensor_from_data(b, std::nullopt), a); })
      .def("__rmul__",
           [](const Tensor& a, py::handle b) { return mul(tensor_from_data(b, std::nullopt), a); })
      .def("__rtruediv__",
           [](const Tensor& a, py::handle b) { return div(tensor_from_data(b, std::nullopt), a); })
      .def("__rmatmul__", [](const Tensor& a, py::handle b) {
        return matmul(tensor_from_data(b, std::nullopt), a);
      });
  // In place: return the same Python object (a reference to self finds its registered instance).
  constexpr auto same = py::return_value_policy::reference_internal;
  cls.def(
         "__iadd__", [](Tensor& a, const Tensor& b) -> Tensor& { return a.add_(b); }, same)
      .def(
          "__iadd__", [](Tensor& a, Scalar b) -> Tensor& { return a.add_(b); }, same)
      .def(
          "__isub__", [](Tensor& a, const Tensor& b) -> Tensor& { return a.sub_(b); }, same)
      .def(
          "__isub__", [](Tensor& a, Scalar b) -> Tensor& { return a.sub_(b); }, same)
      .def(
          "__imul__", [](Tensor& a, const Tensor& b) -> Tensor& { return a.mul_(b); }, same)
      .def(
          "__imul__", [](Tensor& a, Scalar b) -> Tensor& { return a.mul_(b); }, same)
      .def(
          "__itruediv__", [](Tensor& a, const Tensor& b) -> Tensor& { return a.div_(b); }, same)
      .def(
          "__itruediv__", [](Tensor& a, Scalar b) -> Tensor& { return a.div_(b); }, same)
      .def(
          "__ifloordiv__", [](Tensor& a, const Tensor& b) -> Tensor& { return a.floor_divide_(b); },
          same)
      .def(
          "__ifloordiv__", [](Tensor& a, Scalar b) -> Tensor& { return a.floor_divide_(b); }, same)
      .def(
          "__imod__", [](Tensor& a, const Tensor& b) -> Tensor& { return a.remainder_(b); }, same)
      .def(
          "__imod__", [](Tensor& a, Scalar b) -> Tensor& { return a.remainder_(b); }, same);

  // ---- in-place methods ---------------------------------------------------------------------
  cls.def("add_", py::overload_cast<const Tensor&, const Scalar&>(&Tensor::add_), py::arg("other"),
          py::kw_only(), py::arg("alpha") = 1, same, "self += alpha * other")
      .def("add_", py::overload_cast<const Scalar&, const Scalar&>(&Tensor::add_), py::arg("other"),
           py::kw_only(), py::arg("alpha") = 1, same)
      .def("sub_", py::overload_cast<const Tensor&, const Scalar&>(&Tensor::sub_), py::arg("other"),
           py::kw_only(), py::arg("alpha") = 1, same, "self -= alpha * other")
      .def("sub_", py::overload_cast<const Scalar&, const Scalar&>(&Tensor::sub_), py::arg("other"),
           py::kw_only(), py::arg("alpha") = 1, same)
      .def("mul_", py::overload_cast<const Tensor&>(&Tensor::mul_), py::arg("other"), same,
           "self *= other")
      .def("mul_", py::overload_cast<const Scalar&>(&Tensor::mul_), py::arg("other"), same)
      .def("div_", py::overload_cast<const Tensor&, std::optional<std::string_view>>(&Tensor::div_),
           py::arg("other"), py::kw_only(), py::arg("rounding_mode") = py::none(), same,
           "self /= other (rounding_mode: None, \"trunc\" or \"floor\")")
      .def("div_", py::overload_cast<const Scalar&, std::optional<std::string_view>>(&Tensor::div_),
           py::arg("other"), py::kw_only(), py::arg("rounding_mode") = py::none(), same)
      .def("remainder_", py::overload_cast<const Tensor&>(&Tensor::remainder_), same)
      .def("remainder_", py::overload_cast<const Scalar&>(&Tensor::remainder_), same)
      .def("fmod_", py::overload_cast<const Tensor&>(&Tensor::fmod_), same)
      .def("fmod_", py::overload_cast<const Scalar&>(&Tensor::fmod_), same)
      .def("floor_divide_", py::overload_cast<const Tensor&>(&Tensor::floor_divide_), same)
      .def("floor_divide_", py::overload_cast<const Scalar&>(&Tensor::floor_divide_), same)
      .def("zero_", &Tensor::zero_, same, "Fills with zeros.")
      .def("fill_", &Tensor::fill_, py::arg("value"), same,
           "Fills with `value` (a floating value into an integer tensor truncates).")
      .def(
          "copy_", [](Tensor& t, py::handle src) -> Tensor& { return t.copy_(value_for(t, src)); },
          py::arg("src"), same,
          "Copies src (broadcast to this shape, converted to this dtype) into this tensor.")
      .def(
          "normal_",
          [](Tensor& t, double mean, double std) -> Tensor& {
            HeavyScope g(t.numel());
            return t.normal_(mean, std);
          },
          py::arg("mean") = 0.0, py::arg("std") = 1.0, same,
          "Fills with samples of N(mean, std^2) from the global generator.")
      .def(
          "uniform_",
          [](Tensor& t, double from, double to) -> Tensor& {
            HeavyScope g(t.numel());
            return t.uniform_(from, to);
          },
          py::arg("from_") = 0.0, py::arg("to") = 1.0, same,
          "Fills with samples of U[from, to) from the global generator.")
      .def("bernoulli_", py::overload_cast<double>(&Tensor::bernoulli_), py::arg("p") = 0.5, same,
           "Fills with 0/1 draws, 1 with probability p.")
      .def("bernoulli_", py::overload_cast<const Tensor&>(&Tensor::bernoulli_), py::arg("p"), same)
      .def(
          "masked_fill_",
          [](Tensor& t, const Tensor& mask, Scalar v) -> Tensor& {
            return t.masked_fill_(mask, v);
          },
          py::arg("mask"), py::arg("value"), same)
      .def("masked_fill_", py::overload_cast<const Tensor&, const Tensor&>(&Tensor::masked_fill_),
           py::arg("mask"), py::arg("value"), same)
      .def(
          "index_put_",
          [](Tensor& t, py::tuple indices, const Tensor& values, bool accumulate) -> Tensor& {
            return t.index_put_(indices_from_key(indices), values, accumulate);
          },
          py::arg("indices"), py::arg("values"), py::arg("accumulate") = false, same,
          "In place: self[indices] = values (+= with accumulate).")
      .def("scatter_", py::overload_cast<int64_t, const Tensor&, const Tensor&>(&Tensor::scatter_),
           py::arg("dim"), py::arg("index"), py::arg("src"), same)
      .def("scatter_", py::overload_cast<int64_t, const Tensor&, const Scalar&>(&Tensor::scatter_),
           py::arg("dim"), py::arg("index"), py::arg("value"), same)
      .def("scatter_add_", &Tensor::scatter_add_, py::arg("dim"), py::arg("index"), py::arg("src"),
           same)
      .def("index_add_", &Tensor::index_add_, py::arg("dim"), py::arg("index"), py::arg("source"),
           py::kw_only(), py::arg("alpha") = 1, same);

  // ---- methods that also exist as soma.<name>(input, ...) -----------------------------------
  auto both = [&](const char* name, auto&& f, const char* doc, auto... extra) {
    cls.def(name, f, doc, extra...);
    m.def(name, f, doc, py::arg("input"), extra...);
  };
  static const UnaryEntry unary[] = {
      {"neg", &Tensor::neg, "-x"},
      {"negative", &Tensor::neg, "-x"},
      {"exp", &Tensor::exp, "e^x"},
      {"log", &Tensor::log, "Natural logarithm."},
      {"sqrt", &Tensor::sqrt, "Square root."},
      {"abs", &Tensor::abs, "|x| (gradient sign(x), 0 at 0)."},
      {"relu", &Tensor::relu, "max(x, 0)"},
      {"sigmoid", &Tensor::sigmoid, "1 / (1 + e^-x)"},
      {"tanh", &Tensor::tanh, "Hyperbolic tangent."},
      {"sin", &Tensor::sin, "Sine."},
      {"cos", &Tensor::cos, "Cosine."},
      {"tan", &Tensor::tan, "Tangent."},
      {"log1p", &Tensor::log1p, "log(1 + x)"},
      {"expm1", &Tensor::expm1, "e^x - 1"},
      {"log2", &Tensor::log2, "Base-2 logarithm."},
      {"log10", &Tensor::log10, "Base-10 logarithm."},
      {"erf", &Tensor::erf, "The error function."},
      {"floor", &Tensor::floor, "Rounds down (integer dtypes kept; zero gradient)."},
      {"ceil", &Tensor::ceil, "Rounds up (integer dtypes kept; zero gradient)."},
      {"round", &Tensor::round, "Rounds half to even (zero gradient)."},
      {"sign", &Tensor::sign, "-1, 0 or 1 in x's dtype (zero gradient)."},
      {"reciprocal", &Tensor::reciprocal, "1 / x (integers give float32)."},
      {"rsqrt", &Tensor::rsqrt, "1 / sqrt(x) (integers give float32)."},
      {"square", &Tensor::square, "x * x (bool gives int64)."},
      {"nonzero", &Tensor::nonzero,
       "The indices of the nonzero elements, as an int64 tensor [n, x.dim()]."},
      {"t", &Tensor::t, "Transpose of a tensor with at most 2 dims (a view)."},
  };
  for (const auto& e : unary) {
    Unary fn = e.fn;
    both(
        e.name,
        [fn](const Tensor& x) {
          HeavyScope g(x.numel());
          return (x.*fn)();
        },
        e.doc);
  }
  both(
      "add", [](const Tensor& a, const Tensor& b, Scalar alpha) { return add(a, b, alpha); },
      "a + alpha * b", py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  both(
      "add", [](const Tensor& a, Scalar b, Scalar alpha) { return add(a, b, alpha); },
      "a + alpha * b", py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  both(
      "sub", [](const Tensor& a, const Tensor& b, Scalar alpha) { return sub(a, b, alpha); },
      "a - alpha * b", py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  both(
      "sub", [](const Tensor& a, Scalar b, Scalar alpha) { return sub(a, b, alpha); },
      "a - alpha * b", py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  both(
      "mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, "a * b", py::arg("other"));
  both(
      "mul", [](const Tensor& a, Scalar b) { return mul(a, b); }, "a * b", py::arg("other"));
  both(
      "div",
      [](const Tensor& a, const Tensor& b, std::optional<std::string> mode) {
        return mode ? div(a, b, std::string_view(*mode)) : div(a, b);
      },
      "a / b; rounding_mode None (true division), \"trunc\" or \"floor\".", py::arg("other"),
      py::kw_only(), py::arg("rounding_mode") = py::none());
  both(
      "div",
      [](const Tensor& a, Scalar b, std::optional<std::string> mode) {
        return mode ? div(a, b, std::string_view(*mode)) : div(a, b);
      },
      "a / b; rounding_mode None (true division), \"trunc\" or \"floor\".", py::arg("other"),
      py::kw_only(), py::arg("rounding_mode") = py::none());
  both(
      "true_divide", [](const Tensor& a, const Tensor& b) { return div(a, b); }, "a / b",
      py::arg("other"));
  both(
      "floor_divide", [](const Tensor& a, const Tensor& b) { return floor_divide(a, b); },
      "div(a, b, rounding_mode=\"floor\")", py::arg("other"));
  both(
      "floor_divide", [](const Tensor& a, Scalar b) { return floor_divide(a, b); },
      "div(a, b, rounding_mode=\"floor\")", py::arg("other"));
  both(
      "remainder", [](const Tensor& a, const Tensor& b) { return remainder(a, b); },
      "Python's %: the sign of the divisor.", py::arg("other"));
  both(
      "remainder", [](const Tensor& a, Scalar b) { return remainder(a, b); },
      "Python's %: the sign of the divisor.", py::arg("other"));
  both(
      "fmod", [](const Tensor& a, const Tensor& b) { return fmod(a, b); },
      "C's fmod: the sign of the dividend.", py::arg("other"));
  both(
      "fmod", [](const Tensor& a, Scalar b) { return fmod(a, b); },
      "C's fmod: the sign of the dividend.", py::arg("other"));
  both(
      "pow", [](const Tensor& a, const Tensor& e) { return pow(a, e); },
      "x ** exponent (broadcasting; gradient wrt exponent x^e ln x).", py::arg("exponent"));
  both(
      "pow", [](const Tensor& a, double e) { return pow(a, e); }, "x ** exponent",
      py::arg("exponent"));
  both(
      "atan2", [](const Tensor& a, const Tensor& b) { return atan2(a, b); },
      "The angle of (other, input).", py::arg("other"));
  for (auto [name, fn] :
       {std::pair{"eq", py::overload_cast<const Tensor&>(&Tensor::eq, py::const_)},
        std::pair{"ne", py::overload_cast<const Tensor&>(&Tensor::ne, py::const_)},
        std::pair{"lt", py::overload_cast<const Tensor&>(&Tensor::lt, py::const_)},
        std::pair{"le", py::overload_cast<const Tensor&>(&Tensor::le, py::const_)},
        std::pair{"gt", py::overload_cast<const Tensor&>(&Tensor::gt, py::const_)},
        std::pair{"ge", py::overload_cast<const Tensor&>(&Tensor::ge, py::const_)}}) {
    both(
        name, [fn](const Tensor& a, const Tensor& b) { return (a.*fn)(b); },
        "Elementwise comparison (a bool mask; not differentiable).", py::arg("other"));
  }
  for (auto [name, fn] :
       {std::pair{"eq", py::overload_cast<const Scalar&>(&Tensor::eq, py::const_)},
        std::pair{"ne", py::overload_cast<const Scalar&>(&Tensor::ne, py::const_)},
        std::pair{"lt", py::overload_cast<const Scalar&>(&Tensor::lt, py::const_)},
        std::pair{"le", py::overload_cast<const Scalar&>(&Tensor::le, py::const_)},
        std::pair{"gt", py::overload_cast<const Scalar&>(&Tensor::gt, py::const_)},
        std::pair{"ge", py::overload_cast<const Scalar&>(&Tensor::ge, py::const_)}}) {
    both(
        name, [fn](const Tensor& a, Scalar b) { return (a.*fn)(b); },
        "Elementwise comparison (a bool mask; not differentiable).", py::arg("other"));
  }
  both(
      "clamp",
      [](const Tensor& x, std::optional<double> lo, std::optional<double> hi) {
        SOMA_CHECK(lo || hi, "clamp: at least one of min and max must be given");
        // An integer tensor cannot hold +-inf: its own range bounds it.
        double big = is_floating(x.dtype()) ? std::numeric_limits<double>::infinity() : 0x1p62;
        return clamp(x, lo.value_or(-big), hi.value_or(big));
      },
      "Limits to [min, max] (either may be None); gradient 1 inside, 0 outside.",
      py::arg("min") = py::none(), py::arg("max") = py::none());
  both(
      "softmax", [](const Tensor& x, int64_t dim) { return softmax(x, dim); },
      "exp(x - max) / sum exp(x - max) along dim.", py::arg("dim"));
  both(
      "log_softmax", [](const Tensor& x, int64_t dim) { return log_softmax(x, dim); },
      "x - max - log sum exp(x - max) along dim.", py::arg("dim"));
  both(
      "softmin", [](const Tensor& x, int64_t dim) { return softmin(x, dim); }, "softmax(-x, dim)",
      py::arg("dim"));
  both(
      "lerp", [](const Tensor& s, const Tensor& e, Scalar w) { return lerp(s, e, w); },
      "start + weight * (end - start)", py::arg("end"), py::arg("weight"));
  both(
      "lerp", [](const Tensor& s, const Tensor& e, const Tensor& w) { return lerp(s, e, w); },
      "start + weight * (end - start)", py::arg("end"), py::arg("weight"));

  // ---- matrix products (the GIL is released for large ones) ----------------------------------
  both(
      "matmul",
      [](const Tensor& a, const Tensor& b) {
        HeavyScope g(matmul_work(a, b));
        return matmul(a, b);
      },
      "Matrix product with torch.matmul's broadcasting rules.", py::arg("other"));
  both(
      "mm",
      [](const Tensor& a, const Tensor& b) {
        SOMA_CHECK(a.dim() == 2 && b.dim() == 2, "mm: both operands must be 2-D (got ", a.shape(),
                   " and ", b.shape(), ")");
        HeavyScope g(matmul_work(a, b));
        return matmul(a, b);
      },
      "Product of two matrices.", py::arg("mat2"));
  both(
      "bmm",
      [](const Tensor& a, const Tensor& b) {
        HeavyScope g(matmul_work(a, b));
        return bmm(a, b);
      },
      "Batched matrix product [B, n, m] x [B, m, p].", py::arg("mat2"));
  both(
      "addmm",
      [](const Tensor& x, const Tensor& a, const Tensor& b, Scalar beta, Scalar alpha) {
        HeavyScope g(matmul_work(a, b));
        return addmm(x, a, b, beta, alpha);
      },
      "beta * input + alpha * (mat1 @ mat2)", py::arg("mat1"), py::arg("mat2"), py::kw_only(),
      py::arg("beta") = 1, py::arg("alpha") = 1);
  both(
      "outer", [](const Tensor& a, const Tensor& b) { return outer(a, b); },
      "Outer product of two 1-D tensors.", py::arg("vec2"));
  both(
      "dot", [](const Tensor& a, const Tensor& b) { return dot(a, b); },
      "Inner product of two 1-D tensors -> 0-d.", py::arg("other"));

  // ---- reductions -----------------------------------------------------------------------------
  both(
      "sum",
      [](const Tensor& x, py::object dim, bool keepdim) {
        auto dims = dims_of(dim);
        HeavyScope g(x.numel());
        return dim.is_none() ? sum(x) : sum(x, dims, keepdim);
      },
      "Sum of all elements, or over dim (an int or a tuple of ints).", py::arg("dim") = py::none(),
      py::arg("keepdim") = false);
  both(
      "mean",
      [](const Tensor& x, py::object dim, bool keepdim) {
        auto dims = dims_of(dim);
        HeavyScope g(x.numel());
        return dim.is_none() ? mean(x) : mean(x, dims, keepdim);
      },
      "Mean of all elements, or over dim (an int or a tuple of ints).", py::arg("dim") = py::none(),
      py::arg("keepdim") = false);
  both(
      "prod",
      [](const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
        HeavyScope g(x.numel());
        return dim ? prod(x, *dim, keepdim) : prod(x);
      },
      "Product of all elements or along dim (bool and int64 give int64).",
      py::arg("dim") = py::none(), py::arg("keepdim") = false);
  for (auto [name, all_fn, dim_fn] :
       {std::tuple{"max", py::overload_cast<const Tensor&>(&soma::max),
                   py::overload_cast<const Tensor&, int64_t, bool>(&soma::max)},
        std::tuple{"min", py::overload_cast<const Tensor&>(&soma::min),
                   py::overload_cast<const Tensor&, int64_t, bool>(&soma::min)}}) {
    std::string type_name = name;
    both(
        name,
        [all_fn, dim_fn, type_name](const Tensor& x, std::optional<int64_t> dim,
                                    bool keepdim) -> py::object {
          if (!dim) {
            Tensor r;
            {
              HeavyScope g(x.numel());
              r = all_fn(x);
            }
            return wrap(std::move(r));
          }
          std::tuple<Tensor, Tensor> r;
          {
            HeavyScope g(x.numel());
            r = dim_fn(x, *dim, keepdim);
          }
          return named_pair(type_name.c_str(), std::move(r));
        },
        "The largest/smallest element, or (values, indices) along dim.",
        py::arg("dim") = py::none(), py::arg("keepdim") = false);
  }
  both(
      "max", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
      "Elementwise maximum (torch.max(input, other)).", py::arg("other"));
  both(
      "min", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
      "Elementwise minimum (torch.min(input, other)).", py::arg("other"));
  both(
      "maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
      "Elementwise maximum (ties split the gradient).", py::arg("other"));
  both(
      "minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
      "Elementwise minimum (ties split the gradient).", py::arg("other"));
  both(
      "amax",
      [](const Tensor& x, py::object dim, bool keepdim) { return amax(x, dims_of(dim), keepdim); },
      "Maximum over dim (default: every dim).", py::arg("dim") = py::tuple(),
      py::arg("keepdim") = false);
  both(
      "amin",
      [](const Tensor& x, py::object dim, bool keepdim) { return amin(x, dims_of(dim), keepdim); },
      "Minimum over dim (default: every dim).", py::arg("dim") = py::tuple(),
      py::arg("keepdim") = false);
  both(
      "argmax",
      [](const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
        return dim ? argmax(x, *dim, keepdim) : argmax(x);
      },
      "Index (int64) of the first maximum, over the flattened tensor or along dim.",
      py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both(
      "argmin",
      [](const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
        return dim ? argmin(x, *dim, keepdim) : argmin(x.reshape({-1}), 0, false);
      },
      "Index (int64) of the first minimum, over the flattened tensor or along dim.",
      py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both(
      "cumsum", [](const Tensor& x, int64_t dim) { return cumsum(x, dim); },
      "Inclusive running sum along dim.", py::arg("dim"));
  both(
      "cumprod", [](const Tensor& x, int64_t dim) { return cumprod(x, dim); },
      "Inclusive running product along dim.", py::arg("dim"));
  for (auto [name, fn] :
       {std::pair{"var",
                  py::overload_cast<const Tensor&, const std::vector<int64_t>&, int64_t, bool>(
                      &soma::var)},
        std::pair{"std",
                  py::overload_cast<const Tensor&, const std::vector<int64_t>&, int64_t, bool>(
                      &soma::std)}}) {
    both(
        name,
        [fn](const Tensor& x, py::object dim, std::optional<bool> unbiased,
             std::optional<int64_t> correction, bool keepdim) {
          int64_t c = correction ? *correction : (unbiased.value_or(true) ? 1 : 0);
          auto dims = dims_of(dim);
          HeavyScope g(x.numel());
          return fn(x, dims, c, keepdim);
        },
        "Variance / standard deviation over dim (default: all), divided by N - correction.",
        py::arg("dim") = py::none(), py::arg("unbiased") = py::none(), py::kw_only(),
        py::arg("correction") = py::none(), py::arg("keepdim") = false);
  }
  both(
      "norm",
      [](const Tensor& x, py::object p, py::object dim, bool keepdim) {
        if (py::isinstance<py::str>(p))
          return norm(x, p.cast<std::string>(), dims_of(dim), keepdim);
        return norm(x, p.is_none() ? 2.0 : p.cast<double>(), dims_of(dim), keepdim);
      },
      "Vector p-norm over dim (default: every element); p = 2, 1, inf, -inf, 0, any p, \"fro\".",
      py::arg("p") = 2.0, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both(
      "logsumexp",
      [](const Tensor& x, py::object dim, bool keepdim) {
        return logsumexp(x, dims_of(dim), keepdim);
      },
      "log(sum(exp(x))) over dim, computed stably.", py::arg("dim"), py::arg("keepdim") = false);
  both(
      "all",
      [](const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
        return dim ? all(x, *dim, keepdim) : all(x);
      },
      "Whether every element is non-zero (bool).", py::arg("dim") = py::none(),
      py::arg("keepdim") = false);
  both(
      "any",
      [](const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
        return dim ? any(x, *dim, keepdim) : any(x);
      },
      "Whether any element is non-zero (bool).", py::arg("dim") = py::none(),
      py::arg("keepdim") = false);
  both(
      "topk",
      [](const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) {
        return named_pair("topk", topk(x, k, dim, largest, sorted));
      },
      "The k largest (or smallest) elements along dim and their indices.", py::arg("k"),
      py::arg("dim") = -1, py::arg("largest") = true, py::arg("sorted") = true);
  both(
      "sort",
      [](const Tensor& x, int64_t dim, bool descending) {
        return named_pair("sort", sort(x, dim, descending));
      },
      "Stable sort along dim: (values, indices).", py::arg("dim") = -1,
      py::arg("descending") = false);
  both(
      "argsort",
      [](const Tensor& x, int64_t dim, bool descending) { return argsort(x, dim, descending); },
      "The indices that sort x along dim.", py::arg("dim") = -1, py::arg("descending") = false);
  both(
      "kthvalue",
      [](const Tensor& x, int64_t k, int64_t dim, bool keepdim) {
        return named_pair("kthvalue", kthvalue(x, k, dim, keepdim));
      },
      "The k-th smallest element (k from 1) along dim and its index.", py::arg("k"),
      py::arg("dim") = -1, py::arg("keepdim") = false);
  both(
      "median",
      [](const Tensor& x, std::optional<int64_t> dim, bool keepdim) -> py::object {
        if (!dim) return wrap(median(x));
        return named_pair("median", median(x, *dim, keepdim));
      },
      "Lower median of all elements, or (values, indices) along dim.", py::arg("dim") = py::none(),
      py::arg("keepdim") = false);

  // ---- shape ----------------------------------------------------------------------------------
  cls.def(
         "reshape",
         [](const Tensor& x, py::args shape) {
           return x.reshape(shape_from_args(shape, "reshape"));
         },
         "One dimension may be -1 (inferred). A view when the strides allow (as torch), else a "
         "copy.")
      .def(
          "view",
          [](const Tensor& x, py::args shape) { return x.view(shape_from_args(shape, "view")); },
          "Like reshape but never copies: an error when the strides do not allow the shape.")
      .def(
          "view_as", [](const Tensor& x, const Tensor& o) { return x.view(o.shape()); },
          py::arg("other"))
      .def(
          "reshape_as", [](const Tensor& x, const Tensor& o) { return x.reshape(o.shape()); },
          py::arg("other"))
      .def(
          "permute",
          [](const Tensor& x, py::args dims) {
            return x.permute(shape_from_args(dims, "permute"));
          },
          "Reorders the dims: result dim i is x's dim dims[i] (a view).")
      .def(
          "expand",
          [](const Tensor& x, py::args size) { return x.expand(shape_from_args(size, "expand")); },
          "A view with size-1 dims stretched (stride 0); -1 keeps a size.")
      .def(
          "repeat",
          [](const Tensor& x, py::args r) { return x.repeat(shape_from_args(r, "repeat")); },
          "Tiles x (a copy).")
      .def(
          "flip",
          [](const Tensor& x, py::args dims) { return x.flip(shape_from_args(dims, "flip")); },
          "Reverses the order of the elements along each of dims (a copy).")
      .def("expand_as", &Tensor::expand_as, py::arg("other"))
      .def_property_readonly(
          "T",
          [](const Tensor& x) {
            Shape dims(x.dim());
            for (int64_t i = 0; i < x.dim(); ++i) dims[i] = x.dim() - 1 - i;
            return x.permute(dims);
          },
          "The dims reversed (a view).")
      .def_property_readonly(
          "mT", [](const Tensor& x) { return x.transpose(-2, -1); },
          "The last two dims swapped (a view).");
  m.def(
      "reshape", [](const Tensor& x, const Shape& s) { return reshape(x, s); },
      "One dimension may be -1 (inferred). A view when the strides allow (as torch), else a copy.",
      py::arg("input"), py::arg("shape"));
  m.def(
      "permute", [](const Tensor& x, const Shape& d) { return permute(x, d); },
      "Reorders the dims (a view).", py::arg("input"), py::arg("dims"));
  m.def(
      "flip", [](const Tensor& x, const Shape& d) { return flip(x, d); },
      "Reverses the elements along dims (a copy).", py::arg("input"), py::arg("dims"));
  both(
      "flatten", [](const Tensor& x, int64_t s, int64_t e) { return flatten(x, s, e); },
      "Merges dims start_dim..end_dim into one.", py::arg("start_dim") = 0,
      py::arg("end_dim") = -1);
  both(
      "transpose", [](const Tensor& x, int64_t a, int64_t b) { return transpose(x, a, b); },
      "Swaps two dims (a view).", py::arg("dim0"), py::arg("dim1"));
  both(
      "swapaxes", [](const Tensor& x, int64_t a, int64_t b) { return transpose(x, a, b); },
      "transpose(dim0, dim1)", py::arg("axis0"), py::arg("axis1"));
  both(
      "squeeze",
      [](const Tensor& x, std::optional<int64_t> dim) {
        return dim ? squeeze(x, *dim) : squeeze(x);
      },
      "Removes all size-1 dims, or dim if it has size 1.", py::arg("dim") = py::none());
  both(
      "unsqueeze", [](const Tensor& x, int64_t dim) { return unsqueeze(x, dim); },
      "Inserts a size-1 dim at dim (a view).", py::arg("dim"));
  both(
      "narrow", [](const Tensor& x, int64_t d, int64_t s, int64_t l) { return narrow(x, d, s, l); },
      "Elements [start, start + length) along dim (a view).", py::arg("dim"), py::arg("start"),
      py::arg("length"));
  both(
      "index_select",
      [](const Tensor& x, int64_t d, const Tensor& i) { return index_select(x, d, i); },
      "Picks the entries index (1-D int64) along dim.", py::arg("dim"), py::arg("index"));
  both(
      "split",
      [](const Tensor& x, py::object size, int64_t dim) {
        if (PyIndex_Check(size.ptr()))
          return py::tuple(py::cast(split(x, size.cast<int64_t>(), dim)));
        return py::tuple(py::cast(split(x, size.cast<std::vector<int64_t>>(), dim)));
      },
      "Pieces of split_size (or of the given sizes) along dim (views).",
      py::arg("split_size_or_sections"), py::arg("dim") = 0);
  both(
      "chunk",
      [](const Tensor& x, int64_t c, int64_t dim) { return py::tuple(py::cast(chunk(x, c, dim))); },
      "At most `chunks` pieces along dim (views).", py::arg("chunks"), py::arg("dim") = 0);
  both(
      "unbind", [](const Tensor& x, int64_t dim) { return py::tuple(py::cast(unbind(x, dim))); },
      "The slices along dim, each without it (views).", py::arg("dim") = 0);
  both(
      "roll",
      [](const Tensor& x, py::object shifts, py::object dims) {
        return roll(x, dims_of(shifts), dims_of(dims));
      },
      "Shifts elements along dims, wrapping around (a copy).", py::arg("shifts"),
      py::arg("dims") = py::none());
  both(
      "movedim",
      [](const Tensor& x, py::object s, py::object d) {
        return movedim(x, dims_of(s), dims_of(d));
      },
      "Moves dims source to positions destination (a view).", py::arg("source"),
      py::arg("destination"));
  both(
      "tril", [](const Tensor& x, int64_t d) { return tril(x, d); },
      "Keeps the elements on and below the diagonal-th diagonal.", py::arg("diagonal") = 0);
  both(
      "triu", [](const Tensor& x, int64_t d) { return triu(x, d); },
      "Keeps the elements on and above the diagonal-th diagonal.", py::arg("diagonal") = 0);
  cls.def("unfold", &Tensor::unfold, py::arg("dimension"), py::arg("size"), py::arg("step"),
          "Every window of size elements along dimension, step apart (a view).");
  both(
      "gather", [](const Tensor& x, int64_t d, const Tensor& i) { return gather(x, d, i); },
      "out[i][j] = x[index[i][j]][j] for dim 0 (and so on).", py::arg("dim"), py::arg("index"));
  both(
      "scatter",
      [](const Tensor& x, int64_t d, const Tensor& i, const Tensor& s) {
        return scatter(x, d, i, s);
      },
      "A copy of x with out[index[i][j]][j] = src[i][j] (dim 0).", py::arg("dim"), py::arg("index"),
      py::arg("src"));
  both(
      "scatter",
      [](const Tensor& x, int64_t d, const Tensor& i, Scalar v) { return scatter(x, d, i, v); },
      "A copy of x with out[index[i][j]][j] = value (dim 0).", py::arg("dim"), py::arg("index"),
      py::arg("value"));
  both(
      "scatter_add",
      [](const Tensor& x, int64_t d, const Tensor& i, const Tensor& s) {
        return scatter_add(x, d, i, s);
      },
      "As scatter, but repeated targets add up.", py::arg("dim"), py::arg("index"), py::arg("src"));
  both(
      "index_add",
      [](const Tensor& x, int64_t d, const Tensor& i, const Tensor& s, Scalar a) {
        return index_add(x, d, i, s, a);
      },
      "x with x.select(dim, index[i]) += alpha * source.select(dim, i).", py::arg("dim"),
      py::arg("index"), py::arg("source"), py::kw_only(), py::arg("alpha") = 1);
  both(
      "masked_fill",
      [](const Tensor& x, const Tensor& mask, Scalar v) { return masked_fill(x, mask, v); },
      "x with value where mask is true.", py::arg("mask"), py::arg("value"));
  both(
      "masked_fill",
      [](const Tensor& x, const Tensor& mask, const Tensor& v) { return masked_fill(x, mask, v); },
      "x with value (0-d) where mask is true.", py::arg("mask"), py::arg("value"));
  both(
      "masked_select", [](const Tensor& x, const Tensor& mask) { return masked_select(x, mask); },
      "The elements where mask is true, as a 1-D copy.", py::arg("mask"));
  both(
      "take", [](const Tensor& x, const Tensor& i) { return take(x, i); },
      "x.flatten()[index] with index's shape.", py::arg("index"));
  cls.def(
      "index_put",
      [](const Tensor& t, py::tuple indices, const Tensor& values, bool accumulate) {
        return t.index_put(indices_from_key(indices), values, accumulate);
      },
      py::arg("indices"), py::arg("values"), py::arg("accumulate") = false,
      "A copy with self[indices] = values (+= with accumulate).");
  cls.def(
      "where",
      [](const Tensor& x, const Tensor& cond, const Tensor& y) { return where(cond, x, y); },
      py::arg("condition"), py::arg("other"), "condition ? self : other");
  cls.def(
         "bernoulli", [](const Tensor& x) { return x.bernoulli(); },
         "0/1 draws with this tensor's entries as probabilities.")
      .def("multinomial", &Tensor::multinomial, py::arg("num_samples"),
           py::arg("replacement") = false,
           "Draws num_samples category indices per row of non-negative weights.");
}

}  // namespace soma::python
