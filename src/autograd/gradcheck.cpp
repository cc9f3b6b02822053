#include "soma/autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "core/tensor_impl.h"
#include "soma/autograd/autograd.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/core/random.h"
#include "soma/ops/shape.h"

namespace soma::autograd {
namespace {

// Storage offset of the flat (row-major) element j of t.
int64_t offset_of(const Tensor& t, int64_t j) {
  int64_t off = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (j % t.size(d)) * t.stride(d);
    j /= t.size(d);
  }
  return off;
}

std::string index_str(const Shape& shape, int64_t j) {
  Shape idx(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = j % shape[d];
    j /= shape[d];
  }
  return shape_str(idx);
}

std::vector<double> evaluate(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                             const std::vector<Tensor>& inputs) {
  NoGradGuard no_grad;
  return fn(inputs).to_vector<double>();
}

}  // namespace

bool gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
               const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    SOMA_CHECK(x.dtype() == kFloat64, "gradcheck: input ", i, " must be float64, got ", x.dtype());
    SOMA_CHECK(x.is_leaf(), "gradcheck: input ", i, " must be a leaf tensor");
  }
  const Tensor out0 = fn(inputs);
  SOMA_CHECK(out0.dtype() == kFloat64, "gradcheck: the function must return float64, got ",
             out0.dtype());
  const int64_t n_out = out0.numel();

  // Analytic Jacobian, one backward pass per output element: jac[i][o * n_in + j].
  std::vector<std::vector<double>> jac(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad())
      jac[i].assign(static_cast<size_t>(n_out * inputs[i].numel()), 0.0);
  for (int64_t o = 0; o < n_out; ++o) {
    for (const Tensor& x : inputs)
      if (x.defined() && x.requires_grad()) const_cast<Tensor&>(x).zero_grad();
    Tensor out = fn(inputs);
    if (!out.requires_grad()) break;  // no input reaches the output: gradient is zero
    Tensor onehot = zeros_like(out);
    onehot.data<double>()[offset_of(onehot, o)] = 1.0;
    out.backward(onehot);
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (jac[i].empty() || !inputs[i].grad().defined()) continue;
      std::vector<double> g = inputs[i].grad().to_vector<double>();
      std::copy(g.begin(), g.end(), jac[i].begin() + o * inputs[i].numel());
    }
  }
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) const_cast<Tensor&>(x).zero_grad();

  // Numeric Jacobian by central differences, compared column by column.
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (jac[i].empty()) continue;
    Tensor x = inputs[i];
    const int64_t n_in = x.numel();
    double* base = x.data<double>();
    for (int64_t j = 0; j < n_in; ++j) {
      double* p = base + offset_of(x, j);
      const double saved = *p;
      *p = saved + options.eps;
      std::vector<double> plus = evaluate(fn, inputs);
      *p = saved - options.eps;
      std::vector<double> minus = evaluate(fn, inputs);
      *p = saved;
      SOMA_CHECK(
          static_cast<int64_t>(plus.size()) == n_out && static_cast<int64_t>(minus.size()) == n_out,
          "gradcheck: the function returned ", plus.size(), " elements under NoGradGuard, ", n_out,
          " with gradients enabled");
      for (int64_t o = 0; o < n_out; ++o) {
        const double numeric = (plus[o] - minus[o]) / (2 * options.eps);
        const double analytic = jac[i][o * n_in + j];
        if (std::abs(analytic - numeric) <= options.atol + options.rtol * std::abs(numeric))
          continue;
        if (!options.raise) return false;
        std::ostringstream msg;
        msg << "gradcheck: gradient mismatch for input " << i << " (shape " << shape_str(x.shape())
            << ") at element " << index_str(x.shape(), j) << ", output element "
            << index_str(out0.shape(), o) << ": analytic " << analytic << " vs numeric " << numeric
            << " (atol " << options.atol << ", rtol " << options.rtol << ")";
        throw Error(msg.str());
      }
    }
  }
  return true;
}

bool gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                   const std::vector<Tensor>& inputs, const std::vector<Tensor>& grad_outputs,
                   const GradcheckOptions& options) {
  std::vector<size_t> diff;  // the inputs that require grad
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) diff.push_back(i);
  SOMA_CHECK(!diff.empty(), "gradgradcheck: no input requires grad");
  Tensor v;
  {
    NoGradGuard no_grad;
    const Tensor out = fn(inputs);
    SOMA_CHECK(grad_outputs.size() <= 1, "gradgradcheck: the function has one output; got ",
               grad_outputs.size(), " grad_outputs");
    if (!grad_outputs.empty()) {
      v = grad_outputs[0].detach();
      SOMA_CHECK(v.shape() == out.shape(), "gradgradcheck: grad_outputs[0] has shape ", v.shape(),
                 ", the output has ", out.shape());
    } else {
      // Fixed grad_outputs, without disturbing the caller's random stream.
      const std::string state = get_rng_state();
      manual_seed(0x5eed);
      v = randn(out.shape(), out.dtype());
      set_rng_state(state);
    }
  }
  auto first_derivative = [&](const std::vector<Tensor>& xs) {
    // gradcheck evaluates its function under NoGradGuard for the finite differences; the
    // first derivative needs the graph, so it turns grad mode back on while it runs.
    const bool was_enabled = is_grad_enabled();
    set_grad_enabled(true);
    struct Restore {
      bool on;
      ~Restore() { set_grad_enabled(on); }
    } restore{was_enabled};
    const Tensor out = fn(xs);
    if (!out.requires_grad()) return zeros({0}, kFloat64);
    std::vector<Tensor> wrt;
    for (size_t i : diff) wrt.push_back(xs[i]);
    const std::vector<Tensor> g = grad({out}, wrt, {v}, true, true, true);
    std::vector<Tensor> parts;
    for (size_t k = 0; k < g.size(); ++k)
      parts.push_back(g[k].defined() ? reshape(g[k], {-1}) : zeros({wrt[k].numel()}, kFloat64));
    Tensor flat = parts.size() == 1 ? parts[0] : cat(parts, 0);
    return was_enabled ? flat : flat.detach();
  };
  try {
    return gradcheck(first_derivative, inputs, options);
  } catch (const Error& e) {
    throw Error(std::string("gradgradcheck (second derivatives): ") + e.what());
  }
}

}  // namespace soma::autograd
