// Custom differentiable functions, as libtorch's torch::autograd::Function:
//
//   struct MulConstant : soma::autograd::Function<MulConstant> {
//     static soma::Tensor forward(soma::autograd::AutogradContext* ctx, soma::Tensor x, double c) {
//       ctx->saved_data["c"] = c;
//       ctx->save_for_backward({x});
//       return x * c;
//     }
//     static soma::autograd::variable_list backward(soma::autograd::AutogradContext* ctx,
//                                                   soma::autograd::variable_list grad_outputs) {
//       const double c = ctx->saved_data["c"].toDouble();
//       return {grad_outputs[0] * c, soma::Tensor()};  // one entry per forward argument
//     }
//   };
//   soma::Tensor y = MulConstant::apply(x, 2.0);
//
// forward runs with grad mode off; its tensor arguments become the inputs of the output's graph
// node. forward may return several tensors (a variable_list) but at most one of them
// differentiable: mark the others (indices, masks) with ctx->mark_non_differentiable, else
// apply raises soma::Error. backward receives one gradient per output (zeros for the
// non-differentiable ones) and returns one entry per forward argument (undefined for non-tensor
// arguments and for inputs that need no gradient). When backward is written with soma's
// differentiable ops, the function supports double backward (create_graph) too.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>
#include <vector>

#include "soma/autograd/autograd.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/core/tensor.h"

namespace soma::autograd {

/// A value kept in AutogradContext::saved_data (libtorch's IValue, for the common kinds).
class SavedValue {
 public:
  SavedValue() = default;
  SavedValue(double v) : v_(v) {}                     // NOLINT(google-explicit-constructor)
  SavedValue(int64_t v) : v_(v) {}                    // NOLINT(google-explicit-constructor)
  SavedValue(int v) : v_(static_cast<int64_t>(v)) {}  // NOLINT(google-explicit-constructor)
  SavedValue(bool v) : v_(v) {}                       // NOLINT(google-explicit-constructor)
  SavedValue(std::string v) : v_(std::move(v)) {}     // NOLINT(google-explicit-constructor)
  SavedValue(Tensor v) : v_(std::move(v)) {}          // NOLINT(google-explicit-constructor)
  double toDouble() const;
  int64_t toInt() const;
  bool toBool() const;
  const std::string& toStringRef() const;
  Tensor toTensor() const;

 private:
  std::variant<std::monostate, double, int64_t, bool, std::string, Tensor> v_;
};

class AutogradContext;
namespace detail {
/// Wires the outputs of a custom function into the graph: one node per differentiable output,
/// whose closure calls `backward` with that output's gradient (zeros for the others) and maps
/// the returned per-argument gradients onto the tensor inputs.
using CustomBackward = std::function<variable_list(AutogradContext*, variable_list grad_outputs)>;
void record_custom(const char* name, const std::shared_ptr<AutogradContext>& ctx,
                   variable_list& outputs, const variable_list& inputs,
                   const std::vector<size_t>& input_arg_positions, size_t num_args,
                   CustomBackward backward);
}  // namespace detail

/// What forward passes to backward (libtorch's AutogradContext).
class AutogradContext {
 public:
  /// Tensors backward needs; checked for in-place changes before backward runs.
  void save_for_backward(variable_list to_save);
  /// The saved tensors (libtorch's name) ...
  variable_list get_saved_variables() const;
  /// ... and the same under PyTorch's Python name.
  variable_list saved_tensors() const { return get_saved_variables(); }
  /// Outputs that get no gradient (indices, masks): they do not require grad.
  void mark_non_differentiable(const variable_list& outputs);
  /// Whether the gradient for forward argument i is needed (false for non-tensor arguments).
  bool needs_input_grad(size_t i) const;
  /// Non-tensor state for backward.
  std::map<std::string, SavedValue> saved_data;

 private:
  template <typename T>
  friend struct Function;
  friend void detail::record_custom(const char*, const std::shared_ptr<AutogradContext>&,
                                    variable_list&, const variable_list&,
                                    const std::vector<size_t>&, size_t, detail::CustomBackward);
  void set_needs_input_grad(std::vector<bool> needs) { needs_input_grad_ = std::move(needs); }
  bool is_non_differentiable(const Tensor& t) const;
  // After forward: saved tensors that are outputs are kept detached (no cycle through the
  // output's own node) and re-attached when backward records a graph.
  void finish_forward(const variable_list& outputs);
  std::vector<Tensor> saved_for_version_check() const { return saved_; }

  variable_list saved_;
  std::vector<bool> saved_is_output_;
  std::vector<const void*> non_differentiable_;
  std::vector<bool> needs_input_grad_;
};

/// CRTP base of a custom function: T defines static forward(AutogradContext*, args...)
/// returning a Tensor or a variable_list, and static backward(AutogradContext*, variable_list).
template <typename T>
struct Function {
  template <typename... Args>
  static auto apply(Args&&... args) {
    auto ctx = std::make_shared<AutogradContext>();
    variable_list inputs;
    std::vector<size_t> positions;
    std::vector<bool> needs(sizeof...(Args), false);
    size_t pos = 0;
    auto collect = [&](const auto& a) {
      if constexpr (std::is_same_v<std::decay_t<decltype(a)>, Tensor>) {
        needs[pos] = a.defined() && a.requires_grad() && is_grad_enabled();
        inputs.push_back(a);
        positions.push_back(pos);
      }
      ++pos;
    };
    (collect(args), ...);
    ctx->set_needs_input_grad(needs);
    using Out = decltype(T::forward(ctx.get(), std::forward<Args>(args)...));
    variable_list outputs;
    Out result;
    {
      NoGradGuard no_grad;
      result = T::forward(ctx.get(), std::forward<Args>(args)...);
    }
    if constexpr (std::is_same_v<Out, Tensor>) {
      outputs.push_back(result);
    } else {
      static_assert(std::is_same_v<Out, variable_list>,
                    "Function<T>::forward must return soma::Tensor or variable_list");
      outputs = result;
    }
    detail::record_custom(
        typeid(T).name(), ctx, outputs, inputs, positions, sizeof...(Args),
        [](AutogradContext* c, variable_list g) { return T::backward(c, std::move(g)); });
    if constexpr (std::is_same_v<Out, Tensor>)
      return outputs[0];
    else
      return outputs;
  }
};

}  // namespace soma::autograd
