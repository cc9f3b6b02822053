#!/bin/bash
# Batch-1 latency of the 784-256-128-10 MLP, interleaved in rounds (docs/PERFORMANCE.md,
# "Batch-1 latency: the small-batch Linear kernel"): soma at 2 threads with its packed
# small-batch kernel, soma with SOMA_KERNELS=openblas (the same binary on OpenBLAS's GEMV), and
# libtorch C++ (bench/libtorch, built by `make compare`) at 1 and 2 threads with OpenBLAS's own
# kernel choice and with OPENBLAS_CORETYPE=SkylakeX. Prints the p50 of 5000 calls (µs) each.
#   bench/latency_ab.sh MODEL.safetensors [ROUNDS]
# MODEL: a 784-256-128-10 MLP, e.g. `soma train --arch ARCH.json --epochs 1 --out DIR`
# (bench/compare_pytorch writes one per run).
set -euo pipefail
model=${1:?usage: bench/latency_ab.sh MODEL.safetensors [ROUNDS]}
rounds=${2:-5}
soma=${SOMA:-build/soma}
peer=${LIBTORCH_BENCH:-build/libtorch-peer/libtorch_bench}
p50() { /usr/bin/python3 -c "import json,sys; print(round(json.load(sys.stdin)['latency_ms']['p50']*1000,2))"; }
for round in $(seq 1 "$rounds"); do
  s=$("$soma" bench --model "$model" --batch-size 1 --threads 2 --warmup 500 --iterations 5000 --json | p50)
  o=$(SOMA_KERNELS=openblas "$soma" bench --model "$model" --batch-size 1 --threads 2 --warmup 500 \
      --iterations 5000 --json | p50)
  line="round $round: soma $s  soma-openblas $o"
  for t in 1 2; do
    for ct in default SkylakeX; do
      if [ "$ct" = default ]; then envs=(env -u OPENBLAS_CORETYPE); else envs=(env OPENBLAS_CORETYPE=SkylakeX); fi
      v=$("${envs[@]}" OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "$peer" --threads $t --reps 1 \
          '{"workload": "latency"}' | /usr/bin/python3 -c \
          "import json,sys; print(round(json.loads(sys.stdin.readline())['values'][0],2))")
      line="$line  libtorch-t$t-$ct $v"
    done
  done
  echo "$line"
done
