"""Creation functions, metadata, conversions, Python protocols, repr, pickle and deepcopy."""
import copy
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import soma
from helpers import assert_close, rand_np


def tname(dtype):
    return repr(dtype)[len("soma."):]


@pytest.mark.parametrize("data", [
    [1, 2, 3], [1.5, 2], [True, False], [[1, 2], [3, 4]], 3.5, 7, True, [], [[]],
    [[1.0, 2.0], [3, 4.5]], (1, 2), [[True, 1]], [np.float32(1.5), np.int64(3)],
])
def test_tensor_infers_like_torch(torch, data):
    s, t = soma.tensor(data), torch.tensor(data)
    assert tuple(s.shape) == tuple(t.shape)
    assert tname(s.dtype) == str(t.dtype)[6:]
    assert s.tolist() == t.tolist()


def test_tensor_arguments_and_errors(torch):
    s = soma.tensor([1, 2], dtype=soma.float64, requires_grad=True)
    assert s.dtype is soma.float64 and s.requires_grad and s.is_leaf
    assert soma.tensor([1.7, -1.7], dtype=soma.int64).tolist() == [1, -1]
    assert soma.tensor([0, 2], dtype=soma.bool).tolist() == [False, True]
    assert soma.tensor([1, 2], dtype=float).dtype is soma.float64
    assert soma.tensor([1.0], dtype=int).dtype is soma.int64
    c = soma.tensor(s)  # a copy, outside the graph
    assert not c.requires_grad and c.data_ptr() != s.data_ptr()
    assert soma.tensor([soma.tensor(1.0), soma.tensor(2.0)]).tolist() == [1.0, 2.0]
    with pytest.raises(soma.Error, match="ragged"):
        soma.tensor([[1, 2], [3]])
    with pytest.raises(TypeError, match="numbers"):
        soma.tensor(["a"])


def test_creation_functions(torch):
    for name in ["zeros", "ones"]:
        for args in [(2, 3), ((2, 3),), ([4],), ((),)]:
            s, t = getattr(soma, name)(*args), getattr(torch, name)(*args)
            assert_close(s, t)
        assert_close(getattr(soma, name)(2, dtype=soma.int64), getattr(torch, name)(2, dtype=torch.int64))
    assert soma.empty(3, 2).shape == (3, 2) and soma.empty((0,)).numel() == 0
    assert_close(soma.full((2, 2), 7), torch.full((2, 2), 7))
    assert_close(soma.full((2,), 1.5), torch.full((2,), 1.5))
    assert_close(soma.full((2,), True), torch.full((2,), True))
    assert_close(soma.full([1, 2], 3, dtype=soma.float64), torch.full([1, 2], 3, dtype=torch.float64))
    for args, kw in [((5,), {}), ((2, 7), {}), ((1, 2, 0.25), {}), ((0.5, 3), {}),
                     ((10, 0, -3), {}), ((4,), {"dtype": soma.float32})]:
        tkw = {"dtype": torch.float32} if kw else {}
        assert_close(soma.arange(*args, **kw), torch.arange(*args, **tkw))
    assert_close(soma.linspace(-1, 1, 7), torch.linspace(-1, 1, 7))
    assert_close(soma.linspace(0, 1, 3, dtype=soma.float64), torch.linspace(0, 1, 3, dtype=torch.float64))
    assert_close(soma.eye(3), torch.eye(3))
    assert_close(soma.eye(2, 4, dtype=soma.int64), torch.eye(2, 4, dtype=torch.int64))
    x = soma.tensor([[1, 2]], dtype=soma.float64)
    tx = torch.tensor([[1, 2]], dtype=torch.float64)
    for name in ["zeros_like", "ones_like"]:
        assert_close(getattr(soma, name)(x), getattr(torch, name)(tx))
        assert_close(getattr(soma, name)(x, dtype=soma.int64), getattr(torch, name)(tx, dtype=torch.int64))
    assert_close(soma.full_like(x, 4), torch.full_like(tx, 4))
    assert soma.empty_like(x).shape == (1, 2) and soma.empty_like(x).dtype is soma.float64
    assert soma.zeros(2, requires_grad=True).requires_grad


