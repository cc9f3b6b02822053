// Autograd from Python: Tensor.requires_grad / .grad / .backward / hooks, grad mode, and the
// functional soma.autograd.grad / soma.autograd.backward (in the submodule _soma._autograd).
#include <cctype>

#include "autograd/node.h"  // Node::name, for grad_fn
#include "soma_py.h"

namespace soma::python {
namespace {

/// Tensor.grad_fn: the node that produced a non-leaf tensor (opaque; compared by identity of the
/// node, printed as <soma.autograd.Node>).
struct GradFn {
  std::shared_ptr<autograd::Node> node;
};

/// "log_softmax" -> "LogSoftmaxBackward".
std::string node_name(const GradFn& g) {
  std::string out;
  bool up = true;
  for (const char* c = g.node->name; *c; ++c) {
    if (*c == '_') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(*c))) : *c;
    up = false;
  }
  return out + "Backward";
}

/// What register_hook returns: remove() unregisters the hook (torch's RemovableHandle).
struct HookHandle {
  Tensor tensor;
  unsigned id;
  bool removed = false;
};

std::vector<Tensor> tensor_list(py::handle h, const char* what) {
  if (h.is_none()) return {};
  if (py::isinstance<Tensor>(h)) return {h.cast<Tensor>()};
  std::vector<Tensor> out;
  for (py::handle e : h) {
    if (e.is_none()) {
      out.emplace_back();
    } else if (py::isinstance<Tensor>(e)) {
      out.push_back(e.cast<Tensor>());
    } else {
      throw py::type_error(std::string("autograd: ") + what +
                           " must be a Tensor or a sequence of Tensors");
    }
  }
  return out;
}

}  // namespace

