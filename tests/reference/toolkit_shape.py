"""Shape and copy ops for the toolkit goldens (see make_toolkit_reference.py): permute, movedim,
repeat, stack, split, chunk, unbind, flip, roll, tril/triu, Tensor.unfold, F.pad, F.unfold,
F.fold, and the older shape ops whose backward is checked twice (index_select, cat, expand,
slice, narrow, reshape, transpose, squeeze/unsqueeze). Ops ending in _t transpose their input
first (a non-contiguous input). Mirrored name for name by tests/ops/toolkit_shape_test.cpp."""

import torch
import torch.nn.functional as F

from make_reference import condition, fixed, index, normal

OPS = {
    "permute": lambda a: a[0].permute(2, 0, 1),
    "permute_neg": lambda a: a[0].permute(-1, 0, -2),
    "permute_t": lambda a: a[0].t().permute(1, 0),
    "permute_repeat": lambda a: a[0].permute(0, 0, 1),
    "movedim": lambda a: torch.movedim(a[0], 0, -1),
    "movedim_list": lambda a: torch.movedim(a[0], (0, 1), (2, 0)),
    "repeat": lambda a: a[0].repeat(2, 1, 3),
    "repeat_t": lambda a: a[0].t().repeat(2, 2),
    "repeat_zero": lambda a: a[0].repeat(0, 2),
    "stack": lambda a: torch.stack([a[0], a[1]], 1),
    "stack_neg": lambda a: torch.stack([a[0], a[1], a[2]], -1),
    "stack_t": lambda a: torch.stack([a[0].t(), a[1]], 0),
    "split": lambda a: torch.split(a[0], 2, dim=1),
    "split_sizes": lambda a: torch.split(a[0], [1, 3, 1], dim=-1),
    "split_t": lambda a: torch.split(a[0].t(), 2),
    "chunk": lambda a: torch.chunk(a[0], 3, 1),
    "chunk_fewer": lambda a: torch.chunk(a[0], 4, 0),
    "unbind": lambda a: torch.unbind(a[0], 1),
    "unbind_t": lambda a: torch.unbind(a[0].t(), -1),
    "flip": lambda a: torch.flip(a[0], (0, 2)),
    "flip_neg": lambda a: torch.flip(a[0], (-1,)),
    "flip_t": lambda a: torch.flip(a[0].t(), (0, 1)),
    "roll": lambda a: torch.roll(a[0], 2, 1),
    "roll_dims": lambda a: torch.roll(a[0], (1, -2), (0, -1)),
    "roll_flat": lambda a: torch.roll(a[0], 3),
    "roll_t": lambda a: torch.roll(a[0].t(), -1, 0),
    "tril": lambda a: torch.tril(a[0]),
    "tril_up": lambda a: torch.tril(a[0], 1),
    "tril_down": lambda a: torch.tril(a[0], -1),
    "triu": lambda a: torch.triu(a[0]),
    "triu_up": lambda a: torch.triu(a[0], 2),
    "triu_down": lambda a: torch.triu(a[0], -1),
    "triu_t": lambda a: torch.triu(a[0].transpose(-1, -2)),
    "unfold": lambda a: a[0].unfold(1, 2, 1),
    "unfold_step": lambda a: a[0].unfold(0, 2, 2),
    "unfold_neg": lambda a: a[0].unfold(-1, 3, 2),
    "unfold_t": lambda a: a[0].t().unfold(0, 2, 1),
    "pad": lambda a: F.pad(a[0], (1, 2)),
    "pad_2d": lambda a: F.pad(a[0], (1, 0, 2, 1), value=1.5),
    "pad_neg": lambda a: F.pad(a[0], (-1, 2, 0, -1)),
    "pad_t": lambda a: F.pad(a[0].t(), (0, 1, 1, 1), value=-2.0),
    "pad_reflect": lambda a: F.pad(a[0], (2, 1), mode="reflect"),
    "pad_reflect_2d": lambda a: F.pad(a[0], (1, 2, 2, 1), mode="reflect"),
    "pad_replicate": lambda a: F.pad(a[0], (2, 1), mode="replicate"),
    "pad_replicate_2d": lambda a: F.pad(a[0], (1, 3, 0, 2), mode="replicate"),
    "pad_replicate_3d": lambda a: F.pad(a[0], (1, 1, 2, 0, 1, 1), mode="replicate"),
    "fn_unfold": lambda a: F.unfold(a[0], 2),
    "fn_unfold_opts": lambda a: F.unfold(a[0], (2, 3), dilation=(1, 2), padding=(1, 0), stride=(2, 1)),
    "fn_unfold_3d": lambda a: F.unfold(a[0], 2, padding=1, stride=2),
    "fold": lambda a: F.fold(a[0], (4, 5), 2),
    "fold_opts": lambda a: F.fold(a[0], (5, 4), (2, 3), dilation=(2, 1), padding=(0, 1), stride=(1, 2)),
    "fold_2d": lambda a: F.fold(a[0], (3, 3), 2, padding=1, stride=2),
    # existing ops: double backward
    "index_select": lambda a: torch.index_select(a[0], 1, a[1]),
    "index_select_t": lambda a: torch.index_select(a[0].t(), 0, a[1]),
    "cat": lambda a: torch.cat([a[0], a[1], a[2]], 1),
    "cat_neg": lambda a: torch.cat([a[0], a[1]], -1),
    "expand": lambda a: a[0].expand(2, 3, 4),
    "expand_keep": lambda a: a[0].expand(-1, 4),
    "slice": lambda a: a[0][:, 1:5:2],
    "slice_neg": lambda a: a[0][-2:, :-1],
    "narrow": lambda a: torch.narrow(a[0], 0, 1, 2),
    "reshape_t": lambda a: a[0].t().reshape(2, -1),
    "transpose": lambda a: a[0].transpose(0, 2),
    "squeeze_unsqueeze": lambda a: a[0].squeeze(1).unsqueeze(-1),
    "contiguous_t": lambda a: a[0].t().contiguous(),
    "to_float64": lambda a: a[0].to(torch.float64),
}


