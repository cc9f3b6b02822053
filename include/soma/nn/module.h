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
//
// Copies and clones (DESIGN.md, "Copy semantics"): copying a module gives another handle to the
// same state, like copying a libtorch ModuleHolder (torch::nn::Sequential): the copy shares the
// parameter and buffer tensors, the child modules and the training flag, so `m2 = m; m2.eval()`
// puts m in eval mode too. clone() is the deep copy (new tensors, new children, its own flag);
// a module supports it by deriving from nn::Cloneable<itself> and (re)creating its parameters,
// buffers and submodules in reset():
//   struct MyDenseLayer : soma::nn::Cloneable<MyDenseLayer> {
//     int64_t in, out;
//     soma::Tensor w, b;
//     MyDenseLayer(int64_t in, int64_t out) : in(in), out(out) { reset(); }
//     void reset() override {
//       w = register_parameter("w", soma::randn({in, out}));
//       b = register_parameter("b", soma::randn({1, out}));
//     }
//     soma::Tensor forward(const soma::Tensor& x) override { ... }
//   };
//   std::shared_ptr<soma::nn::Module> copy = layer.clone();
#pragma once

#include <concepts>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "soma/core/tensor.h"

namespace soma::detail {
struct FusionCache;  // Sequential's inference fusion (src/nn/fusion.cpp)
std::shared_ptr<FusionCache> new_fusion_cache();
}  // namespace soma::detail

namespace soma::nn {

/// Parameter and buffer tensors by dotted name, in a stable (sorted) order.
using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  /// A copy is another handle to the same state: it shares the parameter and buffer tensors,
  /// the children and the training flag (like copying libtorch's ModuleHolder). Registering a
  /// new parameter or child afterwards changes only the object it is called on. Use clone() for
  /// an independent deep copy.
  Module(const Module&) = default;
  Module& operator=(const Module&) = default;
  /// A move leaves the source a valid (empty) module that still answers is_training().
  Module(Module&& other) noexcept;
  Module& operator=(Module&& other) noexcept;

  /// A deep copy: new parameter and buffer tensors with the same values (parameters require
  /// grad as the originals do, with no grad), clones of every child, the same training flag,
  /// and the same type (the result can be cast back with std::dynamic_pointer_cast). Modules
  /// get it by deriving from nn::Cloneable<T>; for any other module it throws soma::Error.
  /// Does not change soma's random generator.
  virtual std::shared_ptr<Module> clone() const;

  /// The computation. The default throws: a module used as a layer must override it.
  virtual Tensor forward(const Tensor& input);
  /// Calls the forward pre-hooks, forward(), then the forward hooks. Sequential, train::fit
  /// and the CLI call modules this way, so hooks fire however a model is run (calling
  /// forward() directly skips them, as in PyTorch).
  Tensor operator()(const Tensor& input);

