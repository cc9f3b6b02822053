"""Ops on random inputs against torch: values, and gradients through backward()."""
import numpy as np
import pytest

import soma
from helpers import assert_close, pair, rand_np, to_np

UNARY = ["neg", "exp", "abs", "relu", "sigmoid", "tanh", "sin", "cos", "tan", "expm1", "erf",
         "floor", "ceil", "round", "sign", "square", "reciprocal"]
POSITIVE = ["log", "sqrt", "log1p", "log2", "log10", "rsqrt"]


def check_unary(torch, name, x, method):
    s, t = pair(torch, x, requires_grad=True)
    rs = getattr(s, name)() if method else getattr(soma, name)(s)
    rt = getattr(t, name)()
    assert_close(rs, rt)
    g = rand_np(x.shape, 99)
    rs.backward(soma.tensor(g))
    rt.backward(torch.tensor(g))
    assert_close(s.grad, t.grad)


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("method", [True, False])
def test_unary(torch, name, method):
    check_unary(torch, name, rand_np((3, 5), 1), method)


@pytest.mark.parametrize("name", POSITIVE)
@pytest.mark.parametrize("method", [True, False])
def test_unary_positive(torch, name, method):
    check_unary(torch, name, rand_np((4, 3), 2, low=0.1, high=3.0), method)


BINARY = [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("pow", lambda a, b: a.abs() ** b),
    ("matmul", lambda a, b: a @ b.transpose(0, 1)),
    ("maximum", lambda a, b: a.maximum(b)), ("minimum", lambda a, b: a.minimum(b)),
    ("atan2", lambda a, b: a.atan2(b)), ("remainder", lambda a, b: a % (b.abs() + 0.5)),
    ("fmod", lambda a, b: a.fmod(b.abs() + 0.5)),
]


@pytest.mark.parametrize("name,f", BINARY, ids=[b[0] for b in BINARY])
def test_binary_broadcast_values_and_grads(torch, name, f):
    a_np, b_np = rand_np((4, 3), 3), rand_np((1, 3) if name != "matmul" else (5, 3), 4)
    sa, ta = pair(torch, a_np, True)
    sb, tb = pair(torch, b_np, True)
    rs, rt = f(sa, sb), f(ta, tb)
    assert_close(rs, rt)
    rs.sum().backward()
    rt.sum().backward()
    assert_close(sa.grad, ta.grad)
    assert_close(sb.grad, tb.grad)


SCALAR_OPS = [
    ("x + 2", lambda x: x + 2), ("2 + x", lambda x: 2 + x), ("x - 1.5", lambda x: x - 1.5),
    ("3 - x", lambda x: 3 - x), ("x * -2", lambda x: x * -2), ("2.5 * x", lambda x: 2.5 * x),
    ("x / 4", lambda x: x / 4), ("1 / x", lambda x: 1 / x), ("x ** 2", lambda x: x ** 2),
    ("2 ** x", lambda x: 2 ** x), ("x // 0.7", lambda x: x // 0.7), ("3 // x", lambda x: 3 // x),
    ("x % 0.7", lambda x: x % 0.7), ("5 % x", lambda x: 5 % x), ("-x", lambda x: -x),
    ("abs(x)", lambda x: abs(x)), ("+x", lambda x: +x),
]


@pytest.mark.parametrize("expr,f", SCALAR_OPS, ids=[s[0] for s in SCALAR_OPS])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_scalar_operators_and_promotion(torch, expr, f, dtype):
    x = rand_np((2, 3), 5, low=0.5, high=4.0)
    if dtype == "int64":
        x = np.round(x).astype(np.int64)
    else:
        x = x.astype(dtype)
    s, t = pair(torch, x)
    if expr == "2 ** x" and dtype == "int64":
        # soma's pow takes floating-point tensors only (torch gives int64 here).
        with pytest.raises(soma.Error, match="pow"):
            f(s)
        return
    rs, rt = f(s), f(t)
    assert_close(rs, rt, rtol=1e-5)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_comparisons(torch, op):
    a, b = np.round(rand_np((3, 4), 6)), np.round(rand_np((4,), 7))
    sa, ta = pair(torch, a)
    sb, tb = pair(torch, b)
    f = eval("lambda a, b: a " + op + " b")
    assert_close(f(sa, sb), f(ta, tb))
    assert_close(f(sa, 1.0), f(ta, 1.0))
    name = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}[op]
    assert_close(getattr(sa, name)(sb), getattr(ta, name)(tb))
    assert_close(getattr(soma, name)(sa, 0.5), getattr(torch, name)(ta, 0.5))


