"""Toolkit goldens: reductions, scans and sorting (see make_toolkit_reference.py)."""

import torch

from make_reference import distinct, fixed, index, normal, signed, uniform, condition

inf = float("inf")

OPS = {
    # existing reductions (now double-differentiable) and their dims-list forms
    "sum_dim1": lambda x: torch.sum(x[0], 1),
    "sum_dim0_keepdim": lambda x: torch.sum(x[0], 0, keepdim=True),
    "sum_dims": lambda x: torch.sum(x[0], dim=[0, 2]),
    "sum_dims_neg_keepdim": lambda x: torch.sum(x[0], dim=[-1, 0], keepdim=True),
    "sum_repeated": lambda x: torch.sum(x[0], dim=[0, -2]),
    "mean_all": lambda x: torch.mean(x[0]),
    "mean_dim1": lambda x: torch.mean(x[0], 1),
    "mean_dims": lambda x: torch.mean(x[0], dim=[1, 2]),
    "max_all": lambda x: torch.max(x[0]),
    "max_dim1": lambda x: torch.max(x[0], 1),
    "max_dim0_keepdim": lambda x: torch.max(x[0], 0, keepdim=True),
    "max_dim_t": lambda x: torch.max(x[0].t(), -1),
    "min_dim1": lambda x: torch.min(x[0], 1),
    "amax_all": lambda x: torch.amax(x[0]),
    "amax_dims": lambda x: torch.amax(x[0], dim=[0, 2]),
    "amin_dims_keepdim": lambda x: torch.amin(x[0], dim=[-1], keepdim=True),
    # products and scans
    "prod_all": lambda x: torch.prod(x[0]),
    "prod_dim1": lambda x: torch.prod(x[0], 1),
    "prod_dim0_keepdim": lambda x: torch.prod(x[0], 0, keepdim=True),
    "cumsum_dim1": lambda x: torch.cumsum(x[0], 1),
    "cumsum_neg": lambda x: torch.cumsum(x[0], -3),
    "cumsum_t": lambda x: torch.cumsum(x[0].t(), 1),
    "cumprod_dim1": lambda x: torch.cumprod(x[0], 1),
    "cumprod_dim0": lambda x: torch.cumprod(x[0], 0),
    # statistics
    "var_all": lambda x: torch.var(x[0]),
    "var_dims": lambda x: torch.var(x[0], dim=[0, 2]),
    "var_corr0_keepdim": lambda x: torch.var(x[0], dim=[1], correction=0, keepdim=True),
    "std_all": lambda x: torch.std(x[0]),
    "std_dims": lambda x: torch.std(x[0], dim=[-1]),
    "std_corr2": lambda x: torch.std(x[0], dim=[0, 1], correction=2),
    # norms (torch.linalg.vector_norm semantics)
    "norm2_all": lambda x: torch.linalg.vector_norm(x[0]),
    "norm2_dims": lambda x: torch.linalg.vector_norm(x[0], 2, dim=[0, 2]),
    "norm1_dim": lambda x: torch.linalg.vector_norm(x[0], 1, dim=[1], keepdim=True),
    "norm_inf": lambda x: torch.linalg.vector_norm(x[0], inf, dim=[1]),
    "norm_ninf": lambda x: torch.linalg.vector_norm(x[0], -inf),
    "norm0": lambda x: torch.linalg.vector_norm(x[0], 0, dim=[0]),
    "norm3": lambda x: torch.linalg.vector_norm(x[0], 3, dim=[-1]),
    "norm_fro": lambda x: torch.norm(x[0], p="fro", dim=[0, 1]),
    "logsumexp_dims": lambda x: torch.logsumexp(x[0], dim=[0, 2]),
    "logsumexp_dim_keepdim": lambda x: torch.logsumexp(x[0], -1, keepdim=True),
    # boolean reductions
    "all_all": lambda x: torch.all(x[0]),
    "all_dim": lambda x: torch.all(x[0], 1),
    "any_all": lambda x: torch.any(x[0]),
    "any_dim_keepdim": lambda x: torch.any(x[0], 0, keepdim=True),
    # sorting and selection
    "sort": lambda x: torch.sort(x[0]),
    "sort_desc_dim0": lambda x: torch.sort(x[0], 0, descending=True),
    "sort_t": lambda x: torch.sort(x[0].t(), -1),
    "argsort": lambda x: torch.argsort(x[0], 1),
    "argsort_desc": lambda x: torch.argsort(x[0], 0, descending=True),
    "topk2": lambda x: torch.topk(x[0], 2),
    "topk_smallest_dim0": lambda x: torch.topk(x[0], 2, 0, largest=False),
    "topk_t": lambda x: torch.topk(x[0].t(), 1, -1),
    "kthvalue2": lambda x: torch.kthvalue(x[0], 2),
    "kthvalue_dim0_keepdim": lambda x: torch.kthvalue(x[0], 3, 0, keepdim=True),
    "median_all": lambda x: torch.median(x[0]),
    "median_dim1": lambda x: torch.median(x[0], 1),
    "median_dim0_keepdim": lambda x: torch.median(x[0], 0, keepdim=True),
    # ties: forward and gradients against torch, no finite differences (not smooth there);
    # NaN inputs are checked in toolkit_reduce_test.cpp (the golden comparison does not match NaN)
    "max_all_ties": lambda x: torch.max(x[0]),
    "amax_all_ties": lambda x: torch.amax(x[0]),
    "amax_dims_ties": lambda x: torch.amax(x[0], dim=[0, 2]),
    "amin_dims_keepdim_ties": lambda x: torch.amin(x[0], dim=[-1], keepdim=True),
}


