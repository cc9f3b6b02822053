// optim::Optimizer: the base of every optimizer.
//
// An optimizer updates parameter groups, each with its own options (e.g. no weight decay on
// biases), keeps per-parameter state in a vector parallel to the parameters (not a map keyed by
// pointer), and saves all of it in state_dict() so a resumed run continues bit for bit:
//   "param_groups.<g>.<option>"  float64 scalars (lr, betas, ...)
//   "state.<i>.<buffer>"         buffers of parameter i (flat index over all groups, like
//                                PyTorch), "state.<i>.step" an int64 scalar
//
//   soma::optim::Adam opt(model.parameters(), {.lr = 1e-3});
//   opt.zero_grad(); loss.backward(); opt.step();
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "soma/core/tensor.h"

namespace soma::optim {

/// Optimizer state by name (see the file comment for the keys).
using OptimizerState = std::map<std::string, Tensor>;

/// Parameters that share one set of options.
template <typename Options>
struct ParamGroup {
  std::vector<Tensor> params;
  Options options;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  /// Clears the gradients of every parameter (to undefined, or zeros with set_to_none=false).
  void zero_grad(bool set_to_none = true);
  /// One update of every parameter that has a gradient (parameters without one are skipped).
  virtual void step() = 0;

  /// Learning rate of the first group; set_lr sets every group's.
  double lr() const { return group_lr(0); }
  void set_lr(double lr);
  size_t num_param_groups() const { return group_count(); }
  virtual double group_lr(size_t group) const = 0;
  virtual void set_group_lr(size_t group, double lr) = 0;
  /// Every parameter, group by group (the flat order of "state.<i>").
  std::vector<Tensor> parameters() const;

  virtual OptimizerState state_dict() const = 0;
  /// Restores state saved by state_dict() of the same optimizer type over the same parameter
  /// shapes; mismatches are errors naming the key.
  virtual void load_state_dict(const OptimizerState& state) = 0;

 protected:
  virtual size_t group_count() const = 0;
  virtual const std::vector<Tensor>& group_params(size_t group) const = 0;
};

namespace detail {

/// The machinery shared by the optimizers (CRTP): groups of options O, one state S per
/// parameter, step() over parameters with gradients, and the state dict. Derived provides
///   void validate(const O&) const;                          // or static
///   void update(const O&, Tensor& param, const Tensor& grad, S& state);
///   template <class F> static void visit_options(O&, F f);   // f("lr", double&) ...
///   template <class F> static void visit_state(S&, F f);     // f("exp_avg", Tensor&) ...
///   static void init_state(const O&, const Tensor& param, S&);
/// Its members are defined in src/optim/optimizer_impl.h and instantiated per optimizer.
template <typename Derived, typename O, typename S>
class OptimizerImpl : public Optimizer {
 public:
  double group_lr(size_t g) const override;
  void set_group_lr(size_t g, double lr) override;
  void step() override;
  OptimizerState state_dict() const override;
  void load_state_dict(const OptimizerState& state) override;

  const std::vector<ParamGroup<O>>& param_groups() const { return groups_; }
  /// Adds a group with its own options (validated).
  void add_param_group(ParamGroup<O> group);
  /// Per-parameter state, group by group (state(g)[i] belongs to param_groups()[g].params[i]).
  const std::vector<S>& state(size_t g) const { return state_.at(g); }

 protected:
  size_t group_count() const override { return groups_.size(); }
  const std::vector<Tensor>& group_params(size_t g) const override { return groups_[g].params; }

  std::vector<ParamGroup<O>> groups_;
  std::vector<std::vector<S>> state_;
};

}  // namespace detail
}  // namespace soma::optim
