"""soma.autograd.Function: custom differentiable functions from Python (torch's protocol)."""
from ._soma import _autograd as _C

FunctionCtx = _C.FunctionCtx


class Function:
    """Subclass with static forward(ctx, *args) and backward(ctx, *grad_outputs), then call
    apply(*args):

        class MulConstant(soma.autograd.Function):
            @staticmethod
            def forward(ctx, x, c):
                ctx.c = c
                return x * c

            @staticmethod
            def backward(ctx, grad):
                return grad * ctx.c, None     # one entry per forward argument

        y = MulConstant.apply(x, 2.0)

    forward runs without grad; it may return several tensors, at most one differentiable
    (ctx.mark_non_differentiable(...) the others). ctx.save_for_backward(*tensors) keeps
    tensors (ctx.saved_tensors in backward; an in-place change in between is an error)."""

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("a soma.autograd.Function subclass must define forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a soma.autograd.Function subclass must define backward")

    @classmethod
    def apply(cls, *args):
        return _C._function_apply(cls, *args)
