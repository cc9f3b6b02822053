"""Normalisation (batch_norm, layer_norm, group_norm and BatchNorm's running statistics) for
make_toolkit_reference.py: tests/reference/toolkit_norm_reference.txt.

batch_norm's running statistics are inputs that torch refuses to differentiate: the ops pass
them detached (soma's eval-mode batch_norm is differentiable in them, so its gradcheck passes;
only torch's gradients of the other inputs are compared). The *_stats ops return the running
tensors after one or several training calls (no gradients)."""

import torch
import torch.nn.functional as F

from make_reference import index, normal, uniform


def _stats(x, steps, momentum):
    rm, rv = x[1].detach().clone(), x[2].detach().clone()
    for k in range(steps):
        F.batch_norm(x[0].detach() * (1 + k) + k, rm, rv, training=True, momentum=momentum)
    return rm, rv


def _module_cma(x, steps):
    # BatchNorm1d(momentum=None): the cumulative moving average over the steps
    bn = torch.nn.BatchNorm1d(x[0].shape[1], momentum=None, affine=False).double()
    for k in range(steps):
        bn(x[0].detach().double() * (1 + k) + k)
    return bn.running_mean.to(x[0].dtype), bn.running_var.to(x[0].dtype)


OPS = {
    "bn_train": lambda x: F.batch_norm(x[0], None, None, x[1], x[2], training=True),
    "bn_train_noaffine": lambda x: F.batch_norm(x[0], None, None, training=True),
    "bn_train_weight_only": lambda x: F.batch_norm(x[0], None, None, x[1], training=True),
    "bn_train_eps": lambda x: F.batch_norm(x[0], None, None, x[1], x[2], training=True, eps=1e-2),
    "bn_train_t": lambda x: F.batch_norm(x[0].transpose(0, 1), None, None, x[1], x[2],
                                         training=True),
    "bn_train_running": lambda x: F.batch_norm(x[0], x[1].detach().clone(),
                                               x[2].detach().clone(), x[3], x[4],
                                               training=True, momentum=0.3),
    "bn_eval": lambda x: F.batch_norm(x[0], x[1].detach(), x[2].detach(), x[3], x[4]),
    "bn_eval_noaffine": lambda x: F.batch_norm(x[0], x[1].detach(), x[2].detach(), eps=1e-3),
    "bn_eval_t": lambda x: F.batch_norm(x[0].permute(0, 3, 1, 2), x[1].detach(), x[2].detach(),
                                        x[3], x[4]),
    "bn_stats": lambda x: _stats(x, 1, 0.1),
    "bn_stats3_m0p3": lambda x: _stats(x, 3, 0.3),
    "bn_stats_cma3": lambda x: _module_cma(x, 3),
    "layer_norm": lambda x: F.layer_norm(x[0], x[1].shape, x[1], x[2]),
    "layer_norm_eps": lambda x: F.layer_norm(x[0], x[1].shape, x[1], x[2], eps=1e-2),
    "layer_norm_noaffine1": lambda x: F.layer_norm(x[0], x[0].shape[-1:]),
    "layer_norm_noaffine2": lambda x: F.layer_norm(x[0], x[0].shape[-2:]),
    "layer_norm_t": lambda x: F.layer_norm(x[0].t(), x[1].shape, x[1], x[2]),
    "group_norm_1": lambda x: F.group_norm(x[0], 1, x[1], x[2]),
    "group_norm_2": lambda x: F.group_norm(x[0], 2, x[1], x[2]),
    "group_norm_4": lambda x: F.group_norm(x[0], 4, x[1], x[2]),
    "group_norm_2_noaffine": lambda x: F.group_norm(x[0], 2),
    "group_norm_2_t": lambda x: F.group_norm(x[0].transpose(0, 1), 2, x[1], x[2], eps=1e-3),
}


