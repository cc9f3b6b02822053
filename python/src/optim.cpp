// soma.optim from Python: the optimizers (torch.optim's names and arguments: params as an
// iterable of tensors or of param-group dicts, lr positional or by name, betas as a pair) and the
// LR schedulers. Each optimizer's option names come from its C++ visit_options, so a new option
// in C++ is a new keyword here without a line of binding code.
#include <algorithm>
#include <functional>
#include <type_traits>

#include "soma_py.h"

namespace soma::python {
namespace {

// torch-only flags soma accepts when they ask for torch's default behaviour.
bool ignorable(const std::string& key, py::handle v) {
  static const char* keys[] = {"foreach", "maximize", "capturable", "differentiable", "fused"};
  for (const char* k : keys)
    if (key == k) return v.is_none() || (py::isinstance<py::bool_>(v) && !v.cast<bool>());
  return false;
}

// Sets the options named in `kw` (torch's names; "betas" is Adam's (beta1, beta2)).
template <typename Opt, typename O>
void apply_options(O& o, const py::dict& kw, const std::string& name) {
  for (const auto& [k, v] : kw) {
    const std::string key = py::str(k);
    if (key == "params") continue;
    if (ignorable(key, v)) continue;
    if constexpr (std::is_same_v<O, optim::AdamOptions>) {
      if (key == "betas") {
        const auto b = py::cast<std::pair<double, double>>(v);
        o.beta1 = b.first;
        o.beta2 = b.second;
        continue;
      }
    }
    bool found = false;
    std::string known;
    Opt::visit_options(o, [&](const char* n, auto& field) {
      known += (known.empty() ? "" : ", ") + std::string(n);
      if (key != n) return;
      found = true;
      using T = std::decay_t<decltype(field)>;
      if constexpr (std::is_same_v<T, bool>) {
        SOMA_CHECK(py::isinstance<py::bool_>(v), name, ": ", key, " must be True or False");
        field = py::cast<bool>(v);
      } else if constexpr (std::is_same_v<T, std::optional<double>>) {
        if (v.is_none())
          field.reset();
        else
          field = py::cast<double>(v);
      } else {
        field = py::cast<T>(v);
      }
    });
    if constexpr (std::is_same_v<O, optim::AdamOptions>) known += ", betas";
    SOMA_CHECK(found, name, ": unknown option '", key, "' (", name, " takes ", known, ")");
  }
}

std::vector<Tensor> tensors_of(py::handle params, const std::string& name) {
  std::vector<Tensor> out;
  for (py::handle p : params) {
    SOMA_CHECK(py::isinstance<Tensor>(p), name,
               ": params must be tensors (or param-group dicts), got ",
               std::string(py::str(p.get_type().attr("__name__"))));
    out.push_back(p.cast<Tensor>());
  }
  return out;
}

// params: tensors, or dicts {"params": [...], option: value, ...} (torch's param groups).
template <typename Opt, typename O>
std::vector<optim::ParamGroup<O>> groups_of(py::handle params, const O& base,
                                            const std::string& name) {
  SOMA_CHECK(!py::isinstance<Tensor>(params), name,
             ": params must be an iterable of tensors (model.parameters()), not one tensor");
  py::list items(py::iter(params));
  SOMA_CHECK(!items.empty(), name, ": got an empty parameter list");
  std::vector<optim::ParamGroup<O>> groups;
  if (py::isinstance<py::dict>(items[0])) {
    for (py::handle g : items) {
      SOMA_CHECK(py::isinstance<py::dict>(g), name, ": mixes tensors and param-group dicts");
      py::dict d = py::reinterpret_borrow<py::dict>(g);
      SOMA_CHECK(d.contains("params"), name, ": a param group without 'params'");
      O o = base;
      apply_options<Opt>(o, d, name);
      py::object ps = d["params"];
      groups.push_back({py::isinstance<Tensor>(ps) ? std::vector<Tensor>{ps.cast<Tensor>()}
                                                   : tensors_of(ps, name),
                        o});
    }
  } else {
    groups.push_back({tensors_of(items, name), base});
  }
  return groups;
}

/// One entry of Optimizer.param_groups: reads every option; sets 'lr'.
struct GroupView {
  std::shared_ptr<optim::Optimizer> opt;
  size_t index;
  std::function<py::object(const std::string&)> get;
  std::vector<std::string> keys;
};

template <typename Opt, typename O>
void bind_optimizer(py::module_& m, const char* name, O defaults, const char* doc) {
  const std::string n = name;
  py::class_<Opt, optim::Optimizer, std::shared_ptr<Opt>>(m, name, doc)
      .def(py::init([n, defaults](py::object params, py::object lr, const py::kwargs& kw) {
             O base = defaults;
             if (!lr.is_none()) base.lr = lr.cast<double>();
             apply_options<Opt>(base, kw, n);
             return std::make_shared<Opt>(groups_of<Opt>(params, base, n));
           }),
           py::arg("params"), py::arg("lr") = py::none())
      .def_property_readonly("param_groups", [](std::shared_ptr<Opt> self) {
        py::list out;
        const auto& groups = self->param_groups();
        for (size_t g = 0; g < groups.size(); ++g) {
          GroupView v{self, g, nullptr, {"params"}};
          O o = groups[g].options;
          Opt::visit_options(o, [&](const char* k, auto&) { v.keys.push_back(k); });
          v.get = [self, g](const std::string& key) -> py::object {
            const auto& grp = self->param_groups()[g];
            if (key == "params") return py::cast(grp.params);
            if (key == "lr") return py::float_(self->group_lr(g));
            O opts = grp.options;
            py::object r;
            Opt::visit_options(opts, [&](const char* k, auto& field) {
              if (key != k) return;
              using T = std::decay_t<decltype(field)>;
              if constexpr (std::is_same_v<T, std::optional<double>>)
                r = field ? py::object(py::float_(*field)) : py::object(py::none());
              else
                r = py::cast(field);
            });
            if constexpr (std::is_same_v<O, optim::AdamOptions>)
              if (key == "betas") r = py::make_tuple(opts.beta1, opts.beta2);
            if (!r) throw py::key_error(key);
            return r;
          };
          if constexpr (std::is_same_v<O, optim::AdamOptions>) v.keys.push_back("betas");
          out.append(py::cast(std::move(v)));
        }
        return out;
      });
}

}  // namespace

void bind_optim(py::module_& m) {
  py::module_ o = m.def_submodule("optim", "soma.optim: optimizers and LR schedulers.");

  py::class_<GroupView>(o, "ParamGroup",
                        "One of Optimizer.param_groups: g['lr'] reads and sets the group's rate; "
                        "the other options read.")
      .def("__getitem__", [](const GroupView& v, const std::string& k) { return v.get(k); })
      .def("__setitem__",
           [](GroupView& v, const std::string& k, double value) {
             SOMA_CHECK(k == "lr", "param_groups: only 'lr' can be set after construction, not '",
                        k, "'");
             v.opt->set_group_lr(v.index, value);
           })
      .def("keys", [](const GroupView& v) { return v.keys; })
      .def("__contains__",
           [](const GroupView& v, const std::string& k) {
             return std::find(v.keys.begin(), v.keys.end(), k) != v.keys.end();
           })
      .def("__repr__", [](const GroupView& v) {
        std::string s = "{";
        for (const auto& k : v.keys)
          if (k != "params")
            s += (s.size() > 1 ? ", '" : "'") + k + "': " + std::string(py::repr(v.get(k)));
        return s + "}";
      });

  py::class_<optim::Optimizer, std::shared_ptr<optim::Optimizer>>(
      o, "Optimizer", "The base of the optimizers (torch.optim.Optimizer).")
      .def("zero_grad", &optim::Optimizer::zero_grad, py::arg("set_to_none") = true,
           "Clears every parameter's gradient.")
      .def(
          "step",
          [](optim::Optimizer& self, py::object closure) -> py::object {
            py::object loss = py::none();
            if (!closure.is_none()) {  // under enable_grad, as torch
              const bool prev = autograd::is_grad_enabled();
              autograd::set_grad_enabled(true);
              try {
                loss = closure();
              } catch (...) {
                autograd::set_grad_enabled(prev);
                throw;
              }
              autograd::set_grad_enabled(prev);
            }
            {
              int64_t work = 0;
              for (const Tensor& p : self.parameters()) work += p.numel();
              HeavyScope g(work * 8);
              self.step();
            }
            return loss;
          },
          py::arg("closure") = py::none(),
          "One update of every parameter that has a gradient; closure() (re)computes the "
          "loss first when given, and its value is returned.")
      .def_property("lr", &optim::Optimizer::lr, &optim::Optimizer::set_lr,
                    "The first group's learning rate (setting it sets every group's).")
      .def("state_dict", &optim::Optimizer::state_dict)
      .def(
          "load_state_dict",
          [](optim::Optimizer& self, const py::dict& d) {
            optim::OptimizerState s;
            for (const auto& [k, v] : d) s[py::str(k)] = v.cast<Tensor>();
            self.load_state_dict(s);
          },
          py::arg("state_dict"));

  bind_optimizer<optim::SGD>(o, "SGD", optim::SGDOptions{},
                             "SGD with momentum, dampening, Nesterov and weight decay.");
  bind_optimizer<optim::Adam>(o, "Adam", optim::AdamOptions{}, "Adam (torch.optim.Adam).");
  bind_optimizer<optim::AdamW>(o, "AdamW", optim::AdamOptions{},
                               "AdamW: decoupled weight decay (default 0.01).");
  bind_optimizer<optim::RMSprop>(o, "RMSprop", optim::RMSpropOptions{}, "RMSprop.");
  bind_optimizer<optim::Adagrad>(o, "Adagrad", optim::AdagradOptions{}, "Adagrad.");
  bind_optimizer<optim::Adadelta>(o, "Adadelta", optim::AdadeltaOptions{}, "Adadelta.");

  // ---- LR schedulers ------------------------------------------------------------------------
  py::module_ s = o.def_submodule("lr_scheduler", "soma.optim.lr_scheduler.");
  auto state_in = [](const py::dict& d) {
    optim::SchedulerState st;
    for (const auto& [k, v] : d) st[py::str(k)] = v.cast<Tensor>();
    return st;
  };
  py::class_<optim::LRScheduler, std::shared_ptr<optim::LRScheduler>>(
      s, "LRScheduler", "The base of the epoch-based schedulers.")
      .def("step", &optim::LRScheduler::step, "Advances one epoch and sets the rates.")
      .def("get_last_lr", &optim::LRScheduler::get_last_lr)
      .def_property_readonly("last_epoch", &optim::LRScheduler::last_epoch)
      .def("state_dict", &optim::LRScheduler::state_dict)
      .def("load_state_dict", [state_in](optim::LRScheduler& self, const py::dict& d) {
        self.load_state_dict(state_in(d));
      });
  py::class_<optim::StepLR, optim::LRScheduler, std::shared_ptr<optim::StepLR>>(s, "StepLR")
      .def(py::init([](optim::Optimizer& opt, int64_t step_size, double gamma) {
             return std::make_shared<optim::StepLR>(opt, optim::StepLROptions{step_size, gamma});
           }),
           py::arg("optimizer"), py::arg("step_size"), py::arg("gamma") = 0.1,
           py::keep_alive<1, 2>());
  py::class_<optim::MultiStepLR, optim::LRScheduler, std::shared_ptr<optim::MultiStepLR>>(
      s, "MultiStepLR")
      .def(py::init([](optim::Optimizer& opt, std::vector<int64_t> milestones, double gamma) {
             return std::make_shared<optim::MultiStepLR>(
                 opt, optim::MultiStepLROptions{std::move(milestones), gamma});
           }),
           py::arg("optimizer"), py::arg("milestones"), py::arg("gamma") = 0.1,
           py::keep_alive<1, 2>());
  py::class_<optim::ExponentialLR, optim::LRScheduler, std::shared_ptr<optim::ExponentialLR>>(
      s, "ExponentialLR")
      .def(py::init([](optim::Optimizer& opt, double gamma) {
             return std::make_shared<optim::ExponentialLR>(opt, optim::ExponentialLROptions{gamma});
           }),
           py::arg("optimizer"), py::arg("gamma"), py::keep_alive<1, 2>());
  py::class_<optim::CosineAnnealingLR, optim::LRScheduler,
             std::shared_ptr<optim::CosineAnnealingLR>>(s, "CosineAnnealingLR")
      .def(py::init([](optim::Optimizer& opt, int64_t t_max, double eta_min) {
             return std::make_shared<optim::CosineAnnealingLR>(
                 opt, optim::CosineAnnealingLROptions{t_max, eta_min});
           }),
           py::arg("optimizer"), py::arg("T_max"), py::arg("eta_min") = 0.0,
           py::keep_alive<1, 2>());
  py::class_<optim::LinearLR, optim::LRScheduler, std::shared_ptr<optim::LinearLR>>(s, "LinearLR")
      .def(py::init([](optim::Optimizer& opt, double start, double end, int64_t total) {
             return std::make_shared<optim::LinearLR>(opt,
                                                      optim::LinearLROptions{start, end, total});
           }),
           py::arg("optimizer"), py::arg("start_factor") = 1.0 / 3, py::arg("end_factor") = 1.0,
           py::arg("total_iters") = 5, py::keep_alive<1, 2>());
  py::class_<optim::ReduceLROnPlateau, std::shared_ptr<optim::ReduceLROnPlateau>>(
      s, "ReduceLROnPlateau", "Cuts the rate when a metric stops improving.")
      .def(py::init([](optim::Optimizer& opt, const std::string& mode, double factor,
                       int64_t patience, double threshold, const std::string& threshold_mode,
                       int64_t cooldown, double min_lr, double eps) {
             SOMA_CHECK(mode == "min" || mode == "max",
                        "ReduceLROnPlateau: mode must be 'min' or 'max', got '", mode, "'");
             SOMA_CHECK(threshold_mode == "rel" || threshold_mode == "abs",
                        "ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got '",
                        threshold_mode, "'");
             optim::ReduceLROnPlateauOptions o;
             o.mode = mode == "min" ? optim::PlateauMode::Min : optim::PlateauMode::Max;
             o.factor = factor;
             o.patience = patience;
             o.threshold = threshold;
             o.threshold_mode =
                 threshold_mode == "rel" ? optim::ThresholdMode::Rel : optim::ThresholdMode::Abs;
             o.cooldown = cooldown;
             o.min_lr = min_lr;
             o.eps = eps;
             return std::make_shared<optim::ReduceLROnPlateau>(opt, o);
           }),
           py::arg("optimizer"), py::arg("mode") = "min", py::arg("factor") = 0.1,
           py::arg("patience") = 10, py::arg("threshold") = 1e-4, py::arg("threshold_mode") = "rel",
           py::arg("cooldown") = 0, py::arg("min_lr") = 0.0, py::arg("eps") = 1e-8,
           py::keep_alive<1, 2>())
      .def("step", &optim::ReduceLROnPlateau::step, py::arg("metrics"))
      .def("get_last_lr", &optim::ReduceLROnPlateau::get_last_lr)
      .def_property_readonly("best", &optim::ReduceLROnPlateau::best)
      .def_property_readonly("num_bad_epochs", &optim::ReduceLROnPlateau::num_bad_epochs)
      .def("state_dict", &optim::ReduceLROnPlateau::state_dict)
      .def("load_state_dict", [state_in](optim::ReduceLROnPlateau& self, const py::dict& d) {
        self.load_state_dict(state_in(d));
      });
}

}  // namespace soma::python
