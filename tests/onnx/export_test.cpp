// soma::onnx::export_model: every exported model passes the ONNX checker (Debian python3-onnx,
// tests/onnx/check_model.py) and runs in ONNX Runtime (onnxruntime-node from
// scripts/bootstrap.sh --test, tests/onnx/ort_run.js) giving soma's outputs to 1e-5, on a batch
// size other than the traced example's (the batch stays dynamic). Skipped, saying so, only
// when node or ONNX Runtime is not installed.
#include <gtest/gtest.h>
#include <soma/onnx/export.h>
#include <soma/soma.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "onnx/ort_runner.h"

namespace {

namespace fs = std::filesystem;
namespace nn = soma::nn;
namespace F = soma::nn::functional;
using soma::Tensor;
using soma_test::run_command;

const std::string kTests = SOMA_TEST_DATA_DIR;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "soma_onnx_XXXXXX").string();
    path = mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// The ONNX checker (full_check: strict shape inference too); empty when the model passes.
std::string checker(const std::string& model) {
  return soma_test::onnx_checker(model);
}

// The graph's op types in order ("Gemm,Relu,Gemm").
std::string op_types(const std::string& model) {
  int status = 0;
  std::string out = run_command(
      "/usr/bin/python3 -c 'import onnx, sys; print(\",\".join(n.op_type for n in "
      "onnx.load(sys.argv[1]).graph.node))' " +
          model,
      &status);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

Tensor run_ort(const TempDir& dir, const std::string& model, const Tensor& x) {
  return soma_test::run_ort(dir.path, model, x);
}

// soma's output for x (eval mode, no grad) equals ONNX Runtime's to 1e-5 (|d| <= 1e-5 (1 + |y|)).
void expect_same(const TempDir& dir, const std::string& model, nn::Module& m, const Tensor& x) {
  Tensor expected;
  {
    soma::NoGradGuard no_grad;
    const bool was = m.is_training();
    m.eval();
    expected = m(x);
    m.train(was);
  }
  const Tensor got = run_ort(dir, model, x);
  ASSERT_TRUE(got.defined());
  ASSERT_EQ(got.shape(), expected.shape()) << model;
  const std::vector<float> e = expected.to_vector<float>(), g = got.to_vector<float>();
  // allclose(atol = 1e-5, rtol = 1e-5): float32 rounding grows with the values' size
  float worst = 0;
  for (size_t i = 0; i < e.size(); ++i)
    worst = std::max(worst, std::abs(e[i] - g[i]) / (1.0f + std::abs(e[i])));
  EXPECT_LE(worst, 1e-5f) << model << ": largest difference " << worst
                          << " (relative to 1 + |soma's value|)";
}

soma::onnx::ExportOptions opset(int64_t n) {
  soma::onnx::ExportOptions o;
  o.opset = n;
  return o;
}

// Exports (traced on a batch of 2) and checks against ORT on a batch of 5.
void export_and_check(const TempDir& dir, nn::Module& m, const soma::Shape& sample,
                      const std::string& name, int64_t opset) {
  soma::Shape traced{2}, other{5};
  traced.insert(traced.end(), sample.begin(), sample.end());
  other.insert(other.end(), sample.begin(), sample.end());
  const std::string path = dir.file(name + "_" + std::to_string(opset) + ".onnx");
  soma::onnx::ExportOptions options;
  options.opset = opset;
  soma::onnx::export_model(m, {soma::randn(traced)}, path, options);
  EXPECT_EQ(checker(path), "") << path;
  expect_same(dir, path, m, soma::randn(other));
}

nn::Sequential mlp() {
  return nn::Sequential(nn::Linear(20, 32), nn::ReLU(), nn::Dropout(0.5), nn::Linear(32, 24),
                        nn::GELU(), nn::Linear(24, 16), nn::Sigmoid(), nn::Linear(16, 16),
                        nn::Tanh(), nn::Linear(16, 12), nn::LeakyReLU(0.2), nn::Linear(12, 6),
                        nn::LogSoftmax(1));
}

// Running statistics that matter (a fresh BatchNorm's are 0 and 1).
void randomise_buffers(nn::Module& m) {
  soma::NoGradGuard no_grad;
  for (auto& [name, b] : m.named_buffers())
    if (soma::is_floating(b.dtype())) b.copy_(soma::rand(b.shape()) + 0.5);
}

TEST(OnnxExport, MlpEveryOpset) {
  REQUIRE_ORT();
  soma::manual_seed(1);
  TempDir dir;
  nn::Sequential m = mlp();
  for (int64_t opset = 13; opset <= 17; ++opset) export_and_check(dir, m, {20}, "mlp", opset);
}

TEST(OnnxExport, NestedOpsAreRecordedOnceAndParametersKeepTheirNames) {
  soma::manual_seed(2);
  TempDir dir;
  nn::Sequential m(nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, 2), nn::Softmax(1));
  const std::string path = dir.file("small.onnx");
  soma::onnx::export_model(m, {soma::randn({2, 4})}, path);
  EXPECT_EQ(op_types(path), "Gemm,Relu,Gemm,Softmax");
  const std::string bytes = soma::io::read_file(path);
  for (const char* key : {"0.weight", "0.bias", "2.weight", "2.bias"})
    EXPECT_NE(bytes.find(key), std::string::npos) << key;
  EXPECT_EQ(checker(path), "");
}