def cases():
    c = []
    add = lambda name, op, *inputs: c.append((name, op, list(inputs)))
    w = lambda n: uniform((n,), 0.5, 1.5)
    add("bn_train_2d", "bn_train", normal((5, 3), 2), w(3), normal((3,)))
    add("bn_train_3d", "bn_train", normal((3, 2, 5), 2), w(2), normal((2,)))
    add("bn_train_4d", "bn_train", normal((2, 3, 4, 4), 2), w(3), normal((3,)))
    add("bn_train_n1", "bn_train", normal((1, 2, 5), 2), w(2), normal((2,)))
    add("bn_train_offset", "bn_train", lambda g: normal((4, 2, 3), 0.5)(g) + 10, w(2), normal((2,)))
    add("bn_train_noaffine_2d", "bn_train_noaffine", normal((6, 4), 2))
    add("bn_train_noaffine_4d", "bn_train_noaffine", normal((2, 2, 3, 3), 2))
    add("bn_train_weight_only", "bn_train_weight_only", normal((3, 2, 4)), w(2))
    add("bn_train_eps", "bn_train_eps", normal((4, 3), 0.2), w(3), normal((3,)))
    add("bn_train_t", "bn_train_t", normal((3, 4, 5)), w(3), normal((3,)))
    add("bn_train_running", "bn_train_running", normal((4, 3, 2)), normal((3,)),
        uniform((3,), 0.5, 2), w(3), normal((3,)))
    add("bn_eval_2d", "bn_eval", normal((4, 3), 2), normal((3,)), uniform((3,), 0.5, 2), w(3),
        normal((3,)))
    add("bn_eval_4d", "bn_eval", normal((2, 3, 3, 3), 2), normal((3,)), uniform((3,), 0.5, 2),
        w(3), normal((3,)))
    add("bn_eval_batch1", "bn_eval", normal((1, 3), 2), normal((3,)), uniform((3,), 0.5, 2), w(3),
        normal((3,)))
    add("bn_eval_noaffine", "bn_eval_noaffine", normal((3, 2, 4), 2), normal((2,)),
        uniform((2,), 0.5, 2))
    add("bn_eval_t", "bn_eval_t", normal((2, 3, 3, 4)), normal((4,)), uniform((4,), 0.5, 2),
        w(4), normal((4,)))
    add("bn_stats_2d", "bn_stats", normal((5, 3), 2), normal((3,)), uniform((3,), 0.5, 2))
    add("bn_stats_4d", "bn_stats", normal((2, 3, 3, 3), 2), normal((3,)), uniform((3,), 0.5, 2))
    add("bn_stats3_m0p3", "bn_stats3_m0p3", normal((3, 2, 4), 2), normal((2,)),
        uniform((2,), 0.5, 2))
    add("bn_stats_cma3", "bn_stats_cma3", normal((4, 3, 5), 2))
    add("layer_norm_1d", "layer_norm", normal((3, 5), 2), w(5), normal((5,)))
    add("layer_norm_2d", "layer_norm", normal((2, 3, 4), 2), uniform((3, 4), 0.5, 1.5),
        normal((3, 4)))
    add("layer_norm_vector", "layer_norm", normal((6,), 2), w(6), normal((6,)))
    add("layer_norm_eps", "layer_norm_eps", normal((3, 4), 0.2), w(4), normal((4,)))
    add("layer_norm_noaffine1", "layer_norm_noaffine1", normal((2, 3, 5), 2))
    add("layer_norm_noaffine2", "layer_norm_noaffine2", normal((2, 3, 4), 2))
    add("layer_norm_t", "layer_norm_t", normal((5, 3), 2), w(5), normal((5,)))
    add("group_norm_1", "group_norm_1", normal((2, 4, 3), 2), w(4), normal((4,)))
    add("group_norm_2", "group_norm_2", normal((2, 4, 3, 3), 2), w(4), normal((4,)))
    add("group_norm_4", "group_norm_4", normal((2, 4, 5), 2), w(4), normal((4,)))
    add("group_norm_2_batch1", "group_norm_2", normal((1, 4, 2, 3), 2), w(4), normal((4,)))
    add("group_norm_2_noaffine", "group_norm_2_noaffine", normal((3, 6, 4), 2))
    add("group_norm_2_t", "group_norm_2_t", normal((4, 2, 5), 2), w(4), normal((4,)))
    return c


ERRORS = [
    ("bn_one_value_per_channel", "bn_train", [normal((1, 4)), uniform((4,), 0.5, 1.5),
                                              normal((4,))]),
    ("bn_one_value_3d", "bn_train_noaffine", [normal((1, 3, 1))]),
    ("bn_weight_size", "bn_train", [normal((3, 4)), uniform((3,), 0.5, 1.5), normal((4,))]),
    ("bn_running_size", "bn_eval", [normal((3, 4)), normal((3,)), uniform((3,), 0.5, 2),
                                    uniform((4,), 0.5, 1.5), normal((4,))]),
    ("bn_int64", "bn_train_noaffine", [index([[1, 2], [3, 4]])]),
    ("layer_norm_shape", "layer_norm", [normal((2, 3)), uniform((4,), 0.5, 1.5), normal((4,))]),
    ("layer_norm_bias_shape", "layer_norm", [normal((2, 4)), uniform((4,), 0.5, 1.5),
                                             normal((3,))]),
    ("group_norm_divisible", "group_norm_4", [normal((2, 6, 3)), uniform((6,), 0.5, 1.5),
                                              normal((6,))]),
    ("group_norm_weight_size", "group_norm_2", [normal((2, 4, 3)), uniform((3,), 0.5, 1.5),
                                                normal((4,))]),
]


# ---- module state dicts and reprs: tests/reference/norm_modules_reference.txt -----------------
# One line per module: "<id>|<repr>|<key>:<dtype>:<shape>,...", read by
# tests/nn/normalization_test.cpp, which builds the same module under the same id.
def _write_modules():
    import os

    nn = torch.nn
    modules = {
        "bn1d": nn.BatchNorm1d(3),
        "bn2d": nn.BatchNorm2d(32),
        "bn2d_noaffine": nn.BatchNorm2d(4, affine=False),
        "bn2d_notrack": nn.BatchNorm2d(4, track_running_stats=False),
        "bn1d_cma": nn.BatchNorm1d(5, eps=1e-3, momentum=None),
        "sync": nn.SyncBatchNorm(4),
        "ln1": nn.LayerNorm(4),
        "ln2": nn.LayerNorm([3, 4], eps=1e-6, elementwise_affine=False),
        "gn": nn.GroupNorm(2, 4),
        "gn_noaffine": nn.GroupNorm(3, 6, eps=1e-3, affine=False),
        "seq": nn.Sequential(nn.BatchNorm2d(2), nn.GroupNorm(1, 2), nn.LayerNorm(3)),
    }
    names = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64"}
    lines = [f"# generated by tests/reference/toolkit_norm.py with PyTorch "
             f"{torch.__version__.split('+')[0]}; do not edit"]
    for mid, m in modules.items():
        keys = ",".join(f"{k}:{names[t.dtype]}:{'x'.join(map(str, t.shape))}"
                        for k, t in m.state_dict().items())
        rep = repr(m) if mid != "seq" else "-"
        lines.append(f"{mid}|{rep}|{keys}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "norm_modules_reference.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


_write_modules()
