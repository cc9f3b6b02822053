#!/usr/bin/python3
"""PyTorch reference values for soma's int8, int32, bfloat16 and float16 dtypes.

Run:   /usr/bin/python3 tests/reference/dtypes_lowp.py
Writes tests/reference/dtypes_lowp_reference.txt, read by tests/core/dtypes_lowp_test.cpp
(parser: tests/reference/reference_file.h). Deterministic (fixed values, seeded generators).

Same line format as ops_reference.txt (see make_reference.py), with every soma dtype allowed
(float32 float64 int64 bool uint8 int8 int32 bfloat16 float16; bool as 0/1, floats as %.9g or
repr, which round-trip exactly, integers as decimal):

    case <name> <op> <dtype of out 0>
    in  <k> <dtype> <ndim> <dims...> <values...>
    out 0   <dtype> <ndim> <dims...> <values...>
    end

Sections:
  * cast_<from>_<to> (op "cast"): x.to(<to>) for every ordered pair of the nine dtypes. The
    inputs cover 0, -0, +-inf, NaN, float16 and bfloat16 subnormals, halfway values of both
    (ties to even), float16 overflow, and float64 values whose rounding through float32
    differs from a direct rounding (torch converts a double through float, as soma does).
    Floating -> integer casts only use values whose truncation the target holds (C++ leaves
    the others undefined and torch's result is platform-defined); integer -> integer casts
    wrap (300 -> int8 44), which torch and C++20 define.
  * cast_oob_<from>_<to> (op "cast_oob"): floating values outside the integer target's range,
    written here with soma's documented result (src/core/convert.h: x86-64's cvttss2si rule)
    only where torch on this machine gives the same; the script prints how many it dropped.
  * <op>_<dtype> (ops add, sub, mul, div, div_floor, remainder, maximum, minimum, eq, lt, neg,
    abs, sum, mean, add_alpha_0p5, mul_scalar_2p5): arithmetic on the new dtypes, with int8 and
    int32 overflow (wraps) and bfloat16/float16 results that need rounding (torch computes in
    float and rounds once per op).
  * <op>_<a>_<b> mixed-dtype binary ops (result dtype by promotion).
"""

import math
import os
import struct

import torch

DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "int64": torch.int64,
    "bool": torch.bool, "uint8": torch.uint8, "int8": torch.int8, "int32": torch.int32,
    "bfloat16": torch.bfloat16, "float16": torch.float16,
}
NAMES = {v: k for k, v in DTYPES.items()}
FLOATING = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
INT_RANGE = {
    torch.uint8: (0, 255), torch.int8: (-128, 127), torch.int32: (-2**31, 2**31 - 1),
    torch.int64: (-2**63, 2**63 - 1),
}


def fmt_values(t):
    flat = t.detach().contiguous().reshape(-1).tolist()
    if t.dtype == torch.float64:
        return [repr(float(v)) for v in flat]
    if t.dtype in (torch.float32, torch.bfloat16, torch.float16):
        return ["%.9g" % v for v in flat]
    return [str(int(v)) for v in flat]


def line(role, k, t):
    return " ".join([role, str(k), NAMES[t.dtype], str(t.dim())] + [str(d) for d in t.shape] +
                    fmt_values(t))


def f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


