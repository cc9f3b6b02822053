#!/usr/bin/env bash
# `mpirun -np 2 soma train`: one set of outputs written by rank 0, exact --resume with 2 ranks,
# and an error that every rank hits reported once with a non-zero exit (ctest cli.mpi).
#   tests/cli/mpi_test.sh path/to/soma
set -uo pipefail
soma=$1
. "$(dirname "$0")/lib.sh"
# CI runs as root; Open MPI refuses root without these. --oversubscribe: the machine may have
# fewer cores than ranks.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Sanitizer build: Open MPI keeps allocations until exit and unloads its plugins at
# MPI_Finalize, so LeakSanitizer reports (unsymbolisable) leaks in every rank. Leak checking
# stays on in the one-process tests; ASan's memory errors and UBSan stay on here.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
mpi=(timeout -k 5 240 mpirun -np 2 --oversubscribe --bind-to none)

# 1. Fashion-MNIST, one epoch, two ranks.
out=$work/fm
if "${mpi[@]}" "$soma" train --epochs 1 --out "$out" > "$work/fm.log" 2>&1; then
  pass "mpirun -np 2 soma train --epochs 1 exits 0"
else
  fail "mpirun -np 2 soma train --epochs 1 exits 0"; cat "$work/fm.log"
fi
files=$(cd "$out" 2>/dev/null && ls -A | sort | tr '\n' ' ')
want="checkpoint.safetensors history.csv metrics.json model.safetensors report.html "
[[ "$files" == "$want" ]] && pass "one set of outputs: $files" || fail "outputs: '$files', want '$want'"
n=$(grep -c '^test accuracy' "$work/fm.log")
[[ $n -eq 1 ]] && pass "one summary line" || fail "$n summary lines"
n=$(grep -c '^soma train:' "$work/fm.log")
[[ $n -eq 1 ]] && pass "one header line" || fail "$n header lines"
grep -q 'per rank x 2 ranks (global batch 256)' "$work/fm.log" && pass "header names the ranks" \
  || fail "header does not name the ranks"
if [[ -f $out/metrics.json ]]; then
  ranks=$(sed -n 's/.*"ranks": \([0-9]*\).*/\1/p' "$out/metrics.json")
  acc=$(sed -n 's/.*"test_accuracy": \([0-9.]*\).*/\1/p' "$out/metrics.json")
  epochs=$(sed -n 's/.*"epochs_run": \([0-9]*\).*/\1/p' "$out/metrics.json")
  [[ $ranks == 2 && $epochs == 1 ]] && pass "metrics.json: ranks 2, epochs_run 1" \
    || fail "metrics.json: ranks '$ranks', epochs_run '$epochs'"
  awk -v a="$acc" 'BEGIN { exit !(a > 0.75) }' && pass "test accuracy $acc > 0.75 after 1 epoch" \
    || fail "test accuracy '$acc' after 1 epoch"
  grep -q '"allreduce_seconds"' "$out/metrics.json" && pass "metrics.json has allreduce_seconds" \
    || fail "metrics.json lacks allreduce_seconds"
fi

# 2. Exact resume with two ranks, with every default (cosine, early stopping with the best
#    weights, dropout: each rank's masks must resume too) and with --schedule plateau, on a
#    Fashion-MNIST subset: the run is interrupted (SIGKILL to the job once 2 epochs are done)
#    and resumed with --out and --resume alone; its model must equal the uninterrupted run's.
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
fashion_subset "$DATA" "$work/sub" 2000 300
for variant in default plateau; do
  args=(--data "$work/sub" --quiet)
  [[ $variant == plateau ]] && args+=(--schedule plateau)
  if ! "${mpi[@]}" "$soma" train "${args[@]}" --out "$work/$variant-straight" > "$work/s.log" 2>&1; then
    fail "2 ranks, $variant: the uninterrupted run failed"; cat "$work/s.log"; continue
  fi
  "${mpi[@]}" "$soma" train "${args[@]}" --out "$work/$variant-resumed" > "$work/k.log" 2>&1 &
  pid=$!
  while kill -0 $pid 2> /dev/null; do
    [[ -f $work/$variant-resumed/history.csv ]] &&
      (($(wc -l < "$work/$variant-resumed/history.csv") > 2)) && break
    sleep 0.005
  done
  # SIGKILL to every process of the job at once (mpirun and both ranks): killing mpirun alone
  # may leave ranks running on.
  pkill -KILL -f -- "--out $work/$variant-resumed" 2> /dev/null
  wait $pid
  rc=$?
  epochs=$(($(wc -l < "$work/$variant-resumed/history.csv") - 1))
  total=$(($(wc -l < "$work/$variant-straight/history.csv") - 1))
  if [[ $rc -ne 0 && $epochs -lt $total ]]; then
    pass "2 ranks, $variant: interrupted after $epochs of $total epochs (exit $rc)"
  else
    fail "2 ranks, $variant: the run was not interrupted (exit $rc, $epochs of $total epochs)"
    continue
  fi
  if "${mpi[@]}" "$soma" train --out "$work/$variant-resumed" --resume > "$work/r.log" 2>&1 &&
    cmp -s "$work/$variant-straight/model.safetensors" "$work/$variant-resumed/model.safetensors"; then
    pass "2 ranks, $variant: --out DIR --resume finishes with the uninterrupted run's model, bit for bit"
  else
    fail "2 ranks, $variant: the resumed model differs"; cat "$work/r.log"
  fi
