#!/usr/bin/python3
"""PyTorch counterpart of bench/kernels.cpp (same shapes, same counters).

    /usr/bin/python3 bench/torch_kernels.py            # Debian's python3-torch (1.13)

For each benchmark and thread count (torch.set_num_threads(1) and 2): warm up, pick an iteration
count that takes ~0.2 s, then time 5 repetitions of that many iterations with
time.perf_counter and report the median per-iteration time and the rate (GFLOP/s or GB/s, 10^9).
The counters match bench/kernels.cpp: 2*M*N*K flop per matmul, minimum bytes read + written per
elementwise op / reduction, 4*M*N*K flop per autograd step.
"""
import statistics
import time

import torch

REPS = 5
TARGET_S = 0.2


def timeit(fn):
    for _ in range(3):
        fn()
    iters, t = 1, 0.0
    while True:  # grow the iteration count until one repetition takes ~TARGET_S
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        t = time.perf_counter() - t0
        if t >= TARGET_S / 4 or iters >= 1 << 20:
            break
        iters *= 2
    iters = max(1, int(iters * TARGET_S / max(t, 1e-9)))
    per_iter = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        per_iter.append((time.perf_counter() - t0) / iters)
    return statistics.median(per_iter)


def matmul_bench(m, k, n, transposed=False):
    a = torch.randn(m, k)
    b = torch.randn(n, k) if transposed else torch.randn(k, n)
    if transposed:
        return (lambda: torch.matmul(a, b.t())), 2.0 * m * n * k, "GFLOP/s"
    return (lambda: torch.matmul(a, b)), 2.0 * m * n * k, "GFLOP/s"


def autograd_step():
    m, k, n = 128, 784, 256
    x = torch.randn(m, k)
    w = torch.randn(k, n, requires_grad=True)
    b = torch.zeros(n, requires_grad=True)

    def step():
        w.grad = None
        b.grad = None
        torch.relu(x @ w + b).sum().backward()

    return step, 4.0 * m * n * k, "GFLOP/s"


def main():
    n1m = 1 << 20
    x1m, y1m = torch.randn(n1m), torch.randn(n1m)
    x2d = torch.randn(1024, 1024)
    benches = [
        ("matmul_128x784x256", lambda: matmul_bench(128, 784, 256)),
        ("matmul_bT_128x784x256", lambda: matmul_bench(128, 784, 256, transposed=True)),
        ("matmul_1024cubed", lambda: matmul_bench(1024, 1024, 1024)),
        ("matmul_2048cubed", lambda: matmul_bench(2048, 2048, 2048)),
        ("add_1M", lambda: ((lambda: x1m + y1m), 3.0 * n1m * 4, "GB/s")),
        ("relu_1M", lambda: ((lambda: torch.relu(x1m)), 2.0 * n1m * 4, "GB/s")),
        ("sum_rows_1024x1024",
         lambda: ((lambda: x2d.sum(1)), (1024.0 * 1024 + 1024) * 4, "GB/s")),
        ("sum_all_1M", lambda: ((lambda: x1m.sum()), n1m * 4.0, "GB/s")),
        ("autograd_step_relu_linear", autograd_step),
    ]
    print(f"torch {torch.__version__}, median of {REPS} repetitions")
    print(f"{'benchmark':<42}{'time/iter':>14}{'rate':>12}  unit")
    for name, make in benches:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            fn, work, unit = make()
            t = timeit(fn)
            print(f"{name + '/threads:' + str(threads):<42}{t * 1e6:>11.1f} us{work / t / 1e9:>12.2f}  {unit}",
                  flush=True)


if __name__ == "__main__":
    main()