def test_random_functions():
    soma.manual_seed(123)
    a = soma.rand(1000)
    soma.manual_seed(123)
    assert soma.equal(a, soma.rand(1000))  # the seed determines the draws
    assert 0 <= a.min().item() and a.max().item() < 1 and abs(a.mean().item() - 0.5) < 0.05
    n = soma.randn(4000, dtype=soma.float64)
    assert n.dtype is soma.float64 and abs(n.mean().item()) < 0.1 and abs(n.std().item() - 1) < 0.1
    r = soma.randint(3, 8, (500,))
    assert r.dtype is soma.int64 and r.min().item() == 3 and r.max().item() == 7
    assert soma.randint(2, (3, 3)).max().item() <= 1
    assert soma.rand_like(n).dtype is soma.float64 and soma.randn_like(a).shape == (1000,)
    state = soma.get_rng_state()
    u = soma.empty(50).uniform_(2, 3)
    soma.set_rng_state(state)
    assert soma.equal(u, soma.empty(50).uniform_(2, 3))
    assert 2 <= u.min().item() and u.max().item() < 3
    g = soma.empty(2000).normal_(5, 0.5)
    assert abs(g.mean().item() - 5) < 0.1
    b = soma.empty(2000).bernoulli_(0.25)
    assert abs(b.mean().item() - 0.25) < 0.05
    assert set(soma.bernoulli(soma.full((100,), 0.5)).tolist()) <= {0.0, 1.0}
    assert soma.bernoulli(soma.zeros(10), p=1.0).sum().item() == 10
    assert soma.full((10,), 1.0).bernoulli().sum().item() == 10
    assert soma.empty(10).bernoulli_(soma.zeros(10)).sum().item() == 0
    m = soma.multinomial(soma.tensor([0.0, 1.0, 0.0]), 4, replacement=True)
    assert m.tolist() == [1, 1, 1, 1]
    assert soma.tensor([[0.0, 1.0]]).multinomial(1).tolist() == [[1]]
    with pytest.raises(TypeError, match="randint"):
        soma.randint(1)


def test_metadata_and_conversions(torch):
    x = soma.arange(24, dtype=soma.float32).reshape(2, 3, 4)
    tx = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    assert x.shape == tx.shape and x.size() == tx.size() and x.size(-1) == 4
    assert repr(x.shape) == "soma.Size([2, 3, 4])" and x.shape.numel() == 24
    assert x.dim() == x.ndim == x.ndimension() == 3 and x.numel() == x.nelement() == 24
    assert x.stride() == list(tx.stride()) and x.stride(0) == 12
    assert x.element_size() == 4 and x.is_contiguous() and x.is_floating_point()
    assert x.device == "cpu" and not x.is_cuda and x.cpu() is not None
    for conv, dt in [("float", "float32"), ("double", "float64"), ("long", "int64"),
                     ("bool", "bool"), ("byte", "uint8")]:
        assert tname(getattr(x, conv)().dtype) == dt
    assert x.to(soma.float64).dtype is soma.float64
    assert x.to(soma.int64).tolist() == tx.to(torch.int64).tolist()
    assert x.to(soma.tensor([1])).dtype is soma.int64 and x.type_as(soma.tensor([True])).dtype is soma.bool
    assert x.to("cpu").data_ptr() == x.data_ptr() and x.to(soma.float32).data_ptr() == x.data_ptr()
    assert x.to(soma.float32, copy=True).data_ptr() != x.data_ptr()
    with pytest.raises(TypeError):
        x.to("cuda")
    assert soma.tensor(2.5).item() == 2.5 and isinstance(soma.tensor(3).item(), int)
    assert soma.tensor(True).item() is True and soma.tensor([7], dtype=soma.uint8).item() == 7
    assert x.tolist() == tx.tolist() and soma.tensor(1.5).tolist() == 1.5
    assert x.clone().data_ptr() != x.data_ptr() and x.detach().data_ptr() == x.data_ptr()


def test_python_protocols():
    x = soma.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert len(x) == 2 and [r.tolist() for r in x] == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(TypeError):
        len(soma.tensor(1.0))
    with pytest.raises(TypeError):
        iter(soma.tensor(1.0))
    assert bool(soma.tensor([1])) and not bool(soma.tensor(0.0))
    with pytest.raises(soma.Error, match="ambiguous"):
        bool(x)
    assert float(soma.tensor([2.5])) == 2.5 and int(soma.tensor(3.9)) == 3
    with pytest.raises(soma.Error):
        float(x)
    with pytest.raises(soma.Error):
        int(x)
    assert [10, 20, 30][soma.tensor(1)] == 20  # __index__
    with pytest.raises(TypeError):
        [1, 2][soma.tensor(1.0)]
    assert hash(x) != hash(x.clone()) and {x: 1}[x] == 1
    assert (x == None) is False and (x != "a") is True  # noqa: E711
    assert f"{soma.tensor(2.0):.2f}" == "2.00"
    assert x.numel() == 4


