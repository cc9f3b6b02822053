// libFuzzer target: soma::onnx::load on arbitrary bytes (the wire-format reader, the graph's
// validation and the dry run). Whatever loads must also run on its declared input shape (batch
// 2) or fail with soma::Error, and its state dict must load back into it. The dry run's limits
// are lowered so that no accepted input takes long or much memory.
#include "fuzz_util.h"
#include "soma/autograd/grad_mode.h"
#include "soma/onnx/import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool limited = [] {
    soma::onnx::detail::set_load_limits(1 << 18, 1 << 20, 1 << 24);
    return true;
  }();
  (void)limited;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  soma::fuzz::expect_ok_or_error([&] {
    std::shared_ptr<soma::onnx::OnnxModel> m = soma::onnx::load_bytes(bytes, "fuzz input");
    std::vector<soma::Tensor> inputs;
    for (const soma::onnx::ValueSpec& in : m->inputs()) {
      soma::Shape shape = in.shape;
      int64_t n = 1;
      for (int64_t& d : shape) {
        if (d < 0) d = 2;
        n *= d;
      }
      if (n > (1 << 18)) return;
      inputs.push_back(soma::zeros(shape, in.dtype));
    }
    soma::NoGradGuard no_grad;
    m->run(inputs);
    m->load_state_dict(m->state_dict());
  });
  return 0;
}
