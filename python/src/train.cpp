// soma.fit / soma.evaluate, the callbacks (Keras's: History, EarlyStopping, ModelCheckpoint,
// CSVLogger, ProgressBar; Python subclasses of soma.train.Callback and plain callables), and
// soma.save / soma.load (safetensors) and soma.onnx (export, load).
//
// fit runs in C++ with the GIL released; it takes the GIL for what is Python (a Python module's
// forward, a Python loss or callback) and, after every batch, to let Python see signals: Ctrl-C
// stops training with KeyboardInterrupt after the current batch, the weights as the last step
// left them.
#include <chrono>
#include <ostream>
#include <streambuf>

#include "soma/onnx/export.h"
#include "soma/onnx/import.h"
#include "soma_py.h"

namespace soma::python {
namespace {

namespace tr = soma::train;

// A Python callback: soma.train.Callback subclassed in Python. The state goes to Python by
// reference (PYBIND11_OVERRIDE would copy it), so `state.stop_training = True` reaches fit.
class PyCallback : public tr::Callback {
 public:
  using tr::Callback::Callback;
  void on_train_begin(tr::TrainState& s) override { call("on_train_begin", s); }
  void on_epoch_begin(tr::TrainState& s, int64_t epoch) override {
    call("on_epoch_begin", s, epoch);
  }
  void on_batch_end(tr::TrainState& s, int64_t batch, double loss) override {
    call("on_batch_end", s, batch, loss);
  }
  void on_epoch_end(tr::TrainState& s, int64_t epoch, const tr::Logs& logs) override {
    call("on_epoch_end", s, epoch, logs);
  }
  void on_train_end(tr::TrainState& s) override { call("on_train_end", s); }

 private:
  template <typename... Args>
  void call(const char* name, tr::TrainState& s, const Args&... args) {
    py::gil_scoped_acquire g;
    py::function f = py::get_override(static_cast<const tr::Callback*>(this), name);
    if (f) f(py::cast(&s, py::return_value_policy::reference), args...);
  }
};

// A stream that writes to Python's sys.stdout (the progress bar shows in Jupyter and under
// pytest's capture, in order with print()); flushed at every std::flush. Calls take the GIL.
class PyStdoutBuf : public std::streambuf {
 protected:
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) buf_.push_back(static_cast<char>(c));
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    buf_.append(s, static_cast<size_t>(n));
    return n;
  }
  int sync() override {
    if (buf_.empty() || !Py_IsInitialized()) return 0;
    py::gil_scoped_acquire g;
    py::object out = py::module_::import("sys").attr("stdout");
    out.attr("write")(buf_);
    out.attr("flush")();
    buf_.clear();
    return 0;
  }

 private:
  std::string buf_;
};

// The process's one Python-stdout stream (never destroyed: a ProgressBar may outlive any scope).
std::ostream& py_stdout() {
  static auto* buf = new PyStdoutBuf();
  static auto* os = new std::ostream(buf);
  return *os;
}

tr::ProgressBarOptions progress_options(bool enabled, std::optional<bool> redraw, int64_t width) {
  tr::ProgressBarOptions o;
  o.enabled = enabled;
  o.out = &py_stdout();
  if (!redraw) {  // in place on a terminal, one line per epoch elsewhere (a log, Jupyter)
    py::object out = py::module_::import("sys").attr("stdout");
    redraw = py::hasattr(out, "isatty") && out.attr("isatty")().cast<bool>();
  }
  o.redraw = redraw;
  o.width = width;
  return o;
}

// After a batch, at most every 50 ms: Python's pending signals (Ctrl-C) raise here, ending
// fit. (Taking the GIL after every batch would stall fit for up to the interpreter's switch
// interval, 5 ms, each time another Python thread is running.)
class SignalCheck : public tr::Callback {
 public:
  void on_batch_end(tr::TrainState&, int64_t, double) override {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(50)) return;
    last_ = now;
    py::gil_scoped_acquire g;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }

 private:
  std::chrono::steady_clock::time_point last_{};
};

