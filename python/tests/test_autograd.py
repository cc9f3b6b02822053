"""Autograd from Python against torch: requires_grad, .grad, backward's arguments, grad mode,
soma.autograd.grad / backward, hooks."""
import threading

import numpy as np
import pytest

import soma
from helpers import assert_close, pair, rand_np


def test_leaf_flags_and_grad_fn():
    x = soma.ones(2, 2)
    assert not x.requires_grad and x.is_leaf and x.grad is None and x.grad_fn is None
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad = False
    assert not x.requires_grad
    x.requires_grad = True
    y = (x * 2).sum()
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad
    assert isinstance(y.grad_fn, soma.autograd.Node) and not hasattr(soma, "Node")
    assert y.grad_fn.name() == "SumBackward" and repr(y.grad_fn) == "<SumBackward>"
    assert y.grad_fn == y.grad_fn and hash(y.grad_fn) == hash(y.grad_fn)
    assert not x.detach().requires_grad and not x.data.requires_grad
    with pytest.raises(soma.Error):
        soma.tensor([1, 2]).requires_grad_()  # integer tensors cannot require grad


def test_backward_arguments(torch):
    x = rand_np((3,), 40)
    s, t = pair(torch, x, True)
    ys, yt = s * s * s, t * t * t
    g = rand_np((3,), 41)
    ys.backward(soma.tensor(g), retain_graph=True)
    yt.backward(torch.tensor(g), retain_graph=True)
    ys.backward(gradient=soma.tensor(g))
    yt.backward(gradient=torch.tensor(g))
    assert_close(s.grad, t.grad)
    with pytest.raises(soma.Error):
        ys.backward(soma.tensor(g))  # the graph was freed
    with pytest.raises(soma.Error):
        (s * 2).backward()  # not one element: gradient needed
    s.grad = None
    assert s.grad is None
    s.grad = soma.ones(3, dtype=soma.float64)
    (s * 2).sum().backward()
    assert s.grad.tolist() == [3.0, 3.0, 3.0]


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_create_graph_second_derivative(torch):
    x = rand_np((4,), 42)
    s, t = pair(torch, x, True)
    (s.tanh() * s).sum().backward(create_graph=True)
    (t.tanh() * t).sum().backward(create_graph=True)
    gs, gt = s.grad, t.grad
    assert gs.requires_grad
    s.grad = None
    t.grad = None
    gs.sum().backward()
    gt.sum().backward()
    assert_close(s.grad, t.grad)


def test_autograd_grad(torch):
    x, w = rand_np((2, 3), 43), rand_np((3, 2), 44)
    sx, tx = pair(torch, x, True)
    sw, tw = pair(torch, w, True)
    ys, yt = (sx @ sw).sigmoid(), (tx @ tw).sigmoid()
    go = rand_np((2, 2), 45)
    gs = soma.autograd.grad(ys, [sx, sw], grad_outputs=soma.tensor(go), retain_graph=True)
    gt = torch.autograd.grad(yt, [tx, tw], grad_outputs=torch.tensor(go), retain_graph=True)
    assert isinstance(gs, tuple) and len(gs) == 2
    for a, b in zip(gs, gt):
        assert_close(a, b)
    assert sx.grad is None and sw.grad is None  # nothing accumulated
    (ds,) = soma.autograd.grad([ys.sum()], [sx], create_graph=True)
    (dt,) = torch.autograd.grad([yt.sum()], [tx], create_graph=True)
    assert_close(ds, dt)
    assert_close(soma.autograd.grad(ds.sum(), sw)[0], torch.autograd.grad(dt.sum(), tw)[0])
    unused = soma.ones(1, requires_grad=True)
    r = soma.autograd.grad((sx * 2).sum(), [sx, unused], allow_unused=True)
    assert r[1] is None and r[0].tolist() == [[2.0] * 3] * 2
    with pytest.raises(soma.Error):
        soma.autograd.grad((sx * 2).sum(), [unused])
    with pytest.raises(TypeError, match="inputs"):
        soma.autograd.grad((sx * 2).sum(), [1.0])


