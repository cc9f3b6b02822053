"""Convolutions (conv1d, conv2d, conv_transpose1d/2d, padding modes through F.pad) for
make_toolkit_reference.py: tests/reference/toolkit_conv_reference.txt."""

import torch.nn.functional as F

from make_reference import normal

OPS = {
    "conv2d": lambda x: F.conv2d(x[0], x[1], x[2]),
    "conv2d_nobias": lambda x: F.conv2d(x[0], x[1]),
    "conv2d_s2_p1": lambda x: F.conv2d(x[0], x[1], x[2], stride=2, padding=1),
    "conv2d_s12_p21": lambda x: F.conv2d(x[0], x[1], x[2], stride=(1, 2), padding=(2, 1)),
    "conv2d_s23_p10": lambda x: F.conv2d(x[0], x[1], x[2], stride=(2, 3), padding=(1, 0)),
    "conv2d_d2_p1": lambda x: F.conv2d(x[0], x[1], x[2], padding=1, dilation=2),
    "conv2d_d12_s2": lambda x: F.conv2d(x[0], x[1], x[2], stride=2, dilation=(1, 2)),
    "conv2d_g2": lambda x: F.conv2d(x[0], x[1], x[2], groups=2),
    "conv2d_g2_p1": lambda x: F.conv2d(x[0], x[1], x[2], padding=1, groups=2),
    "conv2d_g3_p1": lambda x: F.conv2d(x[0], x[1], x[2], padding=1, groups=3),
    "conv2d_g2_s2": lambda x: F.conv2d(x[0], x[1], x[2], stride=2, groups=2),
    "conv2d_p1": lambda x: F.conv2d(x[0], x[1], x[2], padding=1),
    "conv2d_same": lambda x: F.conv2d(x[0], x[1], x[2], padding="same"),
    "conv2d_same_d2": lambda x: F.conv2d(x[0], x[1], x[2], padding="same", dilation=2),
    "conv2d_valid": lambda x: F.conv2d(x[0], x[1], x[2], padding="valid"),
    "conv2d_permuted": lambda x: F.conv2d(x[0].permute(0, 3, 1, 2), x[1], x[2], padding=1),
    "conv2d_transposed_hw": lambda x: F.conv2d(x[0].transpose(2, 3), x[1], x[2], stride=2),
    "conv2d_reflect": lambda x: F.conv2d(F.pad(x[0], (1, 1, 2, 1), mode="reflect"), x[1], x[2]),
    "conv2d_replicate": lambda x: F.conv2d(F.pad(x[0], (1, 1, 1, 1), mode="replicate"), x[1], x[2]),
    "conv2d_circular": lambda x: F.conv2d(F.pad(x[0], (1, 1, 1, 1), mode="circular"), x[1], x[2]),
    "conv2d_stride0": lambda x: F.conv2d(x[0], x[1], stride=0),
    "conv2d_pad_neg": lambda x: F.conv2d(x[0], x[1], padding=-1),
    "conv2d_dil0": lambda x: F.conv2d(x[0], x[1], dilation=0),
    "conv2d_same_s2": lambda x: F.conv2d(x[0], x[1], stride=2, padding="same"),
    "conv1d": lambda x: F.conv1d(x[0], x[1], x[2]),
    "conv1d_s2_p1_d2": lambda x: F.conv1d(x[0], x[1], x[2], stride=2, padding=1, dilation=2),
    "conv1d_g2": lambda x: F.conv1d(x[0], x[1], x[2], groups=2),
    "conv1d_same": lambda x: F.conv1d(x[0], x[1], x[2], padding="same"),
    "conv1d_circular": lambda x: F.conv1d(F.pad(x[0], (2, 1), mode="circular"), x[1], x[2]),
    "conv_t2d": lambda x: F.conv_transpose2d(x[0], x[1], x[2]),
    "conv_t2d_s2_p1_op1": lambda x: F.conv_transpose2d(x[0], x[1], x[2], stride=2, padding=1,
                                                       output_padding=1),
    "conv_t2d_s21_op10": lambda x: F.conv_transpose2d(x[0], x[1], x[2], stride=(2, 1),
                                                      output_padding=(1, 0)),
    "conv_t2d_g2_d2": lambda x: F.conv_transpose2d(x[0], x[1], x[2], groups=2, dilation=2),
    "conv_t2d_d2_op1": lambda x: F.conv_transpose2d(x[0], x[1], x[2], output_padding=1,
                                                    dilation=2),
    "conv_t2d_op_big": lambda x: F.conv_transpose2d(x[0], x[1], output_padding=1),
    "conv_t1d_s2_op1": lambda x: F.conv_transpose1d(x[0], x[1], x[2], stride=2, output_padding=1),
    "conv_t1d_p1_g2": lambda x: F.conv_transpose1d(x[0], x[1], x[2], padding=1, groups=2),
    "pad_circular_1d": lambda x: F.pad(x[0], (1, 2), mode="circular"),
    "pad_circular_2d": lambda x: F.pad(x[0], (1, 2, 2, 0), mode="circular"),
    "pad_circular_crop": lambda x: F.pad(x[0], (-1, 2), mode="circular"),
    "pad_circular_3d": lambda x: F.pad(x[0], (1, 1, 0, 1, 1, 0), mode="circular"),
}