def test_logical_operators(torch):
    a, b = rand_np((5,), 8) > 0, rand_np((5,), 9) > 0
    sa, ta = pair(torch, a)
    sb, tb = pair(torch, b)
    for f in (lambda a, b: a & b, lambda a, b: a | b, lambda a, b: a ^ b, lambda a, b: ~a):
        assert_close(f(sa, sb), f(ta, tb))
    i = np.arange(-3, 3)
    assert_close(~soma.tensor(i), ~torch.tensor(i))
    with pytest.raises(soma.Error, match="__and__"):
        soma.ones(2) & soma.ones(2)


def test_inplace_operators_keep_identity(torch):
    x = rand_np((2, 3), 10)
    s, t = pair(torch, x)
    ident = id(s)
    s += 2; t += 2
    s -= 0.5; t -= 0.5
    s *= s; t *= t
    s /= 3; t /= 3
    s //= 0.25; t //= 0.25
    s %= 3; t %= 3
    assert id(s) == ident
    assert_close(s, t)
    s2, t2 = pair(torch, x)
    s2.add_(s2, alpha=2).sub_(1.0).mul_(2).div_(soma.tensor([3.0, 4.0, 5.0]))
    t2.add_(t2, alpha=2).sub_(1.0).mul_(2).div_(torch.tensor([3.0, 4.0, 5.0], dtype=torch.float64))
    assert_close(s2, t2)
    s2.div_(2, rounding_mode="floor")
    t2.div_(2, rounding_mode="floor")
    s2.remainder_(0.7).fmod_(0.5).floor_divide_(0.1)
    t2.remainder_(0.7).fmod_(0.5).floor_divide_(0.1)
    assert_close(s2, t2)
    assert s2.zero_().sum().item() == 0
    assert s2.fill_(1.5).tolist() == [[1.5] * 3] * 2
    s2.copy_(soma.tensor([1.0, 2.0, 3.0]))
    assert s2.tolist() == [[1.0, 2.0, 3.0]] * 2
    s2.copy_([[7, 8, 9], [1, 2, 3]])
    assert s2.tolist() == [[7.0, 8.0, 9.0], [1.0, 2.0, 3.0]]


def test_inplace_on_leaf_requiring_grad_is_refused():
    w = soma.ones(3, requires_grad=True)
    with pytest.raises(soma.Error):
        w += 1
    with soma.no_grad():
        w -= 0.5
    assert w.tolist() == [0.5] * 3


def test_named_binary_functions(torch):
    a, b = rand_np((3, 4), 11), rand_np((3, 4), 12, low=0.5, high=2)
    sa, ta = pair(torch, a)
    sb, tb = pair(torch, b)
    for name in ["add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod",
                 "pow", "atan2", "maximum", "minimum", "max", "min"]:
        other_s, other_t = (sb.abs(), tb.abs()) if name == "pow" else (sb, tb)
        x_s, x_t = (sa.abs(), ta.abs()) if name == "pow" else (sa, ta)
        assert_close(getattr(soma, name)(x_s, other_s), getattr(torch, name)(x_t, other_t),
                     rtol=1e-5)
        assert_close(getattr(x_s, name)(other_s), getattr(x_t, name)(other_t), rtol=1e-5)
    assert_close(soma.add(sa, sb, alpha=3), torch.add(ta, tb, alpha=3))
    assert_close(sa.sub(2.0, alpha=2), ta.sub(2.0, alpha=2))
    assert_close(sa.mul(2), ta.mul(2))
    assert_close(sa.div(sb, rounding_mode="trunc"), ta.div(tb, rounding_mode="trunc"))
    assert_close(sa.div(3, rounding_mode="floor"), ta.div(3, rounding_mode="floor"))
    assert_close(sa.pow(3.0), ta.pow(3.0))
    assert_close(sa.floor_divide(0.3), ta.floor_divide(0.3))
    assert_close(sa.remainder(0.3), ta.remainder(0.3))
    assert_close(sa.fmod(0.3), ta.fmod(0.3))
    assert_close(soma.lerp(sa, sb, 0.3), torch.lerp(ta, tb, 0.3))
    assert_close(sa.lerp(sb, sb / 3), ta.lerp(tb, tb / 3))
    assert_close(sa.clamp(-0.5, 0.5), ta.clamp(-0.5, 0.5))
    assert_close(soma.clamp(sa, min=0), torch.clamp(ta, min=0))
    assert_close(sa.clamp(max=0.2), ta.clamp(max=0.2))
    assert_close(sa.negative(), ta.negative())


