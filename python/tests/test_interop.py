"""Zero-copy interop: from_numpy / numpy() share memory both ways and keep each other alive;
DLPack with torch both ways; soma.tensor(array) copies."""
import gc
import weakref

import numpy as np
import pytest

import soma

DTYPES = [np.float32, np.float64, np.int64, np.bool_, np.uint8]


@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: d.__name__)
def test_from_numpy_shares_both_ways(dt):
    a = (np.arange(12) % 3).astype(dt).reshape(3, 4)
    t = soma.from_numpy(a)
    assert repr(t.dtype) == "soma." + np.dtype(dt).name
    assert t.shape == a.shape and t.tolist() == a.tolist()
    assert t.data_ptr() == a.ctypes.data
    a[1, 2] = 1
    assert t[1, 2].item() == a[1, 2]
    t[0, 0] = 0 if dt is np.bool_ else 2
    assert a[0, 0] == t[0, 0].item()


def test_numpy_shares_both_ways():
    t = soma.arange(6, dtype=soma.float64).reshape(2, 3)
    a = t.numpy()
    assert a.dtype == np.float64 and a.shape == (2, 3)
    assert a.ctypes.data == t.data_ptr()
    a[0, 1] = 42
    assert t[0, 1].item() == 42
    t.add_(1)
    assert a[0, 1] == 43
    b = np.asarray(t)  # __array__
    assert b.ctypes.data == t.data_ptr()
    assert np.array(t, dtype=np.float32).dtype == np.float32


def test_numpy_of_views_keeps_strides():
    t = soma.arange(12, dtype=soma.float32).reshape(3, 4)
    v = t.t()[1:]
    a = v.numpy()
    assert a.tolist() == v.tolist()
    assert a.strides == (4, 16)
    a[0, 0] = -1
    assert t[0, 1].item() == -1
    with pytest.raises(soma.Error, match="requires grad"):
        soma.ones(2, requires_grad=True).numpy()
    assert soma.ones(2, requires_grad=True).detach().numpy().tolist() == [1.0, 1.0]


def test_numpy_array_outlives_tensor():
    t = soma.ones(1000, dtype=soma.float64) * 3
    a = t.numpy()
    del t
    gc.collect()
    soma.zeros(1000, dtype=soma.float64).add_(7)  # would reuse the buffer if it were freed
    assert a.sum() == 3000
    a[:] = 1
    assert a.sum() == 1000


def test_tensor_outlives_numpy_array():
    a = np.full((500,), 2.0)
    ref = weakref.ref(a) if hasattr(a, "__weakref__") else None
    t = soma.from_numpy(a)
    del a
    gc.collect()
    np.ones(500).sum()  # churn the allocator
    assert t.sum().item() == 1000
    t.mul_(2)
    assert t.sum().item() == 2000
    view = t[::2]
    del t
    gc.collect()
    assert view.sum().item() == 1000
    del view
    gc.collect()
    if ref is not None:
        assert ref() is None  # the tensor's death released the array


def test_non_contiguous_and_zero_strides_are_views():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    a = base[::2, 1::2]
    t = soma.from_numpy(a)
    assert t.tolist() == a.tolist() and not t.is_contiguous()
    t[1, 1] = -5
    assert base[2, 3] == -5
    col = base.T
    assert soma.from_numpy(col).tolist() == col.tolist()
    b = np.broadcast_to(np.arange(3.0), (4, 3))
    with pytest.warns(UserWarning, match="not writeable"):
        tb = soma.from_numpy(b)
    assert tb.tolist() == b.tolist() and tb.stride() == [0, 1]


def test_negative_strides_are_refused_and_tensor_copies():
    a = np.arange(5.0)[::-1]
    with pytest.raises(soma.Error, match="negative stride"):
        soma.from_numpy(a)
    t = soma.tensor(a)  # a copy
    assert t.tolist() == a.tolist()
    t[0] = 100
    assert a[0] == 4


def test_from_numpy_errors():
    with pytest.raises(soma.Error, match="from_numpy.*int16"):
        soma.from_numpy(np.zeros(3, dtype=np.int16))
    with pytest.raises(TypeError, match="ndarray"):
        soma.from_numpy([1, 2, 3])


