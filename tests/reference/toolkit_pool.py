"""Pooling and resampling for make_toolkit_reference.py: tests/reference/toolkit_pool_reference.txt.
Max-pool inputs are `distinct` (no ties), so the gradients are well defined."""

import torch
import torch.nn.functional as F

from make_reference import distinct, index, normal

OPS = {
    # max pooling
    "max_pool2d_k2": lambda x: F.max_pool2d(x[0], 2),
    "max_pool2d_k3s2p1": lambda x: F.max_pool2d(x[0], 3, 2, 1),
    "max_pool2d_k3s1p1d2": lambda x: F.max_pool2d(x[0], 3, 1, 1, dilation=2),
    "max_pool2d_k2x3s1x2p1": lambda x: F.max_pool2d(x[0], (2, 3), (1, 2), (1, 1)),
    "max_pool2d_k3s2_ceil": lambda x: F.max_pool2d(x[0], 3, 2, ceil_mode=True),
    "max_pool2d_k2s2p1_ceil": lambda x: F.max_pool2d(x[0], 2, 2, 1, ceil_mode=True),
    "max_pool2d_k3s2d2_ceil": lambda x: F.max_pool2d(x[0], 3, 2, 1, dilation=2, ceil_mode=True),
    "max_pool2d_indices": lambda x: F.max_pool2d(x[0], 3, 2, 1, return_indices=True),
    "max_pool2d_t": lambda x: F.max_pool2d(x[0].transpose(2, 3), 2, 1),
    "max_pool1d_k3s2p1": lambda x: F.max_pool1d(x[0], 3, 2, 1),
    "max_pool1d_indices": lambda x: F.max_pool1d(x[0], 2, 1, 1, dilation=2, return_indices=True),
    # average pooling
    "avg_pool2d_k2": lambda x: F.avg_pool2d(x[0], 2),
    "avg_pool2d_k3s2p1": lambda x: F.avg_pool2d(x[0], 3, 2, 1),
    "avg_pool2d_k3s2p1_nopad": lambda x: F.avg_pool2d(x[0], 3, 2, 1, count_include_pad=False),
    "avg_pool2d_k3s2p1_ceil": lambda x: F.avg_pool2d(x[0], 3, 2, 1, ceil_mode=True),
    "avg_pool2d_k3s2p1_ceil_nopad":
        lambda x: F.avg_pool2d(x[0], 3, 2, 1, ceil_mode=True, count_include_pad=False),
    "avg_pool2d_div3": lambda x: F.avg_pool2d(x[0], 2, 1, 1, divisor_override=3),
    "avg_pool2d_k2x3s2x1p1x0": lambda x: F.avg_pool2d(x[0], (2, 3), (2, 1), (1, 0)),
    "avg_pool2d_perm": lambda x: F.avg_pool2d(x[0].permute(0, 3, 1, 2), 2, 1),
    "avg_pool1d_k3s2p1": lambda x: F.avg_pool1d(x[0], 3, 2, 1),
    "avg_pool1d_ceil_nopad":
        lambda x: F.avg_pool1d(x[0], 2, 2, 1, ceil_mode=True, count_include_pad=False),
    # adaptive pooling
    "adaptive_avg_pool2d_3x2": lambda x: F.adaptive_avg_pool2d(x[0], (3, 2)),
    "adaptive_avg_pool2d_1": lambda x: F.adaptive_avg_pool2d(x[0], 1),
    "adaptive_avg_pool2d_5x4": lambda x: F.adaptive_avg_pool2d(x[0], (5, 4)),
    "adaptive_avg_pool1d_3": lambda x: F.adaptive_avg_pool1d(x[0], 3),
    "adaptive_max_pool2d_3x2": lambda x: F.adaptive_max_pool2d(x[0], (3, 2)),
    "adaptive_max_pool2d_indices": lambda x: F.adaptive_max_pool2d(x[0], 3, return_indices=True),
    "adaptive_max_pool1d_3": lambda x: F.adaptive_max_pool1d(x[0], 3),
    # interpolate
    "nearest_size7x9": lambda x: F.interpolate(x[0], size=(7, 9)),
    "nearest_size3x2": lambda x: F.interpolate(x[0], size=(3, 2)),
    "nearest_size6": lambda x: F.interpolate(x[0], size=6),
    "nearest_scale2": lambda x: F.interpolate(x[0], scale_factor=2),
    "nearest_scale1p5": lambda x: F.interpolate(x[0], scale_factor=1.5),
    "nearest_scale1p7x0p6": lambda x: F.interpolate(x[0], scale_factor=(1.7, 0.6)),
    "nearest_1d_size7": lambda x: F.interpolate(x[0], size=7),
    "bilinear_size7x9": lambda x: F.interpolate(x[0], size=(7, 9), mode="bilinear",
                                                align_corners=False),
    "bilinear_size7x9_ac": lambda x: F.interpolate(x[0], size=(7, 9), mode="bilinear",
                                                   align_corners=True),
    "bilinear_size3x2": lambda x: F.interpolate(x[0], size=(3, 2), mode="bilinear",
                                                align_corners=False),
    "bilinear_size3x1_ac": lambda x: F.interpolate(x[0], size=(3, 1), mode="bilinear",
                                                   align_corners=True),
    "bilinear_scale2": lambda x: F.interpolate(x[0], scale_factor=2, mode="bilinear",
                                               align_corners=False),
    "bilinear_scale2_ac": lambda x: F.interpolate(x[0], scale_factor=2, mode="bilinear",
                                                  align_corners=True),
    "bilinear_scale1p7x0p6": lambda x: F.interpolate(x[0], scale_factor=(1.7, 0.6),
                                                     mode="bilinear", align_corners=False),
    "bilinear_t": lambda x: F.interpolate(x[0].transpose(2, 3), size=(4, 6), mode="bilinear",
                                          align_corners=False),
    # refused inputs (ERRORS)
    "nearest_align": lambda x: F.interpolate(x[0], size=(4, 4), align_corners=True),
    "nearest_nosize": lambda x: F.interpolate(x[0]),
    "bilinear_3d": lambda x: F.interpolate(x[0], size=4, mode="bilinear", align_corners=False),
    "max_pool2d_k2p2": lambda x: F.max_pool2d(x[0], 2, 2, 2),
    "max_pool2d_k7": lambda x: F.max_pool2d(x[0], 7),
    "max_pool2d_k0": lambda x: F.max_pool2d(x[0], 0),
    "avg_pool2d_div0": lambda x: F.avg_pool2d(x[0], 2, divisor_override=0),
    "adaptive_max_pool2d_2": lambda x: F.adaptive_max_pool2d(x[0], 2),
}


