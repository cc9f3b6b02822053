// nn::functional::dropout: inverted dropout with a counter-based mask stream.

#include "autograd/node.h"
#include "core/dispatch.h"
#include "kernels/kernels.h"
#include "ops/trace.h"
#include "soma/core/error.h"
#include "soma/core/random.h"
#include "soma/nn/functional.h"
#include "soma/ops/elementwise.h"

namespace soma::nn::functional {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

static Tensor dropout_untraced(const Tensor& x, double p, bool training) {
  SOMA_CHECK(p >= 0.0 && p < 1.0, "dropout: probability p must be in [0, 1), got ", p);
  SOMA_CHECK(x.defined(), "dropout: called with an undefined tensor");
  if (!training || p == 0.0) return x;
  // mask = (u >= p) / (1 - p): keep with probability 1 - p, scaled so the mean is unchanged.
  // u comes from a counter-based stream keyed by two draws of the global generator, so
  // manual_seed / get_rng_state make it reproducible and the thread count does not matter.
  const uint64_t key =
      (static_cast<uint64_t>(soma::detail::random_u32()) << 32) | soma::detail::random_u32();
  const Tensor xc = x.contiguous();
  Tensor out = empty(x.shape(), x.dtype());
  Tensor mask = empty(x.shape(), x.dtype());
  detail::dispatch_float(x.dtype(), "dropout", [&]<typename T>() {
    kernels::call<kernels::Dropout<T>>(xc.data<T>(), out.data<T>(), mask.data<T>(), x.numel(), p,
                                       key);
  });
  if (needs_grad(x))
    record(out, "dropout", {x}, [mask](const Tensor& g) -> Grads { return {g * mask}; }, {mask});
  return out;
}

Tensor dropout(const Tensor& x, double p, bool training) {
  trace::Scope ts;
  Tensor out = dropout_untraced(x, p, training);
  if (ts) ts.record("dropout", {x}, out, {{"p", p}, {"training", int64_t{training}}});
  return out;
}

}  // namespace soma::nn::functional
