// io::checkpoint: model + Adam state + epoch + RNG round trip (training resumes bit for bit),
// the file's layout, and the errors for files that are not soma checkpoints.
#include "soma/io/checkpoint.h"

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
namespace F = soma::nn::functional;

nn::Sequential mlp() {
  return nn::Sequential(nn::Linear(3, 6), nn::ReLU(), nn::Linear(6, 2));
}

void train_steps(nn::Sequential& model, soma::optim::Optimizer& opt, int steps) {
  for (int i = 0; i < steps; ++i) {
    Tensor x = soma::randn({8, 3});
    Tensor y = soma::randint(0, 2, {8});
    Tensor loss = F::cross_entropy(model.forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
}

TEST(Checkpoint, RoundTripResumesExactly) {
  iotest::TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  soma::manual_seed(7);
  nn::Sequential model = mlp();
  soma::optim::Adam opt(model.parameters(), {.lr = 1e-2});
  train_steps(model, opt, 3);

  io::Checkpoint ckpt{.model = model.state_dict(),
                      .optimizer = opt.state_dict(),
                      .epoch = 3,
                      .rng_state = soma::get_rng_state(),
                      .extra = {{"history", R"({"loss": [0.9, 0.7, 0.6]})"}, {"config", "x=1"}}};
  io::save_checkpoint(path, ckpt);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"ckpt.safetensors"});
  // The original run continues: one more step with fresh random data.
  const Tensor draw_after_save = soma::randn({4});
  train_steps(model, opt, 1);

  soma::manual_seed(999);  // scramble the generator; the checkpoint must restore it
  io::Checkpoint back = io::load_checkpoint(path);
  EXPECT_EQ(back.epoch, 3);
  EXPECT_EQ(back.rng_state, ckpt.rng_state);
  EXPECT_EQ(back.extra, ckpt.extra);
  ASSERT_EQ(back.model.size(), ckpt.model.size());
  ASSERT_EQ(back.optimizer.size(), ckpt.optimizer.size());
  for (auto& [k, v] : ckpt.optimizer) EXPECT_TRUE(same_tensor(back.optimizer.at(k), v)) << k;

  nn::Sequential resumed = mlp();
  soma::optim::Adam resumed_opt(resumed.parameters(), {.lr = 0.5});
  resumed.load_state_dict(back.model);
  resumed_opt.load_state_dict(back.optimizer);
  soma::set_rng_state(back.rng_state);
  EXPECT_TRUE(same_tensor(soma::randn({4}), draw_after_save)) << "draw after restore";
  EXPECT_DOUBLE_EQ(resumed_opt.lr(), 1e-2);
  train_steps(resumed, resumed_opt, 1);
  const nn::StateDict a = model.state_dict(), b = resumed.state_dict();
  for (auto& [k, v] : a) EXPECT_TRUE(same_tensor(b.at(k), v)) << k << " after one more step";
}

TEST(Checkpoint, FileLayout) {
  iotest::TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  nn::Sequential model = mlp();
  soma::optim::Adam opt(model.parameters());
  train_steps(model, opt, 1);
  io::save_checkpoint(path, {.model = model.state_dict(),
                             .optimizer = opt.state_dict(),
                             .epoch = 12,
                             .rng_state = soma::get_rng_state(),
                             .extra = {{"note", "hi"}}});
  io::SafetensorsFile f = io::load_safetensors(path);
  EXPECT_EQ(f.metadata.at("format"), "soma-checkpoint-1");
  EXPECT_EQ(f.metadata.at("epoch"), "12");
  EXPECT_EQ(f.metadata.at("note"), "hi");
  EXPECT_EQ(f.metadata.at("rng_state"), soma::get_rng_state());
  EXPECT_TRUE(f.tensors.count("model.0.weight"));
  EXPECT_TRUE(f.tensors.count("model.2.bias"));
  for (auto& [k, v] : opt.state_dict()) EXPECT_TRUE(f.tensors.count("optimizer." + k)) << k;
  EXPECT_EQ(f.tensors.size(), model.state_dict().size() + opt.state_dict().size());
}

TEST(Checkpoint, SaveErrors) {
  iotest::TempDir dir;
  const std::string path = dir.file("c");
  io::Checkpoint negative;
  negative.epoch = -1;
  std::string e = error_of([&] { io::save_checkpoint(path, negative); });
  EXPECT_NE(e.find("epoch must be >= 0"), std::string::npos) << e;
  io::Checkpoint reserved;
  reserved.extra = {{"epoch", "5"}};
  e = error_of([&] { io::save_checkpoint(path, reserved); });
  EXPECT_NE(e.find("extra entry \"epoch\" is reserved"), std::string::npos) << e;
  e = error_of([&] { io::save_checkpoint(dir.file("nodir/c"), {}); });
  EXPECT_NE(e.find(dir.file("nodir/c")), std::string::npos) << e;
  EXPECT_TRUE(dir.list().empty());
}

TEST(Checkpoint, NotASomaCheckpoint) {
  iotest::TempDir dir;
  const std::string weights = dir.file("model.safetensors");
  soma::save(mlp(), weights);
  std::string e = error_of([&] { io::load_checkpoint(weights); });
  EXPECT_NE(e.find("not a soma checkpoint (format \"pt\""), std::string::npos) << e;
  const std::string plain = dir.file("plain.safetensors");
  io::save_safetensors(plain, {{"model.x", soma::ones({1})}});
  e = error_of([&] { io::load_checkpoint(plain); });
  EXPECT_NE(e.find("not a soma checkpoint (no \"format\""), std::string::npos) << e;
  EXPECT_NE(e.find(plain), std::string::npos) << e;
}

TEST(Checkpoint, BadEpoch) {
  iotest::TempDir dir;
  const std::string path = dir.file("c");
  for (const char* epoch : {"", "abc", "-1", "3x", " 3", "99999999999999999999999"}) {
    io::save_safetensors(path, {}, {{"format", "soma-checkpoint-1"}, {"epoch", epoch}});
    const std::string e = error_of([&] { io::load_checkpoint(path); });
    EXPECT_NE(e.find("bad epoch \"" + std::string(epoch) + "\""), std::string::npos) << e;
  }
  io::save_safetensors(path, {}, {{"format", "soma-checkpoint-1"}});
  EXPECT_NE(error_of([&] { io::load_checkpoint(path); }).find("bad epoch"), std::string::npos);
}

TEST(Checkpoint, UnexpectedTensorAndSafetensorsErrors) {
  iotest::TempDir dir;
  const std::string path = dir.file("c");
  io::save_safetensors(path, {{"weights", soma::ones({1})}},
                       {{"format", "soma-checkpoint-1"}, {"epoch", "1"}});
  std::string e = error_of([&] { io::load_checkpoint(path); });
  EXPECT_NE(e.find("unexpected tensor \"weights\""), std::string::npos) << e;
  io::atomic_write(path, "garbage!garbage!");
  e = error_of([&] { io::load_checkpoint(path); });
  EXPECT_NE(e.find("bad header length"), std::string::npos) << e;
  EXPECT_NE(e.find(path), std::string::npos) << e;
}

TEST(Checkpoint, EmptyCheckpointRoundTrip) {
  iotest::TempDir dir;
  io::save_checkpoint(dir.file("c"), {});
  io::Checkpoint c = io::load_checkpoint(dir.file("c"));
  EXPECT_TRUE(c.model.empty());
  EXPECT_TRUE(c.optimizer.empty());
  EXPECT_EQ(c.epoch, 0);
  EXPECT_EQ(c.rng_state, "");
  EXPECT_TRUE(c.extra.empty());
}

}  // namespace
