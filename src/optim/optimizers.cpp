// The update rules of torch.optim (PyTorch 1.13, the single-tensor CPU path), one element at a
// time in the parameter's dtype with every scalar rounded to that dtype first, as PyTorch does.
// References: https://pytorch.org/docs/1.13/optim.html and torch/optim/{sgd,adam,adamw,rmsprop,
// adagrad,adadelta}.py.
#include <cmath>

#include "core/dispatch.h"
#include "kernels/kernels.h"
#include "optim/optimizer_impl.h"

namespace soma::optim {
namespace {

void check_nonneg(double v, const char* opt, const char* name) {
  SOMA_CHECK(v >= 0.0 && std::isfinite(v), opt, ": invalid ", name, ": ", v);
}

template <typename T>
T* ptr(Tensor& t) {
  return t.data<T>();
}
template <typename T>
const T* ptr(const Tensor& t) {
  return t.data<T>();
}

}  // namespace

// ---- SGD -----------------------------------------------------------------------------------
// g <- g + wd p;  if momentum: b <- g (first step) or mu b + (1 - dampening) g;
//                 g <- g + mu b (nesterov) or b;   p <- p - lr g
SGD::SGD(std::vector<Tensor> params, SGDOptions options) {
  add_param_group({std::move(params), options});
}
SGD::SGD(std::vector<ParamGroup<SGDOptions>> groups) {
  for (auto& g : groups) add_param_group(std::move(g));
}

void SGD::validate(const SGDOptions& o) {
  check_nonneg(o.lr, "SGD", "learning rate");
  check_nonneg(o.momentum, "SGD", "momentum");
  check_nonneg(o.dampening, "SGD", "dampening");
  check_nonneg(o.weight_decay, "SGD", "weight_decay");
  SOMA_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
             "SGD: nesterov momentum requires a momentum > 0 and zero dampening (momentum=",
             o.momentum, ", dampening=", o.dampening, ")");
}

void SGD::update(const SGDOptions& o, Tensor& param, const Tensor& grad, SGDState& s) {
  const bool first = !s.momentum_buffer.defined();
  if (o.momentum != 0 && first) s.momentum_buffer = empty_like(param);
  soma::detail::dispatch_float(param.dtype(), "SGD", [&]<typename T>() {
    T* p = ptr<T>(param);
    const T* g = ptr<T>(grad);
    T* b = o.momentum != 0 ? ptr<T>(s.momentum_buffer) : nullptr;
    const kernels::SgdArgs<T> args{.wd = T(o.weight_decay),
                                   .mu = T(o.momentum),
                                   .damp = T(1 - o.dampening),
                                   .lr = T(o.lr),
                                   .weight_decay = o.weight_decay != 0,
                                   .nesterov = o.nesterov,
                                   .first = first};
    kernels::call<kernels::SgdUpdate<T>>(param.numel(), p, g, b, args);
  });
}

// ---- Adam / AdamW --------------------------------------------------------------------------
// g <- g + wd p (Adam) | p <- p (1 - lr wd) (AdamW);  m <- b1 m + (1 - b1) g;
// v <- b2 v + (1 - b2) g^2;  v_max <- max(v_max, v) (amsgrad);
// p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
Adam::Adam(std::vector<Tensor> params, AdamOptions options) {
  if (!options.weight_decay) options.weight_decay = 0.0;
  add_param_group({std::move(params), options});
}
Adam::Adam(std::vector<ParamGroup<AdamOptions>> groups) {
  for (auto& g : groups) {
    if (!g.options.weight_decay) g.options.weight_decay = 0.0;
    add_param_group(std::move(g));
  }
}
AdamW::AdamW(std::vector<Tensor> params, AdamOptions options) {
  decoupled_ = true;
  if (!options.weight_decay) options.weight_decay = 1e-2;
  add_param_group({std::move(params), options});
}
AdamW::AdamW(std::vector<ParamGroup<AdamOptions>> groups) {
  decoupled_ = true;
  for (auto& g : groups) {
    if (!g.options.weight_decay) g.options.weight_decay = 1e-2;
    add_param_group(std::move(g));
  }
}

void Adam::validate(const AdamOptions& o) const {
  const char* name = decoupled_ ? "AdamW" : "Adam";
  check_nonneg(o.lr, name, "learning rate");
  check_nonneg(o.eps, name, "epsilon value");
  SOMA_CHECK(o.beta1 >= 0.0 && o.beta1 < 1.0, name, ": invalid beta1 parameter: ", o.beta1,
             " (must be in [0, 1))");
  SOMA_CHECK(o.beta2 >= 0.0 && o.beta2 < 1.0, name, ": invalid beta2 parameter: ", o.beta2,
             " (must be in [0, 1))");
  check_nonneg(o.weight_decay.value_or(0.0), name, "weight_decay value");
}

