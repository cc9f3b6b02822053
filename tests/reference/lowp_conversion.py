#!/usr/bin/python3
"""Reference bit patterns from PyTorch for soma's low-precision conversions and quantisation
(src/kernels/cpu/lowp.h), read by tests/kernels/lowp_test.cpp.

Run:   /usr/bin/python3 tests/reference/lowp_conversion.py
Writes tests/reference/lowp_conversion_reference.txt (deterministic: fixed inputs plus draws
from a seeded torch.Generator). One case per line, all numbers hexadecimal bit patterns except
the zero point and the quantised value:
    bf16    <float32 bits> <bfloat16 bits>      x.to(torch.bfloat16)
    f16     <float32 bits> <float16 bits>       x.to(torch.float16)
    bf16f32 <bfloat16 bits> <float32 bits>      x.to(torch.float32)
    f16f32  <float16 bits> <float32 bits>       x.to(torch.float32)
    quant   <scale bits> <zero point> <float32 bits> <uint8>
                                                torch.quantize_per_tensor(x, scale, zp, quint8)
NaN inputs are listed (torch's NaN bit patterns differ between its scalar and vector paths, so
the test checks only that a NaN stays a NaN). Quantisation covers inputs whose product with the
inverse scale is below 2^63: torch turns a larger or infinite product (from +-inf, 1e30 / 0.1)
into 0 through an out-of-range float-to-int64 conversion, which soma does not copy
(+inf saturates to 255 and -inf to 0, as +-1e10 do).
"""

import os
import struct

import torch