def test_tensor_of_numpy_copies_and_keeps_dtype():
    for dt, expect in [(np.float32, "float32"), (np.float64, "float64"), (np.int64, "int64"),
                       (np.int32, "int32"), (np.uint8, "uint8"), (np.bool_, "bool"),
                       (np.float16, "float16"), (np.int8, "int8"), (np.int16, "int64"),
                       (np.uint16, "int64")]:
        a = np.arange(4).astype(dt)
        t = soma.tensor(a)
        assert repr(t.dtype) == "soma." + expect
        assert t.data_ptr() != a.ctypes.data
    assert soma.tensor(np.ones((2, 2)), dtype=soma.float32).dtype is soma.float32
    assert soma.tensor(np.float32(2.5)).item() == 2.5


def test_dlpack_from_torch_shares(torch):
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4)[:, 1:]
    t = soma.from_dlpack(x)
    assert t.tolist() == x.tolist() and t.stride() == list(x.stride())
    x[0, 0] = 99
    assert t[0, 0].item() == 99
    t[2, 2] = -1
    assert x[2, 2].item() == -1
    del x
    gc.collect()
    assert t[0, 0].item() == 99  # soma keeps torch's storage alive
    for dt in (torch.float64, torch.int64, torch.uint8):
        y = torch.ones(3, dtype=dt)
        assert repr(soma.from_dlpack(y).dtype)[5:] == str(dt)[6:]
    cap = torch.ones(2).__dlpack__()
    soma.from_dlpack(cap)
    with pytest.raises(TypeError, match="capsule"):
        soma.from_dlpack(cap)  # already consumed
    with pytest.raises(soma.Error, match="DLPack type"):
        soma.from_dlpack(torch.ones(2, dtype=torch.int16))


def test_dlpack_to_torch_shares(torch):
    t = soma.arange(6, dtype=soma.float64).reshape(2, 3).t()
    x = torch.from_dlpack(t)
    assert x.tolist() == t.tolist() and list(x.stride()) == t.stride()
    x[1, 1] = 50
    assert t[1, 1].item() == 50
    t.mul_(2)
    assert x[1, 1].item() == 100
    del t
    gc.collect()
    soma.zeros(6, dtype=soma.float64).add_(3)
    assert x[1, 1].item() == 100  # torch keeps soma's storage alive
    assert soma.ones(1).__dlpack_device__() == (1, 0)
    with pytest.raises(soma.Error, match="bool"):
        soma.ones(2).bool().__dlpack__()
    with pytest.raises(soma.Error, match="requires grad"):
        soma.ones(2, requires_grad=True).__dlpack__()
    unconsumed = soma.ones(3).__dlpack__()
    del unconsumed  # the capsule's destructor frees what nobody consumed
    gc.collect()


def test_dlpack_numpy_round_trip():
    a = np.arange(4.0)
    if not hasattr(a, "__dlpack__"):
        pytest.skip("this NumPy has no __dlpack__")
    t = soma.from_dlpack(a)
    a[3] = -3
    assert t[3].item() == -3
    b = np.from_dlpack(soma.arange(3, dtype=soma.float32))
    assert b.tolist() == [0.0, 1.0, 2.0]


def test_ndarray_operator_tensor_gives_a_tensor():
    # (torch 1.13 raises TypeError here; soma copies the array into a tensor.)
    a = np.arange(3.0)
    s = soma.tensor([1.0, 2.0, 4.0], dtype=soma.float64)
    ref = np.array([1.0, 2.0, 4.0])
    for f in (lambda x: a + x, lambda x: a - x, lambda x: a * x, lambda x: a / x):
        rs = f(s)
        assert isinstance(rs, soma.Tensor) and rs.tolist() == f(ref).tolist()
    m = np.ones((2, 3))
    assert (m @ s).tolist() == (m @ ref).tolist()


def test_numpy_memory_released_inside_backward():
    """The graph holds the last reference to a from_numpy tensor; backward frees it with the GIL
    released, and the deleter takes the GIL back to drop the array."""
    a = np.ones(4)
    ref = weakref.ref(a) if hasattr(a, "__weakref__") else None
    w = soma.ones(4, dtype=soma.float64, requires_grad=True)
    loss = (soma.from_numpy(a) * w).sum()
    del a
    gc.collect()
    loss.backward()
    del loss
    gc.collect()
    assert w.grad.tolist() == [1.0] * 4
    if ref is not None:
        assert ref() is None


def test_python_subclass_shares_the_tensor():
    class Param(soma.Tensor):
        pass

    base = soma.zeros(3)
    p = Param(base)
    assert isinstance(p, soma.Tensor) and type(p) is Param
    assert p.data_ptr() == base.data_ptr()
    p.add_(2)
    assert base.tolist() == [2.0] * 3
    assert type(p * 2) is soma.Tensor
    assert repr(p).startswith("Param([2., 2., 2.]")
    assert soma.Tensor().shape == (0,)
