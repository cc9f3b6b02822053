#include "precision.h"

#include "soma/core/autocast.h"
#include "soma/core/error.h"
#include "soma/quantization/quantization.h"

namespace soma::cli {

bool is_precision_name(const std::string& precision) {
  return precision == "fp32" || precision == "bf16" || precision == "int8";
}

PrecisionSetup apply_precision(const std::string& precision, std::shared_ptr<nn::Module> model,
                               bool train) {
  SOMA_CHECK(is_precision_name(precision), "--precision ", precision,
             ": unknown precision (expected fp32, bf16 or int8)");
  const bool quantized = quantization::is_quantized(*model);
  if (precision == "int8") {
    SOMA_CHECK(!train,
               "--precision int8 --train: int8 is for inference (quantized models are not "
               "trained); use fp32 or bf16 with --train");
    // a file written by soma quantize runs as it is; a float model gets quantize_dynamic
    if (quantized) return {std::move(model), nullptr};
    try {
      return {quantization::quantize_dynamic(*model), nullptr};
    } catch (const Error& e) {
      detail::fail("--precision int8: ", e.what());
    }
  }
  SOMA_CHECK(!quantized, "--precision ", precision,
             ": the model is int8 (written by soma quantize); use --precision int8");
  if (precision == "fp32") return {std::move(model), nullptr};
  // bf16: the timed loop runs on this thread while the guard lives
  return {std::move(model), std::make_shared<autocast>(kBFloat16)};
}

}  // namespace soma::cli