def test_autograd_backward_several_roots(torch):
    x = rand_np((3,), 46)
    s, t = pair(torch, x, True)
    soma.autograd.backward([s.sum(), (s * s).sum()])
    torch.autograd.backward([t.sum(), (t * t).sum()])
    assert_close(s.grad, t.grad)
    soma.autograd.backward(s * 3, grad_tensors=soma.ones(3, dtype=soma.float64))
    torch.autograd.backward(t * 3, grad_tensors=torch.ones(3, dtype=torch.float64))
    assert_close(s.grad, t.grad)


def test_no_grad_context_and_decorator():
    x = soma.ones(2, requires_grad=True)
    assert soma.is_grad_enabled()
    with soma.no_grad():
        assert not soma.is_grad_enabled()
        y = x * 2
        with soma.enable_grad():
            assert soma.is_grad_enabled()
            z = x * 2
        assert not soma.is_grad_enabled()
    assert soma.is_grad_enabled()
    assert not y.requires_grad and z.requires_grad

    @soma.no_grad()
    def f(v):
        return v * 3, soma.is_grad_enabled()

    out, enabled = f(x)
    assert not out.requires_grad and not enabled and soma.is_grad_enabled()
    with soma.set_grad_enabled(False):
        assert not soma.is_grad_enabled()
    assert soma.is_grad_enabled()
    soma.set_grad_enabled(False)
    assert not soma.is_grad_enabled()
    soma.set_grad_enabled(True)
    try:
        with soma.no_grad():
            raise ValueError("boom")
    except ValueError:
        pass
    assert soma.is_grad_enabled()  # restored on an exception too


def test_grad_mode_is_per_thread():
    seen = []
    with soma.no_grad():
        th = threading.Thread(target=lambda: seen.append(soma.is_grad_enabled()))
        th.start()
        th.join()
    assert seen == [True]


def test_hooks_and_retain_grad(torch):
    x = rand_np((3,), 47)
    s, t = pair(torch, x, True)
    calls = []
    h = s.register_hook(lambda g: calls.append(g.tolist()))
    hs = (s * 2)
    hs.register_hook(lambda g: g * 10)  # replaces the gradient flowing on
    hs.retain_grad()  # after the hook (torch 1.13 and 2.x then agree: .grad is the hooked one)
    assert hs.retains_grad
    hs.sum().backward()
    ht = t * 2
    ht.register_hook(lambda g: g * 10)
    ht.retain_grad()
    ht.sum().backward()
    assert_close(s.grad, t.grad)
    assert calls == [[20.0, 20.0, 20.0]]
    assert_close(hs.grad, ht.grad)
    assert isinstance(h, soma.autograd.RemovableHandle)
    h.remove()
    h.remove()
    (s * 1).sum().backward()
    assert len(calls) == 1

    def bad(g):
        raise KeyError("from the hook")
    s.register_hook(bad)
    with pytest.raises(KeyError, match="from the hook"):
        (s * 1).sum().backward()


def test_detect_anomaly():
    x = soma.tensor([-1.0, 1.0], requires_grad=True)
    with soma.autograd.detect_anomaly():
        assert soma.autograd.is_anomaly_enabled()
        with pytest.raises(soma.Error, match="sqrt"):
            x.sqrt().sum().backward()
    assert not soma.autograd.is_anomaly_enabled()
    soma.autograd.set_detect_anomaly(False)


def test_gil_is_released_in_a_large_matmul():
    """With a switch interval far longer than the test, the GIL changes hands only when a thread
    gives it up: the main thread, waiting for the worker to start, can run before the worker's
    matmuls end only if matmul releases the GIL."""
    import sys
    a = soma.rand(500, 500, dtype=soma.float64)
    started, done = threading.Event(), threading.Event()

    def work():
        started.set()
        for _ in range(3):
            a @ a
        done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(60.0)
    try:
        th = threading.Thread(target=work)
        th.start()
        started.wait()
        ran_during_matmul = not done.is_set()
        th.join()
    finally:
        sys.setswitchinterval(interval)
    assert ran_during_matmul
