// The optimizers of torch.optim, with its option names (betas split into beta1/beta2), its
// defaults and its update equations (each source file cites the algorithm).
//   soma::optim::SGD sgd(model.parameters(), {.lr = 0.1, .momentum = 0.9, .nesterov = true});
//   soma::optim::Adam adam(model.parameters(), {.lr = 1e-3});
#pragma once

#include <optional>

#include "soma/optim/optimizer.h"

namespace soma::optim {

struct SGDOptions {
  double lr = 1e-3;           // learning rate (PyTorch requires one; soma defaults to 1e-3)
  double momentum = 0.0;      // momentum factor
  double dampening = 0.0;     // dampening for momentum
  double weight_decay = 0.0;  // L2 penalty added to the gradient
  bool nesterov = false;      // Nesterov momentum (needs momentum > 0, dampening = 0)
};
struct SGDState {
  int64_t step = 0;
  Tensor momentum_buffer;  // undefined until the first step with momentum
};

/// Stochastic gradient descent, with optional momentum, dampening, Nesterov and weight decay.
class SGD : public detail::OptimizerImpl<SGD, SGDOptions, SGDState> {
 public:
  explicit SGD(std::vector<Tensor> params, SGDOptions options = {});
  explicit SGD(std::vector<ParamGroup<SGDOptions>> groups);
  static void validate(const SGDOptions& o);
  void update(const SGDOptions& o, Tensor& param, const Tensor& grad, SGDState& s);
  static void init_state(const SGDOptions&, const Tensor&, SGDState&) {}
  template <typename F>
  static void visit_options(SGDOptions& o, F f) {
    f("lr", o.lr), f("momentum", o.momentum), f("dampening", o.dampening);
    f("weight_decay", o.weight_decay), f("nesterov", o.nesterov);
  }
  template <typename F>
  static void visit_state(SGDState& s, F f) {
    f("momentum_buffer", s.momentum_buffer);
  }
};

struct AdamOptions {
  double lr = 1e-3;                      // learning rate
  double beta1 = 0.9;                    // decay of the running mean of gradients
  double beta2 = 0.999;                  // decay of the running mean of squared gradients
  double eps = 1e-8;                     // added to the denominator
  std::optional<double> weight_decay{};  // unset: 0 for Adam (L2), 0.01 for AdamW (decoupled)
  bool amsgrad = false;                  // use the maximum of past squared-gradient averages
};
struct AdamState {
  int64_t step = 0;
  Tensor exp_avg, exp_avg_sq, max_exp_avg_sq;  // max_exp_avg_sq only with amsgrad
};

/// Adam (Kingma & Ba, 2014); weight decay is added to the gradient (L2).
class Adam : public detail::OptimizerImpl<Adam, AdamOptions, AdamState> {
 public:
  explicit Adam(std::vector<Tensor> params, AdamOptions options = {});
  explicit Adam(std::vector<ParamGroup<AdamOptions>> groups);
  void validate(const AdamOptions& o) const;  // errors name "Adam" or "AdamW"
  void update(const AdamOptions& o, Tensor& param, const Tensor& grad, AdamState& s);
  static void init_state(const AdamOptions& o, const Tensor& param, AdamState& s);
  template <typename F>
  static void visit_options(AdamOptions& o, F f) {
    f("lr", o.lr), f("beta1", o.beta1), f("beta2", o.beta2), f("eps", o.eps);
    f("weight_decay", o.weight_decay), f("amsgrad", o.amsgrad);
  }
  template <typename F>
  static void visit_state(AdamState& s, F f) {
    f("exp_avg", s.exp_avg), f("exp_avg_sq", s.exp_avg_sq), f("max_exp_avg_sq", s.max_exp_avg_sq);
  }