  /// A hook called before forward with (module, input); returning a defined Tensor replaces
  /// the input (PyTorch's register_forward_pre_hook). Hooks returning void only observe.
  using ForwardPreHook = std::function<Tensor(Module&, const Tensor& input)>;
  /// A hook called after forward with (module, input, output); returning a defined Tensor
  /// replaces the output (PyTorch's register_forward_hook).
  using ForwardHook = std::function<Tensor(Module&, const Tensor& input, const Tensor& output)>;
  /// Registers a forward pre-hook; returns an id for remove_hook. Copies of a module share its
  /// hooks; clone() starts with none.
  template <typename F>
  unsigned register_forward_pre_hook(F&& hook) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&, Module&, const Tensor&>>)
      return add_pre_hook([h = std::forward<F>(hook)](Module& m, const Tensor& x) {
        h(m, x);
        return Tensor();
      });
    else
      return add_pre_hook(ForwardPreHook(std::forward<F>(hook)));
  }
  template <typename F>
  unsigned register_forward_hook(F&& hook) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&, Module&, const Tensor&, const Tensor&>>)
      return add_hook([h = std::forward<F>(hook)](Module& m, const Tensor& x, const Tensor& y) {
        h(m, x, y);
        return Tensor();
      });
    else
      return add_hook(ForwardHook(std::forward<F>(hook)));
  }
  /// Removes a forward (pre-)hook by id (soma::Error if this module has none with that id).
  void remove_hook(unsigned id);

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

  /// Removes this module's own parameter, buffer or child called `name`; false when it has
  /// none. For reassignment (Python's `self.w = Parameter(...)` on a registered name); a
  /// member that held the removed tensor or child keeps it, no longer registered.
  bool unregister(const std::string& name);
  /// Puts `module` in place of the child called `name`, at the same position (PyTorch's
  /// setattr on a registered submodule; quantization swaps layers this way). A member that
  /// held the old child keeps it. soma::Error when there is no such child.
  void replace_module(const std::string& name, std::shared_ptr<Module> module);

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
  bool is_training() const { return *training_; }

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

  /// For Cloneable<T>::clone(): `copy` is a copy of this module; clears its registrations,
  /// calls `reset` (which re-registers them on the copy), then gives it deep copies of this
  /// module's parameters, buffers and children and its own training flag.
  void finish_clone(Module& copy, const std::function<void()>& reset) const;
  /// Turns this child (made by its parent's reset()) into a clone of `other` in place, so the
  /// parent's members that point at it stay valid. Cloneable<T> implements it.
  virtual void assign_clone_of(const Module& other);
  [[noreturn]] static void clone_type_mismatch(const Module& into, const Module& from);

 private:
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::shared_ptr<bool> training_ = std::make_shared<bool>(true);  // shared by copies
  struct Hooks {
    std::vector<std::pair<unsigned, ForwardPreHook>> pre;
    std::vector<std::pair<unsigned, ForwardHook>> post;
  };
  std::shared_ptr<Hooks> hooks_ = std::make_shared<Hooks>();  // shared by copies
  unsigned add_pre_hook(ForwardPreHook hook);
  unsigned add_hook(ForwardHook hook);

  friend class Sequential;
};

/// The base of a cloneable module (CRTP, as libtorch's torch::nn::Cloneable):
///   struct MyDenseLayer : nn::Cloneable<MyDenseLayer> { ... void reset() override; ... };
/// reset() must create every parameter, buffer and submodule (call it from the constructor);
/// clone() copy-constructs the module, calls reset() on the copy so its members point at its
/// own new tensors, then copies the values over. `Base` is Module or a Module subclass (the loss
/// modules use nn::Loss).
template <typename Derived, typename Base = Module>
class Cloneable : public Base {
 public:
  using Base::Base;

  /// (Re)creates every parameter, buffer and submodule of this module.
  virtual void reset() = 0;

  std::shared_ptr<Module> clone() const override {
    auto copy = std::make_shared<Derived>(static_cast<const Derived&>(*this));
    this->finish_clone(*copy, [&copy] { copy->reset(); });
    return copy;
  }

 protected:
  void assign_clone_of(const Module& other) override {
    auto cloned = std::dynamic_pointer_cast<Derived>(other.clone());
    if (!cloned) Module::clone_type_mismatch(*this, other);
    static_cast<Derived&>(*this) = std::move(*cloned);
  }
};

/// Prints the module tree, PyTorch-style.
std::ostream& operator<<(std::ostream& os, const Module& module);

/// Chains modules: forward(x) = m_n(...m_1(m_0(x))). Children are named "0", "1", ...
///   nn::Sequential model(nn::Linear(784, 256), nn::ReLU(), nn::Linear(256, 10));
/// Under NoGradGuard, runs of Conv2d [BatchNorm2d] [ReLU] [MaxPool2d] in eval mode take the
/// fused inference path (soma/nn/fusion.h; same results to float32 rounding).
class Sequential : public Cloneable<Sequential> {
 public:
  Sequential() = default;
  void reset() override {}  // children are added by push_back; clone() clones each
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
  // The inference fusion's folded weights and primitives per run (shared by copies).
  std::shared_ptr<soma::detail::FusionCache> fusion_ = soma::detail::new_fusion_cache();
};

/// A list of modules that user code indexes and loops over; it has no forward of its own.
class ModuleList : public Cloneable<ModuleList> {
 public:
  ModuleList() = default;
  void reset() override {}
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