def cases():
    c = []
    add = lambda name, op, *inputs: c.append((name, op, list(inputs)))
    img = lambda *s: distinct(s)
    add("max_k2", "max_pool2d_k2", img(2, 3, 6, 6))
    add("max_k2_odd", "max_pool2d_k2", img(2, 2, 5, 7))
    add("max_k2_batch1", "max_pool2d_k2", img(1, 3, 4, 4))
    add("max_k2_unbatched", "max_pool2d_k2", img(3, 5, 4))
    add("max_k3s2p1", "max_pool2d_k3s2p1", img(2, 2, 7, 6))
    add("max_k3s1p1d2", "max_pool2d_k3s1p1d2", img(2, 2, 6, 7))
    add("max_k2x3s1x2p1", "max_pool2d_k2x3s1x2p1", img(2, 2, 5, 7))
    add("max_k3s2_ceil", "max_pool2d_k3s2_ceil", img(2, 2, 6, 6))
    add("max_k2s2p1_ceil", "max_pool2d_k2s2p1_ceil", img(2, 2, 5, 5))
    add("max_k3s2d2_ceil", "max_pool2d_k3s2d2_ceil", img(1, 2, 8, 7))
    add("max_indices", "max_pool2d_indices", img(2, 2, 6, 5))
    add("max_indices_unbatched", "max_pool2d_indices", img(2, 5, 6))
    add("max_t", "max_pool2d_t", img(2, 2, 4, 5))
    add("max1d", "max_pool1d_k3s2p1", img(2, 3, 7))
    add("max1d_unbatched", "max_pool1d_k3s2p1", img(3, 6))
    add("max1d_indices", "max_pool1d_indices", img(2, 2, 6))
    add("avg_k2", "avg_pool2d_k2", normal((2, 3, 6, 6)))
    add("avg_k2_odd", "avg_pool2d_k2", normal((1, 2, 5, 7)))
    add("avg_k2_unbatched", "avg_pool2d_k2", normal((2, 4, 5)))
    add("avg_k3s2p1", "avg_pool2d_k3s2p1", normal((2, 2, 7, 6)))
    add("avg_k3s2p1_nopad", "avg_pool2d_k3s2p1_nopad", normal((2, 2, 7, 6)))
    add("avg_k3s2p1_ceil", "avg_pool2d_k3s2p1_ceil", normal((2, 2, 6, 6)))
    add("avg_k3s2p1_ceil_nopad", "avg_pool2d_k3s2p1_ceil_nopad", normal((2, 2, 6, 8)))
    add("avg_div3", "avg_pool2d_div3", normal((2, 2, 4, 5)))
    add("avg_k2x3s2x1p1x0", "avg_pool2d_k2x3s2x1p1x0", normal((2, 2, 5, 6)))
    add("avg_perm", "avg_pool2d_perm", normal((2, 4, 5, 3)))
    add("avg1d", "avg_pool1d_k3s2p1", normal((2, 3, 7)))
    add("avg1d_ceil_nopad", "avg_pool1d_ceil_nopad", normal((2, 2, 6)))
    add("avg1d_unbatched", "avg_pool1d_k3s2p1", normal((3, 6)))
    add("aavg_3x2", "adaptive_avg_pool2d_3x2", normal((2, 3, 7, 5)))
    add("aavg_3x2_unbatched", "adaptive_avg_pool2d_3x2", normal((2, 4, 4)))
    add("aavg_1", "adaptive_avg_pool2d_1", normal((2, 3, 5, 6)))
    add("aavg_5x4", "adaptive_avg_pool2d_5x4", normal((1, 2, 3, 3)))
    add("aavg1d_3", "adaptive_avg_pool1d_3", normal((2, 2, 7)))
    add("amax_3x2", "adaptive_max_pool2d_3x2", img(2, 2, 7, 5))
    add("amax_3x2_unbatched", "adaptive_max_pool2d_3x2", img(2, 5, 5))
    add("amax_indices", "adaptive_max_pool2d_indices", img(2, 2, 5, 7))
    add("amax1d_3", "adaptive_max_pool1d_3", img(2, 2, 8))
    add("nearest_size7x9", "nearest_size7x9", normal((2, 2, 5, 5)))
    add("nearest_size3x2", "nearest_size3x2", normal((2, 2, 5, 5)))
    add("nearest_size6", "nearest_size6", normal((1, 2, 4, 3)))
    add("nearest_scale2", "nearest_scale2", normal((2, 2, 3, 4)))
    add("nearest_scale1p5", "nearest_scale1p5", normal((2, 2, 5, 6)))
    add("nearest_scale1p7x0p6", "nearest_scale1p7x0p6", normal((1, 2, 6, 10)))
    add("nearest_1d", "nearest_1d_size7", normal((2, 3, 5)))
    add("nearest_unbatched_scale2", "nearest_scale2", normal((3, 2, 3)))
    add("bilinear_size7x9", "bilinear_size7x9", normal((2, 2, 4, 5)))
    add("bilinear_size7x9_ac", "bilinear_size7x9_ac", normal((2, 2, 4, 5)))
    add("bilinear_size3x2", "bilinear_size3x2", normal((2, 2, 6, 5)))
    add("bilinear_size3x1_ac", "bilinear_size3x1_ac", normal((1, 2, 6, 5)))
    add("bilinear_scale2", "bilinear_scale2", normal((2, 2, 3, 4)))
    add("bilinear_scale2_ac", "bilinear_scale2_ac", normal((2, 2, 3, 4)))
    add("bilinear_scale1p7x0p6", "bilinear_scale1p7x0p6", normal((1, 2, 6, 10)))
    add("bilinear_t", "bilinear_t", normal((2, 2, 5, 3)))
    return c


ERRORS = [
    ("err_max_pad", "max_pool2d_k2p2", [normal((1, 1, 5, 5))]),
    ("err_max_too_small", "max_pool2d_k7", [normal((1, 1, 5, 5))]),
    ("err_max_kernel0", "max_pool2d_k0", [normal((1, 1, 5, 5))]),
    ("err_max_2d", "max_pool2d_k2", [normal((5, 5))]),
    ("err_max_int64", "max_pool2d_k2", [index([[[[1, 2], [3, 4]]]])]),
    ("err_max1d_4d", "max_pool1d_k3s2p1", [normal((1, 1, 5, 5))]),
    ("err_avg_div0", "avg_pool2d_div0", [normal((1, 1, 4, 4))]),
    ("err_amax_int64", "adaptive_max_pool2d_2", [index([[[[1, 2], [3, 4]]]])]),
    ("err_nearest_align", "nearest_align", [normal((1, 1, 3, 3))]),
    ("err_nearest_nosize", "nearest_nosize", [normal((1, 1, 3, 3))]),
    ("err_bilinear_3d", "bilinear_3d", [normal((1, 2, 3))]),
    ("err_nearest_int64", "nearest_size6", [index([[[[1, 2], [3, 4]]]])]),
]
