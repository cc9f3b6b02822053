// Custom autograd functions (soma::autograd::Function<T>): the context and the graph wiring.
#include "soma/autograd/function.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>

#include "autograd/node.h"
#include "core/tensor_impl.h"

namespace soma::autograd {

double SavedValue::toDouble() const {
  if (const auto* d = std::get_if<double>(&v_)) return *d;
  if (const auto* i = std::get_if<int64_t>(&v_)) return static_cast<double>(*i);
  soma::detail::fail("saved_data: the value is not a number");
}
int64_t SavedValue::toInt() const {
  if (const auto* i = std::get_if<int64_t>(&v_)) return *i;
  soma::detail::fail("saved_data: the value is not an integer");
}
bool SavedValue::toBool() const {
  if (const auto* b = std::get_if<bool>(&v_)) return *b;
  soma::detail::fail("saved_data: the value is not a bool");
}
const std::string& SavedValue::toStringRef() const {
  if (const auto* s = std::get_if<std::string>(&v_)) return *s;
  soma::detail::fail("saved_data: the value is not a string");
}
Tensor SavedValue::toTensor() const {
  if (const auto* t = std::get_if<Tensor>(&v_)) return *t;
  soma::detail::fail("saved_data: the value is not a tensor");
}

void AutogradContext::save_for_backward(variable_list to_save) {
  saved_ = std::move(to_save);
  saved_is_output_.assign(saved_.size(), false);
}

variable_list AutogradContext::get_saved_variables() const {
  variable_list out = saved_;
  for (size_t i = 0; i < out.size(); ++i)
    if (saved_is_output_[i]) out[i] = attach_output(out[i]);
  return out;
}

void AutogradContext::mark_non_differentiable(const variable_list& outputs) {
  for (const Tensor& t : outputs)
    if (t.defined()) non_differentiable_.push_back(t.impl().get());
}

bool AutogradContext::is_non_differentiable(const Tensor& t) const {
  return t.defined() && std::find(non_differentiable_.begin(), non_differentiable_.end(),
                                  t.impl().get()) != non_differentiable_.end();
}

bool AutogradContext::needs_input_grad(size_t i) const {
  return i < needs_input_grad_.size() && needs_input_grad_[i];
}

void AutogradContext::finish_forward(const variable_list& outputs) {
  for (size_t i = 0; i < saved_.size(); ++i)
    for (const Tensor& o : outputs)
      if (saved_[i].defined() && o.defined() && saved_[i].impl() == o.impl()) {
        saved_[i] = saved_[i].detach();
        saved_is_output_[i] = true;
      }
}

namespace detail {
namespace {

std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && d ? d : name;
  std::free(d);
  return out;
}

}  // namespace

void record_custom(const char* type_name, const std::shared_ptr<AutogradContext>& ctx,
                   variable_list& outputs, const variable_list& inputs,
                   const std::vector<size_t>& positions, size_t num_args, CustomBackward backward) {
  // Node names must outlive the graph: keep one string per function type.
  static std::map<std::string, std::string> names;
  static std::mutex names_mutex;
  const char* name;
  {
    std::lock_guard<std::mutex> lock(names_mutex);
    auto [it, fresh] = names.try_emplace(type_name, demangle(type_name));
    name = it->second.c_str();
  }
  // An output that is an input returned as is (or shares its TensorImpl) becomes a new handle,
  // so recording does not rewrite the input's own history.
  for (Tensor& o : outputs) {
    SOMA_CHECK(o.defined(), name, ": forward returned an undefined tensor");
    for (const Tensor& in : inputs)
      if (in.defined() && in.impl() == o.impl()) {
        const bool nd = ctx->is_non_differentiable(o);
        o = o.detach();
        if (nd) ctx->mark_non_differentiable({o});
      }
  }
  ctx->finish_forward(outputs);
  if (!needs_grad(inputs)) return;
  const size_t n_out = outputs.size();
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  for (const Tensor& o : outputs) {
    shapes.push_back(o.shape());
    dtypes.push_back(o.dtype());
  }
  // One differentiable output per function: soma's graph nodes have one output each, and
  // splitting backward over several nodes would call it once per output and re-attach saved
  // outputs to the wrong node under create_graph.
  size_t differentiable = 0;
  for (const Tensor& o : outputs)
    differentiable += !ctx->is_non_differentiable(o) && supports_autograd(o.dtype());
  SOMA_CHECK(differentiable <= 1, name, ": forward returned ", differentiable,
             " differentiable outputs; soma's custom functions support one (mark the others with ",
             "ctx->mark_non_differentiable, or split the function)");
  const std::vector<Tensor> saved = ctx->saved_for_version_check();
  for (size_t k = 0; k < n_out; ++k) {
    Tensor& o = outputs[k];
    if (ctx->is_non_differentiable(o) || !supports_autograd(o.dtype())) continue;
    record(
        o, name, inputs,
        [ctx, backward, k, n_out, shapes, dtypes, positions, num_args,
         name](const Tensor& g) -> Grads {
          variable_list grad_outputs(n_out);
          for (size_t j = 0; j < n_out; ++j)
            grad_outputs[j] = j == k ? g : zeros(shapes[j], dtypes[j]);
          variable_list per_arg = backward(ctx.get(), std::move(grad_outputs));
          SOMA_CHECK(per_arg.size() == num_args, name, ": backward returned ", per_arg.size(),
                     " gradients, expected one per forward argument (", num_args, ")");
          Grads grads;
          for (size_t i = 0; i < positions.size(); ++i) {
            Tensor gi = per_arg[positions[i]];
            if (gi.defined() && !ctx->needs_input_grad(positions[i])) gi = Tensor();
            grads.push_back(gi);
          }
          return grads;
        },
        saved);
  }
}

}  // namespace detail
}  // namespace soma::autograd
