"""Factories (linspace, eye, one_hot) for make_toolkit_reference.py:
tests/reference/toolkit_factory_reference.txt. Random ops cannot have goldens: they are tested
by statistics in tests/ops/toolkit_factory_test.cpp."""

import torch
import torch.nn.functional as F

from make_reference import index

OPS = {
    "linspace_m1_1_7_f64": lambda x: torch.linspace(-1, 1, 7, dtype=torch.float64),
    "linspace_5_m3_9_f64": lambda x: torch.linspace(5, -3, 9, dtype=torch.float64),
    "linspace_0_10_4_i64": lambda x: torch.linspace(0, 10, 4, dtype=torch.int64),
    "linspace_m5p5_5_6_i64": lambda x: torch.linspace(-5.5, 5, 6, dtype=torch.int64),
    "linspace_one": lambda x: torch.linspace(2.5, 7, 1),  # float32: exact values only
    "linspace_zero": lambda x: torch.linspace(0, 1, 0),
    "linspace_neg": lambda x: torch.linspace(0, 1, -1),
    "eye_3": lambda x: torch.eye(3),
    "eye_2x4_f64": lambda x: torch.eye(2, 4, dtype=torch.float64),
    "eye_4x2_i64": lambda x: torch.eye(4, 2, dtype=torch.int64),
    "eye_2x3_bool": lambda x: torch.eye(2, 3, dtype=torch.bool),
    "eye_0": lambda x: torch.eye(0),
    "eye_neg": lambda x: torch.eye(-1),
    "eye_neg_m": lambda x: torch.eye(2, -1),
    "one_hot": lambda x: F.one_hot(x[0]),
    "one_hot_5": lambda x: F.one_hot(x[0], 5),
    "one_hot_float": lambda x: F.one_hot(x[0].to(torch.float64), 3),
}


def cases():
    c = []
    add = lambda name, op, *inputs: c.append((name, op, list(inputs)))
    for op in ["linspace_m1_1_7_f64", "linspace_5_m3_9_f64", "linspace_0_10_4_i64", "linspace_m5p5_5_6_i64", "linspace_one",
               "linspace_zero", "eye_3", "eye_2x4_f64", "eye_4x2_i64", "eye_2x3_bool", "eye_0"]:
        add(op, op)
    add("one_hot_1d", "one_hot", index([0, 3, 1, 1]))
    add("one_hot_2d", "one_hot_5", index([[0, 4], [2, 1], [3, 3]]))
    add("one_hot_empty", "one_hot_5", index([]))
    return c


ERRORS = [
    ("linspace_neg", "linspace_neg", []),
    ("eye_neg", "eye_neg", []),
    ("eye_neg_m", "eye_neg_m", []),
    ("one_hot_negative", "one_hot", [index([0, -1])]),
    ("one_hot_too_big", "one_hot_5", [index([0, 5])]),
    ("one_hot_empty_infer", "one_hot", [index([])]),
    ("one_hot_float", "one_hot_float", [index([0, 1])]),
]