def bits32(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f32_from_bits(b):
    return torch.tensor([struct.unpack("<i", struct.pack("<I", b))[0]], dtype=torch.int32).view(
        torch.float32)


def as_float32_tensor(bit_list):
    ints = [struct.unpack("<i", struct.pack("<I", b))[0] for b in bit_list]
    return torch.tensor(ints, dtype=torch.int32).view(torch.float32)


def half_value(h):
    return torch.tensor([h - (1 << 16) if h >= 1 << 15 else h],
                        dtype=torch.int16).view(torch.float16).double().item()


def u16(t):
    return [v & 0xFFFF for v in t.view(torch.int16).tolist()]


def u32(t):
    return [v & 0xFFFFFFFF for v in t.view(torch.int32).tolist()]


def float_inputs(gen):
    b = set()
    specials = [
        0x00000000, 0x80000000,  # +-0
        0x7F800000, 0xFF800000,  # +-inf
        0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFBFFFFF, 0x7FA00000,  # NaNs (quiet, signalling)
        0x7F7FFFFF, 0xFF7FFFFF,  # +-max normal
        0x00800000, 0x80800000,  # +-min normal
        0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x00400000,  # subnormals
        0x3F800000, 0xBF800000, 0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001,  # bf16 ties
        0x7F7F8000, 0x7F7F7FFF, 0x7F7FC000,  # bf16 overflow to inf (tie at max rounds up)
        0x00018000, 0x00008000, 0x00010000,  # subnormal bf16 ties
    ]
    b.update(specials)
    # float16 landmarks: max 65504, the tie 65520 (-> inf), just below it, 65536; min normal
    # 2^-14, largest subnormal, min subnormal 2^-24, the tie 2^-25 (-> 0), just above it,
    # 1.5 * 2^-24 (tie -> 2 * 2^-24), 2.5 * 2^-24 (tie -> 2 * 2^-24)
    for v in [65504.0, 65520.0, 65519.996, 65536.0, 1e5, 2.0**-14, 2.0**-14 - 2.0**-24,
              2.0**-24, 2.0**-25, 1.5 * 2.0**-24, 2.5 * 2.0**-24, 3.5 * 2.0**-24, 1e-10,
              1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 1.0 + 2.0**-11 + 2.0**-20, 2049.0, 2051.0,
              4097.0, 0.1, 1.0 / 3.0]:
        for s in (1.0, -1.0):
            x = bits32(s * v)
            b.update([x, x + 1, x - 1] if (x & 0x7FFFFFFF) != 0 else [x])
    # exact bfloat16 ties and their neighbours, random bf16 values across the exponent range
    for _ in range(300):
        hi = int(torch.randint(0, 1 << 16, (1,), generator=gen))
        base = hi << 16
        if (base & 0x7F800000) == 0x7F800000:
            continue
        b.update([base | 0x8000, (base | 0x8000) + 1, (base | 0x8000) - 1, base | 0x1234])
    # float16 ties: halfway between consecutive halves (normal and subnormal), and neighbours
    for _ in range(300):
        h = int(torch.randint(0, 0x7BFF, (1,), generator=gen)) | (
            0x8000 if int(torch.randint(0, 2, (1,), generator=gen)) else 0)
        lo = half_value(h)
        nxt = half_value(h + 1)
        mid = (lo + nxt) / 2
        x = bits32(mid)
        b.update([x, x + 1, x - 1])
    # random float32 bit patterns (any exponent)
    for _ in range(400):
        b.add(int(torch.randint(0, 1 << 31, (1,), generator=gen)) * 2 +
              int(torch.randint(0, 2, (1,), generator=gen)))
    return sorted(b)


def half_inputs(gen):
    h = set([0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7D00, 0x7BFF, 0xFBFF,
             0x0400, 0x8400, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x3C00, 0x3555])
    for _ in range(600):
        h.add(int(torch.randint(0, 1 << 16, (1,), generator=gen)))
    return sorted(h)


def quant_cases(gen):
    cases = []
    for scale in [0.1, 0.3, 0.07, 1.0 / 3.0, 0.0123, 0.77, 2.0, 1e-3]:
        s32 = struct.unpack("<f", struct.pack("<f", scale))[0]  # a float32 value
        st = torch.tensor(s32, dtype=torch.float32)
        for zp in [0, 3, 128, 200, 255]:
            j = torch.arange(-140, 140, 7, dtype=torch.float32)
            ties = (j + 0.5) * st
            xs = torch.cat([
                ties,
                torch.nextafter(ties, torch.tensor(float("inf"))),
                torch.nextafter(ties, torch.tensor(float("-inf"))),
                j * st,
                torch.randn(40, generator=gen) * 100 * st,
                torch.tensor([0.0, -0.0, 1e10, -1e10, 1e15, -1e15]),
            ])
            q = torch.quantize_per_tensor(xs, s32, zp, torch.quint8).int_repr()
            for x, v in zip(u32(xs), q.tolist()):
                cases.append((bits32(s32), zp, x, v))
    return cases


def main():
    gen = torch.Generator().manual_seed(20261203)
    lines = [
        "# soma low-precision conversion and quantisation reference, generated by",
        "# tests/reference/lowp_conversion.py with PyTorch %s. Do not edit by hand." % torch.__version__,
    ]
    xs_bits = float_inputs(gen)
    xs = as_float32_tensor(xs_bits)
    # A vector of many elements (torch's vectorised conversion) and one at a time (its scalar
    # path) must agree except for NaN's bit pattern.
    bf = u16(xs.to(torch.bfloat16))
    hf = u16(xs.to(torch.float16))
    for i, x in enumerate(xs_bits):
        one = f32_from_bits(x)
        nan = one.isnan().item()
        assert nan or u16(one.to(torch.bfloat16))[0] == bf[i], hex(x)
        assert nan or u16(one.to(torch.float16))[0] == hf[i], hex(x)
        lines.append("bf16 %08x %04x" % (x, bf[i]))
        lines.append("f16 %08x %04x" % (x, hf[i]))
    for b16 in sorted(set(bf) | {0x0001, 0x8001, 0x007F, 0x7F7F, 0xFF80, 0x7FC0, 0xFFFF}):
        t = torch.tensor([b16 - (1 << 16) if b16 >= 1 << 15 else b16], dtype=torch.int16)
        lines.append("bf16f32 %04x %08x" % (b16, u32(t.view(torch.bfloat16).float())[0]))
    for h in half_inputs(gen):
        t = torch.tensor([h - (1 << 16) if h >= 1 << 15 else h], dtype=torch.int16)
        lines.append("f16f32 %04x %08x" % (h, u32(t.view(torch.float16).float())[0]))
    for s, zp, x, v in quant_cases(gen):
        lines.append("quant %08x %d %08x %d" % (s, zp, x, v))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lowp_conversion_reference.txt")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s (%d lines)" % (out, len(lines)))


if __name__ == "__main__":
    main()
