// soma.nn from Python: nn::Module (subclassable in Python with torch's idioms), the layers,
// the losses, Sequential / ModuleList, and soma.nn.functional.
//
// Subclassing. soma.nn.Module is nn::Module with a trampoline (PyModule): a Python subclass's
// `forward` is called by C++ (Sequential, fit, hooks) through the GIL. Attribute assignment
// registers: `self.w = soma.nn.Parameter(t)` a parameter, `self.fc = soma.nn.Linear(2, 3)` a
// child module, and a tensor assigned to a registered buffer's name replaces it; the Python
// object stays in the instance's __dict__ as well, so a Python-defined child lives as long as its
// parent (C++ holds the same object through its shared_ptr).
//
// Layers. Each torch.nn layer class is bound with its C++ type (so `model[0]` is a soma.nn.Conv2d)
// and built from torch's arguments (positional in torch's order, or by name) by the layer
// registry the CLI's JSON layer lists use (tools/soma/layers.cpp): one table of argument names,
// defaults and checks for both.
#include <sstream>

#include "layers.h"  // tools/soma: the layer registry (torch's class and argument names)
#include "soma_py.h"

namespace soma::python {
namespace {

using json = nlohmann::json;
namespace F = soma::nn::functional;

Tensor opt(const std::optional<Tensor>& t) {
  return t ? *t : Tensor();
}

nn::Reduction reduction_of(const std::string& r, const char* op) {
  if (r == "mean") return nn::Reduction::Mean;
  if (r == "sum") return nn::Reduction::Sum;
  if (r == "none") return nn::Reduction::None;
  detail::fail(op, ": reduction must be 'mean', 'sum' or 'none', got '", r, "'");
}

// stride=2 or stride=(2, 1): an int, or a sequence of ints.
std::vector<int64_t> int_list(py::handle h, const char* op, const char* name) {
  if (py::isinstance<py::int_>(h) && !py::isinstance<py::bool_>(h)) return {h.cast<int64_t>()};
  std::vector<int64_t> out;
  if (py::isinstance<py::sequence>(h) && !py::isinstance<py::str>(h)) {
    for (py::handle e : h) {
      if (!py::isinstance<py::int_>(e) || py::isinstance<py::bool_>(e))
        detail::fail(op, ": ", name, " must be an int or a sequence of ints, got ",
                     std::string(py::str(h)));
      out.push_back(e.cast<int64_t>());
    }
    return out;
  }
  detail::fail(op, ": ", name, " must be an int or a sequence of ints, got ",
               std::string(py::str(h)));
}

// ---- Python values as the JSON of a layer's arguments ----------------------------------------
json to_json(py::handle v, const std::string& where) {
  if (v.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(v)) return v.cast<bool>();
  if (py::isinstance<py::int_>(v)) return v.cast<int64_t>();
  if (py::isinstance<py::float_>(v)) return v.cast<double>();
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  if (py::isinstance<py::tuple>(v) || py::isinstance<py::list>(v)) {
    json a = json::array();
    for (py::handle e : v) a.push_back(to_json(e, where));
    return a;
  }
  if (py::hasattr(v, "__index__")) return v.attr("__index__")().cast<int64_t>();
  if (py::hasattr(v, "__float__") && !py::isinstance<Tensor>(v))
    return v.attr("__float__")().cast<double>();
  detail::fail(where, ": an argument of type ", std::string(py::str(v.get_type().attr("__name__"))),
               " (expected a number, a bool, a string or a sequence of ints)");
}

// torch's positional argument order per layer type (the registry reads them by name).
const std::map<std::string, std::vector<std::string>>& positional_names() {
  static const std::map<std::string, std::vector<std::string>> names = {
      {"Linear", {"in_features", "out_features", "bias"}},
      {"Identity", {}},
      {"Conv1d",
       {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
        "bias", "padding_mode"}},
      {"Conv2d",
       {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
        "bias", "padding_mode"}},
      {"ConvTranspose1d",
       {"in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
        "groups", "bias", "dilation", "padding_mode"}},
      {"ConvTranspose2d",
       {"in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
        "groups", "bias", "dilation", "padding_mode"}},
      {"MaxPool2d",
       {"kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"}},
      {"AvgPool2d",
       {"kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"}},
      {"AdaptiveAvgPool2d", {"output_size"}},
      {"AdaptiveMaxPool2d", {"output_size", "return_indices"}},
      {"Dropout", {"p", "inplace"}},
      {"Dropout2d", {"p", "inplace"}},
      {"Unflatten", {"dim", "unflattened_size"}},
      {"Upsample", {"size", "scale_factor", "mode", "align_corners"}},
      {"BatchNorm1d", {"num_features", "eps", "momentum", "affine", "track_running_stats"}},
      {"BatchNorm2d", {"num_features", "eps", "momentum", "affine", "track_running_stats"}},
      {"LayerNorm", {"normalized_shape", "eps", "elementwise_affine"}},
      {"GroupNorm", {"num_groups", "num_channels", "eps", "affine"}},
      {"Flatten", {"start_dim", "end_dim"}},
      {"ReLU", {"inplace"}},
      {"Sigmoid", {}},
      {"Tanh", {}},
      {"LeakyReLU", {"negative_slope", "inplace"}},
      {"GELU", {"approximate"}},
      {"ELU", {"alpha", "inplace"}},
      {"SELU", {"inplace"}},
      {"CELU", {"alpha", "inplace"}},
      {"SiLU", {"inplace"}},
      {"Mish", {"inplace"}},
      {"Softplus", {"beta", "threshold"}},
      {"Hardtanh", {"min_val", "max_val", "inplace"}},
      {"Hardsigmoid", {"inplace"}},
      {"Hardswish", {"inplace"}},
      {"LogSigmoid", {}},
      {"PReLU", {"num_parameters", "init"}},
      {"GLU", {"dim"}},
      {"Softmax", {"dim"}},
      {"LogSoftmax", {"dim"}},
      {"Softmin", {"dim"}},
  };
  return names;
}

// soma.nn.<type>(*args, **kwargs): torch's arguments -> the registry's JSON -> the module.
std::shared_ptr<nn::Module> make_layer(const std::string& type, const py::args& args,
                                       const py::kwargs& kwargs) {
  const std::string where = "nn." + type;
  const auto& order = positional_names().at(type);
  SOMA_CHECK(args.size() <= order.size(), where, ": takes at most ", order.size(),
             " positional arguments, got ", args.size());
  json spec = json::object();
  spec["type"] = type;
  for (size_t i = 0; i < args.size(); ++i) spec[order[i]] = to_json(args[i], where);
  for (const auto& [k, v] : kwargs) {
    const std::string key = py::str(k);
    SOMA_CHECK(!spec.contains(key) || key == "type", where, ": got '", key,
               "' both by position and by name");
    spec[key] = to_json(v, where);
  }
  // torch's momentum=None is a cumulative moving average, not the default 0.1.
  SOMA_CHECK(
      !(type.starts_with("BatchNorm") && spec.contains("momentum") && spec["momentum"].is_null()),
      where,
      ": momentum=None (a cumulative moving average) is not supported; give a "
      "number (default 0.1)");
  const auto& registry = cli::layer_registry();
  cli::LayerArgs a(spec, 0, type, where);
  std::shared_ptr<nn::Module> layer;
  try {
    layer = registry.at(type)(a);
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.starts_with(where)) throw;
    a.finish();
    detail::fail(where, ": ", msg);
  }
  a.finish();
  return layer;
}

// ---- the trampoline ---------------------------------------------------------------------------
class PyModule : public nn::Module {
 public:
  using nn::Module::Module;
  Tensor forward(const Tensor& input) override {
    PYBIND11_OVERRIDE_NAME(Tensor, nn::Module, "forward", forward, input);
  }
  std::string describe() const override {
    py::gil_scoped_acquire g;
    py::object self =
        py::cast(static_cast<const nn::Module*>(this), py::return_value_policy::reference);
    std::string extra;
    if (py::hasattr(self, "extra_repr")) extra = py::str(self.attr("extra_repr")());
    return std::string(py::str(self.get_type().attr("__name__"))) + "(" + extra + ")";
  }
};

/// What Module.register_forward_hook / register_forward_pre_hook return.
struct ModuleHookHandle {
  std::weak_ptr<nn::Module> module;
  unsigned id;
  bool removed = false;
};

// The Python object of a module C++ hands back (the existing one when it has one).
py::object module_object(nn::Module& m) {
  return py::cast(&m, py::return_value_policy::reference);
}

// The C++ module of a Python object; AttributeError when a subclass's __init__ touches `self`
// before calling Module.__init__ (there is no C++ object yet), as torch raises.
nn::Module& module_of(py::handle self) {
  auto* inst = reinterpret_cast<py::detail::instance*>(self.ptr());
  auto vh = inst->get_value_and_holder();  // the instance's own (most derived) C++ type
  if (!vh || !vh.holder_constructed() || vh.value_ptr() == nullptr)
    throw py::attribute_error(
        "cannot use a soma.nn.Module's attributes before "
        "Module.__init__() is called (call super().__init__() first)");
  return self.cast<nn::Module&>();
}

// Removes `name` from the module's parameters, buffers or children (Python reassignment).
bool unregister(nn::Module& m, const std::string& name) {
  return m.unregister(name);
}

// A direct parameter, buffer or child by name (Module.__getattr__).
py::object lookup(nn::Module& m, const std::string& name) {
  for (const auto& [n, t] : m.named_parameters(false))
    if (n == name) return wrap(t);
  for (const auto& [n, t] : m.named_buffers(false))
    if (n == name) return wrap(t);
  for (const auto& [n, c] : m.named_children())
    if (n == name) return py::cast(c);
  return py::none();
}

bool has_name(nn::Module& m, const std::string& name) {
  for (const auto& [n, t] : m.named_parameters(false))
    if (n == name) return true;
  for (const auto& [n, t] : m.named_buffers(false))
    if (n == name) return true;
  for (const auto& [n, c] : m.named_children())
    if (n == name) return true;
  return false;
}

bool is_parameter(nn::Module& m, const std::string& name) {
  for (const auto& [n, t] : m.named_parameters(false))
    if (n == name) return true;
  return false;
}

bool is_buffer(nn::Module& m, const std::string& name) {
  for (const auto& [n, t] : m.named_buffers(false))
    if (n == name) return true;
  return false;
}

Tensor call_module(nn::Module& m, const Tensor& x) {
  HeavyScope g(x.numel() * 64);
  return m(x);
}

template <typename M>
using Class = py::class_<M, nn::Module, std::shared_ptr<M>>;

// One torch.nn layer class: the C++ type, built by the registry from torch's arguments.
template <typename M>
Class<M> layer(py::module_& nn_mod, const char* name, const char* doc) {
  Class<M> c(nn_mod, name, doc);
  const std::string type = name;
  c.def(
      py::init([type](const py::args& args, const py::kwargs& kwargs) {
        auto m = std::dynamic_pointer_cast<M>(make_layer(type, args, kwargs));
        SOMA_CHECK(m != nullptr, "nn.", type, ": the registry built another type");
        return m;
      }),
      (std::string("torch.nn.") + name + "'s arguments (positional in torch's order, or by name).")
          .c_str());
  return c;
}

nn::StateDict state_from_dict(const py::dict& d) {
  nn::StateDict s;
  for (const auto& [k, v] : d) s[py::str(k)] = v.cast<Tensor>();
  return s;
}

}  // namespace

