#include "soma/nn/module.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <ostream>
#include <set>
#include <sstream>
#include <typeinfo>

#include "autograd/node.h"
#include "core/tensor_impl.h"
#include "nn/fusion_internal.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/core/random.h"

namespace soma::nn {
namespace {

void check_name(const std::string& name, const char* what) {
  SOMA_CHECK(!name.empty() && name.find('.') == std::string::npos, "Module::register_", what,
             ": invalid name '", name, "' (must be non-empty and contain no '.')");
}

template <typename List>
bool has_name(const List& list, const std::string& name) {
  return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
}

std::string with_thousands(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

}  // namespace

Module::Module(Module&& other) noexcept
    : parameters_(std::move(other.parameters_)),
      buffers_(std::move(other.buffers_)),
      children_(std::move(other.children_)),
      training_(other.training_),
      hooks_(other.hooks_) {}

Module& Module::operator=(Module&& other) noexcept {
  parameters_ = std::move(other.parameters_);
  buffers_ = std::move(other.buffers_);
  children_ = std::move(other.children_);
  training_ = other.training_;
  hooks_ = other.hooks_;
  return *this;
}

// ---- calling a module: forward with its hooks ---------------------------------------------
Tensor Module::operator()(const Tensor& input) {
  if (hooks_->pre.empty() && hooks_->post.empty()) return forward(input);
  const Hooks hooks = *hooks_;  // a copy: a hook may remove hooks (itself too) while they run
  Tensor x = input;
  for (const auto& [id, hook] : hooks.pre)
    if (Tensor r = hook(*this, x); r.defined()) x = std::move(r);
  Tensor y = forward(x);
  for (const auto& [id, hook] : hooks.post)
    if (Tensor r = hook(*this, x, y); r.defined()) y = std::move(r);
  return y;
}

unsigned Module::add_pre_hook(ForwardPreHook hook) {
  const unsigned id = autograd::next_hook_id();
  hooks_->pre.emplace_back(id, std::move(hook));
  return id;
}

unsigned Module::add_hook(ForwardHook hook) {
  const unsigned id = autograd::next_hook_id();
  hooks_->post.emplace_back(id, std::move(hook));
  return id;
}

void Module::remove_hook(unsigned id) {
  const size_t before = hooks_->pre.size() + hooks_->post.size();
  std::erase_if(hooks_->pre, [id](const auto& h) { return h.first == id; });
  std::erase_if(hooks_->post, [id](const auto& h) { return h.first == id; });
  SOMA_CHECK(hooks_->pre.size() + hooks_->post.size() != before, describe(),
             ": remove_hook: no forward hook ", id);
}

// ---- clone ---------------------------------------------------------------------------------
std::shared_ptr<Module> Module::clone() const {
  const std::string name = describe();
  detail::fail(name, ": clone() is not implemented for this module; derive it from nn::Cloneable<",
               name, "> and create its parameters, buffers and submodules in reset() (see ",
               "soma/nn/module.h)");
}

void Module::assign_clone_of(const Module& other) {
  detail::fail(describe(), ": clone() cannot clone the submodule ", other.describe(),
               " in place; derive it from nn::Cloneable<", describe(), ">");
}

void Module::clone_type_mismatch(const Module& into, const Module& from) {
  detail::fail(from.describe(), ": clone() of the submodule did not give a ", into.describe(),
               " (the module that reset() registered under its name)");
}

namespace {

// Makes `dst` (a tensor registered by reset() on the copy, held by the copy's members) hold a
// deep copy of `src`'s values, shape and dtype, with src's requires_grad and no grad.
void set_data(const Tensor& dst, const Tensor& src) {
  const Tensor copy = src.detach().clone();
  TensorImpl& d = *dst.impl();
  const TensorImpl& c = *copy.impl();
  d.storage = c.storage;
  d.offset = c.offset;
  d.shape = c.shape;
  d.strides = c.strides;
  d.numel = c.numel;
  d.dtype = c.dtype;
  d.contiguous = c.contiguous;
  d.grad = Tensor();
  d.grad_fn.reset();
  d.requires_grad = src.requires_grad();
}

template <typename List>
std::string names_of(const List& list) {
  std::string s = "[";
  for (size_t i = 0; i < list.size(); ++i) s += (i ? ", " : "") + list[i].first;
  return s + "]";
}

template <typename List>
auto find_name(List& list, const std::string& name) {
  return std::find_if(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
}

// Every name of `original` is in `copy` and the sizes agree.
template <typename List>
bool same_names(const List& original, const List& copy) {
  if (original.size() != copy.size()) return false;
  for (const auto& e : original)
    if (find_name(copy, e.first) == copy.end()) return false;
  return true;
}

}  // namespace

void Module::finish_clone(Module& copy, const std::function<void()>& reset) const {
  NoGradGuard no_grad;
  copy.parameters_.clear();
  copy.buffers_.clear();
  copy.children_.clear();
  copy.training_ = std::make_shared<bool>(*training_);
  copy.hooks_ = std::make_shared<Hooks>();
  {
    // reset() draws new initial values, which are overwritten below: put the generator back so
    // that clone() does not change what the program draws next.
    const std::string rng = get_rng_state();
    reset();
    set_rng_state(rng);
  }
  const std::string name = describe();
  const char* hint =
      " (create every parameter, buffer and submodule in reset(), not in the constructor)";
  SOMA_CHECK(same_names(parameters_, copy.parameters_), name,
             ".clone(): after reset() the copy has ", "parameters ", names_of(copy.parameters_),
             ", the module has ", names_of(parameters_), hint);
  SOMA_CHECK(same_names(buffers_, copy.buffers_), name, ".clone(): after reset() the copy has ",
             "buffers ", names_of(copy.buffers_), ", the module has ", names_of(buffers_), hint);
  for (const auto& [n, t] : copy.children_)
    SOMA_CHECK(find_name(children_, n) != children_.end(), name, ".clone(): reset() registered ",
               "the submodule '", n, "', which the module does not have", hint);
  // Parameters and buffers in the original's order, each the tensor reset() made (so the copy's
  // members see it) holding a deep copy of the original's values.
  std::vector<std::pair<std::string, Tensor>> params, buffers;
  for (const auto& [n, t] : parameters_) {
    const Tensor& dst = find_name(copy.parameters_, n)->second;
    set_data(dst, t);
    params.emplace_back(n, dst);
  }
  for (const auto& [n, t] : buffers_) {
    const Tensor dst = find_name(copy.buffers_, n)->second;
    if (t.defined() && dst.defined()) set_data(dst, t);
    buffers.emplace_back(n, t.defined() ? dst : t);
  }
  // Children: one made by reset() becomes a clone of the original in place (the copy's members
  // point at it); any other child (a container's) is the original's clone().
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children;
  for (const auto& [n, child] : children_) {
    auto made = find_name(copy.children_, n);
    if (made != copy.children_.end()) {
      made->second->assign_clone_of(*child);
      children.emplace_back(n, made->second);
    } else {
      children.emplace_back(n, child->clone());
    }
  }
  copy.parameters_ = std::move(params);
  copy.buffers_ = std::move(buffers);
  copy.children_ = std::move(children);
}

Tensor Module::forward(const Tensor&) {
  detail::fail(describe(), ": forward is not implemented (override forward in the module)");
}

std::string Module::describe() const {
  // The class name of a user-defined module, e.g. "MyDenseLayer".
  int status = 0;
  char* name = abi::__cxa_demangle(typeid(*this).name(), nullptr, nullptr, &status);
  std::string out = status == 0 && name ? name : "Module";
  std::free(name);
  // "(anonymous namespace)::app::MyDenseLayer" -> "MyDenseLayer" (template arguments kept)
  const size_t args = out.find('<');
  const size_t colon = out.rfind("::", args);
  return colon == std::string::npos ? out : out.substr(colon + 2);
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
  check_name(name, "parameter");
  SOMA_CHECK(tensor.defined(), "Module::register_parameter: '", name, "' is an undefined tensor");
  SOMA_CHECK(
      !has_name(parameters_, name) && !has_name(buffers_, name) && !has_name(children_, name),
      "Module::register_parameter: '", name, "' is already registered");
  if (requires_grad) {
    SOMA_CHECK(is_floating(tensor.dtype()), "Module::register_parameter: '", name,
               "' must be floating-point to require grad, got ", tensor.dtype());
    if (!tensor.is_leaf()) tensor = tensor.detach();
    tensor.requires_grad_(true);
  }
  parameters_.emplace_back(name, tensor);
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor) {
  check_name(name, "buffer");
  SOMA_CHECK(
      !has_name(parameters_, name) && !has_name(buffers_, name) && !has_name(children_, name),
      "Module::register_buffer: '", name, "' is already registered");
  buffers_.emplace_back(name, tensor);
  return tensor;
}

std::shared_ptr<Module> Module::register_module(const std::string& name,
                                                std::shared_ptr<Module> module) {
  check_name(name, "module");
  SOMA_CHECK(module != nullptr, "Module::register_module: '", name, "' is null");
  SOMA_CHECK(module.get() != this, "Module::register_module: a module cannot contain itself");
  SOMA_CHECK(
      !has_name(parameters_, name) && !has_name(buffers_, name) && !has_name(children_, name),
      "Module::register_module: '", name, "' is already registered");
  children_.emplace_back(name, module);
  return module;
}

void Module::replace_module(const std::string& name, std::shared_ptr<Module> module) {
  SOMA_CHECK(module != nullptr, "Module::replace_module: '", name, "' is null");
  SOMA_CHECK(module.get() != this, "Module::replace_module: a module cannot contain itself");
  for (auto& [n, child] : children_)
    if (n == name) {
      child = std::move(module);
      return;
    }
  detail::fail("Module::replace_module: ", describe(), " has no child called '", name, "'");
}

bool Module::unregister(const std::string& name) {
  auto drop = [&](auto& list) {
    for (auto it = list.begin(); it != list.end(); ++it)
      if (it->first == name) {
        list.erase(it);
        return true;
      }
    return false;
  };
  return drop(parameters_) || drop(buffers_) || drop(children_);
}

namespace {

// (name, tensor) pairs of `list` of every module under `m`; with `unique`, a tensor shared by
// several modules (tied weights) is listed once, under its first name, like PyTorch.
template <typename Get>
std::vector<std::pair<std::string, Tensor>> collect(const Module& m, bool recurse, bool unique,
                                                    Get get) {
  std::vector<std::pair<std::string, Tensor>> all;
  std::vector<std::pair<std::string, const Module*>> stack{{"", &m}};
  while (!stack.empty()) {
    auto [prefix, mod] = stack.back();
    stack.pop_back();
    for (const auto& [n, t] : get(*mod)) all.emplace_back(prefix + n, t);
    if (!recurse) break;
    const auto& kids = mod->named_children();
    for (auto it = kids.rbegin(); it != kids.rend(); ++it)
      stack.emplace_back(prefix + it->first + ".", it->second.get());
  }
  if (!unique) return all;
  std::vector<std::pair<std::string, Tensor>> out;
  std::set<const TensorImpl*> seen;
  for (auto& e : all)
    if (seen.insert(e.second.impl().get()).second) out.push_back(std::move(e));
  return out;
}

}  // namespace

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  return collect(
      *this, recurse, true, [](const Module& m) -> const auto& { return m.parameters_; });
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  return collect(
      *this, recurse, true, [](const Module& m) -> const auto& { return m.buffers_; });
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& [name, child] : children_) out.push_back(child);
  return out;
}

void Module::train(bool on) {
  *training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad(bool set_to_none) {
  for (Tensor& p : parameters()) p.zero_grad(set_to_none);
}

void Module::to(DType dtype) {
  SOMA_CHECK(is_floating(dtype),
             "Module::to: modules can be converted to float32 or float64 only, ", "got ", dtype);
  auto convert = [dtype](const Tensor& t) {
    if (!is_floating(t.dtype()) || t.dtype() == dtype) return;
    // Swap the storage inside the same TensorImpl, so every handle sees the new dtype.
    Tensor converted = t.detach().to(dtype).contiguous();
    TensorImpl& impl = *t.impl();
    impl.storage = converted.impl()->storage;
    impl.offset = converted.impl()->offset;
    impl.strides = converted.impl()->strides;
    impl.contiguous = true;
    impl.dtype = dtype;
    impl.grad = Tensor();
  };
  for (auto& [name, t] : named_parameters()) convert(t);
  for (auto& [name, t] : named_buffers()) convert(t);
}

StateDict Module::state_dict() const {
  // Every name, tied tensors included (as PyTorch's state_dict).
  StateDict out;
  for (auto& [name, t] : collect(
           *this, true, false, [](const Module& m) -> const auto& { return m.parameters_; }))
    out[name] = t.detach();
  for (auto& [name, t] : collect(
           *this, true, false, [](const Module& m) -> const auto& { return m.buffers_; }))
    out[name] = t.detach();
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  const StateDict own = state_dict();
  std::vector<std::string> missing, unexpected;
  std::set<std::string> own_names;
  for (auto& [name, t] : own) {
    own_names.insert(name);
    if (!state.count(name)) missing.push_back(name);
  }
  for (auto& [name, t] : state)
    if (!own_names.count(name)) unexpected.push_back(name);
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + ("\"" + v[i] + "\"");
    return s;
  };
  SOMA_CHECK(!strict || (missing.empty() && unexpected.empty()),
             "load_state_dict: ", missing.empty() ? "" : "missing keys: " + join(missing),
             missing.empty() || unexpected.empty() ? "" : "; ",
             unexpected.empty() ? "" : "unexpected keys: " + join(unexpected));
  // Check everything before changing anything, so a failed load leaves the module intact.
  for (auto& [name, t] : own) {
    auto it = state.find(name);
    if (it == state.end()) continue;
    const Tensor& src = it->second;
    SOMA_CHECK(src.defined(), "load_state_dict: \"", name, "\" is an undefined tensor");
    SOMA_CHECK(src.shape() == t.shape(), "load_state_dict: size mismatch for \"", name,
               "\": checkpoint has shape ", src.shape(), ", the module has ", t.shape());
    SOMA_CHECK(src.dtype() == t.dtype(), "load_state_dict: dtype mismatch for \"", name,
               "\": checkpoint has ", src.dtype(), ", the module has ", t.dtype());
  }
  NoGradGuard no_grad;
  for (auto& [name, t] : own) {
    auto it = state.find(name);
    if (it != state.end() && it->second.impl() != t.impl()) Tensor(t).copy_(it->second);
  }
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (const Tensor& p : parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

Tensor Module::summarize(const Tensor& input, const std::string& prefix,
                         std::vector<std::vector<std::string>>& rows) {
  Tensor out = forward(input);
  rows.push_back({prefix.empty() ? "(model)" : prefix, describe(), shape_str(out.shape()),
                  with_thousands(num_parameters())});
  return out;
}

std::string Module::summary(const Shape& input_shape) const {
  NoGradGuard no_grad;
  std::vector<std::vector<std::string>> rows;
  Module& self = const_cast<Module&>(*this);
  const bool was_training = is_training();
  self.eval();
  DType dtype = kFloat32;
  for (const Tensor& p : parameters()) {
    dtype = p.dtype();
    break;
  }
  try {
    self.summarize(zeros(input_shape, dtype), "", rows);
  } catch (...) {
    self.train(was_training);
    throw;
  }
  self.train(was_training);
  std::vector<std::vector<std::string>> table = {{"Layer", "Type", "Output Shape", "Param #"}};
  table.insert(table.end(), rows.begin(), rows.end());
  size_t width[4] = {0, 0, 0, 0};
  for (auto& r : table)
    for (size_t c = 0; c < 4; ++c) width[c] = std::max(width[c], r[c].size());
  const size_t total_width = width[0] + width[1] + width[2] + width[3] + 6;
  std::ostringstream os;
  auto line = [&](char ch) { os << std::string(total_width, ch) << '\n'; };
  os << "Model summary (input " << shape_str(input_shape) << ")\n";
  line('=');
  for (size_t i = 0; i < table.size(); ++i) {
    const auto& r = table[i];
    os << std::left << std::setw(static_cast<int>(width[0])) << r[0] << "  "
       << std::setw(static_cast<int>(width[1])) << r[1] << "  "
       << std::setw(static_cast<int>(width[2])) << r[2] << "  " << std::right
       << std::setw(static_cast<int>(width[3])) << r[3] << '\n';
    if (i == 0) line('-');
  }
  line('=');
  os << "Total params: " << with_thousands(num_parameters()) << '\n'
     << "Trainable params: " << with_thousands(num_parameters(true)) << '\n'
     << "Non-trainable params: " << with_thousands(num_parameters() - num_parameters(true)) << '\n';
  return os.str();
}

namespace {

void print_tree(std::ostream& os, const Module& m, int indent) {
  os << m.describe();
  if (m.named_children().empty()) return;
  os << "(\n";
  for (const auto& [name, child] : m.named_children()) {
    os << std::string(indent + 2, ' ') << '(' << name << "): ";
    print_tree(os, *child, indent + 2);
    os << '\n';
  }
  os << std::string(indent, ' ') << ')';
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Module& module) {
  print_tree(os, module, 0);
  return os;
}

// ---- Sequential ----------------------------------------------------------------------------
void Sequential::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(size()), std::move(module));
}

Tensor Sequential::forward(const Tensor& input) {
  if (fusion_ && soma::detail::fusion_applies(input)) {
    std::vector<char> hooked;
    for (const auto& [name, child] : named_children())
      hooked.push_back(!child->hooks_->pre.empty() || !child->hooks_->post.empty());
    return soma::detail::fused_forward(named_children(), hooked, *fusion_, input);
  }
  Tensor x = input;
  for (const auto& [name, child] : named_children()) x = (*child)(x);
  return x;
}

namespace {

// The index-th child (negative counts from the end) of a container named `what`.
std::shared_ptr<Module> child_at(const Module& m, int64_t index, const char* what) {
  const auto& kids = m.named_children();
  const int64_t n = static_cast<int64_t>(kids.size());
  SOMA_CHECK(index >= -n && index < n, what, ": index ", index, " is out of range for ", n,
             " modules");
  return kids[static_cast<size_t>(index < 0 ? index + n : index)].second;
}

}  // namespace

std::shared_ptr<Module> Sequential::ptr(int64_t index) const {
  return child_at(*this, index, "Sequential");
}

void Sequential::throw_wrong_type(int64_t index) const {
  detail::fail("Sequential::at: module ", index, " is ", ptr(index)->describe(),
               ", not the requested type");
}

Tensor Sequential::summarize(const Tensor& input, const std::string& prefix,
                             std::vector<std::vector<std::string>>& rows) {
  Tensor x = input;
  for (const auto& [name, child] : named_children())
    x = child->summarize(x, prefix.empty() ? name : prefix + "." + name, rows);
  return x;
}

// ---- ModuleList ----------------------------------------------------------------------------
void ModuleList::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(size()), std::move(module));
}

std::shared_ptr<Module> ModuleList::ptr(int64_t index) const {
  return child_at(*this, index, "ModuleList");
}

}  // namespace soma::nn