def cases():
    c = []
    add = lambda name, op, *inputs: c.append((name, op, list(inputs)))
    # sums and means
    add("sum_dim1", "sum_dim1", normal([3, 4]))
    add("sum_dim0_keepdim", "sum_dim0_keepdim", normal([3, 4]))
    add("sum_dim1_int", "sum_dim1", index([[1, 2, 3], [4, 5, 6]]))
    add("sum_dim1_bool", "sum_dim1", condition([3, 4]))
    add("sum_dims", "sum_dims", normal([2, 3, 4]))
    add("sum_dims_empty", "sum_dims", normal([2, 0, 3]))
    add("sum_dims_neg_keepdim", "sum_dims_neg_keepdim", normal([2, 3, 4]))
    add("sum_dims_int", "sum_dims", index([[[1, 2], [3, 4]], [[5, 6], [7, 8]]]))
    add("mean_all", "mean_all", normal([3, 4]))
    add("mean_dim1", "mean_dim1", normal([3, 4]))
    add("mean_dims", "mean_dims", normal([2, 3, 4]))
    # max / min / amax / amin
    add("max_all", "max_all", distinct([3, 4]))
    add("max_all_ties", "max_all_ties", fixed([[1.0, 3.0, 3.0], [2.0, 0.5, 2.0]]))
    add("max_dim1", "max_dim1", distinct([3, 4]))
    add("max_dim1_int", "max_dim1", index([[1, 7, 3], [9, 5, 6]]))
    add("max_dim0_keepdim", "max_dim0_keepdim", distinct([3, 4]))
    add("max_dim0_keepdim_3d", "max_dim0_keepdim", distinct([3, 2, 2]))
    add("max_dim_t", "max_dim_t", distinct([4, 3]))
    add("min_dim1", "min_dim1", distinct([3, 4]))
    add("max_dim1_empty", "max_dim1", normal([0, 3]))
    add("amax_all", "amax_all", distinct([3, 4]))
    add("amax_all_ties", "amax_all_ties", fixed([[1.0, 3.0, 3.0], [2.0, 0.5, 2.0]]))
    add("amax_dims", "amax_dims", distinct([2, 3, 4]))
    add("amax_dims_ties", "amax_dims_ties", fixed([[[1.0, 2.0], [2.0, 0.0]], [[2.0, 1.0], [0.0, 2.0]]]))
    add("amax_dims_int", "amax_dims", index([[[1, 2], [3, 4]], [[5, 6], [7, 8]]]))
    add("amin_dims_keepdim", "amin_dims_keepdim", distinct([3, 4]))
    add("amin_dims_keepdim_ties", "amin_dims_keepdim_ties", fixed([[1.0, 1.0, 2.0], [0.0, 3.0, 0.0]]))
    add("amin_dims_keepdim_empty", "amin_dims_keepdim", normal([0, 3]))
    # products and scans
    add("prod_all", "prod_all", signed([3, 4], 0.5, 1.5))
    add("prod_all_zero", "prod_all", fixed([[1.5, 0.0, 2.0], [-1.0, 0.5, 3.0]]))
    add("prod_all_int", "prod_all", index([[1, 2, 3], [4, -5, 6]]))
    add("prod_dim1", "prod_dim1", signed([3, 4], 0.5, 1.5))
    add("prod_dim1_zeros", "prod_dim1", fixed([[1.5, 0.0, 2.0, 0.5], [0.0, 0.5, 0.0, 2.0],
                                               [1.0, 2.0, -3.0, 0.5]]))
    add("prod_dim1_empty", "prod_dim1", normal([3, 0]))
    add("prod_dim1_bool", "prod_dim1", condition([3, 4]))
    add("prod_dim0_keepdim", "prod_dim0_keepdim", signed([3, 2, 2], 0.5, 1.5))
    add("cumsum_dim1", "cumsum_dim1", normal([3, 4]))
    add("cumsum_dim1_int", "cumsum_dim1", index([[1, 2, 3], [4, 5, 6]]))
    add("cumsum_dim1_bool", "cumsum_dim1", condition([3, 4]))
    add("cumsum_dim1_empty", "cumsum_dim1", normal([2, 0]))
    add("cumsum_neg", "cumsum_neg", normal([2, 3, 4]))
    add("cumsum_t", "cumsum_t", normal([4, 3]))
    add("cumprod_dim1", "cumprod_dim1", signed([3, 4], 0.5, 1.5))
    add("cumprod_dim1_zeros", "cumprod_dim1", fixed([[1.5, 0.0, 2.0, 0.5], [0.0, 0.5, 0.0, 2.0],
                                                     [1.0, 2.0, -3.0, 0.0]]))
    add("cumprod_dim1_int", "cumprod_dim1", index([[1, 2, 3], [4, -5, 6]]))
    add("cumprod_dim0", "cumprod_dim0", signed([3, 2, 2], 0.5, 1.5))
    # statistics
    add("var_all", "var_all", normal([3, 4]))
    add("var_dims", "var_dims", normal([2, 3, 4]))
    add("var_corr0_keepdim", "var_corr0_keepdim", normal([3, 4]))
    add("std_all", "std_all", normal([3, 4]))
    add("std_dims", "std_dims", normal([3, 4]))
    add("std_corr2", "std_corr2", normal([2, 3, 2]))
    # norms
    add("norm2_all", "norm2_all", normal([3, 4]))
    add("norm2_dims", "norm2_dims", normal([2, 3, 4]))
    add("norm2_dims_empty", "norm2_dims", normal([2, 3, 0]))
    add("norm1_dim", "norm1_dim", signed([3, 4], 0.1, 2.0))
    add("norm_inf", "norm_inf", distinct([3, 4]))
    add("norm3_with_zero", "norm3", fixed([[0.0, 1.0, -2.0], [0.5, 0.0, 0.0]]))
    add("norm_ninf", "norm_ninf", signed([3, 4], 0.1, 2.0))
    add("norm0", "norm0", fixed([[1.0, 0.0, 2.0], [0.0, 0.0, -1.0]]))
    add("norm3", "norm3", signed([3, 4], 0.2, 2.0))
    add("norm_fro", "norm_fro", normal([3, 4, 2]))
    add("logsumexp_dims", "logsumexp_dims", normal([2, 3, 4]))
    add("logsumexp_dims_big", "logsumexp_dims", uniform([2, 2, 2], 500.0, 600.0))
    add("logsumexp_dim_keepdim", "logsumexp_dim_keepdim", normal([3, 4]))
    add("logsumexp_dim_keepdim_int", "logsumexp_dim_keepdim", index([[1, 2, 3], [4, 5, 6]]))
    # all / any
    for op in ["all_all", "all_dim", "any_all", "any_dim_keepdim"]:
        add(f"{op}_float", op, fixed([[1.0, 0.0, 2.0], [0.5, 0.25, -1.0]]))
        add(f"{op}_int", op, index([[1, 0, 2], [0, 0, 0]]))
        add(f"{op}_bool", op, condition([3, 4]))
    add("all_all_empty", "all_all", normal([0, 3]))
    add("any_dim_keepdim_empty", "any_dim_keepdim", normal([0, 3]))
    # sorting and selection
    add("sort", "sort", distinct([3, 5]))
    add("sort_1d", "sort", distinct([6]))
    add("sort_int_ties", "sort", index([[3, 1, 3, 2, 1], [0, 0, 5, 0, -1]]))
    add("sort_empty", "sort", normal([2, 0]))
    add("sort_desc_dim0", "sort_desc_dim0", distinct([4, 3]))
    add("sort_t", "sort_t", distinct([4, 3]))
    add("argsort", "argsort", distinct([3, 5]))
    add("argsort_int_ties", "argsort", index([[3, 1, 3, 2, 1], [0, 0, 5, 0, -1]]))
    add("argsort_desc", "argsort_desc", distinct([4, 3]))
    add("topk2", "topk2", distinct([3, 5]))
    add("topk2_int", "topk2", index([[3, 1, 7, 2, 9], [0, 4, 5, 8, -1]]))
    add("topk_smallest_dim0", "topk_smallest_dim0", distinct([4, 3]))
    add("topk_t", "topk_t", distinct([4, 3]))
    add("kthvalue2", "kthvalue2", distinct([3, 5]))
    add("kthvalue_dim0_keepdim", "kthvalue_dim0_keepdim", distinct([4, 2, 2]))
    add("median_all", "median_all", distinct([3, 5]))
    add("median_all_even", "median_all", distinct([2, 3]))
    add("median_all_int", "median_all", index([[3, 1, 7, 2], [0, 4, 5, 8]]))
    add("median_dim1", "median_dim1", distinct([3, 5]))
    add("median_dim1_even", "median_dim1", distinct([3, 4]))
    add("median_dim0_keepdim", "median_dim0_keepdim", distinct([5, 2, 3]))
    return c


ERRORS = [
    ("err_sum_dims_repeated", "sum_repeated", [normal([3, 4])]),
    ("err_sum_dims_bad_dim", "sum_dims", [normal([3, 4])]),
    ("err_max_dim1_bad_dim", "max_dim1", [normal([4])]),
    ("err_amax_dims_empty_dim", "amax_dims", [normal([0, 3, 2])]),
    ("err_var_all_int", "var_all", [index([1, 2, 3])]),
    ("err_norm2_all_int", "norm2_all", [index([1, 2, 3])]),
    ("err_topk2_k_too_big", "topk2", [normal([3, 1])]),
    ("err_kthvalue2_k_too_big", "kthvalue2", [normal([3, 1])]),
    ("err_median_dim1_empty", "median_dim1", [normal([2, 0])]),
    ("err_argsort_bad_dim", "argsort", [normal([4])]),
    ("err_cumsum_bad_dim", "cumsum_neg", [normal([3, 4])]),
]