# ---- inputs per source dtype -----------------------------------------------------------------
FLOAT_VALUES = [
    0.0, -0.0, 1.0, -1.5, 2.5, -2.5, 0.1, 100.7, -100.7, 127.9, -128.9, 255.5, 1e-3,
    float("inf"), float("-inf"), float("nan"),
    # bfloat16 ties (1 + 2^-8 is halfway between 1 and 1 + 2^-7: to even, 1; 1 + 3 2^-8: up)
    1 + 2**-8, 1 + 3 * 2**-8, -(1 + 3 * 2**-8), 1 + 2**-8 + 2**-20,
    # float16 ties and its subnormals (min 2^-24; 2^-25 ties to 0; 3 2^-25 ties to 2^-23)
    1 + 2**-11, 1 + 3 * 2**-11, 2**-24, 2**-25, 3 * 2**-25, 2**-14, 2**-14 - 2**-24, 5.96e-8,
    6.1e-5, -3e-6,
    # float16 overflow: 65504 is the largest; 65519.99 rounds to it, 65520 ties to inf
    65504.0, 65519.99, 65520.0, -70000.0, 1e5,
    # bfloat16 range: float32's; bfloat16 subnormals
    3.0e38, -3.3e38, 1e-39, 9.2e-41,
    # integers beyond float32's 24 bits
    16777217.0, 2147483520.0, -2147483648.0,
]
# float64 only: 1 + 2^-8 + 2^-30 rounds to 1 + 2^-8 in float32 (a tie), then to 1 in bfloat16
# (a direct rounding would give 1 + 2^-7); 1 + 2^-11 + 2^-40 likewise for float16.
FLOAT64_EXTRA = [1 + 2**-8 + 2**-30, 1 + 2**-11 + 2**-40, 1e300, -1e-300]
INT_VALUES = {
    torch.bool: [True, False, True],
    torch.uint8: [0, 1, 127, 128, 200, 255],
    torch.int8: [0, 1, -1, 127, -128, 100, -100],
    torch.int32: [0, 1, -1, 127, 128, -129, 255, 256, 300, -300, 2**31 - 1, -2**31, 16777217,
                  65504, 65520, 2049, 257],
    torch.int64: [0, 1, -1, 127, 128, -129, 255, 256, 300, -300, 2**31 - 1, 2**31, -2**31 - 1,
                  16777217, 65519, 65520, 2049, 257, 2**40 + 1, -(2**52) - 3],
}


def source(dt):
    if dt in INT_VALUES:
        return torch.tensor(INT_VALUES[dt], dtype=dt)
    vals = FLOAT_VALUES + (FLOAT64_EXTRA if dt == torch.float64 else [])
    # a bfloat16/float16 source holds the float values rounded (its own specials included)
    return torch.tensor(vals, dtype=torch.float64).to(dt)


def in_range(v, dt):
    lo, hi = INT_RANGE[dt]
    return math.isfinite(v) and lo <= math.trunc(v) <= hi


def cvtt(v, dt):
    """soma's documented out-of-range float -> integer result (src/core/convert.h)."""
    if dt == torch.int64:
        if not (math.isfinite(v) and -2**63 <= math.trunc(v) < 2**63):
            return -2**63
        return math.trunc(v)
    i = math.trunc(v) if math.isfinite(v) and -2**31 <= math.trunc(v) < 2**31 else -2**31
    bits = {torch.uint8: 8, torch.int8: 8, torch.int32: 32}[dt]
    i &= (1 << bits) - 1
    if dt != torch.uint8 and i >= 1 << (bits - 1):
        i -= 1 << bits
    return i


def cast_cases(lines):
    count = dropped = kept_oob = 0
    for sname, sdt in DTYPES.items():
        x = source(sdt)
        for dname, ddt in DTYPES.items():
            xin = x
            if sdt in FLOATING and ddt in INT_RANGE:
                vals = x.double().tolist()
                keep = [i for i, v in enumerate(vals) if in_range(v, ddt)]
                oob = [i for i, v in enumerate(vals) if not in_range(v, ddt)]
                xin = x[keep]
                if oob:
                    xo = x[oob]
                    got = xo.to(ddt).tolist()
                    want = [cvtt(v, ddt) for v in xo.double().tolist()]
                    agree = [i for i in range(len(got)) if got[i] == want[i]]
                    dropped += len(got) - len(agree)
                    if agree:
                        xa = xo[agree]
                        lines += [f"case cast_oob_{sname}_{dname} cast_oob {dname}", line("in", 0, xa),
                                  line("out", 0, xa.to(ddt)), "end"]
                        kept_oob += len(agree)
                        count += 1
            lines += [f"case cast_{sname}_{dname} cast {dname}", line("in", 0, xin),
                      line("out", 0, xin.to(ddt)), "end"]
            count += 1
    print(f"cast: {count} cases; out-of-range float->int values: {kept_oob} kept (torch agrees "
          f"with soma's rule), {dropped} dropped (torch differs on this machine)")
    return count


# ---- arithmetic ------------------------------------------------------------------------------
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "div_floor": lambda a, b: torch.div(a, b, rounding_mode="floor"),
    "remainder": lambda a, b: torch.remainder(a, b),
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "eq": torch.eq,
    "lt": torch.lt,
    "add_alpha_0p5": lambda a, b: torch.add(a, b, alpha=0.5),
}
UNARY = {
    "neg": lambda a: -a,
    "abs": torch.abs,
    "sum": torch.sum,
    "mul_scalar_2p5": lambda a: a * 2.5,
    "add_scalar_3": lambda a: a + 3,
}
FLOAT_ONLY = {"mean": torch.mean}
INT_ONLY = {"add_alpha_0p5"}  # (float alpha is an error for integer tensors: skipped there)


