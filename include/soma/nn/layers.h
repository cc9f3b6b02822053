// Layers: Linear, activations (ReLU ... GLU, PReLU with a learnable slope), Flatten, Dropout,
// Identity. Each is a thin module whose forward
// calls one functional op.
//   nn::Sequential model(nn::Linear(784, 256), nn::ReLU(), nn::Dropout(0.5),
//                        nn::Linear(256, 10));
#pragma once

#include <cstdint>
#include <memory>
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
///
/// Inference at batch 1 to 4 (grad mode off, or nothing requiring grad; float32; no autocast or
/// ONNX trace; a weight of at most 16 MB) runs a kernel of its own on CPUs with AVX-512: the
/// weight packed into 16-row blocks once a second such call finds it unchanged (the first runs
/// the GEMM), cached on the layer by the weight's storage, version, export epoch and view, and
/// split over the threads. The same values as the GEMM path to float32 rounding, several times
/// faster at batch 1. Writes that soma sees (in-place ops, `copy_`, optimizer steps,
/// load_state_dict) change the key, so the next call runs the GEMM and the one after packs anew;
/// a forward in grad mode drops the pack. Memory soma cannot watch (from_blob / from_numpy
/// weights, or while the weight's memory is handed out through numpy(), __dlpack__ or, for good,
/// data_ptr()) is not packed. A raw write through `weight.data<float>()` after a batch-1 forward
/// is not seen (as with Sequential's inference fusion): write weights with soma ops, or open a
/// share around it (soma::begin_external_share). SOMA_KERNELS=openblas turns the kernel off.
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

 private:
  struct Packed;
  Tensor small_batch_forward(const Tensor& input) const;
  mutable std::shared_ptr<const Packed> packed_;  // the weight packed for batch 1-4 inference
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

class Softmin : public Cloneable<Softmin> {
 public:
  void reset() override {}
  explicit Softmin(int64_t dim = -1) : dim(dim) {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  int64_t dim;
};

/// x > 0 ? x : alpha (e^x - 1)
class ELU : public Cloneable<ELU> {
 public:
  void reset() override {}
  explicit ELU(double alpha = 1.0) : alpha(alpha) {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  double alpha;
};

/// scale * ELU(alpha) with PyTorch's fixed alpha and scale.
class SELU : public Cloneable<SELU> {
 public:
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "SELU"; }
};

/// max(0, x) + min(0, alpha (e^(x/alpha) - 1)); alpha != 0.
class CELU : public Cloneable<CELU> {
 public:
  void reset() override {}
  explicit CELU(double alpha = 1.0);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  double alpha;
};

/// x sigmoid(x) (also called swish).
class SiLU : public Cloneable<SiLU> {
 public:
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "SiLU"; }
};

/// x tanh(softplus(x))
class Mish : public Cloneable<Mish> {
 public:
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "Mish"; }
};

/// log(1 + e^(beta x)) / beta, linear where beta x > threshold.
class Softplus : public Cloneable<Softplus> {
 public:
  void reset() override {}
  explicit Softplus(double beta = 1.0, double threshold = 20.0)
      : beta(beta), threshold(threshold) {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  double beta, threshold;
};

/// clamp(x, min_val, max_val)
class Hardtanh : public Cloneable<Hardtanh> {
 public:
  void reset() override {}
  explicit Hardtanh(double min_val = -1.0, double max_val = 1.0);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  double min_val, max_val;
};

class Hardsigmoid : public Cloneable<Hardsigmoid> {
 public:
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "Hardsigmoid"; }
};

class Hardswish : public Cloneable<Hardswish> {
 public:
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "Hardswish"; }
};

class LogSigmoid : public Cloneable<LogSigmoid> {
 public:
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "LogSigmoid"; }
};

/// x > 0 ? x : weight x with a learnable weight ("weight", [num_parameters], filled with
/// `init`): one slope shared by all channels, or one per channel (dim 1 of the input).
class PReLU : public Cloneable<PReLU> {
 public:
  explicit PReLU(int64_t num_parameters = 1, double init = 0.25, DType dtype = kFloat32);
  /// Registers a new weight filled with `init`.
  void reset() override;
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  int64_t num_parameters;
  double init;
  DType dtype;
  Tensor weight;
};

/// a sigmoid(b), a and b the halves of the input along dim.
class GLU : public Cloneable<GLU> {
 public:
  void reset() override {}
  explicit GLU(int64_t dim = -1) : dim(dim) {}
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
