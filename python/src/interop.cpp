// Zero-copy interop: soma.from_numpy / Tensor.numpy() (over soma::from_blob and a capsule that
// owns a tensor handle), DLPack both ways (Debian libdlpack-dev's dlpack.h, DLPack 0.6, what
// torch 1.13 speaks), and pickling.
#include <dlpack/dlpack.h>
#include <pybind11/numpy.h>

#include <cstring>
#include <string>

#include "soma_py.h"

namespace soma::python {
namespace {

DType dtype_of_numpy(const py::array& a) {
  char kind = a.dtype().kind();
  auto size = a.itemsize();
  if (kind == 'f' && size == 4) return kFloat32;
  if (kind == 'f' && size == 8) return kFloat64;
  if (kind == 'i' && size == 8) return kInt64;
  if (kind == 'b' && size == 1) return kBool;
  if (kind == 'u' && size == 1) return kUInt8;
  if (kind == 'i' && size == 1) return kInt8;
  if (kind == 'i' && size == 4) return kInt32;
  if (kind == 'f' && size == 2) return kFloat16;
  throw Error("from_numpy: NumPy dtype " + std::string(py::str(a.dtype())) +
              " is not supported (soma has float32, float64, float16, int64, int32, int8, bool "
              "and uint8; convert with a.astype(...) first)");
}

/// Drops a Python reference from whatever thread the last tensor over the memory dies on.
void release_owner(PyObject* owner) {
  if (!Py_IsInitialized()) return;  // the interpreter is gone: nothing left to free
  py::gil_scoped_acquire g;
  Py_DECREF(owner);
}

Tensor from_numpy(py::handle obj) {
  py::module_ np = py::module_::import("numpy");
  if (!py::isinstance(obj, np.attr("ndarray")))
    throw py::type_error("from_numpy: expected a numpy.ndarray (got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))) + ")");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  DType d = dtype_of_numpy(a);
  const auto item = static_cast<int64_t>(a.itemsize());
  Shape shape(a.shape(), a.shape() + a.ndim());
  Shape strides(a.ndim());
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    int64_t s = a.strides()[i];
    SOMA_CHECK(s >= 0 || shape[i] <= 1, "from_numpy: the array has a negative stride (", s,
               " bytes in dim ", i, ", shape ", shape,
               "); soma cannot view it: copy it first (numpy.ascontiguousarray(a) or "
               "soma.tensor(a))");
    SOMA_CHECK(s % item == 0, "from_numpy: stride ", s, " bytes in dim ", i,
               " is not a multiple of the element size ", item);
    strides[i] = s < 0 ? 0 : s / item;
  }
  if (!a.writeable())
    PyErr_WarnEx(PyExc_UserWarning,
                 "from_numpy: the array is not writeable; soma shares its memory anyway, and "
                 "writing to the tensor is undefined (copy the array to protect it)",
                 1);
  PyObject* owner = a.ptr();
  Py_INCREF(owner);
  try {
    return from_blob(
        const_cast<void*>(a.data()), shape, strides, [owner](void*) { release_owner(owner); }, d);
  } catch (...) {
    Py_DECREF(owner);  // from_blob did not take ownership
    throw;
  }
}

const char* numpy_name(DType d) {
  switch (d) {
    case kFloat32:
      return "float32";
    case kFloat64:
      return "float64";
    case kInt64:
      return "int64";
    case kBool:
      return "bool";
    case kUInt8:
      return "uint8";
    case kInt8:
      return "int8";
    case kInt32:
      return "int32";
    case kFloat16:
      return "float16";
    case kBFloat16:
      break;
  }
  throw Error(
      "numpy: NumPy has no bfloat16; convert first with .to(soma.float32) (exact) and call "
      "numpy() on that");
}

py::array to_numpy(const Tensor& t) {
  SOMA_CHECK(!t.requires_grad(),
             "numpy: can't call numpy() on a tensor that requires grad; use "
             "tensor.detach().numpy()");
  const char* np_name = numpy_name(t.dtype());  // throws for bfloat16
  const auto item = static_cast<py::ssize_t>(element_size(t.dtype()));
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
  std::vector<py::ssize_t> strides(t.strides().begin(), t.strides().end());
  for (auto& s : strides) s *= item;
  // The array's base owns a handle on the tensor, so the storage lives as long as the array.
  // NumPy may write it behind soma's back while the array lives.
  auto* handle = new Tensor(t.detach());
  py::capsule base(handle, [](void* p) {
    auto* h = static_cast<Tensor*>(p);
    try {
      end_external_share(*h);
    } catch (...) {  // never from a matched share; a destructor must not throw
    }
    delete h;
  });
  begin_external_share(*handle);  // after the capsule, which ends it
  return py::array(py::dtype(np_name), std::move(shape), std::move(strides), data_address(t), base);
}

// ---- DLPack ---------------------------------------------------------------------------------

struct DLPackCtx {
  Tensor tensor;
  std::vector<int64_t> shape, strides;
};

DLDataType dl_dtype(DType d) {
  switch (d) {
    case kFloat32:
      return {kDLFloat, 32, 1};
    case kFloat64:
      return {kDLFloat, 64, 1};
    case kInt64:
      return {kDLInt, 64, 1};
    case kUInt8:
      return {kDLUInt, 8, 1};
    case kInt8:
      return {kDLInt, 8, 1};
    case kInt32:
      return {kDLInt, 32, 1};
    case kBFloat16:
      return {kDLBfloat, 16, 1};
    case kFloat16:
      return {kDLFloat, 16, 1};
    case kBool:
      break;
  }
  throw Error(
      "__dlpack__: bool tensors cannot be exported (DLPack 0.6 has no bool type; "
      "convert with .to(soma.uint8) first)");
}

DType soma_dtype(DLDataType t) {
  SOMA_CHECK(t.lanes == 1, "from_dlpack: vector types (lanes ", int(t.lanes),
             ") are not supported");
  if (t.code == kDLFloat && t.bits == 32) return kFloat32;
  if (t.code == kDLFloat && t.bits == 64) return kFloat64;
  if (t.code == kDLInt && t.bits == 64) return kInt64;
  if (t.code == kDLUInt && t.bits == 8) return kUInt8;
  if (t.code == kDLInt && t.bits == 8) return kInt8;
  if (t.code == kDLInt && t.bits == 32) return kInt32;
  if (t.code == kDLFloat && t.bits == 16) return kFloat16;
  if (t.code == kDLBfloat && t.bits == 16) return kBFloat16;
  throw Error("from_dlpack: DLPack type (code " + std::to_string(t.code) + ", " +
              std::to_string(t.bits) +
              " bits) is not supported (soma has float32, float64, float16, bfloat16, "
              "int64, int32, int8 and uint8)");
}

void dlpack_capsule_destructor(PyObject* capsule) {
  // Still named "dltensor": nobody consumed it, so the producer's deleter is ours to call.
  if (!PyCapsule_IsValid(capsule, "dltensor")) return;
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
  if (m && m->deleter) m->deleter(m);
}

py::capsule to_dlpack(const Tensor& t) {
  SOMA_CHECK(!t.requires_grad(),
             "__dlpack__: can't export a tensor that requires grad; use "
             "tensor.detach()");
  DLDataType type = dl_dtype(t.dtype());
  auto* ctx = new DLPackCtx{t.detach(), t.shape(), t.strides()};
  begin_external_share(ctx->tensor);  // the consumer may write it behind soma's back
  auto* m = new DLManagedTensor{};
  m->dl_tensor.data = const_cast<void*>(data_address(t));
  m->dl_tensor.device = {kDLCPU, 0};
  m->dl_tensor.ndim = static_cast<int32_t>(t.dim());
  m->dl_tensor.dtype = type;
  m->dl_tensor.shape = ctx->shape.data();
  m->dl_tensor.strides = ctx->strides.data();
  m->dl_tensor.byte_offset = 0;
  m->manager_ctx = ctx;
  m->deleter = [](DLManagedTensor* self) {
    auto* c = static_cast<DLPackCtx*>(self->manager_ctx);
    try {
      end_external_share(c->tensor);
    } catch (...) {  // never from a matched share; a deleter must not throw
    }
    delete c;
    delete self;
  };
  PyObject* c = PyCapsule_New(m, "dltensor", dlpack_capsule_destructor);
  if (!c) {
    m->deleter(m);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(c);
}

Tensor from_dlpack(py::handle obj) {
  py::object capsule = py::hasattr(obj, "__dlpack__") ? obj.attr("__dlpack__")()
                                                      : py::reinterpret_borrow<py::object>(obj);
  PyObject* c = capsule.ptr();
  if (!PyCapsule_IsValid(c, "dltensor"))
    throw py::type_error(
        "from_dlpack: expected an object with __dlpack__ or an unconsumed "
        "\"dltensor\" capsule");
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(c, "dltensor"));
  const DLTensor& dl = m->dl_tensor;
  SOMA_CHECK(dl.device.device_type == kDLCPU,
             "from_dlpack: only CPU tensors can be imported "
             "(device type ",
             int(dl.device.device_type), ")");
  DType d = soma_dtype(dl.dtype);
  Shape shape(dl.shape, dl.shape + dl.ndim);
  Shape strides(dl.ndim);
  if (dl.strides) {
    strides.assign(dl.strides, dl.strides + dl.ndim);
  } else {
    int64_t s = 1;
    for (int i = dl.ndim - 1; i >= 0; --i) {
      strides[i] = s;
      s *= shape[i];
    }
  }
  void* data = static_cast<char*>(dl.data) + dl.byte_offset;
  Tensor t = from_blob(
      data, shape, strides,
      [m](void*) {
        if (!m->deleter) return;
        if (Py_IsInitialized()) {
          py::gil_scoped_acquire g;
          m->deleter(m);
        } else {
          m->deleter(m);
        }
      },
      d);
  PyCapsule_SetName(c, "used_dltensor");  // consumed: the tensor's deleter frees it now
  return t;
}

}  // namespace

