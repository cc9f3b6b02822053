// The shared header of soma's Python bindings (the extension module soma._soma).
//
// Contract for adding a translation unit (python/src/<area>.cpp; CMake globs python/src/*.cpp):
//   1. Include this header only (it brings pybind11, its STL casters and all of soma).
//   2. Define `void bind_<area>(py::module_& m)` in namespace soma::python and declare it in
//      the list below; call it from module.cpp's PYBIND11_MODULE (after bind_tensor: the
//      Tensor class must be registered before any signature that mentions it is documented).
//      Put the Python-facing names of a submodule in m.def_submodule("<area>") and re-export
//      them from python/soma/<area>.py (or a package dir) so `import soma.<area>` works.
//   3. Tensor, DType and Scalar convert automatically in signatures: soma::Tensor is the class
//      soma.Tensor; soma::DType is a soma.dtype object (soma.float32, ...; also Python's
//      float/int/bool types, as torch accepts them); soma::Scalar is a Python bool, int or float
//      (or anything with __index__ / __float__ that is not a Tensor). soma::Shape
//      (std::vector<int64_t>) is a list or tuple of ints; use shape_from_args() for torch's
//      `f(*size)` form. std::optional, std::vector, std::tuple come from pybind11/stl.h.
//   4. soma::Error becomes soma.Error (a RuntimeError) with soma's message: just let it throw.
//   5. Release the GIL around work that can take milliseconds: `HeavyScope g(work_elements)`
//      releases it only when the work is large enough to repay the ~0.1 us it costs; code that
//      runs with the GIL released must not touch Python objects. Any C++ callback that calls
//      into Python (hooks, callables passed to fit, datasets) takes `py::gil_scoped_acquire`.
//      Python objects that C++ keeps (a callable stored in a std::function, a deleter's owner)
//      are held in a PyRef, whose destructor takes the GIL on whatever thread drops it.
//   6. Docstrings: the doc string argument of .def(); take them from the C++ header comment.
//      Then regenerate the stub: `PYTHONPATH=build/python /usr/bin/python3 python/gen_stubs.py`
//      (python/tests/test_stubs.py fails while python/soma/_soma.pyi is out of date).
//   7. Tests: python/tests/test_<area>.py; test_coverage.py fails for any public name of soma,
//      soma.Tensor or soma.autograd that no test file mentions (extend bound_names() there to
//      cover a new submodule). Compare with torch through the `torch` fixture (conftest.py).
//   To add methods to soma.Tensor from another unit: tensor_class(m).def(...).
// This header is stable: add helpers in your own TU rather than changing the ones here.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "soma/soma.h"

namespace py = pybind11;

namespace soma::python {

// ---- the binding units (one per file) ------------------------------------------------------
void bind_dtype(py::module_& m);     // dtype.cpp: soma.dtype, soma.float32 ..., soma.Error
void bind_tensor(py::module_& m);    // tensor.cpp: soma.Tensor, methods, operators, and the
                                     //   function forms soma.exp(x), soma.matmul(a, b), ...
void bind_creation(py::module_& m);  // creation.cpp: tensor, zeros, ..., manual_seed, cat, where
void bind_autograd(py::module_& m);  // autograd.cpp: .grad, backward, hooks; _soma._autograd
void bind_interop(py::module_& m);   // interop.cpp: from_numpy, numpy(), DLPack, pickle
void bind_nn(py::module_& m);        // nn.cpp: soma.nn (Module, layers, losses), nn.functional
void bind_optim(py::module_& m);     // optim.cpp: soma.optim (optimizers, LR schedulers)
void bind_data(py::module_& m);      // data.cpp: soma.data (datasets, DataLoader, readers)
void bind_train(py::module_& m);     // train.cpp: soma.fit, callbacks, save/load, ONNX
void bind_function(py::module_& m);  // function.cpp: custom autograd Functions from Python
void bind_quantization(py::module_& m);  // quantization.cpp: soma.quantization, autocast

// ---- helpers shared by the units -----------------------------------------------------------
/// The Python object soma.<name> of a dtype (a singleton; `soma.float32 is t.dtype`).
py::object dtype_object(DType dtype);
/// Reads a soma.dtype object (or Python's float -> float64, int -> int64, bool -> bool);
/// false when `h` is neither.
bool dtype_from_object(py::handle h, DType& out);
/// torch's `f(*size)` convention: f(2, 3), f((2, 3)) and f([2, 3]) all give {2, 3}.
Shape shape_from_args(const py::args& args, const char* op);
/// The soma.Size (a tuple subclass, like torch.Size) of a shape.
py::object size_object(const Shape& shape);
/// A Python int, float or bool holding t's single element (t.item()).
py::object item_object(const Tensor& t);
/// torch.tensor(data): a new tensor copied from a nested sequence of numbers, a NumPy array (or
/// anything with __array__), a Python number or a Tensor; dtype inferred like torch when absent.
Tensor tensor_from_data(py::handle data, std::optional<DType> dtype);
/// One Python index (int, slice, None, Ellipsis, bool, Tensor, list/array of ints or bools) or a
/// tuple of them, as soma's index list (x[key]).
std::vector<indexing::TensorIndex> indices_from_key(py::handle key);
/// The address of t's first element (whatever its dtype).
inline const void* data_address(const Tensor& t) {
  switch (t.dtype()) {
    case kFloat32:
      return t.data<float>();
    case kFloat64:
      return t.data<double>();
    case kInt64:
      return t.data<int64_t>();
    case kBool:
      return t.data<bool>();
    case kUInt8:
      return t.data<uint8_t>();
    case kInt8:
      return t.data<int8_t>();
    case kInt32:
      return t.data<int32_t>();
    case kBFloat16:
      return t.data<BFloat16>();
    case kFloat16:
      return t.data<Half>();
  }
  return nullptr;
}
/// Wraps a tensor as a new soma.Tensor Python object.
inline py::object wrap(Tensor t) {
  return py::cast(std::move(t));
}

/// soma.Tensor's class object, to add methods from another unit: tensor_class(m).def(...).
inline py::class_<Tensor> tensor_class(py::module_& m) {
  return py::reinterpret_borrow<py::class_<Tensor>>(m.attr("Tensor"));
}

/// A Python object that C++ may hold anywhere (inside a std::function kept by a graph node, a
/// from_blob deleter, a callback list) and drop on any thread: the destructor takes the GIL
/// (and leaks the reference if the interpreter is already gone). Calls need the GIL:
/// `py::gil_scoped_acquire g; ref.get()(args...)`.
class PyRef {
 public:
  explicit PyRef(py::object o) : o_(std::move(o)) {}
  PyRef(const PyRef& other) {
    py::gil_scoped_acquire g;
    o_ = other.o_;
  }
  PyRef& operator=(const PyRef&) = delete;
  ~PyRef() {
    if (!o_) return;
    if (!Py_IsInitialized()) {
      o_.release();
      return;
    }
    py::gil_scoped_acquire g;
    o_ = py::object();
  }
  const py::object& get() const { return o_; }

