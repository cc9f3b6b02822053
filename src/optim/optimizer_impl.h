// Definitions of detail::OptimizerImpl (internal); each optimizer's source instantiates them.
#pragma once

#include <set>
#include <string>
#include <type_traits>

#include "core/tensor_impl.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/optim/optimizers.h"

namespace soma::optim::detail {

template <typename D, typename O, typename S>
double OptimizerImpl<D, O, S>::group_lr(size_t g) const {
  SOMA_CHECK(g < groups_.size(), "Optimizer: parameter group ", g, " does not exist (",
             groups_.size(), " groups)");
  return groups_[g].options.lr;
}

template <typename D, typename O, typename S>
void OptimizerImpl<D, O, S>::set_group_lr(size_t g, double lr) {
  SOMA_CHECK(g < groups_.size(), "Optimizer: parameter group ", g, " does not exist (",
             groups_.size(), " groups)");
  O o = groups_[g].options;
  o.lr = lr;
  static_cast<const D*>(this)->validate(o);
  groups_[g].options = o;
}

template <typename D, typename O, typename S>
void OptimizerImpl<D, O, S>::add_param_group(ParamGroup<O> group) {
  static_cast<const D*>(this)->validate(group.options);
  std::set<const TensorImpl*> seen;
  for (const Tensor& p : parameters()) seen.insert(p.impl().get());
  for (size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    SOMA_CHECK(p.defined() && is_floating(p.dtype()), "Optimizer: parameter ", i,
               " must be a defined floating-point tensor");
    SOMA_CHECK(p.is_leaf(), "Optimizer: parameter ", i, " (shape ", p.shape(),
               ") is not a leaf tensor; optimize the tensors you created, not results of ops");
    SOMA_CHECK(p.is_contiguous(), "Optimizer: parameter ", i, " (shape ", p.shape(),
               ") is not contiguous");
    SOMA_CHECK(seen.insert(p.impl().get()).second, "Optimizer: parameter ", i, " (shape ",
               p.shape(), ") appears more than once");
  }
  std::vector<S> states(group.params.size());
  for (size_t i = 0; i < group.params.size(); ++i)
    D::init_state(group.options, group.params[i], states[i]);
  groups_.push_back(std::move(group));
  state_.push_back(std::move(states));
}

template <typename D, typename O, typename S>
void OptimizerImpl<D, O, S>::step() {
  NoGradGuard no_grad;
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      Tensor& p = groups_[g].params[i];
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;  // like PyTorch: parameters without a gradient are skipped
      SOMA_CHECK(grad.shape() == p.shape() && grad.dtype() == p.dtype(),
                 "Optimizer::step: ", "gradient of shape ", grad.shape(), " and dtype ",
                 grad.dtype(), " does not match parameter of shape ", p.shape(), " and dtype ",
                 p.dtype());
      S& s = state_[g][i];
      ++s.step;
      static_cast<D*>(this)->update(groups_[g].options, p, grad.contiguous(), s);
      ++p.impl()->storage->version;
    }
  }
}

namespace {

inline std::string key(const char* kind, size_t index, const char* name) {
  return std::string(kind) + "." + std::to_string(index) + "." + name;
}

}  // namespace

template <typename D, typename O, typename S>
OptimizerState OptimizerImpl<D, O, S>::state_dict() const {
  OptimizerState out;
  for (size_t g = 0; g < groups_.size(); ++g) {
    O o = groups_[g].options;
    D::visit_options(o, [&](const char* name, auto& v) {
      double value;
      if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::optional<double>>)
        value = v.value_or(0.0);
      else
        value = static_cast<double>(v);
      out[key("param_groups", g, name)] = full({}, value, kFloat64);
    });
    out[key("param_groups", g, "size")] =
        full({}, static_cast<double>(groups_[g].params.size()), kInt64);
  }
  size_t flat = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t i = 0; i < groups_[g].params.size(); ++i, ++flat) {
      S s = state_[g][i];
      out[key("state", flat, "step")] = full({}, static_cast<double>(s.step), kInt64);
      D::visit_state(s, [&](const char* name, Tensor& t) {
        if (t.defined()) out[key("state", flat, name)] = t.clone();
      });
    }
  }
  return out;
}

template <typename D, typename O, typename S>
void OptimizerImpl<D, O, S>::load_state_dict(const OptimizerState& state) {
  std::set<std::string> used;
  auto get = [&](const std::string& k) -> const Tensor& {
    auto it = state.find(k);
    SOMA_CHECK(it != state.end() && it->second.defined(),
               "Optimizer::load_state_dict: missing key \"", k, "\"");
    SOMA_CHECK(it->second.numel() == 1 || k.rfind("state.", 0) == 0,
               "Optimizer::load_state_dict: \"", k, "\" must be a scalar, got shape ",
               it->second.shape());
    used.insert(k);
    return it->second;
  };
  // Build the new options and state completely before replacing anything.
  std::vector<O> options(groups_.size());
  std::vector<std::vector<S>> states = state_;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const int64_t n = get(key("param_groups", g, "size")).template item<int64_t>();
    SOMA_CHECK(n == static_cast<int64_t>(groups_[g].params.size()),
               "Optimizer::load_state_dict: group ", g, " has ", n,
               " parameters in the state, the optimizer has ", groups_[g].params.size());
    options[g] = groups_[g].options;
    D::visit_options(options[g], [&](const char* name, auto& v) {
      const double value = get(key("param_groups", g, name)).template item<double>();
      using V = std::decay_t<decltype(v)>;
      if constexpr (std::is_same_v<V, std::optional<double>>)
        v = value;
      else
        v = static_cast<V>(value);
    });
    static_cast<const D*>(this)->validate(options[g]);
  }
  size_t flat = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t i = 0; i < groups_[g].params.size(); ++i, ++flat) {
      const Tensor& p = groups_[g].params[i];
      S s;
      s.step = get(key("state", flat, "step")).template item<int64_t>();
      D::visit_state(s, [&](const char* name, Tensor& t) {
        auto it = state.find(key("state", flat, name));
        if (it == state.end()) return;
        used.insert(it->first);
        SOMA_CHECK(it->second.shape() == p.shape() && it->second.dtype() == p.dtype(),
                   "Optimizer::load_state_dict: \"", it->first, "\" has shape ", it->second.shape(),
                   " and dtype ", it->second.dtype(), ", parameter ", flat, " has shape ",
                   p.shape(), " and dtype ", p.dtype());
        t = it->second.detach().clone();
      });
      states[g][i] = std::move(s);
    }
  }
  for (const auto& [k, v] : state)
    SOMA_CHECK(used.count(k), "Optimizer::load_state_dict: unexpected key \"", k, "\"");
  for (size_t g = 0; g < groups_.size(); ++g) groups_[g].options = options[g];
  state_ = std::move(states);
}

}  // namespace soma::optim::detail
