// A small CNN trained for a few steps in soma and in PyTorch from the same initial weights: the
// losses must match step by step and the final state_dict (parameters and BatchNorm buffers)
// must match torch's.
//
// tests/reference/make_cnn_training_reference.py builds, in train mode,
//   Sequential(Conv2d(1, 4, 3, padding=1, bias=False), BatchNorm2d(4), ReLU(), MaxPool2d(2),
//              Conv2d(4, 8, 3, padding=1, bias=False), BatchNorm2d(8), ReLU(),
//              AdaptiveAvgPool2d((2, 2)), Flatten(), Linear(32, 5))
// (why no conv bias: in the script's docstring), and trains it for 6 steps on one fixed batch
// x [6, 1, 8, 8], y [6] with cross_entropy, once with SGD(lr 0.1, momentum 0.9) and once with
// Adam(lr 0.01), both from the same initial weights. tests/reference/cnn_training_reference.txt
// (format at its top, parser in tests/reference/reference_file.h) holds x, y, the initial
// state_dict, each step's loss and the final state_dict of each run. Here the same network is
// built in soma; its state_dict keys, shapes and dtypes must equal torch's exactly; torch's
// initial state is loaded with load_state_dict and the same steps are run. Checked: each
// step's loss (relative 1e-5), every final floating state_dict entry (1e-4 relative to the
// entry's max abs value, running_mean / running_var included) and num_batches_tracked
// (exactly). Each run prints one summary line, e.g.
//   [cnn-training] SGD max_rel_loss_diff=1.13e-07 max_rel_state_diff=9.78e-07 (1.bias)
// SOMA_CNN_TRAINING_REFERENCE may name another file (a perturbed scratch copy, to see it fail).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "reference/reference_file.h"
#include "soma/soma.h"

namespace {

namespace nn = soma::nn;
namespace optim = soma::optim;
namespace F = soma::nn::functional;
using golden::Case;
using golden::RefFile;
using golden::RefTensor;
using soma::Tensor;

constexpr double kLossRtol = 1e-5;   // each step's loss, relative to torch's
constexpr double kStateRtol = 1e-4;  // final state entries, relative to the entry's max |value|

const RefFile& reference() {
  static const RefFile file = golden::parse_reference(
      golden::reference_path("SOMA_CNN_TRAINING_REFERENCE", "cnn_training_reference.txt"),
      {.roles = {"in", "param", "out"}, .require_gout = false});
  return file;
}

const Case* find_case(const std::string& op) {
  for (const Case& c : reference().cases)
    if (c.op == op) return &c;
  return nullptr;
}

// The network of make_cnn_training_reference.py's make_model().
std::shared_ptr<nn::Sequential> make_model() {
  return std::make_shared<nn::Sequential>(
      nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(1).bias(false)), nn::BatchNorm2d(4), nn::ReLU(),
      nn::MaxPool2d(2), nn::Conv2d(nn::Conv2dOptions(4, 8, 3).padding(1).stride(1).bias(false)),
      nn::BatchNorm2d(8), nn::ReLU(), nn::AdaptiveAvgPool2d({2, 2}), nn::Flatten(),
      nn::Linear(32, 5));
}