def cases():
    c = []
    add = lambda name, op, *inputs: c.append((name, op, list(inputs)))
    add("conv2d", "conv2d", normal((2, 3, 5, 5)), normal((4, 3, 3, 3)), normal((4,)))
    add("conv2d_batch1", "conv2d", normal((1, 2, 5, 4)), normal((3, 2, 2, 3)), normal((3,)))
    add("conv2d_unbatched", "conv2d", normal((3, 5, 5)), normal((2, 3, 3, 3)), normal((2,)))
    add("conv2d_1x1", "conv2d", normal((2, 3, 4, 4)), normal((5, 3, 1, 1)), normal((5,)))
    add("conv2d_1ch", "conv2d_p1", normal((2, 1, 6, 6)), normal((4, 1, 3, 3)), normal((4,)))
    add("conv2d_nobias", "conv2d_nobias", normal((2, 2, 5, 5)), normal((3, 2, 3, 3)))
    add("conv2d_s2_p1", "conv2d_s2_p1", normal((2, 3, 6, 5)), normal((4, 3, 3, 3)), normal((4,)))
    add("conv2d_s12_p21", "conv2d_s12_p21", normal((2, 2, 5, 6)), normal((3, 2, 3, 2)),
        normal((3,)))
    add("conv2d_odd", "conv2d_s23_p10", normal((2, 2, 7, 5)), normal((3, 2, 2, 3)), normal((3,)))
    add("conv2d_d2_p1", "conv2d_d2_p1", normal((1, 2, 7, 7)), normal((3, 2, 3, 3)), normal((3,)))
    add("conv2d_d12_s2", "conv2d_d12_s2", normal((2, 2, 6, 7)), normal((2, 2, 2, 3)),
        normal((2,)))
    add("conv2d_g2", "conv2d_g2", normal((2, 4, 5, 5)), normal((6, 2, 3, 3)), normal((6,)))
    add("conv2d_1x1_g2", "conv2d_g2", normal((2, 4, 3, 3)), normal((4, 2, 1, 1)), normal((4,)))
    add("conv2d_depthwise", "conv2d_g3_p1", normal((2, 3, 6, 6)), normal((3, 1, 3, 3)),
        normal((3,)))
    add("conv2d_depthwise_mult", "conv2d_g2_s2", normal((1, 2, 5, 5)), normal((4, 1, 3, 3)),
        normal((4,)))
    add("conv2d_depthwise_p1", "conv2d_g2_p1", normal((2, 2, 4, 5)), normal((2, 1, 2, 3)),
        normal((2,)))
    add("conv2d_same_odd", "conv2d_same", normal((2, 2, 5, 6)), normal((3, 2, 3, 3)), normal((3,)))
    add("conv2d_same_even", "conv2d_same", normal((2, 2, 5, 5)), normal((3, 2, 4, 2)),
        normal((3,)))
    add("conv2d_same_d2", "conv2d_same_d2", normal((1, 2, 6, 5)), normal((2, 2, 2, 3)),
        normal((2,)))
    add("conv2d_same_unbatched", "conv2d_same", normal((2, 4, 5)), normal((3, 2, 2, 2)),
        normal((3,)))
    add("conv2d_valid", "conv2d_valid", normal((2, 2, 5, 4)), normal((3, 2, 3, 3)), normal((3,)))
    add("conv2d_permuted", "conv2d_permuted", normal((2, 5, 4, 3)), normal((2, 3, 3, 3)),
        normal((2,)))
    add("conv2d_transposed_hw", "conv2d_transposed_hw", normal((2, 2, 6, 5)),
        normal((3, 2, 3, 3)), normal((3,)))
    add("conv2d_reflect", "conv2d_reflect", normal((2, 2, 4, 5)), normal((3, 2, 3, 3)),
        normal((3,)))
    add("conv2d_replicate", "conv2d_replicate", normal((2, 2, 4, 4)), normal((2, 2, 3, 3)),
        normal((2,)))
    add("conv2d_circular", "conv2d_circular", normal((2, 2, 4, 5)), normal((2, 2, 3, 3)),
        normal((2,)))
    add("conv1d", "conv1d", normal((2, 3, 7)), normal((4, 3, 3)), normal((4,)))
    add("conv1d_unbatched", "conv1d", normal((3, 6)), normal((2, 3, 2)), normal((2,)))
    add("conv1d_s2_p1_d2", "conv1d_s2_p1_d2", normal((2, 2, 9)), normal((3, 2, 3)), normal((3,)))
    add("conv1d_g2", "conv1d_g2", normal((2, 4, 6)), normal((4, 2, 3)), normal((4,)))
    add("conv1d_same", "conv1d_same", normal((2, 2, 7)), normal((3, 2, 4)), normal((3,)))
    add("conv1d_circular", "conv1d_circular", normal((2, 2, 6)), normal((3, 2, 3)),
        normal((3,)))
    add("conv_t2d", "conv_t2d", normal((2, 3, 4, 4)), normal((3, 2, 3, 3)), normal((2,)))
    add("conv_t2d_unbatched", "conv_t2d", normal((3, 3, 4)), normal((3, 2, 2, 3)), normal((2,)))
    add("conv_t2d_s2_p1_op1", "conv_t2d_s2_p1_op1", normal((2, 3, 3, 4)), normal((3, 2, 3, 3)),
        normal((2,)))
    add("conv_t2d_s21_op10", "conv_t2d_s21_op10", normal((1, 2, 3, 3)), normal((2, 3, 2, 3)),
        normal((3,)))
    add("conv_t2d_g2_d2", "conv_t2d_g2_d2", normal((2, 4, 3, 3)), normal((4, 1, 3, 3)),
        normal((2,)))
    add("conv_t2d_depthwise", "conv_t2d_g2_d2", normal((1, 2, 3, 4)), normal((2, 1, 2, 2)),
        normal((2,)))
    add("conv_t2d_d2_op1", "conv_t2d_d2_op1", normal((2, 2, 3, 3)), normal((2, 2, 2, 2)),
        normal((2,)))
    add("conv_t1d_s2_op1", "conv_t1d_s2_op1", normal((2, 3, 5)), normal((3, 2, 3)), normal((2,)))
    add("conv_t1d_p1_g2", "conv_t1d_p1_g2", normal((2, 4, 5)), normal((4, 3, 3)), normal((6,)))
    add("pad_circular_1d", "pad_circular_1d", normal((2, 3, 4)))
    add("pad_circular_2d", "pad_circular_2d", normal((1, 2, 3, 4)))
    add("pad_circular_crop", "pad_circular_crop", normal((1, 2, 3)))
    add("pad_circular_3d", "pad_circular_3d", normal((1, 1, 2, 3, 2)))
    return c