// The CLI's `--arch cnn` preset (tools/soma/model_builder.cpp kCnnPreset) with the weights of
// the checked-in trained run (tests/cli/data/cnn-run: its state-dict keys are the layers').
nn::Sequential cnn_preset() {
  return nn::Sequential(
      nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)), nn::BatchNorm2d(nn::BatchNormOptions(32)),
      nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
      nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)),
      nn::BatchNorm2d(nn::BatchNormOptions(64)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
      nn::Flatten(), nn::Linear(3136, 128), nn::ReLU(), nn::Dropout(0.3), nn::Linear(128, 10));
}

TEST(OnnxExport, TrainedCnnPreset) {
  REQUIRE_ORT();
  soma::manual_seed(3);
  TempDir dir;
  nn::Sequential m = cnn_preset();
  m.load_state_dict(
      soma::io::load_safetensors(kTests + "/cli/data/cnn-run/model.safetensors").tensors);
  export_and_check(dir, m, {1, 28, 28}, "cnn", 17);
}

// What tests/onnx/layers.json builds through the CLI (onnx.cli_export), here to 1e-5.
TEST(OnnxExport, LayerList) {
  REQUIRE_ORT();
  soma::manual_seed(4);
  TempDir dir;
  nn::Sequential m(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(1)),
                   nn::BatchNorm2d(nn::BatchNormOptions(4)), nn::GELU(),
                   nn::AvgPool2d(nn::AvgPool2dOptions(2)),
                   nn::ConvTranspose2d(nn::ConvTranspose2dOptions(4, 4, 2).stride(2)), nn::Tanh(),
                   nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::AdaptiveAvgPool2d(7),
                   nn::Dropout2d(0.1), nn::Flatten(), nn::LayerNorm({196}), nn::Linear(196, 32),
                   nn::BatchNorm1d(nn::BatchNormOptions(32)), nn::LeakyReLU(0.1), nn::Dropout(0.2),
                   nn::Linear(32, 10));
  randomise_buffers(m);
  export_and_check(dir, m, {1, 28, 28}, "layers", 17);  // LayerNormalization
  export_and_check(dir, m, {1, 28, 28}, "layers", 13);  // layer_norm decomposed
}

// The lecture's user-defined layer (examples/custom_dense_layer.cpp): relu(x @ w + b).
struct MyDenseLayer : nn::Module {
  Tensor w, b;
  MyDenseLayer(int64_t in, int64_t out) {
    w = register_parameter("w", soma::randn({in, out}));
    b = register_parameter("b", soma::randn({1, out}));
  }
  Tensor forward(const Tensor& x) override { return soma::relu(soma::matmul(x, w) + b); }
};

