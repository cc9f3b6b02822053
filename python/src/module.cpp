// The extension module soma._soma: calls each unit's bind_xxx (python/src/soma_py.h).
#include "soma_py.h"

PYBIND11_MODULE(_soma, m) {
  m.doc() = "soma's C++ core (import soma rather than soma._soma).";
  using namespace soma::python;
  bind_dtype(m);  // first: soma.dtype and soma.Error are used by every later signature
  bind_tensor(m);
  bind_creation(m);
  bind_autograd(m);
  bind_interop(m);
  bind_nn(m);
  bind_optim(m);
  bind_data(m);
  bind_train(m);
  bind_function(m);      // after bind_autograd (soma._soma._autograd)
  bind_quantization(m);  // after bind_nn (its layers derive from nn.Module)
  // Units added later (nn, optim, data, fit, io, ...) go here, one line each.
}
