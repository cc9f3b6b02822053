// nn::Module: the base of every layer and network, and the containers Sequential and ModuleList.
//
// A module owns named parameters (tensors that require grad), buffers (state that is saved but
// not trained) and child modules. Names are PyTorch's: a Sequential's children are "0", "1",
// ...; nested names are dotted ("0.weight", "encoder.fc1.bias"), so a soma state dict and the
// equivalent torch.nn state dict have the same keys and shapes.
//
// A user-defined layer (the lecture's MyDenseLayer):
//   struct MyDenseLayer : soma::nn::Module {
//     soma::Tensor w, b;
//     MyDenseLayer(int64_t in, int64_t out) {
//       w = register_parameter("w", soma::randn({in, out}));
//       b = register_parameter("b", soma::randn({1, out}));
//     }
//     soma::Tensor forward(const soma::Tensor& x) override {
//       return soma::relu(soma::matmul(x, w) + b);
//     }
//   };
#pragma once

#include <concepts>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "soma/core/tensor.h"

namespace soma::nn {

/// Parameter and buffer tensors by dotted name, in a stable (sorted) order.
using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = default;  // copies share parameter tensors (handles), like PyTorch's
  Module& operator=(const Module&) = default;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;

  /// The computation. The default throws: a module used as a layer must override it.
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input) { return forward(input); }

  /// One-line description used by summary() and operator<<, e.g. "Linear(784 -> 256)".
  virtual std::string describe() const;

  /// Registers `tensor` as a parameter (requires grad unless requires_grad=false) and returns
  /// the same handle, so a member initialised from it stays the registered tensor.
  Tensor register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  /// Registers state that is saved in state_dict() but not returned by parameters().
  Tensor register_buffer(const std::string& name, Tensor tensor);
  /// Registers a child module; its parameters appear as "<name>.<param>".
  std::shared_ptr<Module> register_module(const std::string& name, std::shared_ptr<Module> module);
  template <typename M>
  requires std::derived_from<M, Module> std::shared_ptr<M> register_module(
      const std::string& name, std::shared_ptr<M> module) {
    register_module(name, std::static_pointer_cast<Module>(module));
    return module;
  }
  template <typename M>
  requires std::derived_from<std::decay_t<M>, Module> std::shared_ptr<std::decay_t<M>>
  register_module(const std::string& name, M&& module) {
    return register_module(name, std::make_shared<std::decay_t<M>>(std::forward<M>(module)));
  }

  /// Parameters of this module and (recurse) all descendants, in registration order.
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  /// Direct children.
  std::vector<std::shared_ptr<Module>> children() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const {
    return children_;
  }

  /// Training mode (dropout active) or evaluation mode, for this module and all descendants.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Clears every parameter's gradient (to undefined, or to zeros with set_to_none=false).
  void zero_grad(bool set_to_none = true);
  /// Converts every floating-point parameter and buffer to `dtype` in place (the handles held
  /// by members stay valid).
  void to(DType dtype);

  /// Parameters and buffers by dotted name (tensors share storage with the module).
  StateDict state_dict() const;
  /// Copies values from `state` into this module's tensors. Shapes and dtypes must match; with
  /// strict=true, missing and unexpected keys are an error that names them.
  void load_state_dict(const StateDict& state, bool strict = true);

  /// Number of parameter elements (trainable only, when trainable_only is set).
  int64_t num_parameters(bool trainable_only = false) const;

  /// A Keras-style table: each layer, its output shape for an input of `input_shape`, its
  /// parameter count, and the totals. Runs one forward pass on zeros under NoGradGuard.
  std::string summary(const Shape& input_shape) const;

 protected:
  /// Rows (name, description, output shape, params) for summary(); containers list children.
  virtual Tensor summarize(const Tensor& input, const std::string& prefix,
                           std::vector<std::vector<std::string>>& rows);

 private:
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;

  friend class Sequential;
};

/// Prints the module tree, PyTorch-style.
std::ostream& operator<<(std::ostream& os, const Module& module);

/// Chains modules: forward(x) = m_n(...m_1(m_0(x))). Children are named "0", "1", ...
///   nn::Sequential model(nn::Linear(784, 256), nn::ReLU(), nn::Linear(256, 10));
class Sequential : public Module {
 public:
  Sequential() = default;
  template <typename... Ms>
  requires(sizeof...(Ms) > 0 && (std::derived_from<std::decay_t<Ms>, Module> && ...) &&
           !(sizeof...(Ms) == 1 && (std::same_as<std::decay_t<Ms>, Sequential> &&
                                    ...))) explicit Sequential(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }

  void push_back(std::shared_ptr<Module> module);
  template <typename M>
  requires std::derived_from<std::decay_t<M>, Module>
  void push_back(M&& module) {
    push_back(std::static_pointer_cast<Module>(
        std::make_shared<std::decay_t<M>>(std::forward<M>(module))));
  }

  Tensor forward(const Tensor& input) override;
  std::string describe() const override { return "Sequential"; }

  size_t size() const { return named_children().size(); }
  bool empty() const { return size() == 0; }
  /// The i-th module (negative counts from the end).
  Module& operator[](int64_t index) const { return *ptr(index); }
  std::shared_ptr<Module> ptr(int64_t index) const;
  /// The i-th module as type M (an error if it is not an M).
  template <typename M>
  M& at(int64_t index) const {
    auto p = std::dynamic_pointer_cast<M>(ptr(index));
    if (!p) throw_wrong_type(index);
    return *p;
  }

 protected:
  Tensor summarize(const Tensor& input, const std::string& prefix,
                   std::vector<std::vector<std::string>>& rows) override;

 private:
  [[noreturn]] void throw_wrong_type(int64_t index) const;
};

/// A list of modules that user code indexes and loops over; it has no forward of its own.
class ModuleList : public Module {
 public:
  ModuleList() = default;
  template <typename... Ms>
  requires(sizeof...(Ms) > 0 && (std::derived_from<std::decay_t<Ms>, Module> && ...) &&
           !(sizeof...(Ms) == 1 && (std::same_as<std::decay_t<Ms>, ModuleList> &&
                                    ...))) explicit ModuleList(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }
  void push_back(std::shared_ptr<Module> module);
  template <typename M>
  requires std::derived_from<std::decay_t<M>, Module>
  void push_back(M&& module) {
    push_back(std::static_pointer_cast<Module>(
        std::make_shared<std::decay_t<M>>(std::forward<M>(module))));
  }
  std::string describe() const override { return "ModuleList"; }
  size_t size() const { return named_children().size(); }
  Module& operator[](int64_t index) const { return *ptr(index); }
  std::shared_ptr<Module> ptr(int64_t index) const;
  auto begin() const { return named_children().begin(); }
  auto end() const { return named_children().end(); }
};

}  // namespace soma::nn