void Adam::init_state(const AdamOptions&, const Tensor&, AdamState&) {}

void Adam::update(const AdamOptions& o, Tensor& param, const Tensor& grad, AdamState& s) {
  if (!s.exp_avg.defined()) {
    s.exp_avg = zeros_like(param);
    s.exp_avg_sq = zeros_like(param);
  }
  if (o.amsgrad && !s.max_exp_avg_sq.defined()) s.max_exp_avg_sq = zeros_like(param);
  const double wd = o.weight_decay.value_or(0.0);
  const double step = static_cast<double>(s.step);
  const double bc1 = 1 - std::pow(o.beta1, step), bc2 = 1 - std::pow(o.beta2, step);
  const double step_size = o.lr / bc1, bc2_sqrt = std::sqrt(bc2);
  soma::detail::dispatch_float(param.dtype(), "Adam", [&]<typename T>() {
    const kernels::AdamArgs<T> c{.b1 = T(o.beta1),
                                 .b2 = T(o.beta2),
                                 .one_b1 = T(1 - o.beta1),
                                 .one_b2 = T(1 - o.beta2),
                                 .decay = T(1 - o.lr * wd),
                                 .l2 = T(wd),
                                 .bc2s = T(bc2_sqrt),
                                 .eps = T(o.eps),
                                 .neg_step = T(-step_size),
                                 .mode = decoupled_ ? kernels::AdamMode::Decoupled
                                         : wd != 0  ? kernels::AdamMode::L2
                                                    : kernels::AdamMode::Plain};
    T* vmax = o.amsgrad ? ptr<T>(s.max_exp_avg_sq) : nullptr;
    kernels::call<kernels::AdamUpdate<T>>(param.numel(), ptr<T>(param), ptr<T>(grad),
                                          ptr<T>(s.exp_avg), ptr<T>(s.exp_avg_sq), vmax, c);
  });
}

// ---- RMSprop -------------------------------------------------------------------------------
// g <- g + wd p;  v <- a v + (1 - a) g^2;  centered: gm <- a gm + (1 - a) g, avg = sqrt(v - gm^2)
// else avg = sqrt(v);  avg <- avg + eps;
// momentum: b <- mu b + g / avg, p <- p - lr b;  else p <- p - lr g / avg
RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options) {
  add_param_group({std::move(params), options});
}
RMSprop::RMSprop(std::vector<ParamGroup<RMSpropOptions>> groups) {
  for (auto& g : groups) add_param_group(std::move(g));
}

void RMSprop::validate(const RMSpropOptions& o) {
  check_nonneg(o.lr, "RMSprop", "learning rate");
  check_nonneg(o.eps, "RMSprop", "epsilon value");
  check_nonneg(o.momentum, "RMSprop", "momentum value");
  check_nonneg(o.weight_decay, "RMSprop", "weight_decay value");
  check_nonneg(o.alpha, "RMSprop", "alpha value");
}

void RMSprop::init_state(const RMSpropOptions&, const Tensor&, RMSpropState&) {}

void RMSprop::update(const RMSpropOptions& o, Tensor& param, const Tensor& grad, RMSpropState& s) {
  if (!s.square_avg.defined()) s.square_avg = zeros_like(param);
  if (o.momentum > 0 && !s.momentum_buffer.defined()) s.momentum_buffer = zeros_like(param);
  if (o.centered && !s.grad_avg.defined()) s.grad_avg = zeros_like(param);
  soma::detail::dispatch_float(param.dtype(), "RMSprop", [&]<typename T>() {
    T* p = ptr<T>(param);
    const T* g = ptr<T>(grad);
    T* v = ptr<T>(s.square_avg);
    T* b = o.momentum > 0 ? ptr<T>(s.momentum_buffer) : nullptr;
    T* gm = o.centered ? ptr<T>(s.grad_avg) : nullptr;
    const kernels::RmspropArgs<T> args{.a = T(o.alpha),
                                       .one_a = T(1 - o.alpha),
                                       .wd = T(o.weight_decay),
                                       .eps = T(o.eps),
                                       .mu = T(o.momentum),
                                       .lr = T(o.lr),
                                       .neg_lr = T(-o.lr),
                                       .weight_decay = o.weight_decay != 0};
    kernels::call<kernels::RmspropUpdate<T>>(param.numel(), p, g, v, b, gm, args);
  });
}

// ---- Adagrad -------------------------------------------------------------------------------
// g <- g + wd p;  clr = lr / (1 + (t - 1) lr_decay);  s <- s + g^2;  p <- p - clr g / (sqrt(s) +
// eps)
Adagrad::Adagrad(std::vector<Tensor> params, AdagradOptions options) {
  add_param_group({std::move(params), options});
}
Adagrad::Adagrad(std::vector<ParamGroup<AdagradOptions>> groups) {
  for (auto& g : groups) add_param_group(std::move(g));
}

