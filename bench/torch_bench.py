#!/usr/bin/python3
"""PyTorch side of bench/compare_pytorch (issue 6). Mirrors tools/bench/soma_bench.cpp.

    OMP_NUM_THREADS=T OPENBLAS_NUM_THREADS=T /usr/bin/python3 bench/torch_bench.py \
        --threads T [--smoke] [--reps 3] JOB [JOB ...]

JOB is a JSON object: {"workload": "train", "hidden": [256, 128], "batch": 128},
{"workload": "latency"}, {"workload": "infer", "batch": 1024}, or {"workload": "trainer",
"out": DIR, "seed": S} (the PyTorch equivalent of a default `soma train` run, see trainer()),
or one of issue 18's CNN workloads (see cnn_job()): {"workload": "cnn_train" | "cnn_infer" |
"cnn_latency" | "dwsep" | "convT", "batch": B, "channels_last": false | true}. Prints one
JSON line per job, like soma_bench.

Training data handling is the fast idiomatic one for in-memory data (not torch.utils.data's
per-sample DataLoader, which would be several times slower): the uint8 images stay in memory,
every epoch draws torch.randperm, and each batch is gathered with index_select and normalised
((x / 255 - mean) / std, global mean/std) -- the same work soma's DataLoader transform does.
"""
import argparse
import copy
import gzip
import json
import math
import os
import statistics
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    t = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return t.reshape(shape)


def load(split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(DATA, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(DATA, f"{prefix}-labels-idx1-ubyte.gz")).long()
    return x.reshape(x.shape[0], -1), y


def fit_norm(x):
    xf = x.float() * (1.0 / 255.0)
    return xf.mean().item(), xf.std(unbiased=False).item()


def batches(x, y, batch, mean, std, generator=None):
    n = x.shape[0]
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for i in range(0, n, batch):
        idx = order[i:i + batch]
        xb = x.index_select(0, idx).float().mul_(1.0 / 255.0).sub_(mean).div_(std)
        yield xb, y.index_select(0, idx)


def mlp(sizes, dropout=0.0):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))  # PyTorch default init
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def emit(job, metric, values, params, threads, extra=None):
    rec = {"impl": "torch", "workload": job["workload"], "batch": job.get("batch", 0),
           "threads": threads, "metric": metric, "params": params, "values": values}
    rec.update(extra or {})
    print(json.dumps(rec), flush=True)


def nparams(model):
    return sum(p.numel() for p in model.parameters())


def train_job(job, args):
    x, y = load("train")
    b = job["batch"]
    if args.smoke:
        x, y = x[:2 * b], y[:2 * b]
    mean, std = fit_norm(x)
    torch.manual_seed(0)
    model = mlp([x.shape[1]] + job["hidden"] + [10])
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)

    def epoch():
        for xb, yb in batches(x, y, b, mean, std, g):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    epoch()  # warm-up
    rates = []
    for _ in range(1 if args.smoke else args.reps):
        t0 = time.perf_counter()
        epoch()
        rates.append(x.shape[0] / (time.perf_counter() - t0))
    emit(job, "samples_per_s", rates, nparams(model), args.threads)


def latency_job(job, args):
    torch.manual_seed(0)
    model = mlp([784, 256, 128, 10]).eval()
    x = torch.randn(1, 784)
    calls = 20 if args.smoke else 5000
    medians = []
    with torch.no_grad():
        for _ in range(min(calls, 500)):
            model(x)
        for _ in range(1 if args.smoke else args.reps):
            t = []
            for _ in range(calls):
                t0 = time.perf_counter()
                model(x)
                t.append((time.perf_counter() - t0) * 1e6)
            medians.append(statistics.median(t))
    job = dict(job, batch=1)
    emit(job, "latency_us", medians, nparams(model), args.threads)


def infer_job(job, args):
    torch.manual_seed(0)
    model = mlp([784, 256, 128, 10]).eval()
    b = job["batch"]
    x = torch.randn(b, 784)
    iters = 2 if args.smoke else 200
    rates = []
    with torch.no_grad():
        for _ in range(1 if args.smoke else 20):
            model(x)
        for _ in range(1 if args.smoke else args.reps):
            t0 = time.perf_counter()
            for _ in range(iters):
                model(x)
            rates.append(b * iters / (time.perf_counter() - t0))
    emit(job, "samples_per_s", rates, nparams(model), args.threads)


