#!/usr/bin/env bash
# Crash safety of `soma train`: start a run that checkpoints every epoch, SIGKILL it at a
# random moment (TRIALS times; some kills land inside a checkpoint write), and check after each
# kill that --resume finishes the run from the latest checkpoint with the weights of an
# uninterrupted run, bit for bit, and that no temporary file is left behind. A checkpoint that
# does not load makes the resume fail.
#   tests/cli/kill_test.sh <path to soma> [trials] [min kills inside a write]
set -u
SOMA=${1:?usage: kill_test.sh SOMA [TRIALS] [MIN_MID_WRITE]}
TRIALS=${2:-20}
# The sanitizer build passes 1: its slower runs leave the even trials' write hunt fewer chances.
MIN_MID_WRITE=${3:-$(((TRIALS + 3) / 4))}
. "$(dirname "$0")/lib.sh"

# 600 rows, 3 blobs; a wide model so each checkpoint write (12.7 MB, fsync'ed) takes a while
# (a whole run: ~2-3 s).
blobs_csv "$work/blobs.csv" 11
args=(train --csv "$work/blobs.csv" --label-column label --hidden 1024,1024 --batch-size 64
      --epochs 30 --patience 0 --quiet --threads 1)

# The uninterrupted run: every killed and resumed run must end with its weights, bit for bit.
"$SOMA" "${args[@]}" --out "$work/reference" 2> "$work/err" \
  || { echo "FAIL  the uninterrupted reference run: $(cat "$work/err")"; exit 1; }

RANDOM=7  # reproducible kill times
killed_mid_run=0
mid_write=0  # kills that left a temporary file: they landed inside a write
for trial in $(seq 1 "$TRIALS"); do
  run="$work/run$trial"
  "$SOMA" "${args[@]}" --out "$run" 2> "$work/err$trial" &
  pid=$!
  if [ $((trial % 2)) = 0 ]; then
    # Even trials: kill inside a write, as soon as a temporary file appears (after a random
    # number of completed epochs).
    skip=$((RANDOM % 20)); ms="a write"
    # Poll until the run ends (not a fixed number of polls: a sanitizer build's epochs are
    # several times slower, and a bounded loop gave up before the chosen write).
    while kill -0 "$pid" 2> /dev/null; do
      if compgen -G "$run/*.tmp.*" > /dev/null; then
        [ "$skip" = 0 ] && break
        skip=$((skip - 1)); ms="a write"
        while compgen -G "$run/*.tmp.*" > /dev/null; do :; done
      fi
    done
  else
    # Odd trials: kill after 50-1550 ms.
    ms=$((50 + RANDOM % 1500))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    ms="$ms ms"
  fi
  kill -9 "$pid" 2> /dev/null
  wait "$pid" 2> /dev/null
  [ $? = 137 ] && killed_mid_run=$((killed_mid_run + 1))  # 128 + SIGKILL: it was still running
  # What the kill left: at most the one temporary file being written.
  left=$(ls -a "$run" 2> /dev/null | grep -c '\.tmp\.' || true)
  epochs_before=0
  [ -f "$run/history.csv" ] && epochs_before=$(($(wc -l < "$run/history.csv") - 1))
  # Resume (or, if no epoch had finished, start) and finish the run.
  resume=()
  [ -f "$run/checkpoint.safetensors" ] && resume=(--resume)
  if "$SOMA" "${args[@]}" --out "$run" "${resume[@]}" 2> "$work/resume$trial"; then
    lines=$(wc -l < "$run/history.csv")
    stray=$(ls -a "$run" | grep -c '\.tmp\.' || true)
    same=no
    cmp -s "$run/model.safetensors" "$work/reference/model.safetensors" && same=yes
    if [ "$lines" = 31 ] && [ "$stray" = 0 ] && [ -s "$run/metrics.json" ] && [ $same = yes ]; then
      pass "trial $trial: killed at $ms, after $epochs_before epochs, resumed to 30 with the uninterrupted run's weights, no temporary files"
    else
      fail "trial $trial: history has $lines lines, $stray temporary files, weights equal to the uninterrupted run's: $same"
    fi
  else
    fail "trial $trial: resume after $epochs_before epochs failed: $(head -c 300 "$work/resume$trial")"
  fi
  [ "$left" != 0 ] && mid_write=$((mid_write + 1))
  rm -rf "$run"
done
[ "$killed_mid_run" -ge $((TRIALS / 2)) ] && pass "$killed_mid_run of $TRIALS runs were killed mid-run" \
  || fail "only $killed_mid_run of $TRIALS runs were still running when killed (runs too fast?)"
# The even trials aim at a write: at least MIN_MID_WRITE (a quarter of all trials by default)
# must have landed inside one (a temporary file left behind), or the test did not test torn
# writes.
[ "$mid_write" -ge "$MIN_MID_WRITE" ] && pass "$mid_write of $TRIALS kills landed inside a file write" \
  || fail "only $mid_write of $TRIALS kills landed inside a file write (want >= $MIN_MID_WRITE)"

if [ "$failures" -ne 0 ]; then
  echo "$failures crash-safety checks failed"
  exit 1
fi
echo "all crash-safety checks passed"