def operands(dt):
    g = torch.Generator().manual_seed(1234 + list(DTYPES).index(NAMES[dt]))
    if dt == torch.int8:
        a = torch.tensor([100, -100, 127, -128, 7, -7, 50, 0, 3, -3, 64, -64], dtype=dt)
        b = torch.tensor([100, -100, 1, 2, 2, 2, 3, 5, -2, -2, 2, 3], dtype=dt)  # no INT_MIN / -1
    elif dt == torch.int32:
        a = torch.tensor([2**31 - 1, -2**31, 65536, -65536, 7, -7, 123456789, 0, 3, -3, 2**30,
                          -5], dtype=dt)
        b = torch.tensor([1, 3, 65536, 65536, 2, 2, 3, 5, -2, -2, 4, 3], dtype=dt)
    else:
        # random values of mixed magnitudes (rounding matters), then specials
        a = (torch.randn(24, generator=g, dtype=torch.float64) *
             torch.tensor([1.0, 10.0, 1000.0, 0.01] * 6, dtype=torch.float64))
        b = (torch.randn(24, generator=g, dtype=torch.float64) *
             torch.tensor([3.0, 0.1, 100.0, 1e-3] * 6, dtype=torch.float64))
        special_a = [float("inf"), float("nan"), 0.0, -0.0, 1.0, 60000.0, 3e-5, 2.0]
        special_b = [float("inf"), 1.0, -0.0, 0.0, 0.0, 60000.0, 3e-5, -3.0]
        a = torch.cat([a, torch.tensor(special_a, dtype=torch.float64)]).to(dt)
        b = torch.cat([b, torch.tensor(special_b, dtype=torch.float64)]).to(dt)
    return a, b


def arith_cases(lines):
    count = 0
    for dt in (torch.int8, torch.int32, torch.bfloat16, torch.float16):
        a, b = operands(dt)
        n = NAMES[dt]
        for op, fn in BINARY.items():
            if op in INT_ONLY and dt not in FLOATING:
                continue
            out = fn(a, b)
            lines += [f"case {op}_{n} {op} {NAMES[out.dtype]}", line("in", 0, a), line("in", 1, b),
                      line("out", 0, out), "end"]
            count += 1
        unary = dict(UNARY, **(FLOAT_ONLY if dt in FLOATING else {}))
        for op, fn in unary.items():
            out = fn(a)
            lines += [f"case {op}_{n} {op} {NAMES[out.dtype]}", line("in", 0, a),
                      line("out", 0, out), "end"]
            count += 1
    # mixed dtypes: promotion plus conversion of each side
    mixed = [(torch.int8, torch.int32), (torch.uint8, torch.int32), (torch.int8, torch.int64),
             (torch.int32, torch.bfloat16), (torch.int8, torch.float16),
             (torch.bfloat16, torch.float16), (torch.bfloat16, torch.float32),
             (torch.float16, torch.float64), (torch.bool, torch.bfloat16)]
    for da, db in mixed:
        a = torch.tensor([1, 0, 7, 100, 3, 1, 5, 9], dtype=torch.int64)
        b = torch.tensor([3, 2, 1, 5, 7, 1, 9, 2], dtype=torch.int64)
        if da in FLOATING:
            a = a.double() * 1.0078125 + 0.3
        if db in FLOATING:
            b = b.double() * 0.99 - 0.1
        a, b = a.to(da), b.to(db)
        for op in ("add", "mul", "div", "lt"):
            out = BINARY[op](a, b)
            lines += [f"case {op}_{NAMES[da]}_{NAMES[db]} {op} {NAMES[out.dtype]}",
                      line("in", 0, a), line("in", 1, b), line("out", 0, out), "end"]
            count += 1
    print(f"arithmetic: {count} cases")
    return count


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "dtypes_lowp_reference.txt")
    lines = [f"# soma reference values for int8/int32/bfloat16/float16, generated by "
             f"tests/reference/dtypes_lowp.py with PyTorch {torch.__version__.split('+')[0]}.",
             "# Do not edit by hand; re-run the script. Format: see the script's docstring."]
    n = cast_cases(lines) + arith_cases(lines)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {n} cases to {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
