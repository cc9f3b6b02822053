#!/usr/bin/python3
"""What the portable build (-DSOMA_NATIVE=OFF) costs: `soma bench --json` of a -march=native
build and of a portable build, interleaved in one run (docs/PERFORMANCE.md, "Portable build").

  bench/portable_compare.py [NAME=SOMA ...] [--reps 3] [--threads 1] [--seconds 1]
  # default: native=build-native/soma (-DSOMA_NATIVE=ON) portable=build/soma (the default build)

Each row runs every binary --reps times, rotating which goes first, and compares medians with
the first binary's: samples/s for throughput rows (ratio = this / first, < 1 means slower) and
the p50 latency for the batch-1 rows (ratio = first / this, the same sense). Models: the MLP
784-256-128-10 (trained here for one epoch on 2000 Fashion-MNIST images; its weights do not
change the timings), the CNN preset (tests/cli/data/cnn-run) and its static int8 quantization.
All binaries load the same OpenBLAS and oneDNN, which pick their kernels at run time.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def soma_bench(soma, model, batch, precision, threads, train, seconds):
    cmd = [soma, "bench", "--model", model, "--batch-size", str(batch), "--precision", precision,
           "--threads", str(threads), "--seconds", str(seconds), "--json"]
    if train:
        cmd.append("--train")
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs="*", metavar="NAME=SOMA",
                    default=[f"native={ROOT}/build-native/soma", f"portable={ROOT}/build/soma"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=1.0, help="per soma bench run")
    args = ap.parse_args()
    builds = dict(b.split("=", 1) for b in args.builds)
    names = list(builds)
    native = builds[names[0]]
    work = tempfile.mkdtemp(prefix="soma-portable-")
    fm = "/usr/share/datasets/fashion-mnist"
    sub = os.path.join(work, "fm")
    subprocess.run(["bash", "-c", f'source {ROOT}/tests/cli/lib.sh; trap - EXIT; '
                                  f'fashion_subset {fm} {sub} 2000 500'], check=True)
    subprocess.run([native, "train", "--data", sub, "--epochs", "1", "--quiet", "--out",
                    os.path.join(work, "mlp")], check=True, capture_output=True)
    mlp = os.path.join(work, "mlp/model.safetensors")
    cnn = os.path.join(ROOT, "tests/cli/data/cnn-run/model.safetensors")
    cnn8 = os.path.join(work, "cnn-static.safetensors")
    subprocess.run([native, "quantize", "--model", cnn, "--out", cnn8, "--static",
                    "--calibrate", "8"], check=True, capture_output=True)

    # (name, model, batch, precision, train, metric): metric "sps" or "p50"
    rows = [
        ("MLP inference b1, fp32 (p50 latency)", mlp, 1, "fp32", False, "p50"),
        ("MLP inference b1024, fp32", mlp, 1024, "fp32", False, "sps"),
        ("MLP training b128, fp32", mlp, 128, "fp32", True, "sps"),
        ("CNN inference b256, fp32", cnn, 256, "fp32", False, "sps"),
        ("CNN training b128, fp32", cnn, 128, "fp32", True, "sps"),
        ("MLP inference b1, int8 dynamic (p50 latency)", mlp, 1, "int8", False, "p50"),
        ("MLP inference b1024, int8 dynamic", mlp, 1024, "int8", False, "sps"),
        ("CNN inference b256, int8 static", cnn8, 256, "int8", False, "sps"),
        ("MLP inference b1024, bf16", mlp, 1024, "bf16", False, "sps"),
        ("MLP training b128, bf16", mlp, 128, "bf16", True, "sps"),
        ("CNN training b128, bf16", cnn, 128, "bf16", True, "sps"),
    ]
    isa = {}
    print("| row | " + " | ".join(names) + " | " +
          " | ".join(f"{n} / {names[0]}" for n in names[1:]) + " |")
    print("|---|" + "---:|" * (2 * len(names) - 1), flush=True)
    for name, model, batch, prec, train, metric in rows:
        vals = {n: [] for n in names}
        for rep in range(args.reps):
            shift = rep % len(names)
            for n in names[shift:] + names[:shift]:
                j = soma_bench(builds[n], model, batch, prec, args.threads, train, args.seconds)
                isa[n] = j["cpu_isa"]
                vals[n].append(j["latency_ms"]["p50"] * 1e3 if metric == "p50"
                               else j["samples_per_second"])
        med = {n: statistics.median(v) for n, v in vals.items()}
        ratios = [med[names[0]] / med[n] if metric == "p50" else med[n] / med[names[0]]
                  for n in names[1:]]
        unit = " us" if metric == "p50" else ""
        print(f"| {name} | " + " | ".join(f"{med[n]:,.1f}{unit}" for n in names) + " | " +
              " | ".join(f"{r:.3f}" for r in ratios) + " |", flush=True)
    print(f"\nthroughput in samples/s; cpu_isa: " + ", ".join(f"{n} {isa[n]}" for n in names) +
          f"; {args.reps} reps, {args.threads} thread(s), {args.seconds} s per run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
