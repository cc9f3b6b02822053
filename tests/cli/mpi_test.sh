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

# 2. Exact resume with two ranks (dropout on: each rank's masks must resume too).
blobs_csv "$work/blobs.csv" 5
# (a schedule that does not depend on --epochs, no early stopping)
args=(--csv "$work/blobs.csv" --hidden 16 --dropout 0.3 --batch-size 16 --quiet --seed 3
      --schedule exponential --patience 0)
"${mpi[@]}" "$soma" train "${args[@]}" --epochs 4 --out "$work/straight" > "$work/r1.log" 2>&1 \
  && "${mpi[@]}" "$soma" train "${args[@]}" --epochs 2 --out "$work/resumed" > "$work/r2.log" 2>&1 \
  && "${mpi[@]}" "$soma" train "${args[@]}" --epochs 4 --out "$work/resumed" --resume \
       > "$work/r3.log" 2>&1
rc=$?
if [[ $rc -eq 0 ]] && cmp -s "$work/straight/model.safetensors" "$work/resumed/model.safetensors"; then
  pass "2 ranks: 2 epochs + --resume to 4 = 4 epochs straight, bit for bit"
else
  fail "2 ranks: resume differs (rc $rc)"; cat "$work"/r?.log
fi
# And the ranks' dropout streams differ from one process's: a 1-process run is not the same.
timeout 120 "$soma" train "${args[@]}" --batch-size 32 --epochs 4 --out "$work/single" \
  > /dev/null 2>&1
cmp -s "$work/straight/model.safetensors" "$work/single/model.safetensors" \
  && fail "2 ranks with dropout gave one process's weights" \
  || pass "2-rank dropout masks are the ranks' own"

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

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