void bind_autograd(py::module_& m) {
  py::class_<GradFn>(m, "Node", "The autograd node that produced a tensor (Tensor.grad_fn).")
      .def("name", &node_name,
           "torch-style name of the op's backward: AddBackward, LogSoftmaxBackward, ...")
      .def("__repr__", [](const GradFn& g) { return "<" + node_name(g) + ">"; })
      .def("__eq__", [](const GradFn& a, const GradFn& b) { return a.node == b.node; })
      .def("__hash__", [](const GradFn& a) { return std::hash<void*>()(a.node.get()); });
  py::class_<HookHandle>(m, "RemovableHandle", "Returned by Tensor.register_hook.")
      .def(
          "remove",
          [](HookHandle& h) {
            if (h.removed) return;
            h.tensor.remove_hook(h.id);
            h.removed = true;
          },
          "Unregisters the hook (a second call does nothing).");

  auto cls = tensor_class(m);
  constexpr auto same = py::return_value_policy::reference_internal;
  cls.def_property(
         "requires_grad", &Tensor::requires_grad, [](Tensor& t, bool r) { t.requires_grad_(r); },
         "Whether gradients are recorded for this tensor (settable on leaves).")
      .def("requires_grad_", &Tensor::requires_grad_, py::arg("requires_grad") = true, same,
           "Marks a floating-point tensor as a leaf whose gradient is accumulated into .grad.")
      .def_property(
          "grad",
          [](const Tensor& t) -> py::object {
            Tensor g = t.grad();
            if (!g.defined()) return py::none();
            return wrap(std::move(g));
          },
          [](Tensor& t, std::optional<Tensor> g) { t.set_grad(g ? *g : Tensor()); },
          "The accumulated gradient (None until a backward pass reaches this tensor).")
      .def_property_readonly("is_leaf", &Tensor::is_leaf,
                             "True for tensors not produced by a differentiable op.")
      .def_property_readonly(
          "grad_fn",
          [](const Tensor& t) -> py::object {
            const auto& n = t.grad_fn();
            if (!n) return py::none();
            return py::cast(GradFn{n});
          },
          "The node that produced this tensor, or None for leaves.")
      .def_property_readonly("data", &Tensor::detach,
                             "A tensor sharing storage with this one, outside the graph.")
      .def(
          "backward",
          [](const Tensor& t, std::optional<Tensor> gradient, std::optional<bool> retain_graph,
             bool create_graph) {
            py::gil_scoped_release release;  // hooks written in Python take it back
            t.backward(gradient.value_or(Tensor()), retain_graph, create_graph);
          },
          py::arg("gradient") = py::none(), py::arg("retain_graph") = py::none(),
          py::arg("create_graph") = false,
          "Back-propagates from this tensor (gradient may be omitted for a one-element tensor). "
          "The graph is freed afterwards unless retain_graph (default: create_graph); with "
          "create_graph the backward is recorded so .grad can be differentiated again.")
      .def("retain_grad", &Tensor::retain_grad,
           "Keeps this non-leaf tensor's gradient in .grad after backward.")
      .def_property_readonly("retains_grad", &Tensor::retains_grad,
                             "Whether retain_grad() was called on this non-leaf tensor.")
      .def(
          "register_hook",
          [](Tensor& t, py::object fn) {
            auto ref = std::make_shared<PyRef>(std::move(fn));
            unsigned id = t.register_hook([ref](const Tensor& g) -> Tensor {
              py::gil_scoped_acquire acquire;
              py::object r = ref->get()(g);
              return r.is_none() ? Tensor() : r.cast<Tensor>();
            });
            return HookHandle{t, id};
          },
          py::arg("hook"),
          "Registers hook(grad), called with this tensor's gradient during backward; a hook "
          "returning a Tensor replaces the gradient, one returning None only observes it.");

  py::module_ ag = m.def_submodule("_autograd", "soma.autograd's C++ part.");
  ag.def("is_grad_enabled", &autograd::is_grad_enabled,
         "Whether ops on this thread record the graph.");
  ag.def("set_grad_enabled", &autograd::set_grad_enabled,
         "Turns graph recording on this thread on or off.", py::arg("mode"));
  ag.def("is_anomaly_enabled", &autograd::is_anomaly_enabled,
         "Whether anomaly detection (NaN/inf checks in forward and backward) is on.");
  ag.def("set_detect_anomaly", &autograd::set_detect_anomaly,
         "Turns anomaly detection on or off (all threads).", py::arg("mode"));
  ag.def(
      "grad",
      [](py::handle outputs, py::handle inputs, py::handle grad_outputs,
         std::optional<bool> retain_graph, bool create_graph, bool allow_unused) {
        auto outs = tensor_list(outputs, "outputs");
        auto ins = tensor_list(inputs, "inputs");
        auto gouts = tensor_list(grad_outputs, "grad_outputs");
        std::vector<Tensor> grads;
        {
          py::gil_scoped_release release;
          grads = autograd::grad(outs, ins, gouts, retain_graph, create_graph, allow_unused);
        }
        py::tuple r(grads.size());
        for (size_t i = 0; i < grads.size(); ++i)
          r[i] = grads[i].defined() ? wrap(grads[i]) : py::none();
        return r;
      },
      py::arg("outputs"), py::arg("inputs"), py::arg("grad_outputs") = py::none(),
      py::arg("retain_graph") = py::none(), py::arg("create_graph") = false,
      py::arg("allow_unused") = false,
      "The gradients of outputs with respect to inputs, as a tuple (None for an unused input "
      "with allow_unused). Nothing accumulates into .grad. retain_graph defaults to "
      "create_graph; with create_graph the returned gradients are differentiable.");
  ag.def(
      "backward",
      [](py::handle tensors, py::handle grad_tensors, std::optional<bool> retain_graph,
         bool create_graph) {
        auto ts = tensor_list(tensors, "tensors");
        auto gs = tensor_list(grad_tensors, "grad_tensors");
        py::gil_scoped_release release;
        autograd::backward(ts, gs, retain_graph, create_graph);
      },
      py::arg("tensors"), py::arg("grad_tensors") = py::none(),
      py::arg("retain_graph") = py::none(), py::arg("create_graph") = false,
      "Accumulates into the leaves' .grad the gradients of sum_i tensors[i] . grad_tensors[i].");
}

}  // namespace soma::python
