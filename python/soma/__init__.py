"""soma: a small deep-learning library (C++20) with PyTorch's names, from Python.

    import soma
    x = soma.tensor([[1., 2.], [3., 4.]], requires_grad=True)
    y = (x @ x).sum()
    y.backward()
    print(x.grad)

The core lives in the extension module soma._soma; this package re-exports it and adds the
pure-Python pieces (repr, no_grad, soma.autograd). NumPy and torch are imported only when a
function that needs them is called.
"""
from . import _soma
from ._soma import *  # noqa: F401,F403  (Tensor, dtypes, creation functions, ops)
from ._soma import Tensor, Error, dtype  # noqa: F401

del Node, RemovableHandle  # noqa: F821  (they live in soma.autograd)


class Size(tuple):
    """The shape of a tensor: a tuple of ints (like torch.Size)."""
    __slots__ = ()

    def __repr__(self):
        return "soma.Size([" + ", ".join(str(int(s)) for s in self) + "])"

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n


_soma._register_size_type(Size)

from . import autograd  # noqa: E402
from .autograd import no_grad, enable_grad, set_grad_enabled, is_grad_enabled  # noqa: E402,F401

__version__ = "0.1.0"

for _cls in (Tensor, Error, dtype):
    _cls.__module__ = "soma"


def _repr(self, *, tensor_contents=None):
    from ._tensor_str import _str
    return _str(self)


def _array(self, dtype=None):
    a = self.numpy()
    return a if dtype is None else a.astype(dtype, copy=False)


def _deepcopy(self, memo):
    if not self.is_leaf:
        raise Error("deepcopy: only tensors created explicitly by the user (graph leaves) "
                    "support the deepcopy protocol")
    if id(self) in memo:
        return memo[id(self)]
    new = self.detach().clone()
    new.requires_grad_(self.requires_grad)
    memo[id(self)] = new
    if self.grad is not None:
        import copy
        new.grad = copy.deepcopy(self.grad, memo)
    return new


def _format(self, spec):
    if self.dim() == 0:
        return self.item().__format__(spec)
    return object.__format__(self, spec)


Tensor.__repr__ = _repr
Tensor.__str__ = _repr
Tensor.__format__ = _format
Tensor.__array__ = _array
Tensor.__deepcopy__ = _deepcopy
Tensor.__copy__ = lambda self: self  # as torch: copy.copy shares (use clone())
del _repr, _array, _deepcopy, _format, _cls

# The training side (soma.nn, soma.optim, soma.data, soma.train, soma.onnx) and the top-level
# shortcuts torch and Keras users look for.
# Imported by name: `from . import nn` would keep the extension's soma._soma.nn that the star
# import above put in this namespace (it skips the import when the attribute exists), and
# `import soma; soma.nn.Sequential` would then fail.
import importlib as _importlib  # noqa: E402

for _name in ("nn", "optim", "data", "train", "onnx", "quantization"):
    globals()[_name] = _importlib.import_module("." + _name, __name__)
del _importlib, _name
from ._soma import save, load  # noqa: E402,F401
from .train import fit, evaluate  # noqa: E402,F401
from ._function import Function as _Function, FunctionCtx as _FunctionCtx  # noqa: E402

autograd.Function = _Function
autograd.FunctionCtx = _FunctionCtx


class autocast:
    """bfloat16 mixed precision, as torch.autocast(device_type="cpu", dtype=torch.bfloat16):
    a context manager (or decorator) under which the matrix products of float32 linear,
    matmul and conv layers round their operands to bfloat16 and accumulate in float32, forward
    and backward; weights, activations, losses and the optimizer stay float32. Per thread.

        with soma.autocast():
            loss = F.cross_entropy(model(x), y)
            loss.backward()
    """

    def __init__(self, device_type="cpu", dtype=None, enabled=True):
        if device_type != "cpu":
            raise Error("autocast: soma runs on the CPU only, got device_type=%r" % (device_type,))
        if dtype is not None and dtype is not bfloat16:  # noqa: F821 (from _soma)
            raise Error("autocast: the CPU supports bfloat16 only, got %s" % (dtype,))
        self.enabled = True if enabled else False  # (bool is soma.bool here)
        self._prev = []

    def __enter__(self):
        self._prev.append(_soma._set_autocast_enabled(self.enabled))
        return self

    def __exit__(self, *exc):
        _soma._set_autocast_enabled(self._prev.pop())
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(enabled=self.enabled):
                return fn(*args, **kwargs)
        return wrapper