void bind_nn(py::module_& m) {
  py::module_ nn_mod = m.def_submodule("nn", "soma.nn: modules, layers and losses (torch.nn).");

  py::class_<ModuleHookHandle>(nn_mod, "ModuleHookHandle",
                               "Returned by register_forward_hook: remove() unregisters it.")
      .def("remove", [](ModuleHookHandle& h) {
        if (h.removed) return;
        if (auto mod = h.module.lock()) mod->remove_hook(h.id);
        h.removed = true;
      });

  py::class_<nn::Module, PyModule, std::shared_ptr<nn::Module>> mod(
      nn_mod, "Module", py::dynamic_attr(),
      "The base of every layer and network (torch.nn.Module). Subclass it in Python:\n\n"
      "    class MyDenseLayer(soma.nn.Module):\n"
      "        def __init__(self, n_in, n_out):\n"
      "            super().__init__()\n"
      "            self.w = soma.nn.Parameter(soma.randn(n_in, n_out))\n"
      "            self.b = soma.nn.Parameter(soma.randn(1, n_out))\n"
      "        def forward(self, x):\n"
      "            return soma.relu(x @ self.w + self.b)\n");
  mod.def(py::init<>())
      .def("forward", &nn::Module::forward, py::arg("input"),
           "The computation (override it in a subclass).")
      .def("__call__", &call_module, py::arg("input"),
           "Runs the forward pre-hooks, forward(), then the forward hooks.")
      .def("__call__",
           [](py::object self, const py::args& args, const py::kwargs& kwargs) {
             return self.attr("forward")(*args, **kwargs);
           })
      .def(
          "register_parameter",
          [](nn::Module& self, const std::string& name, std::optional<Tensor> t,
             bool requires_grad) {
            unregister(self, name);
            if (t) self.register_parameter(name, *t, requires_grad);
          },
          py::arg("name"), py::arg("param"), py::arg("requires_grad") = true,
          "Registers a parameter (a tensor that requires grad) under `name`.")
      .def(
          "register_buffer",
          [](nn::Module& self, const std::string& name, std::optional<Tensor> t) {
            unregister(self, name);
            if (t) self.register_buffer(name, *t);
          },
          py::arg("name"), py::arg("tensor"),
          "Registers state that state_dict() saves but parameters() does not return.")
      .def(
          "register_module",
          [](py::object self, const std::string& name, py::object child) {
            nn::Module& me = self.cast<nn::Module&>();
            unregister(me, name);
            me.register_module(name, child.cast<std::shared_ptr<nn::Module>>());
            py::dict d = self.attr("__dict__");
            d[py::str(name)] = child;  // keeps a Python-defined child alive
          },
          py::arg("name"), py::arg("module"), "Registers a child module under `name`.")
      .def(
          "add_module",
          [](py::object self, const std::string& name, py::object child) {
            self.attr("register_module")(name, child);
          },
          py::arg("name"), py::arg("module"), "The same as register_module.")
      .def("__setattr__",
           [](py::object self, py::str name_obj, py::object value) {
             nn::Module& me = module_of(self);
             const std::string name = name_obj;
             // A C++ layer's forward reads its C++ members (Linear::weight), not the registry:
             // replacing the registered tensor would leave forward on the old one, silently.
             SOMA_CHECK(dynamic_cast<PyModule*>(&me) != nullptr || !has_name(me, name), "nn.",
                        std::string(py::str(self.get_type().attr("__name__"))), ": '", name,
                        "' belongs to the C++ layer and cannot be replaced; change its values in "
                        "place (with soma.no_grad(): layer.",
                        name,
                        ".copy_(t)) or use "
                        "load_state_dict");
             py::module_ soma_nn = py::module_::import("soma.nn");
             if (py::isinstance(value, soma_nn.attr("Parameter"))) {
               unregister(me, name);
               me.register_parameter(name, value.cast<Tensor>(),
                                     value.attr("requires_grad").cast<bool>());
             } else if (py::isinstance<nn::Module>(value)) {
               unregister(me, name);
               me.register_module(name, value.cast<std::shared_ptr<nn::Module>>());
             } else if (py::isinstance<Tensor>(value) && is_parameter(me, name)) {
               throw py::type_error("cannot assign a soma.Tensor as parameter '" + name +
                                    "' (soma.nn.Parameter or None expected)");
             } else if (py::isinstance<Tensor>(value) && is_buffer(me, name)) {
               unregister(me, name);
               me.register_buffer(name, value.cast<Tensor>());
             } else if (value.is_none() && has_name(me, name)) {
               unregister(me, name);
             } else if (has_name(me, name)) {
               unregister(me, name);  // a plain attribute now shadows what was registered
             }
             if (PyObject_GenericSetAttr(self.ptr(), name_obj.ptr(), value.ptr()) != 0)
               throw py::error_already_set();
           })
      .def("__delattr__",
           [](py::object self, py::str name_obj) {
             unregister(module_of(self), std::string(name_obj));
             if (PyObject_GenericSetAttr(self.ptr(), name_obj.ptr(), nullptr) != 0)
               throw py::error_already_set();
           })
      .def("__getattr__",
           [](py::object self_obj, const std::string& name) {
             nn::Module& self = module_of(self_obj);
             py::object r = lookup(self, name);
             if (r.is_none() && !has_name(self, name))
               throw py::attribute_error("'" + self.describe() + "' object has no attribute '" +
                                         name + "'");
             return r;
           })
      .def("parameters", &nn::Module::parameters, py::arg("recurse") = true,
           "The parameters of this module and (recurse) its descendants, in registration order.")
      .def(
          "named_parameters",
          [](const nn::Module& self, const std::string& prefix, bool recurse) {
            std::vector<std::pair<std::string, Tensor>> out;
            for (auto& [n, t] : self.named_parameters(recurse))
              out.emplace_back(prefix.empty() ? n : prefix + "." + n, t);
            return out;
          },
          py::arg("prefix") = "", py::arg("recurse") = true, "(name, parameter) pairs.")
      .def(
          "buffers",
          [](const nn::Module& self, bool recurse) {
            std::vector<Tensor> out;
            for (auto& [n, t] : self.named_buffers(recurse)) out.push_back(t);
            return out;
          },
          py::arg("recurse") = true)
      .def(
          "named_buffers",
          [](const nn::Module& self, const std::string& prefix, bool recurse) {
            std::vector<std::pair<std::string, Tensor>> out;
            for (auto& [n, t] : self.named_buffers(recurse))
              out.emplace_back(prefix.empty() ? n : prefix + "." + n, t);
            return out;
          },
          py::arg("prefix") = "", py::arg("recurse") = true)
      .def("children", &nn::Module::children)
      .def("named_children", &nn::Module::named_children)
      .def(
          "train",
          [](py::object self, bool mode) {
            self.cast<nn::Module&>().train(mode);
            return self;
          },
          py::arg("mode") = true, "Training mode (dropout active) for this module and below.")
      .def("eval",
           [](py::object self) {
             self.cast<nn::Module&>().train(false);
             return self;
           })
      .def_property_readonly("training", &nn::Module::is_training)
      .def("zero_grad", &nn::Module::zero_grad, py::arg("set_to_none") = true)
      .def("state_dict", &nn::Module::state_dict,
           "Parameters and buffers by dotted name (sharing memory with the module).")
      .def(
          "load_state_dict",
          [](nn::Module& self, const py::dict& state, bool strict) {
            self.load_state_dict(state_from_dict(state), strict);
          },
          py::arg("state_dict"), py::arg("strict") = true,
          "Copies values into this module's tensors; shapes and dtypes must match.")
      .def(
          "to",
          [](py::object self, DType dtype) {
            self.cast<nn::Module&>().to(dtype);
            return self;
          },
          py::arg("dtype"))
      .def("float",
           [](py::object self) {
             self.cast<nn::Module&>().to(kFloat32);
             return self;
           })
      .def("double",
           [](py::object self) {
             self.cast<nn::Module&>().to(kFloat64);
             return self;
           })
      .def("num_parameters", &nn::Module::num_parameters, py::arg("trainable_only") = false)
      .def(
          "summary",
          [](const nn::Module& self, const Shape& input_shape) {
            return self.summary(input_shape);
          },
          py::arg("input_shape"), "A Keras-style table of the layers for an input shape.")
      .def("clone", &nn::Module::clone,
           "A deep copy (C++ modules; Python-defined ones: copy.deepcopy).")
      .def("__repr__",
           [](const nn::Module& self) {
             std::ostringstream os;
             os << self;
             return os.str();
           })
      .def(
          "register_forward_hook",
          [](std::shared_ptr<nn::Module> self, py::function fn) {
            auto ref = std::make_shared<PyRef>(fn);
            const unsigned id = self->register_forward_hook(
                [ref](nn::Module& mm, const Tensor& in, const Tensor& out) -> Tensor {
                  py::gil_scoped_acquire g;
                  py::object r = ref->get()(module_object(mm), py::make_tuple(in), out);
                  return r.is_none() ? Tensor() : r.cast<Tensor>();
                });
            return ModuleHookHandle{self, id};
          },
          py::arg("hook"),
          "hook(module, input_tuple, output) after forward; a returned tensor replaces the "
          "output.")
      .def(
          "register_forward_pre_hook",
          [](std::shared_ptr<nn::Module> self, py::function fn) {
            auto ref = std::make_shared<PyRef>(fn);
            const unsigned id =
                self->register_forward_pre_hook([ref](nn::Module& mm, const Tensor& in) -> Tensor {
                  py::gil_scoped_acquire g;
                  py::object r = ref->get()(module_object(mm), py::make_tuple(in));
                  if (r.is_none()) return Tensor();
                  if (py::isinstance<py::tuple>(r)) return r.cast<py::tuple>()[0].cast<Tensor>();
                  return r.cast<Tensor>();
                });
            return ModuleHookHandle{self, id};
          },
          py::arg("hook"),
          "hook(module, input_tuple) before forward; a returned tensor replaces the input.");

  // ---- containers ---------------------------------------------------------------------------
  py::class_<nn::Sequential, nn::Module, std::shared_ptr<nn::Sequential>>(
      nn_mod, "_Sequential", "The C++ Sequential (soma.nn.Sequential adds the Python side).")
      .def(py::init<>())
      .def("_push_back",
           [](nn::Sequential& s, std::shared_ptr<nn::Module> m) { s.push_back(std::move(m)); })
      .def("__len__", &nn::Sequential::size)
      .def("_at", [](const nn::Sequential& s, int64_t i) { return s.ptr(i); });
  py::class_<nn::ModuleList, nn::Module, std::shared_ptr<nn::ModuleList>>(
      nn_mod, "_ModuleList", "The C++ ModuleList (soma.nn.ModuleList adds the Python side).")
      .def(py::init<>())
      .def("_push_back",
           [](nn::ModuleList& s, std::shared_ptr<nn::Module> m) { s.push_back(std::move(m)); })
      .def("__len__", &nn::ModuleList::size)
      .def("_at", [](const nn::ModuleList& s, int64_t i) { return s.ptr(i); });

  // ---- layers (the registry's types) ---------------------------------------------------------
  layer<nn::Linear>(nn_mod, "Linear", "y = x @ weight.T + bias (torch.nn.Linear).")
      .def_property_readonly("in_features", [](const nn::Linear& l) { return l.in_features; })
      .def_property_readonly("out_features", [](const nn::Linear& l) { return l.out_features; });
  layer<nn::Identity>(nn_mod, "Identity", "Returns its input.");
  layer<nn::Conv1d>(nn_mod, "Conv1d", "1-d convolution (torch.nn.Conv1d).");
  layer<nn::Conv2d>(nn_mod, "Conv2d", "2-d convolution (torch.nn.Conv2d).");
  layer<nn::ConvTranspose1d>(nn_mod, "ConvTranspose1d", "torch.nn.ConvTranspose1d.");
  layer<nn::ConvTranspose2d>(nn_mod, "ConvTranspose2d", "torch.nn.ConvTranspose2d.");
  layer<nn::MaxPool2d>(nn_mod, "MaxPool2d", "torch.nn.MaxPool2d.");
  layer<nn::AvgPool2d>(nn_mod, "AvgPool2d", "torch.nn.AvgPool2d.");
  layer<nn::AdaptiveAvgPool2d>(nn_mod, "AdaptiveAvgPool2d", "torch.nn.AdaptiveAvgPool2d.");
  layer<nn::AdaptiveMaxPool2d>(nn_mod, "AdaptiveMaxPool2d", "torch.nn.AdaptiveMaxPool2d.");
  layer<nn::Dropout>(nn_mod, "Dropout", "Inverted dropout, active in training mode.");
  layer<nn::Dropout2d>(nn_mod, "Dropout2d", "Channel dropout (torch.nn.Dropout2d).");
  layer<nn::Unflatten>(nn_mod, "Unflatten", "torch.nn.Unflatten.");
  layer<nn::Upsample>(nn_mod, "Upsample", "torch.nn.Upsample.");
  layer<nn::BatchNorm1d>(nn_mod, "BatchNorm1d", "torch.nn.BatchNorm1d.");
  layer<nn::BatchNorm2d>(nn_mod, "BatchNorm2d", "torch.nn.BatchNorm2d.");
  layer<nn::LayerNorm>(nn_mod, "LayerNorm", "torch.nn.LayerNorm.");
  layer<nn::GroupNorm>(nn_mod, "GroupNorm", "torch.nn.GroupNorm.");
  layer<nn::Flatten>(nn_mod, "Flatten", "Flattens dims start_dim..end_dim.");
  layer<nn::ReLU>(nn_mod, "ReLU", "max(0, x).");
  layer<nn::Sigmoid>(nn_mod, "Sigmoid", "1 / (1 + exp(-x)).");
  layer<nn::Tanh>(nn_mod, "Tanh", "tanh(x).");
  layer<nn::LeakyReLU>(nn_mod, "LeakyReLU", "x, or negative_slope * x below 0.");
  layer<nn::GELU>(nn_mod, "GELU", "x * Phi(x).");
  layer<nn::ELU>(nn_mod, "ELU", "torch.nn.ELU.");
  layer<nn::SELU>(nn_mod, "SELU", "torch.nn.SELU.");
  layer<nn::CELU>(nn_mod, "CELU", "torch.nn.CELU.");
  layer<nn::SiLU>(nn_mod, "SiLU", "x * sigmoid(x).");
  layer<nn::Mish>(nn_mod, "Mish", "x * tanh(softplus(x)).");
  layer<nn::Softplus>(nn_mod, "Softplus", "torch.nn.Softplus.");
  layer<nn::Hardtanh>(nn_mod, "Hardtanh", "torch.nn.Hardtanh.");
  layer<nn::Hardsigmoid>(nn_mod, "Hardsigmoid", "torch.nn.Hardsigmoid.");
  layer<nn::Hardswish>(nn_mod, "Hardswish", "torch.nn.Hardswish.");
  layer<nn::LogSigmoid>(nn_mod, "LogSigmoid", "log(sigmoid(x)).");
  layer<nn::PReLU>(nn_mod, "PReLU", "LeakyReLU with a learned slope.");
  layer<nn::GLU>(nn_mod, "GLU", "Gated linear unit.");
  layer<nn::Softmax>(nn_mod, "Softmax", "softmax over dim.");
  layer<nn::LogSoftmax>(nn_mod, "LogSoftmax", "log_softmax over dim.");
  layer<nn::Softmin>(nn_mod, "Softmin", "softmin over dim.");

  // ---- losses --------------------------------------------------------------------------------
  py::class_<nn::Loss, nn::Module, std::shared_ptr<nn::Loss>>(nn_mod, "_Loss",
                                                              "The base of the loss modules.")
      .def(
          "forward",
          [](nn::Loss& l, const Tensor& input, const Tensor& target) {
            return l.forward(input, target);
          },
          py::arg("input"), py::arg("target"))
      .def(
          "__call__",
          [](nn::Loss& l, const Tensor& input, const Tensor& target) { return l(input, target); },
          py::arg("input"), py::arg("target"));
  using LossClass = py::class_<nn::MSELoss, nn::Loss, std::shared_ptr<nn::MSELoss>>;
  LossClass(nn_mod, "MSELoss", "Mean squared error (torch.nn.MSELoss).")
      .def(py::init([](const std::string& reduction) {
             return std::make_shared<nn::MSELoss>(
                 F::LossOptions{reduction_of(reduction, "MSELoss")});
           }),
           py::kw_only(), py::arg("reduction") = "mean");
  py::class_<nn::L1Loss, nn::Loss, std::shared_ptr<nn::L1Loss>>(nn_mod, "L1Loss",
                                                                "Mean absolute error.")
      .def(py::init([](const std::string& reduction) {
             return std::make_shared<nn::L1Loss>(F::LossOptions{reduction_of(reduction, "L1Loss")});
           }),
           py::kw_only(), py::arg("reduction") = "mean");
  py::class_<nn::BCELoss, nn::Loss, std::shared_ptr<nn::BCELoss>>(
      nn_mod, "BCELoss", "Binary cross-entropy of probabilities (torch.nn.BCELoss).")
      .def(py::init([](std::optional<Tensor> weight, const std::string& reduction) {
             return std::make_shared<nn::BCELoss>(
                 F::BCEOptions{opt(weight), reduction_of(reduction, "BCELoss")});
           }),
           py::arg("weight") = py::none(), py::kw_only(), py::arg("reduction") = "mean");
  py::class_<nn::BCEWithLogitsLoss, nn::Loss, std::shared_ptr<nn::BCEWithLogitsLoss>>(
      nn_mod, "BCEWithLogitsLoss", "Sigmoid + binary cross-entropy (torch.nn.BCEWithLogitsLoss).")
      .def(py::init([](std::optional<Tensor> weight, const std::string& reduction,
                       std::optional<Tensor> pos_weight) {
             return std::make_shared<nn::BCEWithLogitsLoss>(F::BCEWithLogitsOptions{
                 opt(weight), opt(pos_weight), reduction_of(reduction, "BCEWithLogitsLoss")});
           }),
           py::arg("weight") = py::none(), py::kw_only(), py::arg("reduction") = "mean",
           py::arg("pos_weight") = py::none());
  py::class_<nn::CrossEntropyLoss, nn::Loss, std::shared_ptr<nn::CrossEntropyLoss>>(
      nn_mod, "CrossEntropyLoss", "log_softmax + NLL (torch.nn.CrossEntropyLoss).")
      .def(py::init([](std::optional<Tensor> weight, int64_t ignore_index,
                       const std::string& reduction, double label_smoothing) {
             return std::make_shared<nn::CrossEntropyLoss>(
                 F::CrossEntropyOptions{opt(weight), ignore_index, label_smoothing,
                                        reduction_of(reduction, "CrossEntropyLoss")});
           }),
           py::arg("weight") = py::none(), py::kw_only(), py::arg("ignore_index") = -100,
           py::arg("reduction") = "mean", py::arg("label_smoothing") = 0.0);
  py::class_<nn::NLLLoss, nn::Loss, std::shared_ptr<nn::NLLLoss>>(
      nn_mod, "NLLLoss", "Negative log-likelihood of log-probabilities (torch.nn.NLLLoss).")
      .def(py::init([](std::optional<Tensor> weight, int64_t ignore_index,
                       const std::string& reduction) {
             return std::make_shared<nn::NLLLoss>(
                 F::NLLOptions{opt(weight), ignore_index, reduction_of(reduction, "NLLLoss")});
           }),
           py::arg("weight") = py::none(), py::kw_only(), py::arg("ignore_index") = -100,
           py::arg("reduction") = "mean");

  // ---- soma.nn.init --------------------------------------------------------------------------
  namespace I = soma::nn::init;
  py::module_ init = nn_mod.def_submodule("init", "soma.nn.init (torch.nn.init).");
  auto fan_mode = [](const std::string& m) {
    if (m == "fan_in") return I::FanMode::FanIn;
    if (m == "fan_out") return I::FanMode::FanOut;
    detail::fail("init: mode must be 'fan_in' or 'fan_out', got '", m, "'");
  };
  init.def("calculate_gain", &I::calculate_gain, py::arg("nonlinearity"), py::arg("param") = 0.01);
  init.def("uniform_", &I::uniform_, py::arg("tensor"), py::arg("a") = 0.0, py::arg("b") = 1.0);
  init.def("normal_", &I::normal_, py::arg("tensor"), py::arg("mean") = 0.0, py::arg("std") = 1.0);
  init.def("constant_", &I::constant_, py::arg("tensor"), py::arg("val"));
  init.def("zeros_", &I::zeros_, py::arg("tensor"));
  init.def("ones_", &I::ones_, py::arg("tensor"));
  init.def("xavier_uniform_", &I::xavier_uniform_, py::arg("tensor"), py::arg("gain") = 1.0);
  init.def("xavier_normal_", &I::xavier_normal_, py::arg("tensor"), py::arg("gain") = 1.0);
  init.def(
      "kaiming_uniform_",
      [fan_mode](Tensor t, double a, const std::string& mode, const std::string& nl) {
        return I::kaiming_uniform_(std::move(t), a, fan_mode(mode), nl);
      },
      py::arg("tensor"), py::arg("a") = 0.0, py::arg("mode") = "fan_in",
      py::arg("nonlinearity") = "leaky_relu");
  init.def(
      "kaiming_normal_",
      [fan_mode](Tensor t, double a, const std::string& mode, const std::string& nl) {
        return I::kaiming_normal_(std::move(t), a, fan_mode(mode), nl);
      },
      py::arg("tensor"), py::arg("a") = 0.0, py::arg("mode") = "fan_in",
      py::arg("nonlinearity") = "leaky_relu");

  // ---- soma.nn.functional -----------------------------------------------------------------
  py::module_ f = nn_mod.def_submodule("functional", "soma.nn.functional (torch.nn.functional).");
  f.def(
      "linear",
      [](const Tensor& x, const Tensor& w, std::optional<Tensor> b) {
        HeavyScope g(x.numel() * w.size(0));
        return F::linear(x, w, opt(b));
      },
      py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), "x @ weight.T + bias.");
  f.def("dropout", &F::dropout, py::arg("input"), py::arg("p") = 0.5, py::arg("training") = true);
  f.def("dropout2d", &F::dropout2d, py::arg("input"), py::arg("p") = 0.5,
        py::arg("training") = true);
  f.def("flatten", &F::flatten, py::arg("input"), py::arg("start_dim") = 1,
        py::arg("end_dim") = -1);
  f.def("relu", &soma::relu, py::arg("input"));
  f.def("sigmoid", &soma::sigmoid, py::arg("input"));
  f.def("tanh", &soma::tanh, py::arg("input"));
  f.def("leaky_relu", &soma::leaky_relu, py::arg("input"), py::arg("negative_slope") = 0.01);
  f.def(
      "gelu",
      [](const Tensor& x, const std::string& approximate) {
        SOMA_CHECK(approximate == "none", "gelu: approximate='", approximate,
                   "' is not supported (soma has the exact 'none')");
        return soma::gelu(x);
      },
      py::arg("input"), py::kw_only(), py::arg("approximate") = "none");
  f.def("softmax", &soma::softmax, py::arg("input"), py::arg("dim"));
  f.def("log_softmax", &soma::log_softmax, py::arg("input"), py::arg("dim"));
  f.def("softmin", &soma::softmin, py::arg("input"), py::arg("dim"));
  f.def("elu", &soma::elu, py::arg("input"), py::arg("alpha") = 1.0);
  f.def("selu", &soma::selu, py::arg("input"));
  f.def("celu", &soma::celu, py::arg("input"), py::arg("alpha") = 1.0);
  f.def("silu", &soma::silu, py::arg("input"));
  f.def("mish", &soma::mish, py::arg("input"));
  f.def("softplus", &soma::softplus, py::arg("input"), py::arg("beta") = 1.0,
        py::arg("threshold") = 20.0);
  f.def("hardtanh", &soma::hardtanh, py::arg("input"), py::arg("min_val") = -1.0,
        py::arg("max_val") = 1.0);
  f.def("hardsigmoid", &soma::hardsigmoid, py::arg("input"));
  f.def("hardswish", &soma::hardswish, py::arg("input"));
  f.def("logsigmoid", &soma::log_sigmoid, py::arg("input"));
  f.def("prelu", &soma::prelu, py::arg("input"), py::arg("weight"));
  f.def("glu", &soma::glu, py::arg("input"), py::arg("dim") = -1);
  f.def(
      "mse_loss",
      [](const Tensor& a, const Tensor& b, const std::string& r) {
        return F::mse_loss(a, b, {reduction_of(r, "mse_loss")});
      },
      py::arg("input"), py::arg("target"), py::kw_only(), py::arg("reduction") = "mean");
  f.def(
      "l1_loss",
      [](const Tensor& a, const Tensor& b, const std::string& r) {
        return F::l1_loss(a, b, {reduction_of(r, "l1_loss")});
      },
      py::arg("input"), py::arg("target"), py::kw_only(), py::arg("reduction") = "mean");
  f.def(
      "binary_cross_entropy",
      [](const Tensor& a, const Tensor& b, std::optional<Tensor> w, const std::string& r) {
        return F::binary_cross_entropy(a, b, {opt(w), reduction_of(r, "binary_cross_entropy")});
      },
      py::arg("input"), py::arg("target"), py::arg("weight") = py::none(), py::kw_only(),
      py::arg("reduction") = "mean");
  f.def(
      "binary_cross_entropy_with_logits",
      [](const Tensor& a, const Tensor& b, std::optional<Tensor> w, const std::string& r,
         std::optional<Tensor> pw) {
        return F::binary_cross_entropy_with_logits(
            a, b, {opt(w), opt(pw), reduction_of(r, "binary_cross_entropy_with_logits")});
      },
      py::arg("input"), py::arg("target"), py::arg("weight") = py::none(), py::kw_only(),
      py::arg("reduction") = "mean", py::arg("pos_weight") = py::none());
  f.def(
      "cross_entropy",
      [](const Tensor& a, const Tensor& b, std::optional<Tensor> w, int64_t ignore_index,
         const std::string& r, double label_smoothing) {
        return F::cross_entropy(
            a, b, {opt(w), ignore_index, label_smoothing, reduction_of(r, "cross_entropy")});
      },
      py::arg("input"), py::arg("target"), py::arg("weight") = py::none(), py::kw_only(),
      py::arg("ignore_index") = -100, py::arg("reduction") = "mean",
      py::arg("label_smoothing") = 0.0);
  f.def(
      "nll_loss",
      [](const Tensor& a, const Tensor& b, std::optional<Tensor> w, int64_t ignore_index,
         const std::string& r) {
        return F::nll_loss(a, b, {opt(w), ignore_index, reduction_of(r, "nll_loss")});
      },
      py::arg("input"), py::arg("target"), py::arg("weight") = py::none(), py::kw_only(),
      py::arg("ignore_index") = -100, py::arg("reduction") = "mean");
  f.def(
      "pad",
      [](const Tensor& x, const std::vector<int64_t>& pad, const std::string& mode, double value) {
        return F::pad(x, pad, mode, value);
      },
      py::arg("input"), py::arg("pad"), py::arg("mode") = "constant", py::arg("value") = 0.0);
  f.def(
      "conv2d",
      [](const Tensor& x, const Tensor& w, std::optional<Tensor> b, py::object stride,
         py::object padding, py::object dilation, int64_t groups) {
        const auto s = int_list(stride, "conv2d", "stride");
        const auto d = int_list(dilation, "conv2d", "dilation");
        HeavyScope g(x.numel() * w.numel() / std::max<int64_t>(1, w.size(0)));
        if (py::isinstance<py::str>(padding))
          return F::conv2d(x, w, opt(b), s, padding.cast<std::string>(), d, groups);
        return F::conv2d(x, w, opt(b), s, int_list(padding, "conv2d", "padding"), d, groups);
      },
      py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
      py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1);
  f.def(
      "conv1d",
      [](const Tensor& x, const Tensor& w, std::optional<Tensor> b, py::object stride,
         py::object padding, py::object dilation, int64_t groups) {
        const auto s = int_list(stride, "conv1d", "stride");
        const auto d = int_list(dilation, "conv1d", "dilation");
        if (py::isinstance<py::str>(padding))
          return F::conv1d(x, w, opt(b), s, padding.cast<std::string>(), d, groups);
        return F::conv1d(x, w, opt(b), s, int_list(padding, "conv1d", "padding"), d, groups);
      },
      py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
      py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1);
  f.def(
      "conv_transpose2d",
      [](const Tensor& x, const Tensor& w, std::optional<Tensor> b, py::object stride,
         py::object padding, py::object output_padding, int64_t groups, py::object dilation) {
        return F::conv_transpose2d(x, w, opt(b), int_list(stride, "conv_transpose2d", "stride"),
                                   int_list(padding, "conv_transpose2d", "padding"),
                                   int_list(output_padding, "conv_transpose2d", "output_padding"),
                                   groups, int_list(dilation, "conv_transpose2d", "dilation"));
      },
      py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
      py::arg("padding") = 0, py::arg("output_padding") = 0, py::arg("groups") = 1,
      py::arg("dilation") = 1);
  f.def(
      "max_pool2d",
      [](const Tensor& x, py::object k, py::object stride, py::object padding, py::object dilation,
         bool ceil_mode, bool return_indices) -> py::object {
        const auto kk = int_list(k, "max_pool2d", "kernel_size");
        const auto s =
            stride.is_none() ? std::vector<int64_t>{} : int_list(stride, "max_pool2d", "stride");
        const auto p = int_list(padding, "max_pool2d", "padding");
        const auto d = int_list(dilation, "max_pool2d", "dilation");
        if (return_indices) {
          auto [y, i] = F::max_pool2d_with_indices(x, kk, s, p, d, ceil_mode);
          return py::make_tuple(y, i);
        }
        return wrap(F::max_pool2d(x, kk, s, p, d, ceil_mode));
      },
      py::arg("input"), py::arg("kernel_size"), py::arg("stride") = py::none(),
      py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("ceil_mode") = false,
      py::arg("return_indices") = false);
  f.def(
      "avg_pool2d",
      [](const Tensor& x, py::object k, py::object stride, py::object padding, bool ceil_mode,
         bool count_include_pad, std::optional<int64_t> divisor_override) {
        const auto s =
            stride.is_none() ? std::vector<int64_t>{} : int_list(stride, "avg_pool2d", "stride");
        return F::avg_pool2d(x, int_list(k, "avg_pool2d", "kernel_size"), s,
                             int_list(padding, "avg_pool2d", "padding"), ceil_mode,
                             count_include_pad, divisor_override);
      },
      py::arg("input"), py::arg("kernel_size"), py::arg("stride") = py::none(),
      py::arg("padding") = 0, py::arg("ceil_mode") = false, py::arg("count_include_pad") = true,
      py::arg("divisor_override") = py::none());
  f.def(
      "adaptive_avg_pool2d",
      [](const Tensor& x, py::object size) {
        return F::adaptive_avg_pool2d(x, int_list(size, "adaptive_avg_pool2d", "output_size"));
      },
      py::arg("input"), py::arg("output_size"));
  f.def(
      "batch_norm",
      [](const Tensor& x, std::optional<Tensor> mean, std::optional<Tensor> var,
         std::optional<Tensor> w, std::optional<Tensor> b, bool training, double momentum,
         double eps) {
        return F::batch_norm(x, opt(mean), opt(var), opt(w), opt(b), training, momentum, eps);
      },
      py::arg("input"), py::arg("running_mean"), py::arg("running_var"),
      py::arg("weight") = py::none(), py::arg("bias") = py::none(), py::arg("training") = false,
      py::arg("momentum") = 0.1, py::arg("eps") = 1e-5);
  f.def(
      "layer_norm",
      [](const Tensor& x, const std::vector<int64_t>& shape, std::optional<Tensor> w,
         std::optional<Tensor> b,
         double eps) { return F::layer_norm(x, shape, opt(w), opt(b), eps); },
      py::arg("input"), py::arg("normalized_shape"), py::arg("weight") = py::none(),
      py::arg("bias") = py::none(), py::arg("eps") = 1e-5);
  f.def(
      "group_norm",
      [](const Tensor& x, int64_t groups, std::optional<Tensor> w, std::optional<Tensor> b,
         double eps) { return F::group_norm(x, groups, opt(w), opt(b), eps); },
      py::arg("input"), py::arg("num_groups"), py::arg("weight") = py::none(),
      py::arg("bias") = py::none(), py::arg("eps") = 1e-5);
}

}  // namespace soma::python