 protected:
  Adam() = default;
  bool decoupled_ = false;
};

/// AdamW (Loshchilov & Hutter, 2019): Adam with weight decay applied to the parameter
/// directly (p -= lr * weight_decay * p) instead of to the gradient. Default weight_decay 0.01.
class AdamW : public Adam {
 public:
  explicit AdamW(std::vector<Tensor> params, AdamOptions options = {});
  explicit AdamW(std::vector<ParamGroup<AdamOptions>> groups);
};

struct RMSpropOptions {
  double lr = 1e-2;           // learning rate
  double alpha = 0.99;        // smoothing constant of the squared-gradient average
  double eps = 1e-8;          // added to the denominator
  double weight_decay = 0.0;  // L2 penalty added to the gradient
  double momentum = 0.0;      // momentum factor
  bool centered = false;      // normalise by the estimated variance instead of the raw average
};
struct RMSpropState {
  int64_t step = 0;
  Tensor square_avg, momentum_buffer, grad_avg;  // the last two only with momentum / centered
};

/// RMSprop (Hinton, lecture 6e), optionally centered (Graves, 2013) and with momentum.
class RMSprop : public detail::OptimizerImpl<RMSprop, RMSpropOptions, RMSpropState> {
 public:
  explicit RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
  explicit RMSprop(std::vector<ParamGroup<RMSpropOptions>> groups);
  static void validate(const RMSpropOptions& o);
  void update(const RMSpropOptions& o, Tensor& param, const Tensor& grad, RMSpropState& s);
  static void init_state(const RMSpropOptions& o, const Tensor& param, RMSpropState& s);
  template <typename F>
  static void visit_options(RMSpropOptions& o, F f) {
    f("lr", o.lr), f("alpha", o.alpha), f("eps", o.eps), f("weight_decay", o.weight_decay);
    f("momentum", o.momentum), f("centered", o.centered);
  }
  template <typename F>
  static void visit_state(RMSpropState& s, F f) {
    f("square_avg", s.square_avg), f("momentum_buffer", s.momentum_buffer),
        f("grad_avg", s.grad_avg);
  }
};

struct AdagradOptions {
  double lr = 1e-2;                        // learning rate
  double lr_decay = 0.0;                   // lr / (1 + (step - 1) * lr_decay)
  double weight_decay = 0.0;               // L2 penalty added to the gradient
  double initial_accumulator_value = 0.0;  // starting value of the squared-gradient sum
  double eps = 1e-10;                      // added to the denominator
};
struct AdagradState {
  int64_t step = 0;
  Tensor sum;  // running sum of squared gradients
};

/// Adagrad (Duchi et al., 2011).
class Adagrad : public detail::OptimizerImpl<Adagrad, AdagradOptions, AdagradState> {
 public:
  explicit Adagrad(std::vector<Tensor> params, AdagradOptions options = {});
  explicit Adagrad(std::vector<ParamGroup<AdagradOptions>> groups);
  static void validate(const AdagradOptions& o);
  void update(const AdagradOptions& o, Tensor& param, const Tensor& grad, AdagradState& s);
  static void init_state(const AdagradOptions& o, const Tensor& param, AdagradState& s);
  template <typename F>
  static void visit_options(AdagradOptions& o, F f) {
    f("lr", o.lr), f("lr_decay", o.lr_decay), f("weight_decay", o.weight_decay);
    f("initial_accumulator_value", o.initial_accumulator_value), f("eps", o.eps);
  }
  template <typename F>
  static void visit_state(AdagradState& s, F f) {
    f("sum", s.sum);
  }
};

struct AdadeltaOptions {
  double lr = 1.0;            // scales the computed delta
  double rho = 0.9;           // decay of the running averages
  double eps = 1e-6;          // added inside the square roots
  double weight_decay = 0.0;  // L2 penalty added to the gradient
};
struct AdadeltaState {
  int64_t step = 0;
  Tensor square_avg, acc_delta;
};

/// Adadelta (Zeiler, 2012).
class Adadelta : public detail::OptimizerImpl<Adadelta, AdadeltaOptions, AdadeltaState> {
 public:
  explicit Adadelta(std::vector<Tensor> params, AdadeltaOptions options = {});
  explicit Adadelta(std::vector<ParamGroup<AdadeltaOptions>> groups);
  static void validate(const AdadeltaOptions& o);
  void update(const AdadeltaOptions& o, Tensor& param, const Tensor& grad, AdadeltaState& s);
  static void init_state(const AdadeltaOptions& o, const Tensor& param, AdadeltaState& s);
  template <typename F>
  static void visit_options(AdadeltaOptions& o, F f) {
    f("lr", o.lr), f("rho", o.rho), f("eps", o.eps), f("weight_decay", o.weight_decay);
  }
  template <typename F>
  static void visit_state(AdadeltaState& s, F f) {
    f("square_avg", s.square_avg), f("acc_delta", s.acc_delta);
  }
};

// Defined in the library (src/optim/optimizers.cpp).
extern template class detail::OptimizerImpl<SGD, SGDOptions, SGDState>;
extern template class detail::OptimizerImpl<Adam, AdamOptions, AdamState>;
extern template class detail::OptimizerImpl<RMSprop, RMSpropOptions, RMSpropState>;
extern template class detail::OptimizerImpl<Adagrad, AdagradOptions, AdagradState>;
extern template class detail::OptimizerImpl<Adadelta, AdadeltaOptions, AdadeltaState>;

}  // namespace soma::optim