TEST(OnnxExport, UserDefinedLayer) {
  REQUIRE_ORT();
  soma::manual_seed(5);
  TempDir dir;
  nn::Sequential m(MyDenseLayer(2, 16), MyDenseLayer(16, 8), nn::Linear(8, 2));
  export_and_check(dir, m, {2}, "dense", 17);
  EXPECT_EQ(op_types(dir.file("dense_17.onnx")), "MatMul,Add,Relu,MatMul,Add,Relu,Gemm");
}

// A forward of functional ops: view(size(0), -1), transpose/permute, cat, conv1d, addmm,
// constants, scalar arithmetic, global average pooling, softmax over a middle dim.
struct Functional : nn::Module {
  Tensor conv_w, conv_b, proj, bias, scale;
  Functional() {
    conv_w = register_parameter("conv_w", soma::randn({6, 3, 3}));
    conv_b = register_parameter("conv_b", soma::randn({6}));
    proj = register_parameter("proj", soma::randn({48, 5}));
    bias = register_parameter("bias", soma::randn({5}));
    scale = register_buffer("scale", soma::rand({1, 6, 1}) + 0.5);
  }
  Tensor forward(const Tensor& x) override {                  // x [N, 3, 8]
    Tensor h = F::conv1d(x, conv_w, conv_b, {1}, {1});        // [N, 6, 8]
    h = h * scale - 0.25;                                     // a buffer, a number
    h = soma::softmax(h, 1) + soma::log_softmax(h, 2) / 3.0;  // [N, 6, 8]
    Tensor t = soma::transpose(h, 1, 2);                      // [N, 8, 6]
    Tensor p = soma::permute(h, {0, 2, 1});                   // [N, 8, 6]
    Tensor c = soma::cat({t, -p}, 2);                         // [N, 8, 12]
    Tensor flat = c.view({c.size(0), -1});                    // [N, 96]
    flat = soma::reshape(flat, {-1, 48, 2}).sum(2);           // unmapped sum: must fail below
    return soma::addmm(bias, flat, proj);
  }
};

struct FunctionalOk : Functional {
  Tensor forward(const Tensor& x) override {
    Tensor h = F::conv1d(x, conv_w, conv_b, {1}, {1});
    h = h * scale - 0.25;
    h = soma::softmax(h, 1) + soma::log_softmax(h, 2) / 3.0;
    Tensor t = soma::transpose(h, 1, 2);
    Tensor p = soma::permute(h, {0, 2, 1});
    Tensor c = soma::cat({t, -p}, 2);                             // [N, 8, 12]
    Tensor flat = c.view({c.size(0), -1});                        // [N, 96]
    Tensor two = soma::reshape(flat, {-1, 48});                   // [2N, 48]: batch folded
    Tensor y = soma::addmm(bias, two, proj, 0.5, 2.0);            // [2N, 5]
    Tensor img = soma::reshape(c, {c.size(0), 2, 4, 12});         // [N, 2, 4, 12]
    Tensor g = F::adaptive_avg_pool2d(img, {1, 1}).flatten(1);    // [N, 2]
    return soma::cat({soma::reshape(y, {c.size(0), 10}), g}, 1);  // [N, 12]
  }
};

TEST(OnnxExport, FunctionalForward) {
  REQUIRE_ORT();
  soma::manual_seed(6);
  TempDir dir;
  FunctionalOk m;
  export_and_check(dir, m, {3, 8}, "functional", 17);
  export_and_check(dir, m, {3, 8}, "functional", 14);
}

TEST(OnnxExport, UnmappedOpIsAnErrorNamingItsPlace) {
  soma::manual_seed(7);
  TempDir dir;
  Functional m;
  try {
    soma::onnx::export_model(m, {soma::randn({2, 3, 8})}, dir.file("bad.onnx"));
    FAIL() << "expected a soma::Error";
  } catch (const soma::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'sum'"), std::string::npos) << what;
    EXPECT_NE(what.find("op 14 of the forward"), std::string::npos) << what;
  }
  EXPECT_FALSE(fs::exists(dir.file("bad.onnx")));
  nn::Sequential e(nn::Linear(3, 3), nn::ELU());
  EXPECT_THROW(soma::onnx::export_model(e, {soma::randn({2, 3})}, dir.file("elu.onnx")),
               soma::Error);
}

