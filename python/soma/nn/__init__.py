"""soma.nn: modules, layers and losses with torch.nn's names.

    import soma
    import soma.nn as nn

    class MyDenseLayer(nn.Module):            # a user-defined layer, as in torch
        def __init__(self, n_in, n_out):
            super().__init__()
            self.w = nn.Parameter(soma.randn(n_in, n_out))
            self.b = nn.Parameter(soma.randn(1, n_out))

        def forward(self, x):
            return soma.relu(x @ self.w + self.b)

    model = nn.Sequential(MyDenseLayer(2, 32), nn.Linear(32, 2))   # Python and C++ layers mixed

The layers are soma's C++ modules (a soma.nn.Linear is soma::nn::Linear), built from torch's
arguments; a Python subclass of nn.Module runs its forward from C++ too (inside Sequential, fit).
"""
import copy as _copy

from .. import _soma
from .._soma import Tensor as _Tensor
from .._soma.nn import *  # noqa: F401,F403  (Module, Linear, Conv2d, ..., MSELoss, ...)
from .._soma.nn import Module, _Sequential, _ModuleList, _Loss
from . import functional  # noqa: F401
from . import init  # noqa: F401

_C = _soma.nn


class Parameter(_Tensor):
    """A tensor that a Module registers as a parameter when assigned to one of its attributes
    (torch.nn.Parameter). It shares `data`'s memory and is a leaf that requires grad."""

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = _soma.empty(0)
        super().__init__(data.detach())
        self.requires_grad_(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + _Tensor.__repr__(self)

    def __reduce_ex__(self, protocol):
        return (Parameter, (self.detach(), self.requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        new = Parameter(self.detach().clone(), self.requires_grad)
        memo[id(self)] = new
        return new


def _modules(self):
    """Yields this module and every descendant (torch's Module.modules())."""
    for _, m in _named_modules(self):
        yield m


def _named_modules(self, memo=None, prefix=""):
    if memo is None:
        memo = set()
    if id(self) in memo:
        return
    memo.add(id(self))
    yield prefix, self
    for name, child in self.named_children():
        yield from _named_modules(child, memo, prefix + ("." if prefix else "") + name)


def _apply_fn(self, fn):
    """Calls fn on every child (recursively), then on this module; returns self."""
    for child in self.children():
        _apply_fn(child, fn)
    fn(self)
    return self


def _requires_grad_(self, requires_grad=True):
    for p in self.parameters():
        p.requires_grad_(requires_grad)
    return self


def _deepcopy(self, memo):
    """copy.deepcopy of a module: containers copy each child; C++ modules clone(); a
    Python-defined one copies its attributes and registers deep copies of its parameters,
    buffers and children."""
    if id(self) in memo:
        return memo[id(self)]
    cls = type(self)
    if isinstance(self, (Sequential, ModuleList)):
        new = cls()
        memo[id(self)] = new
        for child in self:
            new.append(_copy.deepcopy(child, memo))
    elif _cpp_layer(cls) is not None and not hasattr(self, "_init_args"):
        new = self.clone()  # a C++ module not built from arguments (an imported ONNX graph)
        memo[id(self)] = new
    elif _cpp_layer(cls) is not None:
        new = _rebuild_layer(cls, *_layer_args(self))
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            if k != "_init_args":
                object.__setattr__(new, k, _copy.deepcopy(v, memo))
        return new
    else:
        new = cls.__new__(cls)
        Module.__init__(new)
        memo[id(self)] = new
        state = dict(self.__dict__)
        for name, t in self.named_parameters(recurse=False):
            new.register_parameter(name, Parameter(t.detach().clone(), t.requires_grad))
            state.pop(name, None)
        for name, t in self.named_buffers(recurse=False):
            new.register_buffer(name, t.clone())
            state.pop(name, None)
        children = dict(self.named_children())
        for name, value in state.items():
            if name not in children:
                object.__setattr__(new, name, _copy.deepcopy(value, memo))
        for name, child in children.items():
            new.register_module(name, _copy.deepcopy(child, memo))
    new.train(self.training)
    return new


Module.modules = _modules
Module.named_modules = _named_modules
Module.apply = _apply_fn
Module.requires_grad_ = _requires_grad_
Module.__deepcopy__ = _deepcopy
Module.extra_repr = lambda self: ""


class _Container:
    """What Sequential and ModuleList share over their C++ _push_back / _at / __len__."""

    def _init_children(self, modules):
        object.__setattr__(self, "_keep", [])
        for m in modules:
            self.append(m)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError("%s: %s is not a soma.nn.Module"
                            % (type(self).__name__, type(module).__name__))
        self._push_back(module)
        self._keep.append(module)  # a Python-defined module lives as long as its container
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def _slice(self, index):
        return [self._at(i) for i in range(len(self))[index]]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._from_list(self._slice(index))
        return self._at(index)

    def __iter__(self):
        return (self._at(i) for i in range(len(self)))


class Sequential(_Container, _Sequential):
    """Chains modules, children named "0", "1", ... (torch.nn.Sequential). Python-defined and
    C++ modules mix; its forward runs in C++."""

    def __init__(self, *modules):
        _Sequential.__init__(self)
        self._init_children(modules)

    @staticmethod
    def _from_list(modules):
        return Sequential(*modules)


class ModuleList(_Container, _ModuleList):
    """A list of modules whose parameters are registered (torch.nn.ModuleList)."""

    def __init__(self, modules=()):
        _ModuleList.__init__(self)
        self._init_children(modules)

    @staticmethod
    def _from_list(modules):
        return ModuleList(modules)


# ---- pickling: through the architecture's arguments and the state dict ---------------------
# A layer soma built remembers its constructor's arguments; Sequential and ModuleList pickle
# their children; a Python-defined module its attributes, parameters, buffers and children.
def _record_arguments(cls):
    init = cls.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        object.__setattr__(self, "_init_args", (args, kwargs))

    __init__.__doc__ = init.__doc__
    cls.__init__ = __init__


for _name in dir(_C):
    _cls = getattr(_C, _name)
    if (isinstance(_cls, type) and issubclass(_cls, Module) and not _name.startswith("_")
            and _cls is not Module):
        _record_arguments(_cls)


def _state_of(module):
    params = {k: v.detach().clone().requires_grad_(v.requires_grad)
              for k, v in module.named_parameters(recurse=False)}
    return params, {k: v.clone() for k, v in module.named_buffers(recurse=False)}


def _cpp_layer(cls):
    """The C++ layer class soma binds that `cls` is or derives from (None for Module itself,
    the containers and Python-defined modules)."""
    for c in cls.__mro__:
        if c is Module:
            return None
        if (c.__module__ or "").startswith("soma._soma") and not c.__name__.startswith("_"):
            return c
    return None


def _layer_args(self):
    params, buffers = _state_of(self)
    args, kwargs = self._init_args
    return args, kwargs, params, buffers, self.training


def _rebuild_layer(cls, args, kwargs, params, buffers, training):
    from ..autograd import no_grad
    base = _cpp_layer(cls)
    if base is None or base is cls:
        m = cls(*args, **kwargs)
    else:  # a Python subclass of a C++ layer: its own __init__ may take other arguments
        m = cls.__new__(cls)
        base.__init__(m, *args, **kwargs)
    with no_grad():
        for k, v in list(params.items()) + list(buffers.items()):
            getattr(m, k).copy_(v)
    for k, v in params.items():
        getattr(m, k).requires_grad_(v.requires_grad)
    return m.train(training)


def _rebuild_container(cls, children, training):
    return cls(children).train(training) if cls is ModuleList else cls(*children).train(training)


def _rebuild_python_module(cls, attributes, params, buffers, children, training):
    m = cls.__new__(cls)
    Module.__init__(m)
    for k, v in params.items():
        m.register_parameter(k, Parameter(v, v.requires_grad))
    for k, v in buffers.items():
        m.register_buffer(k, v)
    for k, v in children.items():
        m.register_module(k, v)
    for k, v in attributes.items():
        object.__setattr__(m, k, v)
    return m.train(training)


def _rebuild_subclassed_layer(cls, layer_args, attributes):
    m = _rebuild_layer(cls, *layer_args)
    for k, v in attributes.items():
        object.__setattr__(m, k, v)
    return m


def _state_dict(self):
    """Parameters and buffers by dotted name, in registration order (module by module, its
    parameters then its buffers), as torch orders them."""
    flat = self._state_dict()
    out = {}
    for prefix, m in self.named_modules():
        dot = prefix + "." if prefix else ""
        for name, _ in m.named_parameters(recurse=False) + m.named_buffers(recurse=False):
            if dot + name in flat and dot + name not in out:
                out[dot + name] = flat[dot + name]
    for k, v in flat.items():  # anything the walk missed (none expected)
        out.setdefault(k, v)
    return out


def _init_subclass(cls, **kwargs):
    base = _cpp_layer(cls)
    container = any(c in (_Sequential, _ModuleList, _Loss) for c in cls.__mro__[1:])
    if "forward" in cls.__dict__ and (base is not None or container) and \
            not cls.__module__.startswith("soma."):
        parent = base.__name__ if base is not None else cls.__mro__[1].__name__
        raise TypeError(
            f"{cls.__name__}: overriding forward in a subclass of soma.nn.{parent} is not "
            f"supported (C++ runs {parent}'s own forward); subclass soma.nn.Module and call a "
            f"{parent} from your forward instead")


Module.__init_subclass__ = classmethod(_init_subclass)
Module._state_dict = Module.state_dict
Module.state_dict = _state_dict


def _reduce(self, protocol=2):
    cls = type(self)
    if isinstance(self, (Sequential, ModuleList)):
        return (_rebuild_container, (cls, list(self), self.training))
    params, buffers = _state_of(self)
    if hasattr(self, "_init_args"):
        args, kwargs = self._init_args
        if _cpp_layer(cls) is not cls:  # a Python subclass: its attributes too
            return (_rebuild_subclassed_layer,
                    (cls, (args, kwargs, params, buffers, self.training),
                     {k: v for k, v in self.__dict__.items() if k != "_init_args"}))
        return (_rebuild_layer, (cls, args, kwargs, params, buffers, self.training))
    if cls.__module__.startswith("soma"):
        raise TypeError(f"{cls.__name__} does not pickle; pickle its state_dict() instead")
    children = dict(self.named_children())
    attributes = {k: v for k, v in self.__dict__.items()
                  if k not in params and k not in buffers and k not in children}
    return (_rebuild_python_module, (cls, attributes, params, buffers, children,
                                     self.training))


Module.__reduce_ex__ = _reduce
