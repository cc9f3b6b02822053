#!/usr/bin/python3
"""Low-precision targets (docs/PERFORMANCE.md, "int8 and bfloat16"): soma's int8 and bf16 against
soma's float32 and PyTorch's quantize_dynamic engines, in one run on this machine.

  bench/lowp_compare.py [--soma build/soma] [--reps 5] [--threads 2]

Rows (medians of --reps runs, each `soma bench --json` or a torch timing loop):
  a. MLP 784-256-128-10 inference, batch 1024: soma int8 (dynamic) / soma fp32, and / the best
     of torch's quantize_dynamic engines (onednn, qnnpack; fbgemm is not in Debian's build)
  b. the same at batch 1: latency (p50), soma int8 / soma fp32 and / torch's best int8 engine
  c. the CNN preset (tests/cli/data/cnn-run), batch 256: soma int8 static / soma fp32
  d. bf16 training (--train): MLP at batch 512 and the CNN preset at 128, bf16 / fp32 samples/s
The MLP model file is trained here for one epoch on 2000 Fashion-MNIST images (its weights do
not change the timings). OpenBLAS runs with its default core type; torch gets the same.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def soma_bench(soma, model, batch, precision, threads, train=False, seconds=None, iters=None):
    cmd = [soma, "bench", "--model", model, "--batch-size", str(batch), "--precision", precision,
           "--threads", str(threads), "--json"]
    if train:
        cmd.append("--train")
    if seconds:
        cmd += ["--seconds", str(seconds)]
    if iters:
        cmd += ["--iterations", str(iters)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def median_of(reps, f):
    return statistics.median(f() for _ in range(reps))


def torch_mlp(torch):
    nn = torch.nn
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10)).eval()


def torch_time(torch, model, batch, seconds=1.0):
    """(samples/s, p50 latency in ms) of model on random input batches."""
    x = torch.randn(batch, 784)
    with torch.no_grad():
        for _ in range(10):
            model(x)
        lat = []
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end or len(lat) < 20:
            t0 = time.perf_counter()
            model(x)
            lat.append(time.perf_counter() - t0)
    p50 = statistics.median(lat)
    return batch / p50, p50 * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--soma", default=os.path.join(ROOT, "build/soma"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=1.0, help="per soma bench run")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--libtorch-bench", default=os.path.join(ROOT, "build/libtorch-peer/libtorch_bench"),
                    help="the libtorch C++ peer (make compare builds it); rows a'' and b'' when it exists")
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()
    soma, reps, threads = args.soma, args.reps, args.threads
    work = tempfile.mkdtemp(prefix="soma-lowp-")
    fm = "/usr/share/datasets/fashion-mnist"
    # a model file for the MLP: one epoch on a 2000-image subset (CSV-free IDX subset)
    sub = os.path.join(work, "fm")
    subprocess.run(["bash", "-c", f'source {ROOT}/tests/cli/lib.sh; trap - EXIT; '
                                  f'fashion_subset {fm} {sub} 2000 500'], check=True)
    subprocess.run([soma, "train", "--data", sub, "--epochs", "1", "--quiet", "--out",
                    os.path.join(work, "mlp")], check=True, capture_output=True)
    mlp = os.path.join(work, "mlp/model.safetensors")
    cnn = os.path.join(ROOT, "tests/cli/data/cnn-run/model.safetensors")
    cnn_static = os.path.join(work, "cnn-static.safetensors")
    subprocess.run([soma, "quantize", "--model", cnn, "--out", cnn_static, "--static",
                    "--calibrate", "8"], check=True, capture_output=True)
    rows = []

    def soma_sps(model, batch, precision, train=False):
        return median_of(reps, lambda: soma_bench(soma, model, batch, precision, threads, train,
                                                   seconds=args.seconds)["samples_per_second"])

    def soma_p50(model, precision):
        return median_of(reps, lambda: soma_bench(soma, model, 1, precision, threads,
                                                   seconds=args.seconds)["latency_ms"]["p50"])

    f32 = soma_sps(mlp, 1024, "fp32")
    i8 = soma_sps(mlp, 1024, "int8")
    rows.append(("a. MLP b1024 inference, soma int8 / soma fp32", f"{i8:,.0f} / {f32:,.0f} samples/s",
                 i8 / f32, ">= 2.5"))
    l32 = soma_p50(mlp, "fp32")
    l8 = soma_p50(mlp, "int8")
    rows.append(("b. MLP batch-1 latency, soma int8 / soma fp32", f"{l8 * 1e3:.1f} / {l32 * 1e3:.1f} us",
                 l8 / l32, "<= 0.6"))
    if not args.skip_torch:
        import torch
        torch.set_num_threads(threads)
        engines = [e for e in ("onednn", "qnnpack", "fbgemm")
                   if e in torch.backends.quantized.supported_engines]
        best_sps, best_lat, best_name = 0.0, float("inf"), ""
        t32 = torch_mlp(torch)
        tf32_sps = median_of(reps, lambda: torch_time(torch, t32, 1024, args.seconds)[0])
        tf32_lat = median_of(reps, lambda: torch_time(torch, t32, 1, args.seconds)[1])
        for e in engines:
            torch.backends.quantized.engine = e
            tq = torch.ao.quantization.quantize_dynamic(torch_mlp(torch), {torch.nn.Linear},
                                                        dtype=torch.qint8)
            sps = median_of(reps, lambda: torch_time(torch, tq, 1024, args.seconds)[0])
            lat = median_of(reps, lambda: torch_time(torch, tq, 1, args.seconds)[1])
            print(f"torch quantize_dynamic [{e}]: b1024 {sps:,.0f} samples/s, b1 p50 "
                  f"{lat * 1e3:.1f} us", flush=True)
            if sps > best_sps:
                best_sps, best_name = sps, e
            best_lat = min(best_lat, lat)
        print(f"torch fp32: b1024 {tf32_sps:,.0f} samples/s, b1 p50 {tf32_lat * 1e3:.1f} us")
        rows.append((f"a'. MLP b1024, soma int8 / torch int8 ({best_name})",
                     f"{i8:,.0f} / {best_sps:,.0f} samples/s", i8 / best_sps, ">= 2"))
        rows.append(("b'. MLP batch-1 latency, soma int8 / torch best int8",
                     f"{l8 * 1e3:.1f} / {best_lat * 1e3:.1f} us", l8 / best_lat, "<= 0.25"))
    if os.path.exists(args.libtorch_bench):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))

        def libtorch(job):
            r = subprocess.run([args.libtorch_bench, "--threads", str(threads), "--reps", str(reps),
                                json.dumps(job)], capture_output=True, text=True, env=env)
            if r.returncode != 0:
                return None  # e.g. an engine this build lacks
            return statistics.median(json.loads(r.stdout.strip().splitlines()[-1])["values"])
        lt_sps, lt_lat, lt_name = 0.0, float("inf"), ""
        for e in ("onednn", "qnnpack", "fbgemm"):
            sps = libtorch({"workload": "infer_int8", "engine": e, "batch": 1024})
            lat = libtorch({"workload": "latency_int8", "engine": e})
            if sps is None or lat is None:
                continue
            print(f"libtorch C++ int8 [{e}]: b1024 {sps:,.0f} samples/s, b1 p50 {lat:.1f} us",
                  flush=True)
            if sps > lt_sps:
                lt_sps, lt_name = sps, e
            lt_lat = min(lt_lat, lat)
        if lt_sps > 0:
            rows.append((f"a''. MLP b1024, soma int8 / libtorch C++ int8 ({lt_name})",
                         f"{i8:,.0f} / {lt_sps:,.0f} samples/s", i8 / lt_sps, ">= 2"))
            rows.append(("b''. MLP batch-1 latency, soma int8 / libtorch C++ best int8",
                         f"{l8 * 1e3:.1f} / {lt_lat:.1f} us", l8 * 1e3 / lt_lat, "<= 0.25"))
    c32 = soma_sps(cnn, 256, "fp32")
    c8 = soma_sps(cnn_static, 256, "int8")
    rows.append(("c. CNN preset b256 inference, soma int8 static / fp32",
                 f"{c8:,.0f} / {c32:,.0f} samples/s", c8 / c32, ">= 2.5"))
    if not args.skip_train:
        m32 = soma_sps(mlp, 512, "fp32", train=True)
        m16 = soma_sps(mlp, 512, "bf16", train=True)
        rows.append(("d. MLP b512 training, bf16 / fp32", f"{m16:,.0f} / {m32:,.0f} samples/s",
                     m16 / m32, ">= 1.6"))
        k32 = soma_sps(cnn, 128, "fp32", train=True)
        k16 = soma_sps(cnn, 128, "bf16", train=True)
        rows.append(("d'. CNN preset b128 training, bf16 / fp32", f"{k16:,.0f} / {k32:,.0f} samples/s",
                     k16 / k32, ">= 1.6"))
    print(f"\n| target | measured | ratio | goal |\n|---|---|---|---|")
    for name, measured, ratio, goal in rows:
        print(f"| {name} | {measured} | {ratio:.2f} | {goal} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