def ints(shape, hi=10):
    return lambda g: torch.randint(-hi, hi, shape, generator=g, dtype=torch.int64)


def cases():
    c = []
    add = lambda name, op, *inputs: c.append((name, op, list(inputs)))
    add("permute", "permute", normal([2, 3, 4]))
    add("permute_neg", "permute_neg", normal([2, 3, 4]))
    add("permute_t", "permute_t", normal([3, 4]))
    add("permute_empty", "permute", normal([2, 0, 3]))
    add("permute_int", "permute", ints([2, 1, 3]))
    add("movedim", "movedim", normal([2, 3, 4]))
    add("movedim_list", "movedim_list", normal([2, 3, 4]))
    add("repeat", "repeat", normal([2, 3]))
    add("repeat_t", "repeat_t", normal([3, 2]))
    add("repeat_zero", "repeat_zero", normal([2, 3]))
    add("repeat_int", "repeat", ints([2, 2]))
    add("stack", "stack", normal([2, 3]), normal([2, 3]))
    add("stack_neg", "stack_neg", normal([3]), normal([3]), normal([3]))
    add("stack_t", "stack_t", normal([3, 2]), normal([2, 3]))
    add("stack_empty", "stack", normal([0, 2]), normal([0, 2]))
    add("split", "split", normal([3, 5]))
    add("split_sizes", "split_sizes", normal([2, 5]))
    add("split_t", "split_t", normal([2, 5]))
    add("split_empty", "split", normal([2, 0]))
    add("chunk", "chunk", normal([2, 7]))
    add("chunk_fewer", "chunk_fewer", normal([6, 2]))
    add("chunk_empty", "chunk", normal([2, 0]))
    add("unbind", "unbind", normal([2, 3, 2]))
    add("unbind_t", "unbind_t", normal([3, 2]))
    add("flip", "flip", normal([2, 3, 4]))
    add("flip_neg", "flip_neg", normal([3, 4]))
    add("flip_t", "flip_t", normal([3, 4]))
    add("flip_int", "flip", ints([2, 2, 3]))
    add("flip_empty", "flip_neg", normal([2, 0]))
    add("roll", "roll", normal([2, 5]))
    add("roll_dims", "roll_dims", normal([3, 4]))
    add("roll_flat", "roll_flat", normal([2, 4]))
    add("roll_t", "roll_t", normal([3, 4]))
    add("roll_int", "roll_dims", ints([3, 4]))
    add("roll_empty", "roll", normal([0, 3]))
    add("tril", "tril", normal([4, 4]))
    add("tril_up", "tril_up", normal([3, 5]))
    add("tril_down", "tril_down", normal([2, 4, 3]))
    add("triu", "triu", normal([4, 3]))
    add("triu_up", "triu_up", normal([3, 5]))
    add("triu_down", "triu_down", normal([2, 3, 3]))
    add("triu_t", "triu_t", normal([2, 3, 4]))
    add("tril_int", "tril", ints([3, 3]))
    add("triu_bool", "triu", condition([3, 4]))
    add("tril_empty", "tril", normal([0, 3]))
    add("unfold", "unfold", normal([2, 4, 3]))
    add("unfold_step", "unfold_step", normal([5, 2]))
    add("unfold_neg", "unfold_neg", normal([2, 7]))
    add("unfold_t", "unfold_t", normal([2, 4]))
    add("unfold_int", "unfold", ints([2, 3]))
    add("pad", "pad", normal([2, 3]))
    add("pad_2d", "pad_2d", normal([2, 2, 3]))
    add("pad_neg", "pad_neg", normal([3, 4]))
    add("pad_t", "pad_t", normal([3, 2]))
    add("pad_int", "pad", ints([2, 2]))
    add("pad_empty", "pad", normal([0, 2]))
    add("pad_reflect", "pad_reflect", normal([2, 3, 4]))
    add("pad_reflect_2d", "pad_reflect_2d", normal([1, 2, 3, 4]))
    add("pad_reflect_2d_3d", "pad_reflect_2d", normal([2, 4, 3]))
    add("pad_replicate", "pad_replicate", normal([2, 3]))
    add("pad_replicate_2d", "pad_replicate_2d", normal([1, 2, 2, 3]))
    add("pad_replicate_3d", "pad_replicate_3d", normal([1, 2, 2, 3, 2]))
    add("fn_unfold", "fn_unfold", normal([2, 2, 3, 4]))
    add("fn_unfold_opts", "fn_unfold_opts", normal([1, 2, 4, 6]))
    add("fn_unfold_3d", "fn_unfold_3d", normal([2, 3, 3]))
    add("fold", "fold", normal([2, 8, 12]))
    add("fold_opts", "fold_opts", normal([1, 12, 6]))
    add("fold_2d", "fold_2d", normal([8, 4]))
    add("index_select", "index_select", normal([2, 4, 2]), index([3, 0, 3, 1]))
    add("index_select_t", "index_select_t", normal([3, 4]), index([2, 2, 0]))
    add("index_select_int", "index_select", ints([2, 3]), index([1, 0]))
    add("cat", "cat", normal([2, 1]), normal([2, 3]), normal([2, 2]))
    add("cat_neg", "cat_neg", normal([2, 2, 1]), normal([2, 2, 2]))
    add("cat_empty", "cat", normal([2, 1]), normal([2, 0]), normal([2, 2]))
    add("expand", "expand", normal([3, 1]))
    add("expand_keep", "expand_keep", normal([3, 1]))
    add("slice", "slice", normal([3, 6]))
    add("slice_neg", "slice_neg", normal([3, 4]))
    add("narrow", "narrow", normal([4, 2]))
    add("reshape_t", "reshape_t", normal([3, 4]))
    add("transpose", "transpose", normal([2, 3, 4]))
    add("squeeze_unsqueeze", "squeeze_unsqueeze", normal([3, 1, 2]))
    add("contiguous_t", "contiguous_t", normal([2, 3]))
    add("to_float64", "to_float64", normal([2, 3]))
    return c


