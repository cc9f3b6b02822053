// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/): small valid
// inputs of each format, made with soma's own writers, plus a few near-misses. The onnx corpus
// also holds copies of three of torch's files (tests/reference/onnx/{view,cnn_bn,div255}.onnx,
// copied by hand: their Shape/Gather/Concat chains and BatchNormalization nodes). Run once by
// hand after a format change (build-fuzz/make_fuzz_seeds tests/fuzz/corpus); its output is
// checked in.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "soma/io/checkpoint.h"
#include "soma/io/safetensors.h"
#include "soma/onnx/export.h"
#include "soma/soma.h"

namespace fs = std::filesystem;

namespace {

void put(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::FILE* f = std::fopen((dir / name).c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// IDX: magic 0 0 type ndim, big-endian sizes, data.
std::string idx(char type, const std::vector<uint32_t>& dims, size_t elem_bytes) {
  std::string s = {0, 0, type, static_cast<char>(dims.size())};
  size_t n = 1;
  for (uint32_t d : dims) {
    s += be32(d);
    n *= d;
  }
  for (size_t i = 0; i < n * elem_bytes; ++i) s += static_cast<char>(i * 7);
  return s;
}

}  // namespace

// TOML beyond flat `key = value`: tables, a nested table, an inline table, 1_000, inf, a
// comment after a quoted string, and a date (which the reader refuses).
constexpr const char* kTablesToml =
    "[model]\nhidden = [256, 128] # widths\nactivation = \"relu\" # \"x\"\n"
    "[optimizer]\nlr = 1e-3\nbeta2 = 0.999\n[train.loop]\nbatch_size = 1_000\nepochs = 2\n"
    "[misc]\nextra = { quiet = true }\nweight_decay = inf\nwhen = 1979-05-27\n";

int main(int argc, char** argv) {
  const fs::path root = argc > 1 ? argv[1] : "tests/fuzz/corpus";
  // The first byte of idx, csv and config inputs selects a variant (see the targets).
  put(root / "idx", "images_u8", std::string(1, 0) + idx(0x08, {3, 4, 5}, 1));
  put(root / "idx", "labels_u8", std::string(1, 0) + idx(0x08, {6}, 1));
  put(root / "idx", "float32", std::string(1, 0) + idx(0x0D, {2, 3}, 4));
  put(root / "idx", "truncated", std::string(1, 0) + idx(0x08, {10, 10}, 1).substr(0, 40));

  put(root / "csv", "header", std::string(1, 1) + "a,b,label\n1,2,0\n3.5,-4,1\n0,1e3,2\n");
  put(root / "csv", "no_header", std::string(1, 0) + "1,2,0\n3,4,1\n");
  put(root / "csv", "quoted", std::string(1, 1) + "\"x\",\"y\",label\n\"1\",2,1\n");

  soma::manual_seed(0);
  soma::nn::Sequential model(soma::nn::Linear(4, 3), soma::nn::ReLU(), soma::nn::Linear(3, 2));
  soma::optim::Adam opt(model.parameters(), {.lr = 1e-3});
  soma::Tensor loss =
      soma::nn::functional::mse_loss(model.forward(soma::ones({2, 4})), soma::zeros({2, 2}));
  loss.backward();
  opt.step();
  put(root / "safetensors", "model", soma::io::serialize_safetensors(model.state_dict()));
  put(root / "safetensors", "mixed",
      soma::io::serialize_safetensors({{"f64", soma::ones({2, 2}, soma::kFloat64)},
                                       {"i64", soma::tensor(std::vector<int64_t>{1, 2, 3}, {3})},
                                       {"scalar", soma::full({}, 2.5)}},
                                      {{"note", "seed"}}));
  put(root / "safetensors", "lowp",
      soma::io::serialize_safetensors(
          {{"bf16", soma::tensor({1.5f, -0.f, 1e-40f, INFINITY}, {2, 2}).to(soma::kBFloat16)},
           {"f16", soma::tensor({65504.f, 6e-8f, NAN}, {3}).to(soma::kFloat16)},
           {"i8", soma::full({2}, -128, soma::kInt8)},
           {"i32", soma::full({1, 1}, 123456789, soma::kInt32)}}));
  soma::io::Checkpoint ckpt;
  ckpt.model = model.state_dict();
  ckpt.optimizer = opt.state_dict();
  ckpt.epoch = 3;
  ckpt.rng_state = soma::get_rng_state();
  ckpt.extra = {{"history", "[]"}};
  const fs::path tmp = fs::temp_directory_path() / "soma-fuzz-seed.safetensors";
  soma::io::save_checkpoint(tmp.string(), ckpt);
  put(root / "checkpoint", "adam_4_3_2", soma::io::read_file(tmp.string()));
  fs::remove(tmp);

  put(root / "config", "run.json",
      std::string(1, 0) + R"({"hidden": [64, 32], "lr": 0.01, "optimizer": "sgd", "momentum": 0.9,
 "epochs": 3, "batch-size": 32, "dropout": 0.1, "schedule": "step", "seed": 7})");
  put(root / "config", "run.toml",
      std::string(1, 1) +
          "# a run\nhidden = [128]\nlr = 1e-3\noptimizer = \"adamw\"\n"
          "weight_decay = 0.01\nquiet = true\nout = 'runs/x'\n");
  put(root / "config", "tables.toml", std::string(1, 1) + kTablesToml);
  // ONNX: models soma exports (an MLP at opsets 13 and 17, a small CNN), and a truncated one.
  {
    const fs::path onnx_tmp = fs::temp_directory_path() / "soma-fuzz-seed.onnx";
    auto exported = [&](soma::nn::Module& m, const soma::Shape& example, int64_t opset) {
      soma::onnx::ExportOptions o;
      o.opset = opset;
      soma::onnx::export_model(m, {soma::randn(example)}, onnx_tmp.string(), o);
      std::string bytes = soma::io::read_file(onnx_tmp.string());
      fs::remove(onnx_tmp);
      return bytes;
    };
    soma::nn::Sequential cnn(soma::nn::Conv2d(soma::nn::Conv2dOptions(1, 2, 3).padding(1)),
                             soma::nn::BatchNorm2d(soma::nn::BatchNormOptions(2)), soma::nn::ReLU(),
                             soma::nn::MaxPool2d(soma::nn::MaxPool2dOptions(2)),
                             soma::nn::Flatten(), soma::nn::Linear(8, 3), soma::nn::LogSoftmax(1));
    put(root / "onnx", "mlp_13", exported(model, {2, 4}, 13));
    const std::string mlp17 = exported(model, {2, 4}, 17);
    put(root / "onnx", "mlp_17", mlp17);
    put(root / "onnx", "cnn_17", exported(cnn, {2, 1, 4, 4}, 17));
    put(root / "onnx", "truncated", mlp17.substr(0, mlp17.size() / 2));
  }
  std::printf("seeds written under %s\n", root.c_str());
  return 0;
}
