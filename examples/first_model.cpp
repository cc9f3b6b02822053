// The first model of docs/getting-started.md, built and run by ctest: a 2-16-2 network learns
// XOR-like quadrants with Adam. Fails unless its training accuracy exceeds 90 %.
#include <soma/soma.h>

#include <cstdio>

namespace nn = soma::nn;
namespace F = soma::nn::functional;

int main() {
  soma::manual_seed(0);
  soma::Tensor x = soma::randn({512, 2});  // [N, 2]
  soma::Tensor y = soma::gt((x.narrow(1, 0, 1) * x.narrow(1, 1, 1)).reshape({512}), 0.0)
                       .to(soma::kInt64);  // [N] class ids
  nn::Sequential model(nn::Linear(2, 16), nn::ReLU(), nn::Linear(16, 2));
  soma::optim::Adam opt(model.parameters(), {.lr = 1e-2});
  soma::data::DataLoader loader(soma::data::TensorDataset(x, y),
                                {.batch_size = 32, .shuffle = true});
  for (int epoch = 0; epoch < 30; ++epoch)
    for (auto& [xb, yb] : loader) {
      soma::Tensor loss = F::cross_entropy(model(xb), yb);
      opt.zero_grad();
      loss.backward();  // backpropagation
      opt.step();       // one Adam step
    }
  soma::NoGradGuard no_grad;
  soma::Tensor acc = soma::eq(soma::argmax(model(x), 1), y).to(soma::kFloat32).mean();
  std::printf("training accuracy %.3f\n", acc.item<float>());
  soma::save(model, "first.safetensors");  // loads into torch.nn.Sequential (docs/interop.md)
  return acc.item<float>() > 0.9f ? 0 : 1;
}