ERRORS = [
    ("permute_repeated_dim", "permute_repeat", [normal([2, 2, 2])]),
    ("permute_wrong_count", "permute", [normal([2, 3])]),
    ("repeat_too_few", "repeat_zero", [normal([2, 3, 4])]),
    ("stack_mismatch", "stack", [normal([2, 3]), normal([3, 2])]),
    ("split_sizes_sum", "split_sizes", [normal([2, 4])]),
    ("chunk_zero_dim", "chunk", [normal([])]),
    ("flip_bad_dim", "flip", [normal([2, 3])]),
    ("roll_bad_dim", "roll", [normal([4])]),
    ("tril_1d", "tril", [normal([3])]),
    ("unfold_too_big", "unfold_neg", [normal([2, 2])]),
    ("pad_reflect_too_big", "pad_reflect", [normal([1, 2, 2])]),
    ("pad_reflect_bad_dims", "pad_reflect", [normal([4])]),
    ("pad_too_long", "pad_2d", [normal([3])]),
    ("fn_unfold_kernel_too_big", "fn_unfold", [normal([1, 1, 1, 4])]),
    ("fn_unfold_2d_input", "fn_unfold", [normal([3, 4])]),
    ("fold_blocks_mismatch", "fold", [normal([2, 8, 11])]),
    ("fold_not_divisible", "fold", [normal([2, 6, 12])]),
    ("index_select_out_of_range", "index_select", [normal([2, 3]), index([0, 3])]),
    ("cat_mismatch", "cat", [normal([2, 1]), normal([3, 3]), normal([2, 2])]),
    ("expand_bad", "expand", [normal([3, 2])]),
    ("narrow_out_of_range", "narrow", [normal([2, 2])]),
]