// A graph that depends on the example's batch size is refused, not written with the example's
// numbers: [N, 6] -> [2, 3N] traced at N = 2 matches the batch by coincidence (its first
// dimension is 2), and zeros({N, 4}) is a constant of the example's batch.
TEST(OnnxExport, BatchDependentGraphIsAnError) {
  TempDir dir;
  struct Mixes : nn::Module {
    Tensor forward(const Tensor& x) override { return soma::reshape(x, {2, 3 * x.size(0)}); }
  } mixes;
  struct MadeWithBatch : nn::Module {
    Tensor forward(const Tensor& x) override { return x + soma::ones({x.size(0), 4}); }
  } made;
  for (nn::Module* m : {static_cast<nn::Module*>(&mixes), static_cast<nn::Module*>(&made)}) {
    const Tensor x = soma::randn({2, m == &mixes ? 6 : 4});
    try {
      soma::onnx::export_model(*m, {x}, dir.file("b.onnx"));
      FAIL() << "expected a soma::Error";
    } catch (const soma::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("the graph traced on a batch of 2 differs from the one traced on a batch "
                          "of 3"),
                std::string::npos)
          << what;
    }
    EXPECT_FALSE(fs::exists(dir.file("b.onnx")));
    // With a fixed batch the same forward exports.
    soma::onnx::ExportOptions fixed;
    fixed.dynamic_batch = false;
    soma::onnx::export_model(*m, {x}, dir.file("b.onnx"), fixed);
    EXPECT_TRUE(fs::exists(dir.file("b.onnx")));
    fs::remove(dir.file("b.onnx"));
  }
}

TEST(OnnxExport, ConstantsAreFoldedNotTraced) {
  // Ops on parameters alone (no traced input) become one constant, even unmapped ones.
  struct Folded : nn::Module {
    Tensor w;
    Folded() { w = register_parameter("w", soma::randn({4, 3})); }
    Tensor forward(const Tensor& x) override { return soma::matmul(x, soma::exp(w).t() * 2.0); }
  } m;
  TempDir dir;
  const std::string path = dir.file("folded.onnx");
  soma::onnx::export_model(m, {soma::randn({2, 3})}, path);
  EXPECT_EQ(op_types(path), "MatMul");
  EXPECT_EQ(checker(path), "");
}

TEST(OnnxExport, OptionsAndModes) {
  soma::manual_seed(8);
  TempDir dir;
  nn::Sequential m = mlp();
  m.train();
  m[2].eval();  // a child with its own mode gets it back
  EXPECT_THROW(soma::onnx::export_model(m, {soma::randn({2, 20})}, dir.file("a.onnx"), opset(12)),
               soma::Error);
  EXPECT_THROW(soma::onnx::export_model(m, {soma::randn({2, 20})}, dir.file("a.onnx"), opset(18)),
               soma::Error);
  EXPECT_THROW(
      soma::onnx::export_model(m, {soma::randn({2, 20}), soma::randn({2, 20})}, dir.file("a.onnx")),
      soma::Error);
  const std::string path = dir.file("named.onnx");
  soma::onnx::export_model(m, {soma::randn({2, 20})}, path,
                           {.opset = 17,
                            .dynamic_batch = false,
                            .input_names = {"features"},
                            .output_names = {"log_probs"},
                            .metadata = {{"k", "v"}}});
  EXPECT_TRUE(m.is_training());
  EXPECT_TRUE(m[0].is_training());
  EXPECT_FALSE(m[2].is_training());
  EXPECT_EQ(checker(path), "");
  int status = 0;
  const std::string io = run_command(
      "/usr/bin/python3 -c 'import onnx, sys; m = onnx.load(sys.argv[1]); g = m.graph; "
      "print(g.input[0].name, g.output[0].name, "
      "g.input[0].type.tensor_type.shape.dim[0].dim_value, "
      "m.ir_version, m.opset_import[0].version, m.metadata_props[0].key)' " +
          path,
      &status);
  EXPECT_EQ(io, "features log_probs 2 8 17 k\n");
}

}  // namespace
