// Creation functions (soma.tensor, zeros, ones, full, arange, ...), the random generator's seed,
// joins (cat, stack), where, einsum and the other free functions without a method form.
#include <pybind11/numpy.h>

#include <cstring>
#include <limits>
#include <string>

#include "soma_py.h"

namespace soma::python {
namespace {

enum class Kind { Bool = 0, Int = 1, Float = 2 };

/// A nested sequence of numbers, flattened.
struct Flat {
  Shape shape;
  std::vector<double> f;
  std::vector<int64_t> i;
  Kind kind = Kind::Bool;
};

bool is_seq(py::handle h) {
  return PyList_Check(h.ptr()) || PyTuple_Check(h.ptr());
}

void add_leaf(py::handle h, Flat& out) {
  PyObject* o = h.ptr();
  auto push = [&](double d, int64_t i, Kind k) {
    out.f.push_back(d);
    out.i.push_back(i);
    if (static_cast<int>(k) > static_cast<int>(out.kind)) out.kind = k;
  };
  if (PyBool_Check(o)) return push(o == Py_True, o == Py_True, Kind::Bool);
  if (PyLong_Check(o)) {
    int64_t v = h.cast<int64_t>();
    return push(static_cast<double>(v), v, Kind::Int);
  }
  if (PyFloat_Check(o)) {
    double d = PyFloat_AS_DOUBLE(o);
    return push(d, 0, Kind::Float);
  }
  if (py::isinstance<Tensor>(h)) {
    const Tensor& t = h.cast<const Tensor&>();
    SOMA_CHECK(t.numel() == 1,
               "tensor: only one-element tensors can be elements of the data "
               "(got shape ",
               t.shape(), ")");
    if (is_floating(t.dtype())) return push(t.item<double>(), 0, Kind::Float);
    int64_t v = t.item<int64_t>();
    return push(static_cast<double>(v), v, t.dtype() == kBool ? Kind::Bool : Kind::Int);
  }
  std::string type = py::str(py::type::of(h).attr("__name__"));
  if (type == "bool_") return push(h.cast<bool>(), h.cast<bool>(), Kind::Bool);  // numpy.bool_
  if (PyIndex_Check(o)) {
    int64_t v = h.cast<int64_t>();
    return push(static_cast<double>(v), v, Kind::Int);
  }
  if (Py_TYPE(o)->tp_as_number && Py_TYPE(o)->tp_as_number->nb_float)
    return push(h.cast<double>(), 0, Kind::Float);
  throw py::type_error("tensor: data must be numbers or nested sequences of numbers (got " + type +
                       ")");
}

void walk(py::handle h, size_t depth, Flat& out) {
  if (depth == out.shape.size()) {
    if (is_seq(h))
      throw Error(
          "tensor: the nested sequences are ragged (a sequence where a number was "
          "expected at depth " +
          std::to_string(depth) + ")");
    return add_leaf(h, out);
  }
  if (!is_seq(h))
    throw Error("tensor: the nested sequences are ragged (a number where a sequence of length " +
                std::to_string(out.shape[depth]) + " was expected at depth " +
                std::to_string(depth) + ")");
  py::sequence seq = py::reinterpret_borrow<py::sequence>(h);
  int64_t n = static_cast<int64_t>(py::len(seq));
  if (n != out.shape[depth])
    throw Error("tensor: the nested sequences are ragged (length " + std::to_string(n) + " where " +
                std::to_string(out.shape[depth]) + " was expected at depth " +
                std::to_string(depth) + ")");
  for (py::handle e : seq) walk(e, depth + 1, out);
}

DType dtype_of_kind(Kind k) {
  return k == Kind::Float ? kFloat32 : k == Kind::Int ? kInt64 : kBool;
}

template <typename T>
void fill_from(Tensor& t, const Flat& flat) {
  T* p = t.data<T>();
  size_t n = flat.f.size();
  for (size_t k = 0; k < n; ++k) {
    if constexpr (std::is_floating_point_v<T>)
      p[k] = static_cast<T>(flat.kind == Kind::Float ? flat.f[k] : static_cast<double>(flat.i[k]));
    else if constexpr (is_reduced_float_v<T>)  // through float, as c10 converts a double
      p[k] = T(static_cast<float>(flat.kind == Kind::Float ? flat.f[k]
                                                           : static_cast<double>(flat.i[k])));
    else if constexpr (std::is_same_v<T, bool>)
      p[k] = flat.kind == Kind::Float ? flat.f[k] != 0 : flat.i[k] != 0;
    else {
      if (flat.kind == Kind::Float) {
        SOMA_CHECK(std::isfinite(flat.f[k]) && std::abs(flat.f[k]) < 9.2e18, "tensor: ", flat.f[k],
                   " cannot be converted to ", dtype_of<T>());
        p[k] = static_cast<T>(static_cast<int64_t>(flat.f[k]));
      } else {
        // like torch.tensor: a value the narrow integer dtype cannot hold is an error
        if constexpr (sizeof(T) < 8)
          SOMA_CHECK(flat.i[k] >= std::numeric_limits<T>::min() &&
                         flat.i[k] <= std::numeric_limits<T>::max(),
                     "tensor: value ", flat.i[k], " cannot be converted to ", dtype_of<T>(),
                     " without overflow");
        p[k] = static_cast<T>(flat.i[k]);
      }
    }
  }
}

DType numpy_dtype(const py::array& a, const char* op) {
  char kind = a.dtype().kind();
  size_t size = a.itemsize();
  if (kind == 'f' && size == 4) return kFloat32;
  if (kind == 'f' && size == 8) return kFloat64;
  if (kind == 'i' && size == 8) return kInt64;
  if (kind == 'b' && size == 1) return kBool;
  if (kind == 'u' && size == 1) return kUInt8;
  if (kind == 'i' && size == 1) return kInt8;
  if (kind == 'i' && size == 4) return kInt32;
  if (kind == 'f' && size == 2) return kFloat16;
  throw Error(std::string(op) + ": NumPy dtype " + std::string(py::str(a.dtype())) +
              " is not supported (soma has float32, float64, float16, int64, int32, int8, bool "
              "and uint8)");
}

/// A copy of any array-like through NumPy: other integer and float widths convert to int64 and
/// float32/float64 like torch.tensor would keep them (int16 -> int64, uint16 -> int64); int8,
/// int32, uint8, float16, float32, float64 and bool keep their dtype.
Tensor tensor_from_array(py::handle data, std::optional<DType> dtype) {
  py::module_ np = py::module_::import("numpy");
  py::array a = np.attr("asarray")(data);
  char kind = a.dtype().kind();
  const char* target = nullptr;
  if (kind == 'u')
    target = a.itemsize() == 1 ? "uint8" : "int64";
  else if (kind == 'i')
    target = a.itemsize() == 1 ? "int8" : a.itemsize() == 4 ? "int32" : "int64";
  else if (kind == 'f')
    target = a.itemsize() == 8 ? "float64" : a.itemsize() == 2 ? "float16" : "float32";
  else if (kind == 'b')
    target = "bool";
  else
    throw Error("tensor: NumPy dtype " + std::string(py::str(a.dtype())) +
                " is not supported (soma has float32, float64, int64, bool and uint8)");
  a = np.attr("ascontiguousarray")(a, target);
  DType d = numpy_dtype(a, "tensor");
  Shape shape(a.shape(), a.shape() + a.ndim());
  Tensor t = empty(shape, d);
  if (t.numel() > 0) std::memcpy(const_cast<void*>(data_address(t)), a.data(), a.nbytes());
  return dtype && *dtype != d ? t.to(*dtype) : t;
}

Tensor finish(Tensor t, bool requires_grad) {
  if (requires_grad) t.requires_grad_(true);
  return t;
}

Tensor to_tensor_arg(py::handle h) {
  if (py::isinstance<Tensor>(h)) return h.cast<Tensor>();
  if (PyFloat_Check(h.ptr()) || PyLong_Check(h.ptr()) || PyBool_Check(h.ptr())) {
    Scalar s = h.cast<Scalar>();
    return full({}, s, s.type());
  }
  return tensor_from_data(h, std::nullopt);
}

}  // namespace

Tensor tensor_from_data(py::handle data, std::optional<DType> dtype) {
  if (py::isinstance<Tensor>(data)) {
    Tensor t = data.cast<Tensor>().detach();
    return dtype && *dtype != t.dtype() ? t.to(*dtype) : t.clone();
  }
  if (!is_seq(data) && !PyFloat_Check(data.ptr()) && !PyLong_Check(data.ptr()) &&
      (py::hasattr(data, "__array_interface__") || py::hasattr(data, "__array__")))
    return tensor_from_array(data, dtype);
  Flat flat;
  for (py::handle h = data; is_seq(h);) {
    int64_t n = static_cast<int64_t>(py::len(h));
    flat.shape.push_back(n);
    if (n == 0) break;
    h = h[py::int_(0)].ptr();
  }
  walk(data, 0, flat);
  if (flat.f.empty() && !flat.shape.empty()) flat.kind = Kind::Float;  // [] is float32
  DType d = dtype.value_or(dtype_of_kind(flat.kind));
  Tensor t = empty(flat.shape, d);
  switch (d) {
    case kFloat32:
      fill_from<float>(t, flat);
      break;
    case kFloat64:
      fill_from<double>(t, flat);
      break;
    case kInt64:
      fill_from<int64_t>(t, flat);
      break;
    case kBool:
      fill_from<bool>(t, flat);
      break;
    case kUInt8:
      fill_from<uint8_t>(t, flat);
      break;
    case kInt8:
      fill_from<int8_t>(t, flat);
      break;
    case kInt32:
      fill_from<int32_t>(t, flat);
      break;
    case kBFloat16:
      fill_from<BFloat16>(t, flat);
      break;
    case kFloat16:
      fill_from<Half>(t, flat);
      break;
  }
  return t;
}

void bind_creation(py::module_& m) {
  m.def(
      "tensor",
      [](py::handle data, std::optional<DType> dtype, bool requires_grad) {
        return finish(tensor_from_data(data, dtype), requires_grad);
      },
      "A new tensor copied from data: nested sequences of numbers, a NumPy array, a number or a "
      "tensor. The dtype is inferred like torch (bool, int64, else float32; a NumPy array keeps "
      "its own) unless given.",
      py::arg("data"), py::kw_only(), py::arg("dtype") = py::none(),
      py::arg("requires_grad") = false);

  using Fill = Tensor (*)(const Shape&, DType);
  for (auto [name, fn, doc] : {std::tuple{"zeros", Fill(&zeros), "A tensor of zeros."},
                               std::tuple{"ones", Fill(&ones), "A tensor of ones."},
                               std::tuple{"empty", Fill(&empty), "Uninitialised storage."},
                               std::tuple{"rand", Fill(&rand), "Uniform in [0, 1)."},
                               std::tuple{"randn", Fill(&randn), "Standard normal."}}) {
    m.def(
        name,
        [fn](py::args size, std::optional<DType> dtype, bool requires_grad) {
          Shape shape = shape_from_args(size, "zeros");
          int64_t n = 1;
          for (int64_t s : shape) n *= s;
          Tensor t;
          {
            HeavyScope g(n);
            t = fn(shape, dtype.value_or(kFloat32));
          }
          return finish(t, requires_grad);
        },
        doc, py::arg("dtype") = py::none(), py::arg("requires_grad") = false);
  }
  m.def(
      "full",
      [](const Shape& size, Scalar value, std::optional<DType> dtype, bool requires_grad) {
        DType d = dtype.value_or(value.is_floating_point() ? kFloat32 : value.type());
        return finish(full(size, value, d), requires_grad);
      },
      "A tensor filled with fill_value (dtype from the value when not given: bool, int64 or "
      "float32).",
      py::arg("size"), py::arg("fill_value"), py::kw_only(), py::arg("dtype") = py::none(),
      py::arg("requires_grad") = false);
  m.def(
      "arange",
      [](Scalar start, std::optional<Scalar> end, Scalar step, std::optional<DType> dtype,
         bool requires_grad) {
        if (!end) {
          end = start;
          start = Scalar(int64_t{0});
        }
        bool ints = start.is_integral(false) && end->is_integral(false) && step.is_integral(false);
        DType d = dtype.value_or(ints ? kInt64 : kFloat32);
        return finish(arange(start.to_double(), end->to_double(), step.to_double(), d),
                      requires_grad);
      },
      "start, start + step, ... while < end (int64 when all are ints, else float32); "
      "arange(end) starts at 0.",
      py::arg("start"), py::arg("end") = py::none(), py::arg("step") = 1, py::kw_only(),
      py::arg("dtype") = py::none(), py::arg("requires_grad") = false);
  m.def(
      "linspace",
      [](double start, double end, int64_t steps, std::optional<DType> dtype, bool requires_grad) {
        return finish(linspace(start, end, steps, dtype.value_or(kFloat32)), requires_grad);
      },
      "steps evenly spaced values from start to end inclusive.", py::arg("start"), py::arg("end"),
      py::arg("steps"), py::kw_only(), py::arg("dtype") = py::none(),
      py::arg("requires_grad") = false);
  m.def(
      "eye",
      [](int64_t n, std::optional<int64_t> mcols, std::optional<DType> dtype, bool requires_grad) {
        return finish(eye(n, mcols.value_or(n), dtype.value_or(kFloat32)), requires_grad);
      },
      "The n x m identity (m defaults to n).", py::arg("n"), py::arg("m") = py::none(),
      py::kw_only(), py::arg("dtype") = py::none(), py::arg("requires_grad") = false);
  m.def(
      "randint",
      [](py::args args, std::optional<DType> dtype) {
        int64_t low = 0, high = 0;
        py::object size;
        if (args.size() == 2) {
          high = args[0].cast<int64_t>();
          size = args[1];
        } else if (args.size() == 3) {
          low = args[0].cast<int64_t>();
          high = args[1].cast<int64_t>();
          size = args[2];
        } else {
          throw py::type_error("randint(low=0, high, size): expected 2 or 3 positional arguments");
        }
        return randint(low, high, size.cast<Shape>(), dtype.value_or(kInt64));
      },
      "Uniform integers in [low, high): randint(high, size) or randint(low, high, size).",
      py::arg("dtype") = py::none());
  using Like = Tensor (*)(const Tensor&);
  for (auto [name, fn, doc] :
       {std::tuple{"zeros_like", Like(&zeros_like), "Zeros shaped like input."},
        std::tuple{"ones_like", Like(&ones_like), "Ones shaped like input."},
        std::tuple{"empty_like", Like(&empty_like), "Uninitialised, shaped like input."},
        std::tuple{"rand_like", Like(&rand_like), "U[0, 1) shaped like input."},
        std::tuple{"randn_like", Like(&randn_like), "N(0, 1) shaped like input."}}) {
    m.def(
        name,
        [fn](const Tensor& t, std::optional<DType> dtype, bool requires_grad) {
          Tensor r = fn(t);
          if (dtype && *dtype != r.dtype()) r = r.to(*dtype);
          return finish(r, requires_grad);
        },
        doc, py::arg("input"), py::kw_only(), py::arg("dtype") = py::none(),
        py::arg("requires_grad") = false);
  }
  m.def(
      "full_like",
      [](const Tensor& t, Scalar v, std::optional<DType> dtype, bool rg) {
        return finish(full(t.shape(), v, dtype.value_or(t.dtype())), rg);
      },
      "fill_value shaped like input.", py::arg("input"), py::arg("fill_value"), py::kw_only(),
      py::arg("dtype") = py::none(), py::arg("requires_grad") = false);

  m.def(
      "manual_seed", [](uint64_t seed) { manual_seed(seed); },
      "Seeds the global generator (a 32-bit Mersenne Twister, like torch's CPU generator).",
      py::arg("seed"));
  m.def("get_rng_state", &get_rng_state, "The generator's full state (text).");
  m.def("set_rng_state", &set_rng_state, "Restores a state from get_rng_state().",
        py::arg("state"));
  m.def("set_num_threads", &set_num_threads, "Threads for soma's kernels and BLAS.", py::arg("n"));
  m.def("get_num_threads", &get_num_threads, "Threads for soma's kernels and BLAS.");
  m.def("cpu_isa", &cpu_isa,
        "The instruction-set level soma's kernels use on this CPU, after the SOMA_MAX_CPU_ISA "
        "cap: avx512_core_bf16, avx512_core_vnni, avx512_core, avx2 or sse41.");

  m.def(
      "cat", [](const std::vector<Tensor>& ts, int64_t dim) { return cat(ts, dim); },
      "Concatenates along dim; all other dims must match.", py::arg("tensors"), py::arg("dim") = 0);
  m.def(
      "concat", [](const std::vector<Tensor>& ts, int64_t dim) { return cat(ts, dim); },
      "cat(tensors, dim)", py::arg("tensors"), py::arg("dim") = 0);
  m.def(
      "stack", [](const std::vector<Tensor>& ts, int64_t dim) { return stack(ts, dim); },
      "Joins equally shaped tensors along a new dim.", py::arg("tensors"), py::arg("dim") = 0);
  m.def(
      "where",
      [](const Tensor& c, py::handle a, py::handle b) {
        return where(c, to_tensor_arg(a), to_tensor_arg(b));
      },
      "condition ? input : other, all three broadcast, input and other promoted.",
      py::arg("condition"), py::arg("input"), py::arg("other"));
  m.def(
      "einsum",
      [](const std::string& eq, py::args operands) {
        std::vector<Tensor> ts;
        if (operands.size() == 1 && !py::isinstance<Tensor>(operands[0]))
          ts = operands[0].cast<std::vector<Tensor>>();
        else
          ts = operands.cast<std::vector<Tensor>>();
        return einsum(eq, ts);
      },
      "Einstein summation, e.g. einsum(\"bij,bjk->bik\", a, b).", py::arg("equation"));
  m.def(
      "broadcast_shapes",
      [](py::args shapes) {
        Shape r;
        for (py::handle h : shapes) {
          Shape s = PyIndex_Check(h.ptr()) ? Shape{h.cast<int64_t>()} : h.cast<Shape>();
          r = broadcast_shapes(r, s);
        }
        return size_object(r);
      },
      "The broadcast shape of the given shapes.");
  m.def(
      "result_type",
      [](py::handle a, py::handle b) {
        bool ta = py::isinstance<Tensor>(a), tb = py::isinstance<Tensor>(b);
        if (ta && tb) return result_type(a.cast<Tensor>(), b.cast<Tensor>());
        if (ta) return result_type(a.cast<Tensor>(), b.cast<Scalar>());
        if (tb) return result_type(a.cast<Scalar>(), b.cast<Tensor>());
        throw py::type_error("result_type: at least one argument must be a Tensor");
      },
      "The dtype of a binary op's result (torch.result_type).", py::arg("tensor1"),
      py::arg("tensor2"));
  m.def("isclose", &isclose, "|a - b| <= atol + rtol * |b| elementwise (a bool tensor).",
        py::arg("input"), py::arg("other"), py::arg("rtol") = 1e-5, py::arg("atol") = 1e-8,
        py::arg("equal_nan") = false);
  m.def("allclose", &allclose, "Whether every element of isclose(...) holds.", py::arg("input"),
        py::arg("other"), py::arg("rtol") = 1e-5, py::arg("atol") = 1e-8,
        py::arg("equal_nan") = false);
  m.def("equal", &equal, "Same shape and the same values.", py::arg("input"), py::arg("other"));
  m.def(
      "bernoulli",
      [](const Tensor& p, std::optional<double> prob) {
        return prob ? bernoulli(p, *prob) : bernoulli(p);
      },
      "0/1 draws with the entries of input as probabilities (or p for each).", py::arg("input"),
      py::arg("p") = py::none());
  m.def("multinomial", &multinomial, "Draws num_samples category indices per row of weights.",
        py::arg("input"), py::arg("num_samples"), py::arg("replacement") = false);
  m.def(
      "numel", [](const Tensor& t) { return t.numel(); }, "The number of elements.",
      py::arg("input"));
  m.def(
      "is_tensor", [](py::handle h) { return py::isinstance<Tensor>(h); },
      "Whether obj is a soma.Tensor.", py::arg("obj"));
  m.def(
      "is_floating_point", [](const Tensor& t) { return is_floating(t.dtype()); },
      "Whether the dtype is floating point (float32, float64, bfloat16, float16).",
      py::arg("input"));
}

}  // namespace soma::python
