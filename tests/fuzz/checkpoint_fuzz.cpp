// libFuzzer target: load_checkpoint on arbitrary bytes, then applying what it returns to a
// small model and optimizer, as `soma train --resume` does (a checkpoint of another
// architecture must be an error, never a crash).
#include "fuzz_util.h"
#include "soma/io/checkpoint.h"
#include "soma/soma.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = soma::fuzz::scratch_file(data, size, ".safetensors");
  soma::fuzz::expect_ok_or_error([&] {
    const soma::io::Checkpoint ckpt = soma::io::load_checkpoint(path);
    soma::nn::Sequential model(soma::nn::Linear(4, 3), soma::nn::ReLU(), soma::nn::Linear(3, 2));
    soma::optim::Adam opt(model.parameters(), {.lr = 1e-3});
    model.load_state_dict(ckpt.model);
    opt.load_state_dict(ckpt.optimizer);
    if (!ckpt.rng_state.empty()) soma::set_rng_state(ckpt.rng_state);
    // One step on the loaded state must work too.
    soma::Tensor loss =
        soma::nn::functional::mse_loss(model.forward(soma::ones({2, 4})), soma::zeros({2, 2}));
    opt.zero_grad();
    loss.backward();
    opt.step();
  });
  return 0;
}
