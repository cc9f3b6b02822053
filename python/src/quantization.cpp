// soma.quantization (int8: quantize_dynamic, prepare/convert, observers, the quantized layers)
// and the thread's bfloat16 autocast flag under soma.autocast (python/soma/quantization.py,
// python/soma/__init__.py). include/soma/quantization/quantization.h, core/autocast.h.
#include "soma_py.h"

namespace soma::python {

namespace q = soma::quantization;

namespace {

template <typename M>
using Layer = py::class_<M, nn::Module, std::shared_ptr<M>>;

py::tuple qparams_tuple(const q::QParams& p) {
  return py::make_tuple(p.scale, p.zero_point);
}

}  // namespace

void bind_quantization(py::module_& m) {
  py::module_ qm = m.def_submodule(
      "quantization", "soma.quantization: int8 inference (torch.ao.quantization's eager mode).");

  qm.def(
      "quantize_dynamic",
      [](std::shared_ptr<nn::Module> model) {
        SOMA_CHECK(model != nullptr, "quantize_dynamic: model is None");
        HeavyScope g(model->num_parameters() * 4);
        return q::quantize_dynamic(*model);
      },
      py::arg("model"),
      "A copy of `model` with every nn.Linear replaced by an int8 DynamicQuantLinear "
      "(torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8) with "
      "per-channel weights); the copy is in eval mode.");
  qm.def(
      "prepare",
      [](std::shared_ptr<nn::Module> model, const std::string& observer) {
        SOMA_CHECK(model != nullptr, "prepare: model is None");
        return q::prepare(*model, {.observer = observer});
      },
      py::arg("model"), py::arg("observer") = "histogram",
      "A calibration copy of `model` (eval mode): Conv2d+BatchNorm2d folded, ReLU fused, an "
      "observer ('histogram' or 'minmax') on each Conv2d's and Linear's input. Run calibration "
      "batches through it, then convert().");
  qm.def(
      "convert",
      [](std::shared_ptr<nn::Module> prepared) {
        SOMA_CHECK(prepared != nullptr, "convert: model is None");
        return q::convert(*prepared);
      },
      py::arg("prepared"),
      "The int8 model of a prepared, calibrated one: QuantizedConv2d / QuantizedLinear with "
      "the calibrated input scales.");
  qm.def(
      "_quantize_dynamic_", [](nn::Module& model) { return q::quantize_dynamic_(model); },
      py::arg("model"),
      "quantize_dynamic in place on the children of `model` (soma.quantization's wrapper "
      "deep-copies first, so Python containers stay Python objects).");
  qm.def(
      "_prepare_",
      [](nn::Module& model, const std::string& observer) {
        return q::prepare_(model, {.observer = observer});
      },
      py::arg("model"), py::arg("observer") = "histogram",
      "prepare in place (see _quantize_dynamic_).");
  qm.def(
      "_convert_", [](nn::Module& model) { return q::convert_(model); }, py::arg("model"),
      "convert in place (see _quantize_dynamic_).");
  qm.def(
      "is_quantized", [](const nn::Module& model) { return q::is_quantized(model); },
      py::arg("model"), "Whether `model` holds a quantized layer (at any depth).");
  qm.def(
      "choose_qparams",
      [](float min, float max) { return qparams_tuple(q::choose_qparams(min, max)); },
      py::arg("min"), py::arg("max"),
      "(scale, zero_point) of torch's ChooseQuantizationParams for uint8 0..255 (what a dynamic "
      "layer uses for each batch).");

  Layer<q::DynamicQuantLinear>(qm, "DynamicQuantLinear",
                               "nn.Linear with int8 per-channel weights; inputs quantized per "
                               "batch (torch.ao.nn.quantized.dynamic.Linear).")
      .def_static(
          "from_float",
          [](const nn::Linear& lin) { return q::DynamicQuantLinear::from_float(lin); },
          py::arg("linear"), "The int8 version of a float nn.Linear.")
      .def_readonly("in_features", &q::DynamicQuantLinear::in_features)
      .def_readonly("out_features", &q::DynamicQuantLinear::out_features)
      .def_readonly("relu", &q::DynamicQuantLinear::relu)
      .def("dequantized_weight", &q::DynamicQuantLinear::dequantized_weight,
           "weight_scale[o] * weight[o, i] as float32.");
  Layer<q::QuantizedLinear>(qm, "QuantizedLinear",
                            "nn.Linear with int8 weights and a calibrated uint8 input "
                            "(static quantization; ReLU fused when `relu`).")
      .def_readonly("in_features", &q::QuantizedLinear::in_features)
      .def_readonly("out_features", &q::QuantizedLinear::out_features)
      .def_readonly("relu", &q::QuantizedLinear::relu);
  Layer<q::QuantizedConv2d>(qm, "QuantizedConv2d",
                            "nn.Conv2d with int8 weights and a calibrated uint8 input "
                            "(static quantization; BatchNorm folded, ReLU fused when `relu`).")
      .def_readonly("in_channels", &q::QuantizedConv2d::in_channels)
      .def_readonly("out_channels", &q::QuantizedConv2d::out_channels)
      .def_readonly("relu", &q::QuantizedConv2d::relu);
  Layer<q::Observed>(qm, "Observed",
                     "A Conv2d or Linear with an observer on its input (what prepare() puts "
                     "in their place).")
      .def_property_readonly("layer", [](const q::Observed& o) { return o.layer; })
      .def(
          "qparams", [](const q::Observed& o) { return qparams_tuple(o.observer->qparams()); },
          "(scale, zero_point) the observer chooses from what it saw.");

  py::class_<q::Observer>(qm, "Observer", "Chooses uint8 qparams from the values it observes.")
      .def("observe", &q::Observer::observe, py::arg("x"), "Records the values of x.")
      .def(
          "qparams", [](const q::Observer& o) { return qparams_tuple(o.qparams()); },
          "(scale, zero_point): torch's _calculate_qparams over range().")
      .def("range", &q::Observer::range, "The (min, max) qparams() quantizes.")
      .def(
          "__call__",
          [](q::Observer& o, const Tensor& x) {
            o.observe(x);
            return x;
          },
          py::arg("x"), "observe(x), then x (as torch's observers).");
  py::class_<q::MinMaxObserver, q::Observer>(qm, "MinMaxObserver",
                                             "The running min and max (torch's MinMaxObserver).")
      .def(py::init<>());
  py::class_<q::HistogramObserver, q::Observer>(
      qm, "HistogramObserver",
      "A histogram and torch's L2 range search, which clips outliers (torch's "
      "HistogramObserver).")
      .def(py::init<int64_t>(), py::arg("bins") = 2048);

  m.def("_set_autocast_enabled", &set_autocast_enabled, py::arg("enabled"),
        "Sets this thread's bfloat16 autocast flag and returns the previous one (soma.autocast "
        "uses it).");
  m.def("is_autocast_enabled", &is_autocast_enabled,
        "Whether soma.autocast is on for this thread (torch.is_autocast_cpu_enabled).");
}

}  // namespace soma::python
