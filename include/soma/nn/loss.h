// Loss modules: the module forms of the functional losses, holding their options.
//   nn::CrossEntropyLoss criterion({.label_smoothing = 0.1});
//   soma::Tensor loss = criterion(logits, labels);
#pragma once

#include "soma/nn/functional.h"
#include "soma/nn/module.h"

namespace soma::nn {

/// Base of the loss modules: forward(input, target) instead of forward(input).
class Loss : public Module {
 public:
  virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
  using Module::forward;
};

class MSELoss : public Cloneable<MSELoss, Loss> {
 public:
  void reset() override {}
  explicit MSELoss(functional::LossOptions options = {}) : options(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string describe() const override { return "MSELoss"; }
  functional::LossOptions options;
};

class L1Loss : public Cloneable<L1Loss, Loss> {
 public:
  void reset() override {}
  explicit L1Loss(functional::LossOptions options = {}) : options(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string describe() const override { return "L1Loss"; }
  functional::LossOptions options;
};

class BCELoss : public Cloneable<BCELoss, Loss> {
 public:
  void reset() override {}
  explicit BCELoss(functional::BCEOptions options = {}) : options(std::move(options)) {}
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string describe() const override { return "BCELoss"; }
  functional::BCEOptions options;
};

class BCEWithLogitsLoss : public Cloneable<BCEWithLogitsLoss, Loss> {
 public:
  void reset() override {}
  explicit BCEWithLogitsLoss(functional::BCEWithLogitsOptions options = {})
      : options(std::move(options)) {}
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string describe() const override { return "BCEWithLogitsLoss"; }
  functional::BCEWithLogitsOptions options;
};

class CrossEntropyLoss : public Cloneable<CrossEntropyLoss, Loss> {
 public:
  void reset() override {}
  explicit CrossEntropyLoss(functional::CrossEntropyOptions options = {})
      : options(std::move(options)) {}
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string describe() const override { return "CrossEntropyLoss"; }
  functional::CrossEntropyOptions options;
};

class NLLLoss : public Cloneable<NLLLoss, Loss> {
 public:
  void reset() override {}
  explicit NLLLoss(functional::NLLOptions options = {}) : options(std::move(options)) {}
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::string describe() const override { return "NLLLoss"; }
  functional::NLLOptions options;
};

}  // namespace soma::nn