ERRORS = [
    ("conv2d_channels", "conv2d", [normal((2, 3, 5, 5)), normal((4, 4, 3, 3)), normal((4,))]),
    ("conv2d_3d_mnist", "conv2d", [normal((4, 5, 5)), normal((2, 1, 3, 3)), normal((2,))]),
    ("conv2d_groups_out", "conv2d_g2", [normal((2, 4, 5, 5)), normal((3, 2, 3, 3)),
                                        normal((3,))]),
    ("conv2d_groups_in", "conv2d_g2", [normal((2, 3, 5, 5)), normal((4, 2, 3, 3)), normal((4,))]),
    ("conv2d_kernel_big", "conv2d", [normal((1, 1, 3, 3)), normal((1, 1, 5, 5)), normal((1,))]),
    ("conv2d_kernel_big_dil", "conv2d_d2_p1", [normal((1, 1, 2, 2)), normal((1, 1, 3, 3)),
                                               normal((1,))]),
    ("conv2d_weight_3d", "conv2d", [normal((2, 3, 5, 5)), normal((4, 3, 3)), normal((4,))]),
    ("conv2d_input_2d", "conv2d", [normal((5, 5)), normal((4, 3, 3, 3)), normal((4,))]),
    ("conv2d_bias_size", "conv2d", [normal((2, 3, 5, 5)), normal((4, 3, 3, 3)), normal((3,))]),
    ("conv2d_stride0", "conv2d_stride0", [normal((1, 1, 5, 5)), normal((1, 1, 3, 3))]),
    ("conv2d_pad_neg", "conv2d_pad_neg", [normal((1, 1, 5, 5)), normal((1, 1, 3, 3))]),
    ("conv2d_dil0", "conv2d_dil0", [normal((1, 1, 5, 5)), normal((1, 1, 3, 3))]),
    ("conv2d_same_s2", "conv2d_same_s2", [normal((1, 1, 5, 5)), normal((1, 1, 3, 3))]),
    ("conv1d_channels", "conv1d", [normal((2, 3, 7)), normal((4, 2, 3)), normal((4,))]),
    ("conv1d_kernel_big", "conv1d", [normal((2, 3, 2)), normal((4, 3, 3)), normal((4,))]),
    ("conv_t2d_channels", "conv_t2d", [normal((2, 2, 4, 4)), normal((3, 2, 3, 3)),
                                       normal((2,))]),
    ("conv_t2d_op_big", "conv_t2d_op_big", [normal((1, 2, 3, 3)), normal((2, 2, 3, 3))]),
    ("pad_circular_wrap", "pad_circular_1d", [normal((1, 2, 1))]),
    ("pad_circular_2d_input", "pad_circular_1d", [normal((3, 4))]),
]
