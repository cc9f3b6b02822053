// Uses an installed soma through find_package(soma): d/dW sum(relu(x @ W)) on a small tensor,
// checked against the same gradient computed with plain loops.
//   d sum(relu(z)) / dW[k][j] = sum_i x[i][k] * (z[i][j] > 0),  z = x @ W
#include <soma/soma.h>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  constexpr int64_t B = 3, N = 4, M = 2;  // x: [B, N], W: [N, M]
  soma::manual_seed(42);
  const std::vector<float> xs = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f,
                                 0.0f, -2.0f, 1.0f, 1.0f,  -1.0f,  0.5f};
  soma::Tensor x = soma::tensor(xs, {B, N});
  soma::Tensor w = soma::randn({N, M}).requires_grad_(true);
  soma::Tensor loss = soma::relu(soma::matmul(x, w)).sum();
  loss.backward();
  const std::vector<float> grad = w.grad().to_vector<float>();

  const std::vector<float> ws = w.to_vector<float>();
  std::vector<float> expected(N * M, 0.0f);
  for (int64_t i = 0; i < B; ++i) {
    for (int64_t j = 0; j < M; ++j) {
      float z = 0.0f;
      for (int64_t k = 0; k < N; ++k) z += xs[i * N + k] * ws[k * M + j];
      if (z > 0.0f) {
        for (int64_t k = 0; k < N; ++k) expected[k * M + j] += xs[i * N + k];
      }
    }
  }

  bool ok = grad.size() == expected.size();
  std::printf("loss = %g\ngrad =", loss.item<float>());
  for (size_t e = 0; e < grad.size(); ++e) {
    std::printf(" %g", grad[e]);
    if (e < expected.size() && std::fabs(grad[e] - expected[e]) > 1e-5f) ok = false;
  }
  std::printf("\n");
  if (!ok) {
    std::printf("FAIL: expected");
    for (float v : expected) std::printf(" %g", v);
    std::printf("\n");
    return 1;
  }
  std::printf("OK\n");
  return 0;
}
