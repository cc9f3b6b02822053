// soma::save / soma::load: round trip on an nn::Sequential, PyTorch's names in the file, and
// the mismatch errors (the model is unchanged after any of them).
#include "soma/nn/serialize.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/io_test_util.h"
#include "soma/soma.h"

namespace {

using iotest::error_of;
using iotest::same_tensor;
using soma::Tensor;
namespace nn = soma::nn;
namespace io = soma::io;

nn::Sequential mlp(int64_t in = 4, int64_t hidden = 8, int64_t out = 3) {
  return nn::Sequential(nn::Linear(in, hidden), nn::ReLU(), nn::Dropout(0.5),
                        nn::Linear(hidden, out));
}

// Copies of every state tensor, to check that a failed load changed nothing.
nn::StateDict snapshot(const nn::Module& m) {
  nn::StateDict out;
  for (auto& [k, v] : m.state_dict()) out[k] = v.clone();
  return out;
}

void expect_state(const nn::Module& m, const nn::StateDict& expected) {
  const nn::StateDict now = m.state_dict();
  ASSERT_EQ(now.size(), expected.size());
  for (auto& [k, v] : expected) EXPECT_TRUE(same_tensor(now.at(k), v)) << k;
}

TEST(Serialize, RoundTripSequential) {
  iotest::TempDir dir;
  const std::string path = dir.file("model.safetensors");
  soma::manual_seed(1);
  nn::Sequential a = mlp();
  soma::save(a, path);
  soma::manual_seed(2);
  nn::Sequential b = mlp();
  soma::load(b, path);
  expect_state(b, snapshot(a));
  a.eval();
  b.eval();
  Tensor x = soma::randn({5, 4});
  EXPECT_TRUE(same_tensor(a.forward(x), b.forward(x)));
  // The loaded parameters are still the module's own, trainable tensors.
  for (const Tensor& p : b.parameters()) EXPECT_TRUE(p.requires_grad());
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.safetensors"});
}

TEST(Serialize, FileHasPyTorchNamesAndFormatPt) {
  iotest::TempDir dir;
  const std::string path = dir.file("model.safetensors");
  nn::Sequential m = mlp();
  soma::save(m, path);
  io::SafetensorsFile f = io::load_safetensors(path);
  std::vector<std::string> names;
  for (auto& [k, v] : f.tensors) names.push_back(k);
  EXPECT_EQ(names, (std::vector<std::string>{"0.bias", "0.weight", "3.bias", "3.weight"}));
  EXPECT_EQ(f.tensors.at("0.weight").shape(), (soma::Shape{8, 4}));
  EXPECT_EQ(f.tensors.at("3.bias").shape(), (soma::Shape{3}));
  EXPECT_EQ(f.metadata, (io::Metadata{{"format", "pt"}}));
}

TEST(Serialize, Float64ModelRoundTrip) {
  iotest::TempDir dir;
  nn::Sequential a = mlp();
  a.to(soma::kFloat64);
  soma::save(a, dir.file("m"));
  nn::Sequential b = mlp();
  b.to(soma::kFloat64);
  soma::load(b, dir.file("m"));
  expect_state(b, snapshot(a));
}

TEST(Serialize, MissingTensor) {
  iotest::TempDir dir;
  const std::string path = dir.file("small.safetensors");
  soma::save(nn::Sequential(nn::Linear(4, 8), nn::ReLU()), path);
  nn::Sequential m(nn::Linear(4, 8), nn::ReLU(), nn::Linear(8, 3));
  const nn::StateDict before = snapshot(m);
  EXPECT_EQ(error_of([&] { soma::load(m, path); }), "load: missing tensor \"2.bias\" in " + path);
  expect_state(m, before);
}

TEST(Serialize, UnexpectedTensor) {
  iotest::TempDir dir;
  const std::string path = dir.file("big.safetensors");
  soma::save(nn::Sequential(nn::Linear(4, 8), nn::ReLU(), nn::Linear(8, 3)), path);
  nn::Sequential m(nn::Linear(4, 8));
  const nn::StateDict before = snapshot(m);
  const std::string e = error_of([&] { soma::load(m, path); });
  EXPECT_EQ(e.rfind("load: unexpected tensor \"2.bias\" in " + path, 0), 0u) << e;
  expect_state(m, before);
}

TEST(Serialize, ShapeMismatch) {
  iotest::TempDir dir;
  const std::string path = dir.file("model.safetensors");
  io::save_safetensors(path,
                       {{"0.weight", soma::zeros({256, 784})}, {"0.bias", soma::zeros({128})}});
  nn::Sequential m(nn::Linear(784, 128));
  const nn::StateDict before = snapshot(m);
  EXPECT_EQ(error_of([&] { soma::load(m, path); }),
            "load: \"0.weight\" has shape [256, 784] where [128, 784] was expected in " + path);
  expect_state(m, before);
}

TEST(Serialize, DtypeMismatch) {
  iotest::TempDir dir;
  const std::string path = dir.file("model.safetensors");
  nn::Sequential f64(nn::Linear(2, 2));
  f64.to(soma::kFloat64);
  soma::save(f64, path);
  nn::Sequential m(nn::Linear(2, 2));
  const nn::StateDict before = snapshot(m);
  EXPECT_EQ(error_of([&] { soma::load(m, path); }),
            "load: \"0.bias\" has dtype float64 where float32 was expected in " + path);
  expect_state(m, before);
}

TEST(Serialize, CorruptOrMissingFileLeavesModelUnchanged) {
  iotest::TempDir dir;
  nn::Sequential m = mlp();
  const nn::StateDict before = snapshot(m);
  const std::string missing = dir.file("missing.safetensors");
  EXPECT_NE(error_of([&] { soma::load(m, missing); }).find(missing), std::string::npos);
  const std::string path = dir.file("model.safetensors");
  soma::save(m, path);
  const std::string bytes = io::read_file(path);
  io::atomic_write(path, std::string_view(bytes).substr(0, bytes.size() - 1));
  const std::string e = error_of([&] { soma::load(m, path); });
  EXPECT_NE(e.find("offset past end"), std::string::npos) << e;
  expect_state(m, before);
}

}  // namespace
