#!/usr/bin/python3
"""The Python training loop of the default MLP (784-256-128-10, ReLU, dropout 0.2; soma train's
default network), Adam lr 1e-3, one epoch of Fashion-MNIST, written the same way in soma and in
torch, in one process, interleaved; prints samples/s per framework and batch size and the
ratio (median of the repeats). docs/PERFORMANCE.md keeps the numbers.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_train_loop.py [--repeats 3]
        [--batch-sizes 32,128] [--samples 60000] [--threads N]

Both frameworks get the same thread count (default: all cores, as each would use by
default), float32, the same data as float32 tensors in memory (x / 255), shuffled
batches built by index_select from a per-epoch permutation.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np


def load(samples):
    import soma
    images, labels = soma.data.load_mnist("/usr/share/datasets/fashion-mnist", "train")
    x = (images.reshape(-1, 784).float() / 255)[:samples].contiguous()
    return x.numpy().copy(), labels[:samples].numpy().copy()


def run_soma(x_np, y_np, batch, seed):
    import soma
    import soma.nn as nn
    import soma.nn.functional as F
    soma.manual_seed(seed)
    x, y = soma.from_numpy(x_np), soma.from_numpy(y_np)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
    opt = soma.optim.Adam(model.parameters(), lr=1e-3)
    n = x.shape[0]
    perm = soma.from_numpy(np.random.default_rng(seed).permutation(n))
    start = time.perf_counter()
    for i in range(0, n, batch):
        idx = perm[i:i + batch]
        xb, yb = x[idx], y[idx]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
    elapsed = time.perf_counter() - start
    return n / elapsed, loss.item()


def run_torch(x_np, y_np, batch, seed):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.manual_seed(seed)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = x.shape[0]
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    start = time.perf_counter()
    for i in range(0, n, batch):
        idx = perm[i:i + batch]
        xb, yb = x[idx], y[idx]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
    elapsed = time.perf_counter() - start
    return n / elapsed, loss.item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-sizes", default="32,128")
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    import soma
    import torch
    soma.set_num_threads(a.threads)
    torch.set_num_threads(a.threads)
    x, y = load(a.samples)
    print(f"# {a.samples} samples, {a.threads} threads, soma {soma.__version__}, "
          f"torch {torch.__version__}, median of {a.repeats}")
    print("batch  soma samples/s  torch samples/s  soma/torch")
    for batch in [int(b) for b in a.batch_sizes.split(",")]:
        s_runs, t_runs, ratios = [], [], []
        for r in range(a.repeats):  # interleaved: both see the same machine state
            s, _ = run_soma(x, y, batch, r)
            t, _ = run_torch(x, y, batch, r)
            s_runs.append(s)
            t_runs.append(t)
            ratios.append(s / t)
        print(f"{batch:5d}  {statistics.median(s_runs):14,.0f}  {statistics.median(t_runs):15,.0f}"
              f"  {statistics.median(ratios):9.2f}x")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
