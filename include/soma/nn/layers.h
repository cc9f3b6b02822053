// Layers: Linear, activations, Flatten, Dropout, Identity. Each is a thin module whose forward
// calls one functional op.
//   nn::Sequential model(nn::Linear(784, 256), nn::ReLU(), nn::Dropout(0.5),
//                        nn::Linear(256, 10));
#pragma once

#include <cstdint>
#include <string>

#include "soma/nn/module.h"

namespace soma::nn {

struct LinearOptions {
  bool bias = true;        // learn an additive bias
  DType dtype = kFloat32;  // parameter dtype
};

/// Dense (fully connected) layer: y = x @ weight^T + bias.
/// weight [out, in] ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with a = sqrt(5), as PyTorch);
/// bias [out] ~ U(-1/sqrt(in), 1/sqrt(in)). Input [..., in] -> output [..., out].
class Linear : public Cloneable<Linear> {
 public:
  Linear(int64_t in_features, int64_t out_features, LinearOptions options = {});
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  /// Registers new weight and bias tensors, initialised by reset_parameters().
  void reset() override;
  /// Re-draws weight and bias with the default initialisation.
  void reset_parameters();

  int64_t in_features, out_features;
  LinearOptions options;
  Tensor weight, bias;  // bias is undefined when options.bias is false
};

class ReLU : public Cloneable<ReLU> {
 public:
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "ReLU"; }
};

class Sigmoid : public Cloneable<Sigmoid> {
 public:
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "Sigmoid"; }
};

class Tanh : public Cloneable<Tanh> {
 public:
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "Tanh"; }
};

class LeakyReLU : public Cloneable<LeakyReLU> {
 public:
  void reset() override {}
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope(negative_slope) {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  double negative_slope;
};

class GELU : public Cloneable<GELU> {
 public:
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "GELU"; }
};

class Softmax : public Cloneable<Softmax> {
 public:
  void reset() override {}
  explicit Softmax(int64_t dim = -1) : dim(dim) {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  int64_t dim;
};

class LogSoftmax : public Cloneable<LogSoftmax> {
 public:
  void reset() override {}
  explicit LogSoftmax(int64_t dim = -1) : dim(dim) {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  int64_t dim;
};

class Identity : public Cloneable<Identity> {
 public:
  void reset() override {}
  Tensor forward(const Tensor& input) override { return input; }
  std::string describe() const override { return "Identity"; }
};

/// Flattens dims start_dim..end_dim (default: all but the batch dim).
class Flatten : public Cloneable<Flatten> {
 public:
  void reset() override {}
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
      : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  int64_t start_dim, end_dim;
};

/// Inverted dropout with probability p in [0, 1): active in training mode only.
class Dropout : public Cloneable<Dropout> {
 public:
  void reset() override {}
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  double p;
};

}  // namespace soma::nn