@pytest.mark.parametrize("make", [
    lambda m: m.tensor([[1.0, 2.0], [3.0, 4.0]]),
    lambda m: m.tensor([1, -20, 300]),
    lambda m: m.tensor([True, False]),
    lambda m: m.tensor([0.1234567, 1e-5, 3.0]),
    lambda m: m.tensor([1e10, 1.0]),
    lambda m: m.tensor([1.5, float("nan"), float("inf"), -float("inf")]),
    lambda m: m.tensor(3.25),
    lambda m: m.tensor([[1.0, 2.0]], dtype=m.float64),
    lambda m: m.tensor([1, 2], dtype=m.uint8),
    lambda m: m.zeros(0),
    lambda m: m.zeros(2, 0, dtype=m.int64),
    lambda m: m.arange(2000, dtype=m.float32).reshape(20, 100) / 7,
    lambda m: m.arange(50, dtype=m.float32) * 1.5,
    lambda m: m.arange(3000).reshape(10, 10, 30),
    lambda m: m.ones(2, 3, requires_grad=True),
    lambda m: m.ones(2, dtype=m.float64, requires_grad=True),
    lambda m: m.tensor([[[1.0, -2.5]], [[3.0, 4.0]]]),
], ids=range(17))
def test_repr_matches_torch(torch, make):
    s, t = make(soma), make(torch)
    expect = repr(t).replace("torch.", "soma.")
    assert repr(s) == expect
    assert str(s) == expect


def test_repr_of_non_leaf_names_grad_fn(torch):
    import re
    for f in (lambda m: m.ones(2, requires_grad=True) * 2,
              lambda m: m.ones(2, 3, requires_grad=True).sum(),
              lambda m: m.ones(2, requires_grad=True).exp()):
        # torch numbers its node classes (MulBackward0); soma's names drop the number.
        expect = re.sub(r"Backward\d+>", "Backward>", repr(f(torch)))
        assert repr(f(soma)) == expect


def test_pickle_and_deepcopy():
    for x in [soma.tensor([[1.5, 2.0]]), soma.arange(6).reshape(2, 3).t(), soma.tensor([True]),
              soma.zeros(0, 3, dtype=soma.uint8), soma.tensor(2.0, dtype=soma.float64)]:
        y = pickle.loads(pickle.dumps(x))
        assert y.dtype is x.dtype and y.shape == x.shape and y.tolist() == x.tolist()
    w = soma.ones(3, requires_grad=True)
    (w * 2).sum().backward()
    w2 = pickle.loads(pickle.dumps(w))
    assert w2.requires_grad and w2.is_leaf
    d = copy.deepcopy(w)
    assert d.requires_grad and d.data_ptr() != w.data_ptr() and d.grad.tolist() == [2.0] * 3
    both = copy.deepcopy([w, w])
    assert both[0] is both[1]
    with pytest.raises(soma.Error, match="deepcopy"):
        copy.deepcopy(w * 2)
    assert copy.copy(w) is w
    assert pickle.loads(pickle.dumps(soma.float64)) is soma.float64


def test_errors_name_the_op():
    assert issubclass(soma.Error, RuntimeError)
    cases = [
        (lambda: soma.ones(2, 3) @ soma.ones(2, 3), "matmul"),
        (lambda: soma.ones(2, 3).reshape(4, 2), "reshape"),
        (lambda: soma.ones(2, 3) * soma.ones(4), "mul"),
        (lambda: soma.cat([soma.ones(2, 3), soma.ones(2, 4)]), "cat"),
        (lambda: soma.ones(2).sum(3), "sum"),
        (lambda: soma.ones(2).transpose(0, 4), "transpose"),
        (lambda: soma.zeros(-1), "zeros|empty|shape|size"),
    ]
    for f, op in cases:
        with pytest.raises(soma.Error, match=op):
            f()


def test_docstrings_present():
    for f in [soma.tensor, soma.zeros, soma.matmul, soma.Tensor.sum, soma.Tensor.backward,
              soma.from_numpy, soma.autograd.grad, soma.Tensor.numpy]:
        assert f.__doc__ and len(f.__doc__) > 20, f


def test_num_threads_setting():
    n = soma.get_num_threads()
    try:
        soma.set_num_threads(1)
        assert soma.get_num_threads() == 1
    finally:
        soma.set_num_threads(n)
    assert soma.get_num_threads() == n
    with pytest.raises(soma.Error):
        soma.set_num_threads(0)


def test_cpu_isa_is_the_capped_level():
    levels = ["sse41", "avx2", "avx512_core", "avx512_core_vnni", "avx512_core_bf16"]
    assert soma.cpu_isa() in levels

    def capped(cap):  # SOMA_MAX_CPU_ISA is read once per process: ask a fresh interpreter
        env = dict(os.environ, SOMA_MAX_CPU_ISA=cap)
        return subprocess.run([sys.executable, "-c", "import soma; print(soma.cpu_isa())"],
                              env=env, check=True, capture_output=True, text=True).stdout.strip()
    top = levels.index(capped("all"))
    assert capped("sse41") == "sse41"
    assert capped("avx2") == levels[min(top, 1)]
