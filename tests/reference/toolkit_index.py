"""Indexing ops for the toolkit goldens (see make_toolkit_reference.py): x[...] basic and
advanced, index_put, gather, scatter, scatter_add, index_add, masked_fill, masked_select,
nonzero, take. Mirrored name for name by tests/ops/toolkit_index_test.cpp."""

import torch

from make_reference import condition, fixed, index, normal


def put(x, key, v):
    y = x.clone()
    y[key] = v
    return y


OPS = {
    # basic indexing (views)
    "index_basic": lambda a: a[0][1:, 0],
    "index_step": lambda a: a[0][::2, 1:4:2],
    "index_neg": lambda a: a[0][-1, -3:],
    "index_none_ellipsis": lambda a: a[0][None, ..., 1],
    "index_bool_scalar": lambda a: a[0][True, 1],
    "index_bool_false": lambda a: a[0][..., False],
    "index_basic_t": lambda a: a[0].t()[1:, -1],
    "index_zero_size": lambda a: a[0][:, 1],
    # advanced indexing (copies)
    "index_int": lambda a: a[0][a[1]],
    "index_adjacent": lambda a: a[0][:, a[1], a[2]],
    "index_separated": lambda a: a[0][a[1], :, a[2]],
    "index_none_between": lambda a: a[0][a[1], None, a[2]],
    "index_mask": lambda a: a[0][a[1]],
    "index_mask_slice": lambda a: a[0][1:, a[1]],
    "index_int_t": lambda a: a[0].t()[1:, a[1]],
    "index_int_scalar": lambda a: a[0][a[1], 2],
    # index_put
    "index_put_basic": lambda a: put(a[0], (slice(1, None), 0), a[1]),
    "index_put_int": lambda a: put(a[0], a[2], a[1]),
    "index_put_adjacent": lambda a: put(a[0], (slice(None), a[2], a[3]), a[1]),
    "index_put_mask": lambda a: put(a[0], a[2], a[1]),
    "index_put_acc": lambda a: torch.index_put(a[0], (a[2],), a[1], accumulate=True),
    "index_put_acc2": lambda a: torch.index_put(a[0], (a[2], a[3]), a[1], accumulate=True),
    # gather / scatter / index_add
    "gather0": lambda a: torch.gather(a[0], 0, a[1]),
    "gather1": lambda a: torch.gather(a[0], -1, a[1]),
    "gather_t": lambda a: torch.gather(a[0].t(), 1, a[1]),
    "scatter0": lambda a: torch.scatter(a[0], 0, a[2], a[1]),
    "scatter1": lambda a: torch.scatter(a[0], -1, a[2], a[1]),
    "scatter_value": lambda a: torch.scatter(a[0], 1, a[1], 2.5),
    "scatter_add0": lambda a: torch.scatter_add(a[0], 0, a[2], a[1]),
    "scatter_add_t": lambda a: torch.scatter_add(a[0].t(), 1, a[2], a[1]),
    "index_add0": lambda a: torch.index_add(a[0], 0, a[2], a[1]),
    "index_add_alpha": lambda a: torch.index_add(a[0], -1, a[2], a[1], alpha=-1.5),
    # masks, nonzero, take
    "masked_fill_scalar": lambda a: torch.masked_fill(a[0], a[1], -2.0),
    "masked_fill_tensor": lambda a: torch.masked_fill(a[0], a[1], a[2]),
    "masked_select": lambda a: torch.masked_select(a[0], a[1]),
    # torch 1.13's masked_select backward is wrong for a non-contiguous input (its own gradcheck
    # fails), so torch gets a contiguous copy; soma's mirror passes the transposed view.
    "masked_select_t": lambda a: torch.masked_select(a[0].t().contiguous(), a[1]),
    "nonzero": lambda a: torch.nonzero(a[0]),
    "take": lambda a: torch.take(a[0], a[1]),
    "take_t": lambda a: torch.take(a[0].t(), a[1]),
}