def test_matrix_products(torch):
    a, b = rand_np((2, 3, 4), 13), rand_np((2, 4, 5), 14)
    sa, ta = pair(torch, a, True)
    sb, tb = pair(torch, b, True)
    out_s = soma.bmm(sa, sb).sum() + sa.matmul(sb).mean() + soma.matmul(sa, sb).sum()
    out_t = torch.bmm(ta, tb).sum() + ta.matmul(tb).mean() + torch.matmul(ta, tb).sum()
    assert_close(out_s, out_t)
    out_s.backward()
    out_t.backward()
    assert_close(sa.grad, ta.grad)
    assert_close(sb.grad, tb.grad)
    m, n, v = rand_np((3, 4), 15), rand_np((4, 2), 16), rand_np((3,), 17)
    sm, tm = pair(torch, m)
    sn, tn = pair(torch, n)
    sv, tv = pair(torch, v)
    assert_close(soma.mm(sm, sn), torch.mm(tm, tn))
    assert_close(sm.mm(sn), tm.mm(tn))
    assert_close(soma.addmm(sv[:2].reshape(1, 2), sm, sn, beta=0.5, alpha=2),
                 torch.addmm(tv[:2].reshape(1, 2), tm, tn, beta=0.5, alpha=2))
    assert_close(soma.outer(sv, sv), torch.outer(tv, tv))
    assert_close(sv.dot(sv), tv.dot(tv))
    assert_close(soma.einsum("ij,jk->ik", sm, sn), torch.einsum("ij,jk->ik", tm, tn))
    assert_close(soma.einsum("ij,jk", [sm, sn]), torch.einsum("ij,jk", [tm, tn]))
    with pytest.raises(soma.Error, match="mm"):
        soma.mm(sv, sm)


@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean(torch, dim, keepdim):
    x = rand_np((3, 4), 18)
    s, t = pair(torch, x, True)
    if dim is None:
        rs, rt = s.sum() + s.mean(), t.sum() + t.mean()
    else:
        rs = soma.sum(s, dim, keepdim=keepdim) * s.mean(dim=dim, keepdim=keepdim)
        rt = torch.sum(t, dim, keepdim=keepdim) * t.mean(dim=dim, keepdim=keepdim)
    assert_close(rs, rt)
    rs.sum().backward()
    rt.sum().backward()
    assert_close(s.grad, t.grad)


