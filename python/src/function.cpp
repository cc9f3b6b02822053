// Custom autograd functions from Python (torch.autograd.Function), over the C++
// soma::autograd::Function machinery:
//
//   class MulConstant(soma.autograd.Function):
//       @staticmethod
//       def forward(ctx, x, c):
//           ctx.c = c                      # any attribute: the context keeps it
//           ctx.save_for_backward(x)
//           return x * c
//       @staticmethod
//       def backward(ctx, grad):
//           return grad * ctx.c, None      # one entry per forward argument
//   y = MulConstant.apply(x, 2.0)
//
// forward runs with grad mode off; backward is called by soma's engine (with the GIL taken),
// and when written with soma ops it supports double backward like the C++ functions.
#include "soma/autograd/function.h"

#include "soma_py.h"

namespace soma::python {
struct PyFunctionTag {};
}  // namespace soma::python

// Function<T> is AutogradContext's friend for every T: this specialisation is the Python one.
template <>
struct soma::autograd::Function<soma::python::PyFunctionTag> {
  static py::object apply(const py::object& cls, const py::args& args) {
    namespace A = soma::autograd;
    auto ctx = std::make_shared<A::AutogradContext>();
    A::variable_list inputs;
    std::vector<size_t> positions;
    std::vector<bool> needs(args.size(), false);
    for (size_t i = 0; i < args.size(); ++i) {
      if (!py::isinstance<Tensor>(args[i])) continue;
      Tensor t = args[i].cast<Tensor>();
      needs[i] = t.defined() && t.requires_grad() && A::is_grad_enabled();
      inputs.push_back(t);
      positions.push_back(i);
    }
    ctx->set_needs_input_grad(needs);
    py::object pyctx = py::cast(ctx);
    pyctx.attr("_nargs") = args.size();
    const std::string name = py::str(cls.attr("__name__"));
    py::object result;
    {
      NoGradGuard no_grad;
      result = cls.attr("forward")(pyctx, *args);
    }
    const bool single = py::isinstance<Tensor>(result);
    SOMA_CHECK(single || py::isinstance<py::tuple>(result), name,
               ".forward must return a Tensor or a tuple of Tensors");
    A::variable_list outputs;
    if (single) {
      outputs.push_back(result.cast<Tensor>());
    } else {
      for (py::handle o : result) {
        SOMA_CHECK(py::isinstance<Tensor>(o), name, ".forward returned a tuple with a ",
                   std::string(py::str(o.get_type().attr("__name__"))));
        outputs.push_back(o.cast<Tensor>());
      }
    }
    auto cls_ref = std::make_shared<soma::python::PyRef>(cls);
    auto ctx_ref = std::make_shared<soma::python::PyRef>(pyctx);
    const size_t n_args = args.size();
    A::detail::record_custom(
        name.c_str(), ctx, outputs, inputs, positions, n_args,
        [cls_ref, ctx_ref, name, n_args](A::AutogradContext*, A::variable_list grads) {
          py::gil_scoped_acquire gil;
          py::tuple g(grads.size());
          for (size_t i = 0; i < grads.size(); ++i) g[i] = soma::python::wrap(grads[i]);
          py::object r = cls_ref->get().attr("backward")(ctx_ref->get(), *g);
          A::variable_list out;
          if (!py::isinstance<py::tuple>(r) && !py::isinstance<py::list>(r)) r = py::make_tuple(r);
          for (py::handle v : r) out.push_back(v.is_none() ? Tensor() : v.cast<Tensor>());
          SOMA_CHECK(out.size() == n_args, name, ".backward returned ", out.size(),
                     " gradients; forward took ", n_args,
                     " arguments (return None for "
                     "the ones that need none)");
          return out;
        });
    if (single) return soma::python::wrap(outputs[0]);
    py::tuple out(outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) out[i] = soma::python::wrap(outputs[i]);
    return out;
  }
};

namespace soma::python {

void bind_function(py::module_& m) {
  namespace A = soma::autograd;
  py::module_ ag = m.attr("_autograd");
  py::class_<A::AutogradContext, std::shared_ptr<A::AutogradContext>>(
      ag, "FunctionCtx", py::dynamic_attr(),
      "The ctx of a custom Function: save_for_backward, saved_tensors, "
      "mark_non_differentiable, needs_input_grad, and any attribute you set.")
      .def(
          "save_for_backward",
          [](A::AutogradContext& c, const py::args& ts) {
            A::variable_list v;
            for (py::handle t : ts) v.push_back(t.is_none() ? Tensor() : t.cast<Tensor>());
            c.save_for_backward(v);
          },
          "Keeps tensors for backward (checked: an in-place change before backward is an error).")
      .def_property_readonly("saved_tensors",
                             [](const A::AutogradContext& c) {
                               A::variable_list v = c.get_saved_variables();
                               py::tuple out(v.size());
                               for (size_t i = 0; i < v.size(); ++i)
                                 out[i] = v[i].defined() ? wrap(v[i]) : py::object(py::none());
                               return out;
                             })
      .def("mark_non_differentiable",
           [](A::AutogradContext& c, const py::args& ts) {
             A::variable_list v;
             for (py::handle t : ts) v.push_back(t.cast<Tensor>());
             c.mark_non_differentiable(v);
           })
      .def_property_readonly("needs_input_grad", [](py::object self) {
        // one entry per forward argument, as torch's tuple
        const auto& c = self.cast<const A::AutogradContext&>();
        const size_t n = py::hasattr(self, "_nargs") ? self.attr("_nargs").cast<size_t>() : 0;
        py::tuple out(n);
        for (size_t i = 0; i < n; ++i) out[i] = py::bool_(c.needs_input_grad(i));
        return out;
      });
  ag.def("_function_apply", &A::Function<PyFunctionTag>::apply, py::arg("cls"),
         "Runs cls.forward(ctx, *args) without grad and records cls.backward for the outputs.");
}

}  // namespace soma::python