std::unique_ptr<optim::Optimizer> make_optimizer(const std::string& op, nn::Module& model) {
  if (op == "SGD")
    return std::make_unique<optim::SGD>(model.parameters(),
                                        optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
  if (op == "Adam")
    return std::make_unique<optim::Adam>(model.parameters(), optim::AdamOptions{.lr = 0.01});
  return nullptr;
}

void train_and_compare(const std::string& op) {
  const RefFile& file = reference();
  ASSERT_EQ(golden::file_problem(file), "");
  const Case* found = find_case(op);
  ASSERT_NE(found, nullptr) << "no case for " << op << " in " << file.path;
  const Case& c = *found;
  ASSERT_EQ(c.inputs.size(), 2u) << c.label();
  ASSERT_EQ(c.outs.size(), 1u) << c.label();
  const RefTensor& losses = c.outs[0];
  const int steps = static_cast<int>(losses.values.size());
  ASSERT_GT(steps, 0) << c.label();
  auto snapshots = golden::param_snapshots(c);
  ASSERT_FALSE(snapshots.count(-1)) << c.label() << ": a param key without '<step>/'";
  const auto initial = snapshots[0];
  const auto final_state = snapshots[steps];
  ASSERT_FALSE(initial.empty()) << c.label();
  ASSERT_EQ(initial.size(), final_state.size()) << c.label();

  auto model = make_model();
  model->train();

  // The state_dict keys, shapes and dtypes are torch's, exactly.
  nn::StateDict ours = model->state_dict();
  std::set<std::string> our_keys, torch_keys;
  for (const auto& [key, t] : ours) our_keys.insert(key);
  for (const auto& [key, t] : initial) torch_keys.insert(key);
  ASSERT_EQ(our_keys, torch_keys) << c.label() << ": soma's state_dict keys differ from torch's";
  for (const auto& [key, ref] : initial) {
    EXPECT_EQ(ours.at(key).shape(), ref->shape) << c.label() << ": " << key;
    EXPECT_EQ(ours.at(key).dtype(), ref->dtype) << c.label() << ": " << key;
  }

  nn::StateDict start;
  for (const auto& [key, ref] : initial) start[key] = golden::make_tensor(*ref);
  model->load_state_dict(start);
  for (const auto& [key, t] : model->state_dict())
    ASSERT_EQ(t.to_vector<double>(), start.at(key).to_vector<double>()) << "loaded " << key;

  const Tensor x = golden::make_tensor(c.inputs[0]);
  const Tensor y = golden::make_tensor(c.inputs[1]);
  auto opt = make_optimizer(op, *model);
  ASSERT_NE(opt, nullptr) << op;

  double max_loss_rel = 0.0;
  for (int step = 0; step < steps; ++step) {
    opt->zero_grad();
    Tensor loss = F::cross_entropy((*model)(x), y);
    const double got = loss.item<float>();
    const double want = losses.values[step];
    const double rel = std::abs(got - want) / std::abs(want);
    max_loss_rel = std::max(max_loss_rel, rel);
    EXPECT_LE(rel, kLossRtol) << c.label() << ": loss of step " << step + 1 << " is " << got
                              << ", torch " << want << " (relative difference " << rel << ")";
    loss.backward();
    opt->step();
  }

  double max_state_rel = 0.0;
  std::string worst;
  for (const auto& [key, t] : model->state_dict()) {
    const RefTensor& ref = *final_state.at(key);
    if (ref.dtype == soma::kInt64) {  // num_batches_tracked: exactly
      EXPECT_EQ(golden::compare(c, "final " + key, t, ref, {0.0, 0.0}), "");
      continue;
    }
    double scale = 0.0;
    for (double v : ref.values) scale = std::max(scale, std::abs(v));
    ASSERT_GT(scale, 0.0) << key;
    EXPECT_EQ(golden::compare(c, "final " + key, t, ref, {0.0, kStateRtol * scale}), "");
    if (t.shape() != ref.shape) continue;
    const std::vector<double> got = t.to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i) {
      const double rel = std::abs(got[i] - ref.values[i]) / scale;
      if (rel > max_state_rel) max_state_rel = rel, worst = key;
    }
  }
  std::printf("[cnn-training] %s max_rel_loss_diff=%.3g max_rel_state_diff=%.3g (%s)\n", op.c_str(),
              max_loss_rel, max_state_rel, worst.c_str());
}

TEST(CnnTrainingFile, LoadsCases) {
  const RefFile& file = reference();
  ASSERT_EQ(golden::file_problem(file), "");
  std::set<std::string> ops;
  for (const Case& c : file.cases) ops.insert(c.op);
  EXPECT_EQ(ops, (std::set<std::string>{"SGD", "Adam"}));
}

TEST(CnnTraining, SgdMomentumMatchesTorch) {
  train_and_compare("SGD");
}

TEST(CnnTraining, AdamMatchesTorch) {
  train_and_compare("Adam");
}

}  // namespace