done
# And the ranks' dropout streams differ from one process's: a 1-process run (global batch
# 256 = 2 x 128) is not the same. The reference run must succeed for this to mean anything.
if timeout 240 "$soma" train --data "$work/sub" --quiet --batch-size 256 --out "$work/single" \
  > "$work/single.log" 2>&1 && [[ -s $work/single/model.safetensors ]]; then
  cmp -s "$work/default-straight/model.safetensors" "$work/single/model.safetensors" \
    && fail "2 ranks with dropout gave one process's weights" \
    || pass "2-rank dropout masks are the ranks' own"
else
  fail "the 1-process reference run failed: $(tail -1 "$work/single.log")"
fi

# 3. An error every rank hits: non-zero exit, the message once.
"${mpi[@]}" "$soma" train --lr -1 --out "$work/bad" > "$work/bad.log" 2>&1
rc=$?
n=$(grep -c 'soma: error:' "$work/bad.log")
if [[ $rc -ne 0 && $n -eq 1 ]]; then pass "--lr -1 under mpirun: exit $rc, one error line"
else fail "--lr -1 under mpirun: exit $rc, $n error lines"; cat "$work/bad.log"; fi
"${mpi[@]}" "$soma" train --bogus > "$work/flag.log" 2>&1
rc=$?
n=$(grep -c 'soma: error:' "$work/flag.log")
[[ $rc -ne 0 && $n -eq 1 ]] && pass "bad flag under mpirun: exit $rc, one error line" \
  || { fail "bad flag under mpirun: exit $rc, $n error lines"; cat "$work/flag.log"; }

# 4. BatchNorm under mpirun is SyncBatchNorm: 2 ranks x batch 32 train as 1 process x batch 64
#    (a CNN without dropout, whose masks are each rank's own), to 5e-4 relative after 18 steps
#    (measured 1e-4: float sums in another order, amplified by the normalisation).
if [[ -f "$DATA/train-images-idx3-ubyte.gz" ]]; then
  fashion_subset "$DATA" "$work/fm-bn" 640 128
  cat > "$work/bn.json" <<'JSON'
[{"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1},
 {"type": "BatchNorm2d", "num_features": 4}, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 4},
 {"type": "Flatten"}, {"type": "Linear", "in_features": 196, "out_features": 10}]
JSON
  common=(train --data "$work/fm-bn" --arch "$work/bn.json" --epochs 2 --patience 0 --quiet)
  "$soma" "${common[@]}" --batch-size 64 --out "$work/bn1" > "$work/bn1.log" 2>&1
  "${mpi[@]}" "$soma" "${common[@]}" --batch-size 32 --out "$work/bn2" > "$work/bn2.log" 2>&1
  l1=$(grep -o '"test_loss": *[0-9.e+-]*' "$work/bn1/metrics.json" | grep -o '[0-9.e+-]*$')
  l2=$(grep -o '"test_loss": *[0-9.e+-]*' "$work/bn2/metrics.json" | grep -o '[0-9.e+-]*$')
  if [[ -n "$l1" && -n "$l2" ]] && awk -v a="$l1" -v b="$l2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 5e-4 * a) }'; then
    pass "SyncBatchNorm: 2 ranks x 32 test loss $l2 = 1 x 64 test loss $l1"
  else
    fail "SyncBatchNorm: 2 ranks x 32 test loss '$l2' vs 1 x 64 '$l1'"; tail -3 "$work/bn1.log" "$work/bn2.log"
  fi
elif [[ "${CI:-}" == true ]]; then
  fail "Fashion-MNIST missing at $DATA (CI)"
fi

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