 private:
  py::object o_;
};

/// Releases the GIL for its lifetime when `work` (elements touched, or multiply-adds) is at least
/// kHeavyWork: below that the release and re-acquire cost more than they can give back.
class HeavyScope {
 public:
  static constexpr int64_t kHeavyWork = 1 << 15;
  explicit HeavyScope(int64_t work) {
    if (work >= kHeavyWork) state_ = PyEval_SaveThread();
  }
  ~HeavyScope() {
    if (state_) PyEval_RestoreThread(state_);
  }
  HeavyScope(const HeavyScope&) = delete;
  HeavyScope& operator=(const HeavyScope&) = delete;

 private:
  PyThreadState* state_ = nullptr;
};

}  // namespace soma::python

// ---- type casters: soma::DType <-> soma.dtype, Python numbers -> soma::Scalar -----------------
namespace pybind11::detail {

template <>
struct type_caster<soma::DType> {
  PYBIND11_TYPE_CASTER(soma::DType, const_name("soma.dtype"));
  bool load(handle src, bool) { return soma::python::dtype_from_object(src, value); }
  static handle cast(soma::DType d, return_value_policy, handle) {
    return soma::python::dtype_object(d).release();
  }
};

template <>
struct type_caster<soma::Scalar> {
  PYBIND11_TYPE_CASTER(soma::Scalar, const_name("Union[bool, int, float]"));
  bool load(handle src, bool convert) {
    PyObject* o = src.ptr();
    if (PyBool_Check(o)) {
      value = soma::Scalar(o == Py_True);
      return true;
    }
    if (PyLong_Check(o)) {
      int overflow = 0;
      long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
      if (overflow) return false;
      value = soma::Scalar(static_cast<int64_t>(v));
      return true;
    }
    if (PyFloat_Check(o)) {
      value = soma::Scalar(PyFloat_AS_DOUBLE(o));
      return true;
    }
    // NumPy scalars and other number types, never a tensor (whose __float__ would match).
    if (!convert || isinstance<soma::Tensor>(src)) return false;
    if (PyIndex_Check(o)) {
      long long v = PyLong_AsLongLong(o);
      if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return false;
      }
      value = soma::Scalar(static_cast<int64_t>(v));
      return true;
    }
    if (Py_TYPE(o)->tp_as_number && Py_TYPE(o)->tp_as_number->nb_float) {
      double v = PyFloat_AsDouble(o);
      if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return false;
      }
      value = soma::Scalar(v);
      return true;
    }
    return false;
  }
  static handle cast(const soma::Scalar& s, return_value_policy, handle) {
    if (s.is_boolean()) return PyBool_FromLong(s.to_bool());
    if (s.is_integral(false)) return PyLong_FromLongLong(s.to_long());
    return PyFloat_FromDouble(s.to_double());
  }
};

}  // namespace pybind11::detail
