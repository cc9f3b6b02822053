"""Helpers for comparing soma with torch on the same random data."""
import numpy as np

import soma


def rand_np(shape, seed, dtype=np.float64, low=-2.0, high=2.0):
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=shape).astype(dtype)


def pair(torch, array, requires_grad=False):
    """The same values as a soma tensor and a torch tensor (copies, not shared)."""
    s = soma.tensor(array)
    t = torch.tensor(array)
    if requires_grad:
        s.requires_grad_(True)
        t.requires_grad_(True)
    return s, t


def to_np(x):
    if isinstance(x, soma.Tensor):
        return np.array(x.detach().tolist()).reshape(tuple(x.shape))
    return x.detach().numpy()


def assert_close(s, t, rtol=1e-6, atol=1e-6):
    assert isinstance(s, soma.Tensor), type(s)
    assert tuple(s.shape) == tuple(t.shape), (s.shape, t.shape)
    assert repr(s.dtype).split(".")[1] == str(t.dtype).split(".")[1], (s.dtype, t.dtype)
    np.testing.assert_allclose(to_np(s), to_np(t), rtol=rtol, atol=atol)
