"""Activations (and the losses/linear whose backward must be twice differentiable) for
make_toolkit_reference.py: tests/reference/toolkit_activation_reference.txt."""

import torch
import torch.nn.functional as F

from make_reference import away_from, index, normal, signed, uniform

OPS = {
    # existing activations (covered here for gradgradcheck)
    "relu": lambda x: torch.relu(x[0]),
    "sigmoid": lambda x: torch.sigmoid(x[0]),
    "tanh": lambda x: torch.tanh(x[0]),
    "leaky_relu_0p2": lambda x: F.leaky_relu(x[0], 0.2),
    "gelu": lambda x: F.gelu(x[0]),
    "softmax_dim1": lambda x: torch.softmax(x[0], 1),
    "log_softmax_dimm1": lambda x: torch.log_softmax(x[0], -1),
    # new activations
    "elu": lambda x: F.elu(x[0]),
    "elu_a0p5": lambda x: F.elu(x[0], 0.5),
    "elu_t": lambda x: F.elu(x[0].t()),
    "selu": lambda x: F.selu(x[0]),
    "celu": lambda x: F.celu(x[0]),
    "celu_a2": lambda x: F.celu(x[0], 2.0),
    "silu": lambda x: F.silu(x[0]),
    "silu_t": lambda x: F.silu(x[0].t()),
    "mish": lambda x: F.mish(x[0]),
    "softplus": lambda x: F.softplus(x[0]),
    "softplus_b2_t1": lambda x: F.softplus(x[0], 2.0, 1.0),
    "hardtanh": lambda x: F.hardtanh(x[0]),
    "hardtanh_m2_3": lambda x: F.hardtanh(x[0], -2.0, 3.0),
    "hardsigmoid": lambda x: F.hardsigmoid(x[0]),
    "hardswish": lambda x: F.hardswish(x[0]),
    "log_sigmoid": lambda x: F.logsigmoid(x[0]),
    "log_sigmoid_t": lambda x: F.logsigmoid(x[0].t()),
    "prelu": lambda x: F.prelu(x[0], x[1]),
    "glu": lambda x: F.glu(x[0]),
    "glu_dim0": lambda x: F.glu(x[0], 0),
    "glu_t": lambda x: F.glu(x[0].t(), 1),
    "softmin_dim1": lambda x: F.softmin(x[0], 1),
    "softmin_dimm1_t": lambda x: F.softmin(x[0].t(), -1),
    # losses and linear (double backward through their create_graph closures)
    "mse": lambda x: F.mse_loss(x[0], x[1]),
    "cross_entropy": lambda x: F.cross_entropy(x[0], x[1]),
    "cross_entropy_sum": lambda x: F.cross_entropy(x[0], x[1], reduction="sum"),
    "cross_entropy_none": lambda x: F.cross_entropy(x[0], x[1], reduction="none"),
    "cross_entropy_smooth": lambda x: F.cross_entropy(x[0], x[1], label_smoothing=0.1),
    "nll_loss": lambda x: F.nll_loss(x[0], x[1]),
    "bce": lambda x: F.binary_cross_entropy(x[0], x[1]),
    "bce_logits": lambda x: F.binary_cross_entropy_with_logits(x[0], x[1]),
    "linear": lambda x: F.linear(x[0], x[1], x[2]),
}


def cases():
    c = []
    add = lambda name, op, *inputs: c.append((name, op, list(inputs)))
    add("relu", "relu", signed((3, 4), 0.1, 2))
    add("relu_empty", "relu", normal((0, 3)))
    add("sigmoid", "sigmoid", normal((3, 4), 2))
    add("tanh", "tanh", normal((3, 4)))
    add("leaky_relu", "leaky_relu_0p2", signed((3, 4), 0.1, 2))
    add("gelu", "gelu", normal((3, 4), 2))
    add("softmax", "softmax_dim1", normal((3, 4)))
    add("log_softmax", "log_softmax_dimm1", normal((2, 3, 4)))
    add("elu", "elu", normal((3, 4), 2))
    add("elu_a0p5", "elu_a0p5", normal((2, 3, 2)))
    add("elu_t", "elu_t", normal((3, 4)))
    add("elu_empty", "elu", normal((2, 0)))
    add("selu", "selu", normal((3, 4), 2))
    add("celu", "celu", normal((3, 4), 2))
    add("celu_a2", "celu_a2", normal((3, 4), 2))
    add("silu", "silu", normal((3, 4), 3))
    add("silu_t", "silu_t", normal((4, 3), 3))
    add("mish", "mish", normal((3, 4), 3))
    add("softplus", "softplus", normal((3, 4), 3))
    add("softplus_large", "softplus", uniform((5,), 21, 30))
    add("softplus_b2_t1", "softplus_b2_t1", away_from((4, 5), -2, 2, [0.5], 0.05))
    add("hardtanh", "hardtanh", away_from((4, 5), -2, 2, [-1, 1]))
    add("hardtanh_m2_3", "hardtanh_m2_3", away_from((4, 5), -4, 4, [-2, 3]))
    add("hardsigmoid", "hardsigmoid", away_from((4, 5), -5, 5, [-3, 3]))
    add("hardswish", "hardswish", away_from((4, 5), -5, 5, [-3, 3]))
    add("log_sigmoid", "log_sigmoid", normal((3, 4), 3))
    add("log_sigmoid_t", "log_sigmoid_t", normal((4, 3), 3))
    add("prelu_channels", "prelu", signed((2, 3, 4), 0.1, 2), uniform((3,), 0.1, 0.5))
    add("prelu_shared", "prelu", signed((2, 3), 0.1, 2), uniform((1,), 0.1, 0.5))
    add("prelu_1d", "prelu", signed((5,), 0.1, 2), uniform((1,), 0.1, 0.5))
    add("prelu_scalar", "prelu", signed((), 0.1, 2), uniform((1,), 0.1, 0.5))
    add("glu", "glu", normal((3, 4)))
    add("glu_dim0", "glu_dim0", normal((4, 3)))
    add("glu_t", "glu_t", normal((4, 3)))
    add("softmin", "softmin_dim1", normal((3, 4)))
    add("softmin_t", "softmin_dimm1_t", normal((3, 4)))
    add("mse", "mse", normal((3, 4)), normal((3, 4)))
    add("cross_entropy", "cross_entropy", normal((4, 5)), index([0, 4, 2, 2]))
    add("cross_entropy_sum", "cross_entropy_sum", normal((4, 5)), index([1, 3, 0, 4]))
    add("cross_entropy_none", "cross_entropy_none", normal((4, 5)), index([1, 3, 0, 4]))
    add("cross_entropy_smooth", "cross_entropy_smooth", normal((4, 5)), index([1, 3, 0, 4]))
    add("nll_loss", "nll_loss", normal((4, 5)), index([1, 3, 0, 4]))
    add("bce", "bce", uniform((3, 4), 0.1, 0.9), uniform((3, 4), 0, 1))
    add("bce_logits", "bce_logits", normal((3, 4), 2), uniform((3, 4), 0, 1))
    add("linear", "linear", normal((2, 3, 4)), normal((5, 4)), normal((5,)))
    return c


ERRORS = [
    ("glu_odd", "glu", [normal((3, 3))]),
    ("glu_scalar", "glu", [normal(())]),
    ("prelu_mismatch", "prelu", [normal((2, 3)), uniform((2,), 0.1, 0.5)]),
    ("elu_int64", "elu", [index([1, -2])]),
    ("softmin_int64", "softmin_dim1", [index([[1, -2]])]),
]