def cases():
    return [
        ("index_basic", "index_basic", [normal([4, 3, 5])]),
        ("index_step", "index_step", [normal([5, 6])]),
        ("index_neg", "index_neg", [normal([3, 5])]),
        ("index_none_ellipsis", "index_none_ellipsis", [normal([2, 3, 4])]),
        ("index_bool_scalar", "index_bool_scalar", [normal([3, 4])]),
        ("index_bool_false", "index_bool_false", [normal([3, 4])]),
        ("index_basic_t", "index_basic_t", [normal([4, 3])]),
        ("index_zero_size", "index_zero_size", [normal([0, 3])]),
        ("index_int_dup", "index_int", [normal([4, 3]), index([[0, 2], [-1, 0]])]),
        ("index_int_empty", "index_int", [normal([4, 3]), index([])]),
        ("index_int_long", "index_int", [fixed([[1, 2], [3, 4]], torch.int64), index([1, 0, 1])]),
        ("index_adjacent", "index_adjacent",
         [normal([2, 3, 4]), index([[0], [2]]), index([0, 3, 1])]),
        ("index_separated", "index_separated",
         [normal([2, 3, 4]), index([[0], [1]]), index([0, -1, 1])]),
        ("index_none_between", "index_none_between",
         [normal([3, 4]), index([0, 2]), index([1, 3])]),
        ("index_mask", "index_mask", [normal([3, 4, 2]), condition([3, 4])]),
        ("index_mask_empty", "index_mask", [normal([3, 4]), fixed([False] * 3, torch.bool)]),
        ("index_mask_slice", "index_mask_slice", [normal([3, 4, 2]), condition([4])]),
        ("index_int_t", "index_int_t", [normal([3, 4]), index([2, 0, 2])]),
        ("index_int_scalar", "index_int_scalar", [normal([4, 5]), index([[3], [1]])]),
        ("index_put_basic", "index_put_basic", [normal([4, 3]), normal([3])]),
        ("index_put_basic_bcast", "index_put_basic", [normal([4, 3]), normal([1])]),
        ("index_put_int", "index_put_int", [normal([4, 3]), normal([2, 3]), index([2, 0])]),
        ("index_put_int_bcast", "index_put_int", [normal([4, 3]), normal([3]), index([3, -4])]),
        ("index_put_adjacent", "index_put_adjacent",
         [normal([2, 3, 4]), normal([2, 1]), index([0, 2]), index([3, 1])]),
        ("index_put_mask", "index_put_mask", [normal([3, 4]), normal([]), condition([3, 4])]),
        ("index_put_acc", "index_put_acc", [normal([4, 3]), normal([3, 3]), index([1, 3, 1])]),
        ("index_put_acc2", "index_put_acc2",
         [normal([4, 3]), normal([4]), index([1, 1, 0, 1]), index([2, 2, 0, -1])]),
        ("index_put_acc_long", "index_put_acc",
         [fixed([1, 2, 3], torch.int64), fixed([5, 7], torch.int64), index([2, 2])]),
        ("gather0", "gather0", [normal([3, 4]), index([[0, 1, 2, 0], [2, 2, 1, 0]])]),
        ("gather1", "gather1", [normal([3, 4]), index([[3, 0], [1, 1], [0, 2]])]),
        ("gather1_small", "gather1", [normal([3, 4, 2]), index([[[1], [0]], [[0], [1]]])]),
        ("gather_t", "gather_t", [normal([4, 3]), index([[0, 3], [1, 1], [2, 0]])]),
        ("gather_empty", "gather1", [normal([3, 4]), fixed([[]] * 3, torch.int64)]),
        ("gather_long", "gather0", [fixed([[1, 2], [3, 4]], torch.int64), index([[1, 0]])]),
        ("scatter0", "scatter0", [normal([3, 4]), normal([2, 4]), index([[0, 1, 2, 0], [2, 2, 1, 1]])]),
        ("scatter1", "scatter1", [normal([3, 4]), normal([3, 2]), index([[3, 0], [1, 2], [0, 1]])]),
        ("scatter_value", "scatter_value", [normal([3, 4]), index([[3, 0], [1, 2], [0, 1]])]),
        ("scatter_add0", "scatter_add0", [normal([3, 4]), normal([3, 4]), index([[0, 1, 2, 0], [0, 2, 2, 1], [0, 0, 0, 0]])]),
        ("scatter_add_t", "scatter_add_t", [normal([4, 3]), normal([3, 3]), index([[0, 3, 0], [1, 1, 1], [2, 0, 3]])]),
        ("scatter_add_long", "scatter_add0",
         [fixed([[1, 2], [3, 4]], torch.int64), fixed([[5, 6]], torch.int64), index([[1, 1]])]),
        ("index_add0", "index_add0", [normal([4, 3]), normal([3, 3]), index([3, 0, 3])]),
        ("index_add_alpha", "index_add_alpha", [normal([2, 4]), normal([2, 2]), index([1, 1])]),
        ("index_add_empty", "index_add0", [normal([4, 3]), normal([0, 3]), index([])]),
        ("masked_fill_scalar", "masked_fill_scalar", [normal([3, 4]), condition([3, 4])]),
        ("masked_fill_bcast", "masked_fill_scalar", [normal([3, 4]), condition([4])]),
        ("masked_fill_bcast_out", "masked_fill_scalar", [normal([4]), condition([2, 4])]),
        ("masked_fill_tensor", "masked_fill_tensor", [normal([3, 4]), condition([3, 1]), normal([])]),
        ("masked_fill_long", "masked_fill_scalar",
         [fixed([[1, 2], [3, 4]], torch.int64), fixed([True, False], torch.bool)]),
        ("masked_select", "masked_select", [normal([3, 4]), condition([3, 4])]),
        ("masked_select_bcast", "masked_select", [normal([4]), condition([3, 4])]),
        ("masked_select_t", "masked_select_t", [normal([4, 3]), condition([3, 4])]),
        ("masked_select_empty", "masked_select", [normal([0, 4]), condition([4])]),
        ("nonzero_float", "nonzero", [fixed([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])]),
        ("nonzero_bool", "nonzero", [condition([2, 3, 2])]),
        ("nonzero_long", "nonzero", [fixed([0, 3, 0, 4], torch.int64)]),
        ("nonzero_0d", "nonzero", [fixed(2.0)]),
        ("nonzero_empty", "nonzero", [normal([0, 3])]),
        ("take", "take", [normal([3, 4]), index([[0, 11], [-1, 5], [5, 2]])]),
        ("take_t", "take_t", [normal([3, 4]), index([1, 2, 3, -12])]),
        ("take_empty", "take", [normal([3, 4]), index([])]),
    ]


