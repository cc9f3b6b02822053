"""Python indexing against torch: ints, slices with steps, None, Ellipsis, int64 and bool
tensors, lists, and assignment."""
import numpy as np
import pytest

import soma
from helpers import assert_close, pair, rand_np

KEYS = [
    0, -1, (1, 2), (slice(None), 1), slice(1, None), slice(None, None, 2), (slice(0, 3, 2), -1),
    (Ellipsis, 1), (None, 0), (1, None, slice(None)), (Ellipsis, None), (slice(-2, None),),
    (slice(5, 100),), (0, Ellipsis, slice(1, 3)), True, (slice(None), None, slice(1, 4, 3)),
]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
def test_basic_indexing_is_a_view(torch, key):
    x = rand_np((4, 3, 5), 30)
    s, t = pair(torch, x, True)
    rs, rt = s[key], t[key]
    assert_close(rs, rt)
    (rs * 2).sum().backward()
    (rt * 2).sum().backward()
    assert_close(s.grad, t.grad)
    # Views where torch gives views (the write shows in the base), copies where torch copies.
    vs, vt = s.detach(), t.detach()
    vs[key].add_(1000.0)
    vt[key].add_(1000.0)
    assert_close(vs, vt)


def test_advanced_indexing(torch):
    x = rand_np((4, 3, 5), 31)
    s, t = pair(torch, x, True)
    idx = np.array([3, 0, 3])
    mask = x[:, 0, 0] > 0
    cases = [
        (soma.tensor(idx), torch.tensor(idx)), ((slice(None), soma.tensor([2, 0])),
                                                (slice(None), torch.tensor([2, 0]))),
        ([0, 2], [0, 2]), ((soma.tensor(idx), 1, soma.tensor([4, 0, 1])),
                           (torch.tensor(idx), 1, torch.tensor([4, 0, 1]))),
        (soma.tensor(mask), torch.tensor(mask)),
        (soma.tensor(x > 0), torch.tensor(x > 0)), (idx, idx),
        ((Ellipsis, soma.tensor([[1], [0]])), (Ellipsis, torch.tensor([[1], [0]]))),
    ]
    loss_s, loss_t = 0, 0
    for i, (ks, kt) in enumerate(cases):
        rs, rt = s[ks], t[kt]
        assert_close(rs, rt)
        loss_s = loss_s + rs.sum() * (i + 1)
        loss_t = loss_t + rt.sum() * (i + 1)
    loss_s.backward()
    loss_t.backward()
    assert_close(s.grad, t.grad)


def test_setitem(torch):
    x = rand_np((4, 5), 32)
    s, t = pair(torch, x)
    assigns = [
        (0, 1.5), ((slice(None), 1), soma.tensor([1.0, 2.0, 3.0, 4.0])), ((1, slice(0, 5, 2)), 7),
        (soma.tensor([3, 1]), -2.0), (soma.tensor(x > 1), 0.0), ((Ellipsis, -1), [9, 8, 7, 6]),
        ((slice(2, None), slice(None, 2)), np.array([[1.0, 2.0], [3.0, 4.0]])),
    ]
    for key, value in assigns:
        tkey = tuple(torch.tensor(k.tolist()) if isinstance(k, soma.Tensor) else k
                     for k in (key if isinstance(key, tuple) else (key,)))
        tvalue = torch.tensor(value.tolist()) if isinstance(value, soma.Tensor) else \
            torch.tensor(value) if isinstance(value, (list, np.ndarray)) else value
        s[key] = value
        t[tkey] = tvalue
        assert_close(s, t)
    i = soma.zeros(3, dtype=soma.int64)
    i[1] = 2.9  # truncates like torch
    assert i.tolist() == [0, 2, 0]


def test_index_errors():
    x = soma.zeros(2, 3)
    with pytest.raises(soma.Error, match="index"):
        x[5]
    with pytest.raises(IndexError):
        x["a"]
    with pytest.raises(soma.Error):
        x[::-1]