// The loss: an nn loss module runs in C++; any other callable is called with the GIL.
tr::LossFn loss_of(py::handle loss) {
  if (py::isinstance<nn::Loss>(loss)) {
    auto l = loss.cast<std::shared_ptr<nn::Loss>>();
    return [l](const Tensor& out, const Tensor& y) { return (*l)(out, y); };
  }
  SOMA_CHECK(PyCallable_Check(loss.ptr()),
             "fit: loss must be a soma.nn loss module or a "
             "callable (output, target) -> scalar tensor");
  auto ref = std::make_shared<PyRef>(py::reinterpret_borrow<py::object>(loss));
  return [ref](const Tensor& out, const Tensor& y) {
    py::gil_scoped_acquire g;
    return ref->get()(out, y).cast<Tensor>();
  };
}

std::shared_ptr<data::DataLoader> loader_of(py::handle h, const char* what) {
  SOMA_CHECK(py::isinstance<data::DataLoader>(h), "fit: ", what,
             " must be a soma.data.DataLoader, got ",
             std::string(py::str(h.get_type().attr("__name__"))));
  return h.cast<std::shared_ptr<data::DataLoader>>();
}

tr::Mode mode_of(const std::string& m) {
  if (m == "min") return tr::Mode::Min;
  if (m == "max") return tr::Mode::Max;
  SOMA_CHECK(m == "auto", "mode must be 'min', 'max' or 'auto', got '", m, "'");
  return tr::Mode::Auto;
}

}  // namespace

