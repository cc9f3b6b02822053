#!/usr/bin/python3
"""Per-call overhead of small ops from Python, soma vs torch, in one process (issue 20 target:
soma <= torch), and the time of `import soma` vs `import torch` in fresh interpreters.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_overhead.py [--repeat 7] [--number N]

Each figure is the median over --repeat runs of timeit of --number calls, in microseconds per
call of process CPU time (time.process_time: on a shared machine, wall time also counts the
time other processes hold the core). Both libraries run single-threaded (torch.set_num_threads(1), soma.set_num_threads(1)) so
neither pays for waking a thread pool on a 10-element op.
"""
import argparse
import statistics
import subprocess
import sys
import time
import timeit


def per_call_us(stmt, glb, number, repeat):
    times = timeit.repeat(stmt, globals=glb, number=number, repeat=repeat,
                          timer=time.process_time)
    return statistics.median(times) / number * 1e6


def import_ms(module, repeat):
    code = ("import time; t = time.perf_counter(); import {m}; "
            "print((time.perf_counter() - t) * 1e3)").format(m=module)
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(repeat)]
    return statistics.median(runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--number", type=int, default=200000)
    args = ap.parse_args()

    import soma
    import torch
    torch.set_num_threads(1)
    soma.set_num_threads(1)
    soma.manual_seed(0)
    torch.manual_seed(0)
    cases = {
        "a + b (10 floats)": ("a + b", lambda m: dict(a=m.rand(10), b=m.rand(10))),
        "a * 2.0 (10 floats)": ("a * 2.0", lambda m: dict(a=m.rand(10))),
        "a.sum() (10 floats)": ("a.sum()", lambda m: dict(a=m.rand(10))),
        "x @ w.t() (1x784 @ 784x10)": ("x @ w.t()",
                                       lambda m: dict(x=m.rand(1, 784), w=m.rand(10, 784))),
        "a[0] (10 floats)": ("a[0]", lambda m: dict(a=m.rand(10))),
        # nn.Linear(784, 256) on one sample, the parameters requiring grad (a recorded op)
        "Linear(784, 256)(x), 1x784": ("lin(x)", lambda m: dict(x=m.rand(1, 784),
                                                                lin=m.nn.Linear(784, 256))),
        "F.linear(x, w, b), 1x784": ("F.linear(x, w, b)",
                                     lambda m: dict(x=m.rand(1, 784), w=m.rand(256, 784),
                                                    b=m.rand(256), F=m.nn.functional)),
    }
    heavy = {"Linear(784, 256)(x), 1x784", "F.linear(x, w, b), 1x784"}  # 1/10 of the calls
    print(f"{'case':30s} {'torch us':>10s} {'soma us':>10s} {'soma/torch':>10s}")
    worst = 0.0
    for name, (stmt, make) in cases.items():
        number = args.number // 10 if name in heavy else args.number
        t = per_call_us(stmt, make(torch), number, args.repeat)
        s = per_call_us(stmt, make(soma), number, args.repeat)
        worst = max(worst, s / t) if name.startswith(("a + b", "Linear", "F.linear")) else worst
        print(f"{name:30s} {t:10.3f} {s:10.3f} {s / t:10.2f}")
    it, isoma = import_ms("torch", 3), import_ms("soma", args.repeat)
    print(f"{'import (ms, fresh process)':30s} {it:10.1f} {isoma:10.1f} {isoma / it:10.2f}")
    ok = worst <= 1.0 and isoma <= 100.0
    print("targets (a + b and linear on 1x784 <= torch, import soma <= 100 ms):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