# ---- issue 18: convolutional workloads (tools/bench/soma_bench.cpp has the same ones) -------
def cnn():
    """The plain 2-conv network: ~25 MFLOP per training sample."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def dwsep_block():
    """One depthwise-separable block on [N, 32, 14, 14]: depthwise 3x3 + BN + ReLU, pointwise
    32 -> 64 + BN + ReLU."""
    return nn.Sequential(
        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 1), nn.BatchNorm2d(64), nn.ReLU())


def cnn_job(job, args):
    """cnn_train: Adam(1e-3) steps with cross-entropy on Fashion-MNIST images [B, 1, 28, 28]
    (normalised per batch like train_job; one timed repetition = `steps` batches after a
    warm-up); cnn_infer: eval-mode forward of random [B, 1, 28, 28] under no_grad;
    cnn_latency: the same at batch 1, median µs per call; dwsep / convT: a training step of
    one layer alone (forward + backward to the input and the parameters, random input, loss =
    the mean of the output) of the depthwise-separable block on [B, 32, 14, 14] and of
    ConvTranspose2d(64, 32, 4, stride=2, padding=1) on [B, 64, 7, 7]. channels_last: the model
    and its inputs in torch.channels_last."""
    w = job["workload"]
    fmt = torch.channels_last if job.get("channels_last") else torch.contiguous_format
    b = 1 if w == "cnn_latency" else job.get("batch", 128)
    torch.manual_seed(0)
    if w in ("cnn_train", "cnn_infer", "cnn_latency"):
        model = cnn()
    elif w == "dwsep":
        model = dwsep_block()
    else:
        model = nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)
    model = model.to(memory_format=fmt)
    reps = 1 if args.smoke else args.reps
    rates = []
    if w == "cnn_train":
        x, y = load("train")
        steps = 2 if args.smoke else job.get("steps", 60)
        n = (steps + 5) * b
        x, y = x[:n].reshape(-1, 1, 28, 28), y[:n]
        mean, std = fit_norm(x)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)

        def step(idx):
            xb = x.index_select(0, idx).float().mul_(1.0 / 255.0).sub_(mean).div_(std)
            xb = xb.contiguous(memory_format=fmt)
            loss = F.cross_entropy(model(xb), y.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        order = torch.randperm(x.shape[0], generator=g)
        for i in range(2 if args.smoke else 5):  # warm-up
            step(order[i * b:(i + 1) * b])
        for _ in range(reps):
            order = torch.randperm(x.shape[0], generator=g)
            t0 = time.perf_counter()
            for i in range(steps):
                step(order[i * b:(i + 1) * b])
            rates.append(steps * b / (time.perf_counter() - t0))
        emit(job, "samples_per_s", rates, nparams(model), args.threads)
        return
    if w in ("cnn_infer", "cnn_latency"):
        model.eval()
        x = torch.randn(b, 1, 28, 28).contiguous(memory_format=fmt)
        with torch.no_grad():
            if w == "cnn_latency":
                calls = 20 if args.smoke else 2000
                for _ in range(min(calls, 200)):
                    model(x)
                for _ in range(reps):
                    t = []
                    for _ in range(calls):
                        t0 = time.perf_counter()
                        model(x)
                        t.append((time.perf_counter() - t0) * 1e6)
                    rates.append(statistics.median(t))
                emit(dict(job, batch=1), "latency_us", rates, nparams(model), args.threads)
                return
            iters = 1 if args.smoke else 10
            for _ in range(1 if args.smoke else 2):
                model(x)
            for _ in range(reps):
                t0 = time.perf_counter()
                for _ in range(iters):
                    model(x)
                rates.append(b * iters / (time.perf_counter() - t0))
        emit(job, "samples_per_s", rates, nparams(model), args.threads)
        return
    # dwsep, convT: one layer's training step
    model.train()
    shape = (b, 32, 14, 14) if w == "dwsep" else (b, 64, 7, 7)
    x = torch.randn(*shape).contiguous(memory_format=fmt).requires_grad_(True)
    iters = 2 if args.smoke else 30

    def step():
        model.zero_grad(set_to_none=True)
        x.grad = None
        model(x).mean().backward()

    for _ in range(1 if args.smoke else 3):
        step()
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        rates.append(b * iters / (time.perf_counter() - t0))
    emit(job, "samples_per_s", rates, nparams(model), args.threads)


def evaluate(model, x, y, mean, std):
    model.eval()
    loss_sum, correct = 0.0, 0
    image = isinstance(model[0], nn.Conv2d)
    with torch.no_grad():
        for xb, yb in batches(x, y, 1024, mean, std):
            out = model(xb.reshape(-1, 1, 28, 28) if image else xb)
            loss_sum += F.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(1) == yb).sum().item()
    return loss_sum / x.shape[0], correct / x.shape[0]


def trainer(job, args):
    """The default `soma train` (tools/soma/config.h, train_command.cpp) in PyTorch: MLP
    784-256-128-10, ReLU, dropout 0.2 after each hidden layer, Adam lr 1e-3, batch 128,
    CosineAnnealingLR(T_max=20), 20 epochs, seeded 10% validation split, normalisation fitted on
    the training part, early stopping on val_loss with patience 5 restoring the best weights, a
    checkpoint (model + optimizer) written after every epoch, test accuracy at the end."""
    t_start = time.perf_counter()
    out = job["out"]
    os.makedirs(out, exist_ok=True)
    seed = job.get("seed", 0)
    torch.manual_seed(seed)
    x_all, y_all = load("train")
    x_test, y_test = load("test")
    n = x_all.shape[0]
    n_val = round(n * 0.1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values
    x, y = x_all[train_idx], y_all[train_idx]
    xv, yv = x_all[val_idx], y_all[val_idx]
    mean, std = fit_norm(x)
    is_cnn = job.get("arch") == "cnn"
    # --arch cnn's recipe (tools/soma/train_command.cpp): the preset with Dropout(0.3) before the
    # last Linear, a cosine schedule over 15 epochs, no early stopping, horizontal flips.
    planned = 15 if is_cnn else 20
    epochs, patience = job.get("epochs", planned), (math.inf if is_cnn else 5)
    if is_cnn:
        layers = list(cnn())
        model = nn.Sequential(*layers[:-1], nn.Dropout(0.3), layers[-1])
    else:
        model = mlp([784, 256, 128, 10], dropout=0.2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=planned, eta_min=0.0)
    g = torch.Generator().manual_seed(seed)
    best, best_state, wait, epochs_run = math.inf, None, 0, 0
    for epoch in range(epochs):
        model.train()
        for xb, yb in batches(x, y, 128, mean, std, g):
            if is_cnn:
                xb = xb.reshape(-1, 1, 28, 28)
                flip = torch.rand(xb.shape[0], generator=g) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        val_loss, _ = evaluate(model, xv, yv, mean, std)
        sched.step()
        epochs_run += 1
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1},
                   os.path.join(out, "checkpoint.pt"))
        wait += 1
        if val_loss < best:
            best, best_state, wait = val_loss, copy.deepcopy(model.state_dict()), 0
        if wait >= patience and epoch > 0:
            break
    if not is_cnn:  # early stopping restores the best epoch; the cnn recipe keeps the last
        model.load_state_dict(best_state)
    _, acc = evaluate(model, x_test, y_test, mean, std)
    torch.save(model.state_dict(), os.path.join(out, "model.pt"))
    emit(job, "trainer", [time.perf_counter() - t_start], nparams(model), args.threads,
         {"test_accuracy": acc, "epochs_run": epochs_run, "arch": "cnn" if is_cnn else "mlp"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("jobs", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fns = {"train": train_job, "latency": latency_job, "infer": infer_job, "trainer": trainer,
           "cnn_train": cnn_job, "cnn_infer": cnn_job, "cnn_latency": cnn_job, "dwsep": cnn_job,
           "convT": cnn_job}
    for j in args.jobs:
        job = json.loads(j)
        fns[job["workload"]](job, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
