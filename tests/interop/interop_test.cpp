// safetensors interop with PyTorch.
//   SomaLoadsTorchWrittenFile: pure C++; torch_linear.safetensors and its logits were written
//     by torch_safetensors.py (make-fixture) and are checked in, so this needs no Python.
//   TorchReadsSomaModel / SomaReadsTorchModel: run the script with /usr/bin/python3; skipped
//     when it cannot `import torch`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/io_test_util.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
namespace nn = soma::nn;

const std::string kDir = std::string(SOMA_TEST_DATA_DIR) + "/interop";
const std::string kScript = kDir + "/torch_safetensors.py";
const char* kArch = "nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))";

nn::Sequential fixture_model() {
  return nn::Sequential(nn::Linear(4, 8), nn::ReLU(), nn::Linear(8, 3));
}

// Reads a [rows, cols] matrix: one row of numbers per line.
std::vector<std::vector<double>> read_rows(std::istream& in, int64_t rows = -1) {
  std::vector<std::vector<double>> out;
  std::string line;
  while ((rows < 0 || static_cast<int64_t>(out.size()) < rows) && std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<double> row;
    for (double v; ls >> v;) row.push_back(v);
    if (!row.empty()) out.push_back(row);
  }
  return out;
}

Tensor to_tensor(const std::vector<std::vector<double>>& rows) {
  std::vector<float> flat;
  for (auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return soma::tensor(flat, {static_cast<int64_t>(rows.size()),
                             rows.empty() ? 0 : static_cast<int64_t>(rows[0].size())});
}

// Largest |a - b| over all elements (same shape checked).
double max_abs_diff(const Tensor& a, const std::vector<std::vector<double>>& b) {
  EXPECT_EQ(a.shape(), (soma::Shape{static_cast<int64_t>(b.size()),
                                    static_cast<int64_t>(b.empty() ? 0 : b[0].size())}));
  std::vector<float> av = a.to_vector<float>();
  double worst = 0;
  size_t i = 0;
  for (auto& row : b)
    for (double v : row) {
      if (i >= av.size()) return INFINITY;
      worst = std::max(worst, std::abs(av[i++] - v));
    }
  return worst;
}

bool have_torch() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
  return ok;
}

// Runs a shell command and returns its stdout; a non-zero exit fails the test.
std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    ADD_FAILURE() << "popen failed: " << cmd;
    return out;
  }
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int rc = pclose(p);
  EXPECT_EQ(rc, 0) << cmd << "\n" << out;
  return out;
}

void write_rows(const std::string& path, const Tensor& m) {
  std::ofstream f(path);
  f.precision(9);
  const std::vector<float> v = m.to_vector<float>();
  for (int64_t r = 0; r < m.size(0); ++r) {
    for (int64_t c = 0; c < m.size(1); ++c) f << (c ? " " : "") << v[r * m.size(1) + c];
    f << "\n";
  }
}

TEST(Interop, SomaLoadsTorchWrittenFile) {
  std::ifstream expected(kDir + "/torch_linear_expected.txt");
  ASSERT_TRUE(expected) << kDir << "/torch_linear_expected.txt";
  std::vector<std::vector<double>> inputs, logits;
  for (std::string line; std::getline(expected, line);) {
    std::istringstream ls(line);
    std::string tag;
    int64_t rows = 0;
    ls >> tag >> rows;
    if (tag == "inputs") inputs = read_rows(expected, rows);
    if (tag == "logits") logits = read_rows(expected, rows);
  }
  ASSERT_EQ(inputs.size(), 5u);
  ASSERT_EQ(logits.size(), 5u);

  nn::Sequential model = fixture_model();
  soma::load(model, kDir + "/torch_linear.safetensors");
  model.eval();
  Tensor out = model.forward(to_tensor(inputs));
  EXPECT_LT(max_abs_diff(out, logits), 1e-6);
  // torch's writer put {"format": "pt"} in the metadata.
  EXPECT_EQ(soma::io::load_safetensors(kDir + "/torch_linear.safetensors").metadata.at("format"),
            "pt");
}

TEST(Interop, TorchReadsSomaModel) {
  if (!have_torch()) GTEST_SKIP() << "/usr/bin/python3 cannot import torch";
  iotest::TempDir dir;
  soma::manual_seed(42);
  nn::Sequential model = fixture_model();
  model.eval();
  soma::save(model, dir.file("model.safetensors"));
  Tensor x = soma::randn({6, 4});
  write_rows(dir.file("inputs.txt"), x);
  std::istringstream torch_out(run("/usr/bin/python3 " + kScript + " logits " +
                                   dir.file("model.safetensors") + " " + dir.file("inputs.txt") +
                                   " --arch '" + kArch + "'"));
  // Float32 inputs round-trip exactly through 9 significant digits.
  EXPECT_LT(max_abs_diff(model.forward(x), read_rows(torch_out)), 1e-6);
}

TEST(Interop, SomaReadsTorchModel) {
  if (!have_torch()) GTEST_SKIP() << "/usr/bin/python3 cannot import torch";
  iotest::TempDir dir;
  Tensor x = soma::randn({6, 4});
  write_rows(dir.file("inputs.txt"), x);
  run("/usr/bin/python3 " + kScript + " write " + dir.file("torch.safetensors") +
      " --seed 3 --arch '" + kArch + "' --inputs " + dir.file("inputs.txt") + " --logits " +
      dir.file("logits.txt"));
  nn::Sequential model = fixture_model();
  soma::load(model, dir.file("torch.safetensors"));
  model.eval();
  std::ifstream logits(dir.file("logits.txt"));
  EXPECT_LT(max_abs_diff(model.forward(x), read_rows(logits)), 1e-6);
}

}  // namespace