void bind_interop(py::module_& m) {
  m.def("from_numpy", &from_numpy,
        "A tensor sharing the memory of a NumPy array (float32, float64, float16, int64, int32, "
        "int8, bool, uint8): a "
        "write on one side shows on the other, and each keeps the memory alive. Non-contiguous "
        "arrays (positive or zero strides) are viewed in place; negative strides (a[::-1]) are "
        "an error, as in torch: copy them with soma.tensor(a).",
        py::arg("ndarray"));
  m.def("from_dlpack", &from_dlpack,
        "A tensor sharing the memory of a DLPack producer (an object with __dlpack__, such as a "
        "torch or NumPy array, or a \"dltensor\" capsule); CPU only.",
        py::arg("ext_tensor"));
  auto cls = tensor_class(m);
  cls.def("numpy", &to_numpy,
          "A NumPy array sharing this tensor's memory (the array keeps the storage alive). "
          "Refused for tensors that require grad (use detach()).")
      .def(
          "__dlpack__",
          [](const Tensor& t, py::object stream) {
            if (!stream.is_none())
              throw py::type_error("__dlpack__: stream must be None for a CPU tensor");
            return to_dlpack(t);
          },
          py::arg("stream") = py::none(),
          "A DLPack capsule sharing this tensor's memory (DLPack 0.6; CPU).")
      .def(
          "__dlpack_device__", [](const Tensor&) { return py::make_tuple(int(kDLCPU), 0); },
          "(kDLCPU, 0)")
      .def(py::pickle(
          [](const Tensor& t) {
            Tensor c = t.detach().contiguous();
            auto bytes = py::bytes(static_cast<const char*>(data_address(c)),
                                   static_cast<size_t>(c.numel()) * element_size(c.dtype()));
            return py::make_tuple(std::string(dtype_name(t.dtype())), py::cast(t.shape()), bytes,
                                  t.requires_grad());
          },
          [](py::tuple s) {
            if (s.size() != 4) throw Error("Tensor.__setstate__: malformed state");
            DType d;
            if (!dtype_from_object(py::module_::import("soma").attr(s[0]), d))
              throw Error("Tensor.__setstate__: unknown dtype");
            Tensor t = empty(s[1].cast<Shape>(), d);
            std::string bytes = s[2].cast<std::string>();
            SOMA_CHECK(bytes.size() == static_cast<size_t>(t.numel()) * element_size(d),
                       "Tensor.__setstate__: ", bytes.size(), " bytes for shape ", t.shape());
            if (!bytes.empty())
              std::memcpy(const_cast<void*>(data_address(t)), bytes.data(), bytes.size());
            if (s[3].cast<bool>()) t.requires_grad_(true);
            return t;
          }));
}

}  // namespace soma::python
