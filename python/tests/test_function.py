"""Custom autograd functions from Python (soma.autograd.Function, torch's protocol): the same
function written for torch gives the same values and gradients, double backward included;
errors are soma.Error naming the function."""
import pytest
import soma


class Cube(soma.autograd.Function):
    """x^3 with a hand-written backward in soma ops (so it differentiates again)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        ctx.save_for_backward(x)
        return x * x * x * scale

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False)
        return grad * 3 * x * x * ctx.scale, None


def test_matches_torch_including_double_backward(torch, np):
    class TorchCube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.scale = scale
            ctx.save_for_backward(x)
            return x * x * x * scale

        @staticmethod
        def backward(ctx, grad):
            x, = ctx.saved_tensors
            return grad * 3 * x * x * ctx.scale, None

    x = soma.randn(5, requires_grad=True)
    xt = torch.from_numpy(x.detach().numpy().copy()).requires_grad_()
    y, yt = Cube.apply(x, 0.5), TorchCube.apply(xt, 0.5)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-6)
    assert "CubeBackward" in repr(y.grad_fn)
    (g,) = soma.autograd.grad(y.sum(), [x], create_graph=True)
    (gt,) = torch.autograd.grad(yt.sum(), [xt], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), gt.detach().numpy(), rtol=1e-6)
    g.sum().backward()
    gt.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-6)


def test_several_outputs_one_differentiable():
    class SortValues(soma.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            values, idx = soma.sort(x)
            ctx.mark_non_differentiable(idx)
            ctx.save_for_backward(idx)
            return values, idx

        @staticmethod
        def backward(ctx, g_values, g_idx):
            idx, = ctx.saved_tensors
            return soma.zeros_like(g_values).scatter(0, idx, g_values)

    x = soma.tensor([3.0, 1.0, 2.0], requires_grad=True)
    values, idx = SortValues.apply(x)
    assert values.tolist() == [1.0, 2.0, 3.0] and idx.tolist() == [1, 2, 0]
    (values * soma.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [100.0, 1.0, 10.0]


def test_errors_name_the_function():
    class WrongCount(soma.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g  # two arguments, one gradient

    class NotATensor(soma.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return 3

    x = soma.randn(2, requires_grad=True)
    with pytest.raises(soma.Error, match="WrongCount.backward returned 1 gradients"):
        WrongCount.apply(x, x).sum().backward()
    with pytest.raises(soma.Error, match="NotATensor.forward must return a Tensor"):
        NotATensor.apply(x)
    with pytest.raises(NotImplementedError):
        soma.autograd.Function.apply(x)
