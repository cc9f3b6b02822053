// soma.dtype (soma.float32, ...), soma.Size and soma.Error.
#include <array>
#include <string>

#include "soma_py.h"

namespace soma::python {
namespace {

/// The Python-side dtype: one immutable instance per soma::DType.
struct PyDType {
  DType dtype;
};

// soma::kAllDTypes is in enum order, so g_dtype_objects[static_cast<size_t>(d)] is d's object.
constexpr size_t kNumDTypes = std::size(soma::kAllDTypes);

// Singletons, created by bind_dtype and alive until the interpreter exits (leaked on purpose:
// they are module attributes, and freeing them from a static destructor after Py_Finalize crashes).
std::array<PyObject*, kNumDTypes> g_dtype_objects{};
PyObject* g_size_type = nullptr;

}  // namespace

py::object dtype_object(DType dtype) {
  return py::reinterpret_borrow<py::object>(g_dtype_objects[static_cast<size_t>(dtype)]);
}

bool dtype_from_object(py::handle h, DType& out) {
  PyObject* o = h.ptr();
  for (size_t i = 0; i < kNumDTypes; ++i)
    if (o == g_dtype_objects[i]) {
      out = kAllDTypes[i];
      return true;
    }
  // torch accepts Python's types: dtype=float is float64, int is int64, bool is bool.
  if (o == reinterpret_cast<PyObject*>(&PyFloat_Type)) {
    out = kFloat64;
    return true;
  }
  if (o == reinterpret_cast<PyObject*>(&PyLong_Type)) {
    out = kInt64;
    return true;
  }
  if (o == reinterpret_cast<PyObject*>(&PyBool_Type)) {
    out = kBool;
    return true;
  }
  return false;
}

py::object size_object(const Shape& shape) {
  py::tuple t(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) t[i] = py::int_(shape[i]);
  if (!g_size_type) return t;
  return py::reinterpret_borrow<py::object>(g_size_type)(t);
}

Shape shape_from_args(const py::args& args, const char* op) {
  auto as_int = [op](py::handle h) -> int64_t {
    if (!PyIndex_Check(h.ptr()) || PyBool_Check(h.ptr()))
      throw py::type_error(std::string(op) + ": size must be ints or one sequence of ints, got " +
                           std::string(py::str(py::type::of(h).attr("__name__"))));
    return h.cast<int64_t>();
  };
  Shape shape;
  if (args.size() == 1 && !PyIndex_Check(args[0].ptr())) {
    py::handle seq = args[0];
    if (!py::isinstance<py::sequence>(seq))
      throw py::type_error(std::string(op) + ": size must be ints or one sequence of ints");
    for (py::handle h : seq) shape.push_back(as_int(h));
    return shape;
  }
  for (py::handle h : args) shape.push_back(as_int(h));
  return shape;
}

void bind_dtype(py::module_& m) {
  py::class_<PyDType> cls(m, "dtype",
                          "An element type: soma.float32 (the default), float64, int64, bool, "
                          "uint8, int8, int32, bfloat16, float16.");
  cls.def("__repr__", [](const PyDType& d) { return "soma." + std::string(dtype_name(d.dtype)); })
      .def_property_readonly(
          "is_floating_point", [](const PyDType& d) { return is_floating(d.dtype); },
          "True for float32, float64, bfloat16 and float16.")
      .def_property_readonly(
          "itemsize", [](const PyDType& d) { return element_size(d.dtype); }, "Bytes per element.")
      .def("__reduce__", [](const PyDType& d) {
        // A string: pickle stores the global soma.<name>, so unpickling gives the singleton.
        return std::string(dtype_name(d.dtype));
      });
  for (size_t i = 0; i < kNumDTypes; ++i) {
    py::object o = py::cast(PyDType{kAllDTypes[i]});
    g_dtype_objects[i] = o.inc_ref().ptr();
    m.attr(std::string(dtype_name(kAllDTypes[i])).c_str()) = o;
  }
  m.def("promote_types", &promote_types,
        "The smallest dtype that holds values of both a and b (torch.promote_types).",
        py::arg("type1"), py::arg("type2"));
  m.def("can_cast", &can_cast,
        "Whether a result of dtype `from_` may be written into a tensor of dtype `to` by an "
        "in-place op (torch.can_cast).",
        py::arg("from_"), py::arg("to"));

  // soma.Size is defined in Python (python/soma/__init__.py), which registers it here.
  m.def("_register_size_type", [](py::object type) {
    Py_XDECREF(g_size_type);
    g_size_type = type.inc_ref().ptr();
  });

  // soma.Error: every soma::Error, with soma's message.
  static py::exception<Error> error(m, "Error", PyExc_RuntimeError);
  error.attr("__doc__") =
      "Raised for every error soma reports (bad shapes, dtypes, values, files); a "
      "RuntimeError carrying soma's message, which names the op.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      error(e.what());
    }
  });
}

}  // namespace soma::python