ERRORS = [
    ("err_index_range", "index_int", [normal([4, 3]), index([4])]),
    ("err_index_range_neg", "index_int", [normal([4, 3]), index([-5])]),
    ("err_index_float", "index_int", [normal([4, 3]), fixed([1.0])]),
    ("err_index_too_many", "index_int_scalar", [normal([4]), index([0])]),
    ("err_index_mask_shape", "index_mask", [normal([3, 4]), condition([4])]),
    ("err_index_bcast", "index_adjacent", [normal([2, 3, 4]), index([0, 1]), index([0, 1, 2])]),
    ("err_index_put_shape", "index_put_int", [normal([4, 3]), normal([2, 2]), index([2, 0])]),
    ("err_index_put_dtype", "index_put_acc", [normal([4, 3]), fixed([[1, 2, 3]], torch.int64), index([1])]),
    ("err_gather_range", "gather0", [normal([3, 4]), index([[3, 0]])]),
    ("err_gather_neg", "gather0", [normal([3, 4]), index([[-1, 0]])]),
    ("err_gather_dims", "gather0", [normal([3, 4]), index([0, 1])]),
    ("err_gather_size", "gather0", [normal([3, 4]), index([[0, 0, 0, 0, 0]])]),
    ("err_gather_float", "gather0", [normal([3, 4]), fixed([[0.0, 1.0]])]),
    ("err_scatter_dtype", "scatter0", [normal([3, 4]), fixed([[1, 2]], torch.int64), index([[0, 1]])]),
    ("err_scatter_src_small", "scatter0", [normal([3, 4]), normal([1, 1]), index([[0, 1]])]),
    ("err_scatter_range", "scatter0", [normal([3, 4]), normal([1, 2]), index([[3, 1]])]),
    ("err_index_add_index", "index_add0", [normal([4, 3]), normal([2, 3]), index([[0, 1]])]),
    ("err_index_add_shape", "index_add0", [normal([4, 3]), normal([2, 2]), index([0, 1])]),
    ("err_index_add_range", "index_add0", [normal([4, 3]), normal([1, 3]), index([4])]),
    ("err_masked_fill_value", "masked_fill_tensor", [normal([3, 4]), condition([3, 4]), normal([1])]),
    ("err_masked_select_bcast", "masked_select", [normal([3, 4]), condition([3])]),
    ("err_take_range", "take", [normal([3, 4]), index([12])]),
    ("err_take_float", "take", [normal([3, 4]), fixed([1.0])]),
]
