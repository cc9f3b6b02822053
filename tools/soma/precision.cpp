#include "precision.h"

#include "soma/core/error.h"

namespace soma::cli {

bool is_precision_name(const std::string& precision) {
  return precision == "fp32" || precision == "bf16" || precision == "int8";
}

PrecisionSetup apply_precision(const std::string& precision, std::shared_ptr<nn::Module> model,
                               bool train) {
  SOMA_CHECK(is_precision_name(precision), "--precision ", precision,
             ": unknown precision (expected fp32, bf16 or int8)");
  if (precision == "fp32") return {std::move(model), nullptr};
  SOMA_CHECK(!(train && precision == "int8"),
             "--precision int8 --train: int8 is for inference (quantized models are not "
             "trained); use fp32 or bf16 with --train");
  // bf16: soma::autocast around the loop (scope); int8: soma::quantization's copy of the model.
  // Neither library is in this build yet.
  soma::detail::fail("--precision ", precision, ": ",
                     precision == "bf16" ? "bfloat16 autocast" : "int8 quantization",
                     " is not built yet (only fp32 runs today)");
}

}  // namespace soma::cli
