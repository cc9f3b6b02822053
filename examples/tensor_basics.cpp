// Tensors and autograd in a few lines (the snippet from DESIGN.md), with every result checked
// against plain loops. For y = relu(x @ W + 1) and loss = sum(y):
//   d loss / dW = x^T @ (x @ W + 1 > 0)        x: [B, N], W: [N, M]
#include <soma/soma.h>

#include <cmath>
#include <cstdio>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  std::printf("%s  %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

bool close(const std::vector<float>& a, const std::vector<float>& b, float tol = 1e-5f) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::fabs(a[i] - b[i]) > tol * (1.0f + std::fabs(b[i]))) return false;
  }
  return true;
}

}  // namespace

int main() {
  constexpr int64_t B = 2, N = 3, M = 4;
  soma::manual_seed(0);
  const std::vector<float> xs = {1, 2, 3, 4, 5, 6};
  soma::Tensor x = soma::tensor(xs, {B, N});  // row-major
  soma::Tensor w = soma::randn({N, M}).requires_grad_(true);
  soma::Tensor y = soma::relu(soma::matmul(x, w) + soma::ones({M}));  // broadcasting
  soma::Tensor loss = y.sum();
  loss.backward();
  const std::vector<float> g = w.grad().to_vector<float>();
  std::printf("x = %s, W = %s, loss = %g\n", soma::shape_str(x.shape()).c_str(),
              soma::shape_str(w.shape()).c_str(), loss.item<float>());

  // The same forward and backward by hand.
  const std::vector<float> ws = w.to_vector<float>();
  std::vector<float> y_ref(B * M), g_ref(N * M, 0.0f);
  float loss_ref = 0.0f;
  for (int64_t i = 0; i < B; ++i) {
    for (int64_t j = 0; j < M; ++j) {
      float z = 1.0f;
      for (int64_t k = 0; k < N; ++k) z += xs[i * N + k] * ws[k * M + j];
      y_ref[i * M + j] = z > 0.0f ? z : 0.0f;
      loss_ref += y_ref[i * M + j];
      if (z > 0.0f) {
        for (int64_t k = 0; k < N; ++k) g_ref[k * M + j] += xs[i * N + k];
      }
    }
  }
  check(y.shape() == soma::Shape{B, M}, "y has shape [2, 4]");
  check(close(y.to_vector<float>(), y_ref), "relu(x @ W + 1) matches loops");
  check(close({loss.item<float>()}, {loss_ref}), "sum matches loops");
  check(w.grad().shape() == w.shape(), "W.grad has W's shape");
  check(close(g, g_ref), "dW = x^T @ (x @ W + 1 > 0)");

  {
    soma::NoGradGuard no_grad;  // inference: same numbers, no graph
    soma::Tensor y2 = soma::relu(soma::matmul(x, w) + soma::ones({M}));
    check(!y2.requires_grad(), "no graph under NoGradGuard");
    check(close(y2.to_vector<float>(), y_ref), "inference matches");
  }

  soma::Tensor wt = w.t();  // a view of the transpose
  const std::vector<float> wts = wt.to_vector<float>();
  bool t_ok = wt.shape() == soma::Shape{M, N};
  for (int64_t k = 0; k < N && t_ok; ++k) {
    for (int64_t j = 0; j < M; ++j) t_ok = t_ok && wts[j * N + k] == ws[k * M + j];
  }
  check(t_ok, "W.t() is the transpose");

  soma::Tensor idx = soma::tensor(std::vector<int64_t>{1, 0, 1}, {3});
  soma::Tensor rows = soma::index_select(x, 0, idx);
  const std::vector<float> rows_ref = {4, 5, 6, 1, 2, 3, 4, 5, 6};
  check(rows.shape() == soma::Shape{3, N} && close(rows.to_vector<float>(), rows_ref),
        "index_select(x, 0, [1, 0, 1])");
  check(close(x.index_select(0, idx).to_vector<float>(), rows_ref), "x.index_select(0, idx)");

  if (failures > 0) {
    std::printf("%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}
