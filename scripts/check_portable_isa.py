#!/usr/bin/python3
"""Checks that a portable build's libsoma (-DSOMA_NATIVE=OFF) runs on any x86-64: AVX, AVX2 and
AVX-512 instructions (VEX/EVEX encodings: `v...` and `k...` mnemonics, ymm/zmm/k registers)
occur only in the functions that src/kernels/cpu/lowp*.cpp and the vector-level kernels
(src/kernels/cpu/vector_isa.h: with_vector_isa's copies, pool.cpp's AVX-512 pooling) compile
with __attribute__((target(...))), which soma calls only where cpuid (capped by
SOMA_MAX_CPU_ISA) reports the ISA.

  scripts/check_portable_isa.py build-portable/libsoma.so

Prints each function that holds such instructions (how many, whether zmm) and exits 1 if one is
not a target-attributed function (its name, GCC's clone suffixes stripped, not among the
attributed names in the sources) or lies outside soma::kernels::lowp / soma::kernels::cpu.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The attribute macros of src/kernels/cpu/lowp*.cpp / lowp_int8_impl.h and vector_isa.h.
TARGET_MACROS = r"SOMA_LOWP_TARGET|SOMA_AVX512|SOMA_BF16|SOMA_TARGET_AVX512|SOMA_TARGET_AVX2"
SOURCES = ["src/kernels/cpu/lowp*", "src/kernels/cpu/vector_isa.h", "src/kernels/cpu/pool.cpp",
           "src/kernels/cpu/data.cpp", "src/kernels/cpu/exp.cpp",
           "src/kernels/cpu/small_gemm.cpp"]


def attributed_names():
    names = set()
    for f in [f for pattern in SOURCES for f in glob.glob(os.path.join(ROOT, pattern))]:
        text = re.sub(r"__attribute__\(\((?:[^()]|\([^()]*\))*\)\)", "", open(f).read())
        # `SOMA_X [other attributes / inline / return type] name(`, possibly over two lines
        for m in re.finditer(rf"^(?:{TARGET_MACROS})\b[^;{{]*?(\w+)\s*\(", text, re.M):
            names.add(m.group(1))
    return names


def main():
    lib = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-portable/libsoma.so")
    allowed = attributed_names()
    dis = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", lib], check=True,
                         capture_output=True, text=True).stdout
    func, hits = None, {}
    vex = re.compile(r"^\s*[0-9a-f]+:\s+(v\w+|k\w+)\b|%[yz]mm\d+|%k[0-7]\b")
    for line in dis.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            func = m.group(1)
            continue
        if func and vex.search(line):
            n, z = hits.get(func, (0, False))
            hits[func] = (n + 1, z or "%zmm" in line)
    bad = 0
    for f, (n, z) in sorted(hits.items()):
        g = f.replace("(anonymous namespace)::", "")
        while re.search(r"<[^<>]*>", g):  # template arguments, innermost first
            g = re.sub(r"<[^<>]*>", "", g)
        g = re.sub(r"\.(constprop|isra|part|cold|_omp_fn)\.?\d*", "", g)
        # [return type] soma::kernels::{lowp,cpu}::[inner::]name(arguments)
        m = re.match(r"^(?:[\w:]+ )?soma::kernels::(?:lowp|cpu)::(?:\w+::)*(\w+)\(", g)
        ok = m is not None and m.group(1) in allowed
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {n:5d} AVX/AVX-512 instructions{' (zmm)' if z else '':7s} "
              f"{f[:150]}")
    print(f"{len(hits)} functions hold AVX/AVX-512 instructions; {bad} outside the "
          f"target-attributed kernels ({len(allowed)} attributed names in the sources)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