def test_reductions(torch):
    x = rand_np((4, 5), 19)
    s, t = pair(torch, x, True)
    assert_close(s.max(), t.max())
    assert_close(soma.min(s), torch.min(t))
    vs, is_ = s.max(1)
    vt, it = t.max(1)
    assert_close(vs, vt)
    assert_close(is_, it)
    r = s.min(dim=0, keepdim=True)
    assert_close(r.values, t.min(dim=0, keepdim=True).values)
    assert_close(r.indices, t.min(dim=0, keepdim=True).indices)
    assert_close(s.argmax(), t.argmax())
    assert_close(s.argmax(1, keepdim=True), t.argmax(1, keepdim=True))
    assert_close(s.argmin(), t.argmin())
    assert_close(soma.argmin(s, 0), torch.argmin(t, 0))
    assert_close(s.amax(1), t.amax(1))
    assert_close(s.amin((0, 1)), t.amin((0, 1)))
    assert_close(s.prod(), t.prod())
    assert_close(s.prod(1, keepdim=True), t.prod(1, keepdim=True))
    assert_close(s.cumsum(1), t.cumsum(1))
    assert_close(s.cumprod(0), t.cumprod(0))
    assert_close(s.var(), t.var())
    assert_close(s.var(1, unbiased=False), t.var(1, unbiased=False))
    assert_close(s.std(0, keepdim=True), t.std(0, keepdim=True))
    assert_close(soma.std(s, (0, 1), correction=0), torch.std(t, (0, 1), correction=0))
    assert_close(s.norm(), t.norm())
    assert_close(s.norm(1, dim=1), t.norm(1, dim=1))
    assert_close(s.norm("fro"), t.norm("fro"))
    assert_close(s.logsumexp(1), t.logsumexp(1))
    assert_close(soma.logsumexp(s, (0, 1)), torch.logsumexp(t, (0, 1)))
    assert_close((s > 0).all(), (t > 0).all())
    assert_close((s > 0).any(1), (t > 0).any(1))
    assert_close(soma.all(s > -3, 0), torch.all(t > -3, 0))
    assert_close(soma.any(s > 1.9), torch.any(t > 1.9))
    assert_close(s.median(), t.median())
    ms, mt = s.median(1), t.median(1)
    assert_close(ms.values, mt.values)
    assert_close(ms.indices, mt.indices)
    ks, kt = s.kthvalue(2, 1), t.kthvalue(2, 1)
    assert_close(ks.values, kt.values)
    assert_close(ks.indices, kt.indices)
    ts, tt = s.topk(2), t.topk(2)
    assert_close(ts.values, tt.values)
    assert_close(ts.indices, tt.indices)
    ts, tt = soma.topk(s, 3, dim=0, largest=False), torch.topk(t, 3, dim=0, largest=False)
    assert_close(ts.values, tt.values)
    ss, st = s.sort(descending=True), t.sort(descending=True)
    assert_close(ss.values, st.values)
    assert_close(ss.indices, st.indices)
    assert_close(s.argsort(0), t.argsort(0))
    loss_s = (s.max(1).values.sum() + s.var() + s.norm() + s.logsumexp(1).sum() + s.prod()
              + s.cumsum(1).sum() + s.std(0).sum() + s.amax(0).sum() + s.median())
    loss_t = (t.max(1).values.sum() + t.var() + t.norm() + t.logsumexp(1).sum() + t.prod()
              + t.cumsum(1).sum() + t.std(0).sum() + t.amax(0).sum() + t.median())
    loss_s.backward()
    loss_t.backward()
    assert_close(s.grad, t.grad)


def test_activations_and_softmax(torch):
    x = rand_np((3, 6), 20)
    s, t = pair(torch, x, True)
    rs = s.softmax(1) * 2 + soma.log_softmax(s, 0) + s.softmin(1) + s.relu() + soma.sigmoid(s)
    rt = (t.softmax(1) * 2 + torch.log_softmax(t, 0) + torch.nn.functional.softmin(t, 1)
          + t.relu() + torch.sigmoid(t))
    assert_close(rs, rt)
    rs.sum().backward()
    rt.sum().backward()
    assert_close(s.grad, t.grad)