void Adagrad::validate(const AdagradOptions& o) {
  check_nonneg(o.lr, "Adagrad", "learning rate");
  check_nonneg(o.lr_decay, "Adagrad", "lr_decay value");
  check_nonneg(o.weight_decay, "Adagrad", "weight_decay value");
  check_nonneg(o.initial_accumulator_value, "Adagrad", "initial_accumulator_value");
  check_nonneg(o.eps, "Adagrad", "epsilon value");
}

void Adagrad::init_state(const AdagradOptions& o, const Tensor& param, AdagradState& s) {
  s.sum = full_like(param, o.initial_accumulator_value);  // PyTorch creates it at construction
}

void Adagrad::update(const AdagradOptions& o, Tensor& param, const Tensor& grad, AdagradState& s) {
  const double clr = o.lr / (1 + static_cast<double>(s.step - 1) * o.lr_decay);
  soma::detail::dispatch_float(param.dtype(), "Adagrad", [&]<typename T>() {
    T* p = ptr<T>(param);
    const T* g = ptr<T>(grad);
    T* sum = ptr<T>(s.sum);
    const kernels::AdagradArgs<T> args{.wd = T(o.weight_decay),
                                       .eps = T(o.eps),
                                       .neg_clr = T(-clr),
                                       .weight_decay = o.weight_decay != 0};
    kernels::call<kernels::AdagradUpdate<T>>(param.numel(), p, g, sum, args);
  });
}

// ---- Adadelta ------------------------------------------------------------------------------
// g <- g + wd p;  v <- rho v + (1 - rho) g^2;  delta = sqrt(u + eps) / sqrt(v + eps) * g;
// u <- rho u + (1 - rho) delta^2;  p <- p - lr delta
Adadelta::Adadelta(std::vector<Tensor> params, AdadeltaOptions options) {
  add_param_group({std::move(params), options});
}
Adadelta::Adadelta(std::vector<ParamGroup<AdadeltaOptions>> groups) {
  for (auto& g : groups) add_param_group(std::move(g));
}

void Adadelta::validate(const AdadeltaOptions& o) {
  check_nonneg(o.lr, "Adadelta", "learning rate");
  SOMA_CHECK(o.rho >= 0.0 && o.rho <= 1.0, "Adadelta: invalid rho value: ", o.rho,
             " (must be in [0, 1])");
  check_nonneg(o.eps, "Adadelta", "epsilon value");
  check_nonneg(o.weight_decay, "Adadelta", "weight_decay value");
}

void Adadelta::init_state(const AdadeltaOptions&, const Tensor&, AdadeltaState&) {}

void Adadelta::update(const AdadeltaOptions& o, Tensor& param, const Tensor& grad,
                      AdadeltaState& s) {
  if (!s.square_avg.defined()) {
    s.square_avg = zeros_like(param);
    s.acc_delta = zeros_like(param);
  }
  soma::detail::dispatch_float(param.dtype(), "Adadelta", [&]<typename T>() {
    T* p = ptr<T>(param);
    const T* g = ptr<T>(grad);
    T* v = ptr<T>(s.square_avg);
    T* u = ptr<T>(s.acc_delta);
    const kernels::AdadeltaArgs<T> args{.rho = T(o.rho),
                                        .one_rho = T(1 - o.rho),
                                        .wd = T(o.weight_decay),
                                        .eps = T(o.eps),
                                        .neg_lr = T(-o.lr),
                                        .weight_decay = o.weight_decay != 0};
    kernels::call<kernels::AdadeltaUpdate<T>>(param.numel(), p, g, v, u, args);
  });
}

template class detail::OptimizerImpl<SGD, SGDOptions, SGDState>;
template class detail::OptimizerImpl<Adam, AdamOptions, AdamState>;
template class detail::OptimizerImpl<RMSprop, RMSpropOptions, RMSpropState>;
template class detail::OptimizerImpl<Adagrad, AdagradOptions, AdagradState>;
template class detail::OptimizerImpl<Adadelta, AdadeltaOptions, AdadeltaState>;

// ---- Optimizer base ------------------------------------------------------------------------
void Optimizer::zero_grad(bool set_to_none) {
  for (Tensor& p : parameters()) p.zero_grad(set_to_none);
}

void Optimizer::set_lr(double lr) {
  for (size_t g = 0; g < group_count(); ++g) set_group_lr(g, lr);
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> out;
  for (size_t g = 0; g < group_count(); ++g)
    for (const Tensor& p : group_params(g)) out.push_back(p);
  return out;
}

}  // namespace soma::optim
