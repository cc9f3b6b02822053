"""soma.autograd: grad mode (no_grad, enable_grad, set_grad_enabled), grad(), backward()."""
import functools

from ._soma import _autograd as _C
from ._soma import Node, RemovableHandle  # noqa: F401  (Tensor.grad_fn, register_hook)

grad = _C.grad
backward = _C.backward
is_grad_enabled = _C.is_grad_enabled
is_anomaly_enabled = _C.is_anomaly_enabled
set_detect_anomaly = _C.set_detect_anomaly

__all__ = ["grad", "backward", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "detect_anomaly", "is_anomaly_enabled", "set_detect_anomaly", "Node", "RemovableHandle"]


class _GradMode:
    """Base of the grad-mode switches: a context manager and a function decorator."""
    _mode = True

    def __enter__(self):
        self._prev = _C.is_grad_enabled()
        _C.set_grad_enabled(self._mode)
        return self

    def __exit__(self, *exc):
        _C.set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Disables graph recording on this thread (like torch.no_grad): `with soma.no_grad():`
    or as a decorator `@soma.no_grad()`."""
    _mode = False


class enable_grad(_GradMode):
    """Enables graph recording on this thread inside a no_grad block (torch.enable_grad)."""
    _mode = True


class set_grad_enabled(_GradMode):
    """Sets grad mode to `mode` now; as a context manager, restores the previous mode on exit."""

    def __init__(self, mode):
        self._prev = _C.is_grad_enabled()
        self._mode = bool(mode)
        _C.set_grad_enabled(self._mode)

    def __enter__(self):
        return self

    def __call__(self, fn):
        mode = self._mode
        _C.set_grad_enabled(self._prev)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


class detect_anomaly:
    """Turns anomaly detection on inside a with block (torch.autograd.detect_anomaly)."""

    def __enter__(self):
        self._prev = _C.is_anomaly_enabled()
        _C.set_detect_anomaly(True)
        return self

    def __exit__(self, *exc):
        _C.set_detect_anomaly(self._prev)
        return False
