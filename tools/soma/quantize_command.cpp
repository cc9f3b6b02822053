// soma quantize: an int8 copy of a model file, written as a model file that load_model
// rebuilds (its metadata says "quantization": "dynamic" or "static").
//   dynamic: soma::quantization::quantize_dynamic (every Linear; inputs quantized per batch)
//   static:  prepare, run --calibrate batches of the training data, convert (Conv2d and
//            Linear; calibrated input scales; BatchNorm folded, ReLU fused)
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "data_select.h"
#include "model_file.h"
#include "onnx_model.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/quantization/quantization.h"

namespace soma::cli {

namespace {

// Bytes of the model's parameters and buffers as stored.
int64_t state_bytes(const nn::Module& m) {
  int64_t bytes = 0;
  for (const auto& [name, t] : m.state_dict())
    bytes += t.numel() * static_cast<int64_t>(element_size(t.dtype()));
  return bytes;
}

// prepare, calibrate on the first `batches` x kEvalBatch training samples, convert.
std::shared_ptr<nn::Sequential> quantize_static(const ModelFile& mf, const QuantizeArgs& args) {
  SOMA_CHECK(args.calibrate > 0 && args.calibrate <= 100000, "quantize: invalid --calibrate ",
             args.calibrate, " (batches of ", kEvalBatch, " samples, at least 1)");
  DataArgs d = args.data;
  const Data data = load_data(d.data.empty() ? "/usr/share/datasets/fashion-mnist" : d.data, d.csv,
                              d.label_column, "train");
  SOMA_CHECK(data.x.size(1) == mf.arch.in_features(), "quantize: the calibration data has ",
             data.x.size(1), " features per sample, the model expects ", mf.arch.in_features());
  auto prepared = quantization::prepare(*mf.model, {.observer = args.observer});
  const data::transforms::Transform input = model_input(mf.normalization, mf.arch.input_shape);
  NoGradGuard no_grad;
  const int64_t n = std::min<int64_t>(data.x.size(0), args.calibrate * kEvalBatch);
  for (int64_t start = 0; start < n; start += kEvalBatch)
    (*prepared)(input(data.x.narrow(0, start, std::min<int64_t>(kEvalBatch, n - start))));
  std::printf("calibrated on %lld training samples (%s observer)\n", static_cast<long long>(n),
              args.observer.c_str());
  return std::dynamic_pointer_cast<nn::Sequential>(quantization::convert(*prepared));
}

}  // namespace

void quantize(const QuantizeArgs& args) {
  SOMA_CHECK(!is_onnx_path(args.model), "quantize: ", args.model,
             " is an ONNX model; soma quantize reads model.safetensors files written by soma "
             "train");
  SOMA_CHECK(!args.out.empty(), "quantize: --out is empty");
  SOMA_CHECK(args.static_ || (args.data.data.empty() && args.data.csv.empty()),
             "quantize: --data and --csv are calibration data, for --static only");
  ModelFile mf = load_model(args.model);
  SOMA_CHECK(mf.arch.quantization.empty(), "quantize: ", args.model, " is already quantized (",
             mf.arch.quantization, ")");
  const int64_t before = state_bytes(*mf.model);
  std::string what;
  try {
    if (args.static_) {
      mf.model = quantize_static(mf, args);
      mf.arch.quantization = "static";
      what =
          "Conv2d and Linear layers to int8 (static: calibrated input scales, BatchNorm "
          "folded, ReLU fused)";
    } else {
      const int64_t layers = quantization::quantize_dynamic_(*mf.model);
      mf.arch.quantization = "dynamic";
      what = std::to_string(layers) + " Linear layer" + (layers == 1 ? "" : "s") +
             " to int8 (dynamic, per-channel weights)";
    }
  } catch (const Error& e) {
    detail::fail("quantize: ", args.model, ": ", e.what());
  }
  save_model(args.out, *mf.model, mf.arch, mf.normalization);
  std::printf("quantized %s: %.3f MB -> %.3f MB\nwrote %s\n", what.c_str(), before / 1e6,
              state_bytes(*mf.model) / 1e6, args.out.c_str());
}

}  // namespace soma::cli