void bind_train(py::module_& m) {
  py::module_ t = m.def_submodule("train", "soma.train: fit, evaluate and the callbacks.");

  py::class_<tr::TrainState>(t, "TrainState", "What a callback sees while fit runs.")
      .def_property_readonly(
          "model",
          [](tr::TrainState& s) { return py::cast(&s.model, py::return_value_policy::reference); })
      .def_property_readonly("optimizer",
                             [](tr::TrainState& s) {
                               return py::cast(&s.optimizer, py::return_value_policy::reference);
                             })
      .def_readonly("epoch", &tr::TrainState::epoch)
      .def_readonly("epochs", &tr::TrainState::epochs)
      .def_readonly("initial_epoch", &tr::TrainState::initial_epoch)
      .def_readonly("batches_per_epoch", &tr::TrainState::batches_per_epoch)
      .def_readonly("samples_per_epoch", &tr::TrainState::samples_per_epoch)
      .def_readonly("has_validation", &tr::TrainState::has_validation)
      .def_readwrite("stop_training", &tr::TrainState::stop_training,
                     "Set to True to end training after this batch (or epoch).")
      .def_readonly("samples_seen", &tr::TrainState::samples_seen)
      .def_readonly("running_loss", &tr::TrainState::running_loss)
      .def_readonly("running_accuracy", &tr::TrainState::running_accuracy)
      .def_readonly("logs", &tr::TrainState::logs);

  py::class_<tr::Callback, PyCallback, std::shared_ptr<tr::Callback>>(
      t, "Callback",
      "Subclass and override on_train_begin(state), on_epoch_begin(state, epoch), "
      "on_batch_end(state, batch, loss), on_epoch_end(state, epoch, logs), "
      "on_train_end(state).")
      .def(py::init<>())
      .def("on_train_begin", &tr::Callback::on_train_begin)
      .def("on_epoch_begin", &tr::Callback::on_epoch_begin)
      .def("on_batch_end", &tr::Callback::on_batch_end)
      .def("on_epoch_end", &tr::Callback::on_epoch_end)
      .def("on_train_end", &tr::Callback::on_train_end);

  py::class_<tr::History, tr::Callback, std::shared_ptr<tr::History>>(
      t, "History", "Every epoch's logs: h['val_loss'] is a list, one value per epoch.")
      .def(py::init<>())
      .def("__getitem__", &tr::History::operator[], py::arg("key"))
      .def("__contains__", &tr::History::contains)
      .def("__len__", &tr::History::size)
      .def("keys", &tr::History::keys)
      .def_property_readonly("epochs", &tr::History::epochs)
      .def("to_csv", &tr::History::to_csv)
      .def("to_json", &tr::History::to_json)
      .def_property_readonly(
          "history",
          [](const tr::History& h) {
            py::dict d;
            for (const auto& k : h.keys()) d[py::str(k)] = h[k];
            return d;
          },
          "{key: [values]} (Keras's History.history).");

  py::class_<tr::EarlyStopping, tr::Callback, std::shared_ptr<tr::EarlyStopping>>(
      t, "EarlyStopping",
      "Stops when `monitor` has not improved by min_delta for `patience` epochs (Keras).")
      .def(py::init([](const std::string& monitor, double min_delta, int64_t patience,
                       const std::string& mode, bool restore_best_weights,
                       std::optional<double> baseline, int64_t start_from_epoch) {
             tr::EarlyStoppingOptions o;
             o.monitor = monitor;
             o.min_delta = min_delta;
             o.patience = patience;
             o.mode = mode_of(mode);
             o.restore_best_weights = restore_best_weights;
             o.baseline = baseline;
             o.start_from_epoch = start_from_epoch;
             return std::make_shared<tr::EarlyStopping>(o);
           }),
           py::arg("monitor") = "val_loss", py::arg("min_delta") = 0.0, py::arg("patience") = 5,
           py::arg("mode") = "auto", py::arg("restore_best_weights") = true,
           py::arg("baseline") = py::none(), py::arg("start_from_epoch") = 0)
      .def_property_readonly("best", &tr::EarlyStopping::best)
      .def_property_readonly("best_epoch", &tr::EarlyStopping::best_epoch)
      .def_property_readonly("stopped_epoch", &tr::EarlyStopping::stopped_epoch)
      .def_property_readonly("wait", &tr::EarlyStopping::wait)
      .def("state_dict", &tr::EarlyStopping::state_dict)
      .def("load_state_dict", [](tr::EarlyStopping& e, const py::dict& d) {
        nn::StateDict s;
        for (const auto& [k, v] : d) s[py::str(k)] = v.cast<Tensor>();
        e.load_state_dict(s);
      });
  py::class_<tr::ModelCheckpoint, tr::Callback, std::shared_ptr<tr::ModelCheckpoint>>(
      t, "ModelCheckpoint", "Saves the model after each epoch, or when `monitor` improves.")
      .def(py::init([](const std::string& path, const std::string& monitor, bool save_best_only,
                       const std::string& mode, bool full_checkpoint) {
             tr::ModelCheckpointOptions o;
             o.path = path;
             o.monitor = monitor;
             o.save_best_only = save_best_only;
             o.mode = mode_of(mode);
             o.full_checkpoint = full_checkpoint;
             return std::make_shared<tr::ModelCheckpoint>(o);
           }),
           py::arg("filepath"), py::arg("monitor") = "val_loss", py::arg("save_best_only") = false,
           py::arg("mode") = "auto", py::arg("full_checkpoint") = false)
      .def_property_readonly("best", &tr::ModelCheckpoint::best)
      .def_property_readonly("saves", &tr::ModelCheckpoint::saves)
      .def_property_readonly("last_path", &tr::ModelCheckpoint::last_path);
  py::class_<tr::CSVLogger, tr::Callback, std::shared_ptr<tr::CSVLogger>>(
      t, "CSVLogger", "Writes every epoch's logs to a CSV file.")
      .def(py::init([](const std::string& path, bool append) {
             return std::make_shared<tr::CSVLogger>(tr::CSVLoggerOptions{path, append});
           }),
           py::arg("filename"), py::arg("append") = false);
  py::class_<tr::ProgressBar, tr::Callback, std::shared_ptr<tr::ProgressBar>>(
      t, "ProgressBar", "Keras-style progress on sys.stdout (redrawn in place on a terminal).")
      .def(py::init([](bool enabled, std::optional<bool> redraw, int64_t width) {
             return std::make_shared<tr::ProgressBar>(progress_options(enabled, redraw, width));
           }),
           py::arg("enabled") = true, py::arg("redraw") = py::none(), py::arg("width") = 30);

  py::class_<tr::EvalResult>(t, "EvalResult", "evaluate()'s mean loss and accuracy.")
      .def_readonly("loss", &tr::EvalResult::loss)
      .def_readonly("accuracy", &tr::EvalResult::accuracy)
      .def_readonly("samples", &tr::EvalResult::samples)
      .def("__repr__", [](const tr::EvalResult& r) {
        return "EvalResult(loss=" + tr::detail::shortest(r.loss) +
               ", accuracy=" + tr::detail::shortest(r.accuracy) +
               ", samples=" + std::to_string(r.samples) + ")";
      });

  t.def(
      "fit",
      [](std::shared_ptr<nn::Module> model, std::shared_ptr<optim::Optimizer> optimizer,
         py::object loss, py::object train, int64_t epochs, py::object validation,
         py::object callbacks, py::object scheduler, py::object plateau, int64_t initial_epoch,
         double max_grad_norm, bool verbose, py::object validation_loss,
         std::optional<DType> autocast) {
        auto train_loader = loader_of(train, "train");
        std::shared_ptr<data::DataLoader> val;
        if (!validation.is_none()) val = loader_of(validation, "validation");
        tr::FitOptions o;
        o.epochs = epochs;
        o.validation = val.get();
        o.initial_epoch = initial_epoch;
        o.max_grad_norm = max_grad_norm;
        if (autocast) o.autocast = *autocast;
        if (!validation_loss.is_none()) o.validation_loss = loss_of(validation_loss);
        std::shared_ptr<optim::LRScheduler> sch;
        std::shared_ptr<optim::ReduceLROnPlateau> pl;
        if (!scheduler.is_none()) {
          if (py::isinstance<optim::ReduceLROnPlateau>(scheduler))
            pl = scheduler.cast<std::shared_ptr<optim::ReduceLROnPlateau>>();
          else
            sch = scheduler.cast<std::shared_ptr<optim::LRScheduler>>();
        }
        if (!plateau.is_none()) pl = plateau.cast<std::shared_ptr<optim::ReduceLROnPlateau>>();
        o.scheduler = sch.get();
        o.plateau = pl.get();
        if (verbose)
          o.callbacks.push_back(
              std::make_shared<tr::ProgressBar>(progress_options(true, std::nullopt, 30)));
        std::vector<py::object> keep;  // Python callbacks live through fit
        if (!callbacks.is_none())
          for (py::handle c : callbacks) {
            SOMA_CHECK(py::isinstance<tr::Callback>(c),
                       "fit: callbacks must be "
                       "soma.train.Callback objects, got ",
                       std::string(py::str(c.get_type().attr("__name__"))));
            keep.push_back(py::reinterpret_borrow<py::object>(c));
            o.callbacks.push_back(c.cast<std::shared_ptr<tr::Callback>>());
          }
        o.callbacks.push_back(std::make_shared<SignalCheck>());
        const tr::LossFn fn = loss_of(loss);
        py::module_::import("sys").attr("stdout").attr("flush")();
        tr::History h;
        {
          py::gil_scoped_release release;
          h = tr::fit(*model, *optimizer, fn, *train_loader, o);
        }
        return h;
      },
      py::arg("model").none(false), py::arg("optimizer").none(false), py::arg("loss"),
      py::arg("train"), py::arg("epochs") = 10, py::arg("validation") = py::none(),
      py::arg("callbacks") = py::none(), py::arg("scheduler") = py::none(),
      py::arg("plateau") = py::none(), py::arg("initial_epoch") = 0, py::arg("max_grad_norm") = 0.0,
      py::arg("verbose") = true, py::arg("validation_loss") = py::none(),
      py::arg("autocast") = py::none(),
      "Trains `model` on the batches of `train` for `epochs` epochs and returns the History "
      "(soma::train::fit: mini-batch loop, validation after every epoch, schedulers, "
      "callbacks; verbose adds a ProgressBar). autocast=soma.bfloat16 runs each training step "
      "under soma.autocast. Runs in C++ without the GIL; Ctrl-C stops it after the current "
      "batch (KeyboardInterrupt).");
  t.def(
      "evaluate",
      [](std::shared_ptr<nn::Module> model, py::object loader, py::object loss) {
        auto l = loader_of(loader, "loader");
        const tr::LossFn fn = loss_of(loss);
        py::gil_scoped_release release;
        return tr::evaluate(*model, *l, fn);
      },
      py::arg("model").none(false), py::arg("loader"), py::arg("loss"),
      "Mean loss and accuracy of `model` over a loader, in eval mode without grad.");

  // ---- soma.save / soma.load ------------------------------------------------------------------
  m.def(
      "save",
      [](py::object obj, const std::string& path) {
        if (py::isinstance<nn::Module>(obj)) {
          soma::save(obj.cast<nn::Module&>(), path);
          return;
        }
        if (py::isinstance<Tensor>(obj)) {
          io::save_safetensors(path, {{"tensor", obj.cast<Tensor>()}});
          return;
        }
        SOMA_CHECK(py::isinstance<py::dict>(obj),
                   "save: takes a module, a tensor or a dict of "
                   "tensors (a state_dict), got ",
                   std::string(py::str(obj.get_type().attr("__name__"))));
        io::TensorMap tensors;
        for (const auto& [k, v] : obj.cast<py::dict>()) {
          SOMA_CHECK(py::isinstance<Tensor>(v), "save: the value of '", std::string(py::str(k)),
                     "' is not a tensor");
          tensors[py::str(k)] = v.cast<Tensor>();
        }
        io::save_safetensors(path, tensors);
      },
      py::arg("obj"), py::arg("f"),
      "Writes a module's weights, a state_dict or a tensor as a safetensors file (through a "
      "temporary file and a rename). torch's safetensors readers load it.");
  m.def(
      "load",
      [](const std::string& path, py::object into) -> py::object {
        if (!into.is_none()) {
          soma::load(into.cast<nn::Module&>(), path);
          return into;
        }
        io::SafetensorsFile f = io::load_safetensors(path);
        if (f.tensors.size() == 1 && f.tensors.count("tensor")) return wrap(f.tensors["tensor"]);
        py::dict d;
        for (auto& [k, v] : f.tensors) d[py::str(k)] = v;
        return d;
      },
      py::arg("f"), py::arg("model") = py::none(),
      "Reads a safetensors file: a dict of tensors (model.load_state_dict(soma.load(path))), "
      "the tensor soma.save wrote, or, given model=, loads the weights into it.");

  // ---- soma.onnx ------------------------------------------------------------------------------
  py::module_ ox = m.def_submodule("onnx", "soma.onnx: export by tracing, import.");
  ox.def(
      "export",
      [](std::shared_ptr<nn::Module> model, py::object args, const std::string& path, int64_t opset,
         bool dynamic_batch, std::vector<std::string> input_names,
         std::vector<std::string> output_names) {
        std::vector<Tensor> inputs;
        if (py::isinstance<Tensor>(args))
          inputs.push_back(args.cast<Tensor>());
        else
          for (py::handle a : args) inputs.push_back(a.cast<Tensor>());
        onnx::ExportOptions o;
        o.opset = opset;
        o.dynamic_batch = dynamic_batch;
        o.input_names = std::move(input_names);
        o.output_names = std::move(output_names);
        onnx::export_model(*model, inputs, path, o);
      },
      py::arg("model").none(false), py::arg("args"), py::arg("f"), py::kw_only(),
      py::arg("opset_version") = 17, py::arg("dynamic_batch") = true,
      py::arg("input_names") = std::vector<std::string>{},
      py::arg("output_names") = std::vector<std::string>{},
      "Traces model(args) and writes the ONNX model (IR 8, opset 13-17) to f "
      "(torch.onnx.export's argument names).");
  py::class_<onnx::OnnxModel, nn::Module, std::shared_ptr<onnx::OnnxModel>>(
      ox, "OnnxModel", "An imported ONNX graph as a module (evaluate, fine-tune, save).")
      .def_property_readonly("opset", &onnx::OnnxModel::opset)
      .def_property_readonly("producer", &onnx::OnnxModel::producer)
      .def("num_nodes", &onnx::OnnxModel::num_nodes)
      .def("output_op", &onnx::OnnxModel::output_op, py::arg("i") = 0)
      .def("run", &onnx::OnnxModel::run, py::arg("inputs"));
  ox.def("load", &onnx::load, py::arg("f"),
         "Imports an ONNX model (what torch.onnx.export writes for MLPs and CNNs, opsets 13-17).");
  ox.def(
      "save", [](const onnx::OnnxModel& m, const std::string& path) { onnx::save(m, path); },
      py::arg("model"), py::arg("f"), "Writes the model's ONNX file with its current weights.");
}

}  // namespace soma::python