def test_shape_ops(torch):
    x = rand_np((2, 3, 4), 21)
    s, t = pair(torch, x, True)
    outs = [
        (s.reshape(6, 4), t.reshape(6, 4)), (s.reshape((4, -1)), t.reshape((4, -1))),
        (soma.reshape(s, (24,)), torch.reshape(t, (24,))), (s.view(3, 8), t.view(3, 8)),
        (s.view([-1]), t.view([-1])), (s.transpose(0, 2), t.transpose(0, 2)),
        (soma.transpose(s, 1, 2), torch.transpose(t, 1, 2)), (s.permute(2, 0, 1), t.permute(2, 0, 1)),
        (soma.permute(s, (1, 0, 2)), torch.permute(t, (1, 0, 2))), (s.flatten(), t.flatten()),
        (s.flatten(1), t.flatten(1)), (s.unsqueeze(1), t.unsqueeze(1)),
        (s.unsqueeze(0).squeeze(), t.unsqueeze(0).squeeze()),
        (s[:1].squeeze(0), t[:1].squeeze(0)), (soma.squeeze(s), torch.squeeze(t)),
        (s.narrow(2, 1, 2), t.narrow(2, 1, 2)), (s.T, t.permute(2, 1, 0)),
        (s.mT, t.transpose(-2, -1)), (s[0].t(), t[0].t()), (soma.t(s[1]), torch.t(t[1])),
        (s[:, :1].expand(2, 5, 4), t[:, :1].expand(2, 5, 4)),
        (s[:1].expand_as(s), t[:1].expand_as(t)), (s.repeat(1, 2, 1), t.repeat(1, 2, 1)),
        (s.flip(0, 2), t.flip(0, 2)), (soma.flip(s, (1,)), torch.flip(t, (1,))),
        (s.roll(1, 2), t.roll(1, 2)), (s.roll((1, -1), (0, 1)), t.roll((1, -1), (0, 1))),
        (s.movedim(0, 2), t.movedim(0, 2)), (s[0].tril(), t[0].tril()),
        (s[0].triu(1), t[0].triu(1)), (s.unfold(2, 2, 1), t.unfold(2, 2, 1)),
        (soma.cat([s, s], 1), torch.cat([t, t], 1)), (soma.concat((s, s)), torch.concat((t, t))),
        (soma.stack([s, s], 3), torch.stack([t, t], 3)), (s.swapaxes(0, 1), t.swapaxes(0, 1)),
        (s.view_as(s.reshape(4, 6)), t.view_as(t.reshape(4, 6))),
        (s.reshape(24).reshape_as(s), t.reshape(24).reshape_as(t)),
        (s.contiguous(), t.contiguous()), (s.clone(), t.clone()),
        (s.index_select(2, soma.tensor([3, 0])), t.index_select(2, torch.tensor([3, 0]))),
    ]
    for a, b in outs:
        assert_close(a, b)
    for ps, pt in [(s.split(2, 2), t.split(2, 2)), (s.split([1, 2], 1), t.split([1, 2], 1)),
                   (s.chunk(2, 2), t.chunk(2, 2)), (s.unbind(1), t.unbind(1)),
                   (soma.split(s, 1), torch.split(t, 1))]:
        assert isinstance(ps, tuple) and len(ps) == len(pt)
        for a, b in zip(ps, pt):
            assert_close(a, b)
    loss_s = sum((a * (i + 1)).sum() for i, (a, _) in enumerate(outs))
    loss_t = sum((b * (i + 1)).sum() for i, (_, b) in enumerate(outs))
    loss_s.backward()
    loss_t.backward()
    assert_close(s.grad, t.grad, rtol=1e-5)
    assert not s.transpose(0, 1).is_contiguous()
    with pytest.raises(soma.Error, match="view"):
        s.transpose(0, 1).view(-1)


def test_gather_scatter_masked(torch):
    x = rand_np((3, 4), 22)
    s, t = pair(torch, x, True)
    idx = np.array([[0, 1, 2, 0], [2, 2, 1, 0]])
    si, ti = soma.tensor(idx), torch.tensor(idx)
    src = rand_np((2, 4), 23)
    ss, ts = pair(torch, src)
    mask = x > 0
    sm, tm = pair(torch, mask)
    pairs = [
        (s.gather(0, si), t.gather(0, ti)), (soma.gather(s, 0, si), torch.gather(t, 0, ti)),
        (s.scatter(0, si[:1], ss[:1]), t.scatter(0, ti[:1], ts[:1])),
        (s.scatter(0, si[:1], 2.5), t.scatter(0, ti[:1], 2.5)),
        (s.scatter_add(0, si, ss), t.scatter_add(0, ti, ts)),
        (s.index_add(0, soma.tensor([2, 0]), ss[:, :4], alpha=2),
         t.index_add(0, torch.tensor([2, 0]), ts[:, :4], alpha=2)),
        (s.masked_fill(sm, -1.0), t.masked_fill(tm, -1.0)),
        (s.masked_fill(sm, soma.tensor(3.0, dtype=soma.float64)),
         t.masked_fill(tm, torch.tensor(3.0, dtype=torch.float64))),
        (s.masked_select(sm), t.masked_select(tm)), (s.take(si), t.take(ti)),
        (s.where(sm, s * 2), t.where(tm, t * 2)), (soma.where(sm, s, 0.0), torch.where(tm, t, 0.0)),
        (sm.nonzero(), tm.nonzero()), (soma.nonzero(sm), torch.nonzero(tm)),
    ]
    for a, b in pairs:
        assert_close(a, b)
    sum(a.sum() * (i + 1) for i, (a, _) in enumerate(pairs[:-2])).backward()
    sum(b.sum() * (i + 1) for i, (_, b) in enumerate(pairs[:-2])).backward()
    assert_close(s.grad, t.grad)
    with soma.no_grad():
        s2, t2 = s.detach().clone(), t.detach().clone()
    s2.scatter_(0, si[:1], ss[:1]).scatter_add_(0, si, ss).index_add_(0, soma.tensor([1]), ss[:1])
    t2.scatter_(0, ti[:1], ts[:1]).scatter_add_(0, ti, ts).index_add_(0, torch.tensor([1]), ts[:1])
    s2.masked_fill_(sm, 0.5).scatter_(1, si[:, :1], 9.0)
    t2.masked_fill_(tm, 0.5).scatter_(1, ti[:, :1], 9.0)
    s2.masked_fill_(~sm, soma.tensor(1.0, dtype=soma.float64))
    t2.masked_fill_(~tm, torch.tensor(1.0, dtype=torch.float64))
    assert_close(s2, t2)
    s2.index_put_((soma.tensor([0, 2]),), soma.tensor([1.0, 2.0, 3.0, 4.0], dtype=soma.float64),
                  accumulate=True)
    t2.index_put_((torch.tensor([0, 2]),), torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64),
                  accumulate=True)
    assert_close(s2, t2)
    assert_close(s2.index_put((soma.tensor([1]),), soma.zeros(4, dtype=soma.float64)),
                 t2.index_put((torch.tensor([1]),), torch.zeros(4, dtype=torch.float64)))


def test_misc_functions(torch):
    a = rand_np((3, 4), 24)
    sa, ta = pair(torch, a)
    assert soma.allclose(sa, sa + 1e-9) and not soma.allclose(sa, sa + 1)
    assert_close(soma.isclose(sa, sa + 1e-3, atol=1e-2), torch.isclose(ta, ta + 1e-3, atol=1e-2))
    assert soma.equal(sa, sa.clone()) and not soma.equal(sa, sa[:1])
    assert soma.broadcast_shapes((3, 1), (1, 4), 4) == torch.broadcast_shapes((3, 1), (1, 4), 4)
    for x, y in [(sa, 2.5), (soma.tensor([1]), 2.5), (soma.tensor([1]), soma.tensor([True])),
                 (1, soma.tensor([1], dtype=soma.uint8))]:
        tx = torch.tensor(x.tolist()) if isinstance(x, soma.Tensor) else x
        ty = torch.tensor(y.tolist(), dtype=getattr(torch, repr(y.dtype)[5:])) \
            if isinstance(y, soma.Tensor) else y
        if isinstance(x, soma.Tensor):
            tx = tx.to(getattr(torch, repr(x.dtype)[5:]))
        assert repr(soma.result_type(x, y))[5:] == str(torch.result_type(tx, ty))[6:]
    assert soma.promote_types(soma.int64, soma.float32) is soma.float32
    assert soma.can_cast(soma.int64, soma.float32) and not soma.can_cast(soma.float32, soma.int64)
    assert soma.numel(sa) == 12 and soma.is_tensor(sa) and not soma.is_tensor(a)
    assert soma.is_floating_point(sa) and not soma.is_floating_point(soma.tensor([1]))
