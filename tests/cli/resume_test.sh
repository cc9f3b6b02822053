#!/usr/bin/env bash
# `soma train --resume` (ctest cli.resume): a run killed mid-way and resumed from `--out` alone
# ends with the uninterrupted run's model.safetensors, byte for byte, with the default flags
# (cosine schedule, early stopping with best weights) and with --schedule plateau; the README's
# example (--epochs larger than planned) extends the run with a positive learning rate; the
# recorded options are restored, changed ones are errors unless --override; finished runs,
# re-opened runs and checkpoints of earlier soma versions.
#   tests/cli/resume_test.sh <path to soma> [fashion-mnist dir]
set -u
SOMA=$(realpath "${1:?usage: resume_test.sh SOMA [DATA_DIR]}")
DATA=${2:-/usr/share/datasets/fashion-mnist}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# kill_after RUN K ARGS...: starts `soma train ARGS --out RUN`, SIGKILLs it as soon as RUN's
# history.csv has K epochs; succeeds when the run was still running (exit 137).
kill_after() {
  local run=$1 k=$2
  shift 2
  "$SOMA" train "$@" --out "$run" > /dev/null 2> "$run.err" &
  local pid=$! rows=0
  while kill -0 "$pid" 2> /dev/null; do
    if [ -f "$run/history.csv" ]; then
      rows=$(($(wc -l < "$run/history.csv") - 1))
      if [ "$rows" -ge "$k" ]; then
        kill -9 "$pid" 2> /dev/null
        break
      fi
    fi
    sleep 0.005
  done
  wait "$pid" 2> /dev/null
  [ $? = 137 ]
}

# interrupted NAME ARGS...: the run with ARGS, straight and killed twice then resumed with
# `--out DIR --resume` alone; the two model files must be equal. The first kill comes after 2
# epochs, the second after the straight run's best epoch + 1 when it stopped early (so the best
# weights it ends with are from before the last interruption, and the wait count and best value
# must survive it), else after 6 epochs.
interrupted() {
  local name=$1
  shift
  local full="$work/$name-full" part="$work/$name-part"
  if ! "$SOMA" train "$@" --quiet --out "$full" 2> "$work/err"; then
    fail "$name: uninterrupted run ($(cat "$work/err"))"
    return
  fi
  local second=6 best
  if grep -q '"stopped_early": true' "$full/metrics.json"; then
    best=$(sed -n 's/.*"best_epoch": \([0-9]*\).*/\1/p' "$full/metrics.json")
    second=$((best + 1))
  fi
  if kill_after "$part" 2 "$@" --quiet; then
    pass "$name: killed after $(($(wc -l < "$part/history.csv") - 1)) epochs"
  else
    fail "$name: the run ended before the kill after 2 epochs ($(cat "$part.err"))"
    return
  fi
  # Resume, then kill again.
  "$SOMA" train --out "$part" --resume > /dev/null 2> "$work/err" &
  local pid=$!
  while kill -0 "$pid" 2> /dev/null &&
    [ $(($(wc -l < "$part/history.csv") - 1)) -lt "$second" ]; do sleep 0.005; done
  kill -9 "$pid" 2> /dev/null
  wait "$pid" 2> /dev/null
  if [ $? = 137 ]; then
    pass "$name: resumed and killed again after $(($(wc -l < "$part/history.csv") - 1)) epochs (aimed at $second)"
  else
    fail "$name: the resumed run ended before the second kill ($(cat "$work/err"))"
    return
  fi
  if "$SOMA" train --out "$part" --resume > "$work/out" 2> "$work/err"; then
    pass "$name: --out DIR --resume alone finishes the run"
  else
    fail "$name: resume failed: $(cat "$work/err")"
    return
  fi
  cmp -s "$full/model.safetensors" "$part/model.safetensors" \
    && pass "$name: model.safetensors equals the uninterrupted run's byte for byte" \
    || fail "$name: model.safetensors differs from the uninterrupted run's"
  cmp -s <(cut -d, -f1-6 "$full/history.csv") <(cut -d, -f1-6 "$part/history.csv") \
    && pass "$name: history.csv equals the uninterrupted run's (all but the timings)" \
    || fail "$name: history.csv differs"
}

# ---- exact resume with the default flags, on a Fashion-MNIST subset -----------------------
if [ -d "$DATA" ]; then
  sub="$work/fashion"
  fashion_subset "$DATA" "$sub" 600 300
  # Every flag at its default (--data: a subset small enough to overfit within 20 epochs):
  # Adam, cosine over 20 epochs, dropout 0.2, early stopping with patience 5 and the best
  # weights restored.
  interrupted default --data "$sub"
  stopped=$(sed -n 's/.*"stopped_early": \(true\|false\).*/\1/p' "$work/default-full/metrics.json")
  best=$(sed -n 's/.*"best_epoch": \([0-9]*\).*/\1/p' "$work/default-full/metrics.json")
  run=$(sed -n 's/.*"epochs_run": \([0-9]*\).*/\1/p' "$work/default-full/metrics.json")
  # The test means most when early stopping acts after the interruptions.
  [ "$stopped" = true ] \
    && pass "default: the run stopped early after $run epochs, best epoch $best (before the last interruption)" \
    || fail "default: expected an early stop (stopped_early $stopped, best $best, $run epochs)"
  interrupted plateau --data "$sub" --schedule plateau
  lrs=$(cut -d, -f6 "$work/plateau-full/history.csv" | tail -n +2 | sort -u | wc -l)
  [ "$lrs" -ge 2 ] && pass "plateau: the rate was cut ($lrs distinct rates)" \
    || fail "plateau: the rate never changed, the test does not exercise ReduceLROnPlateau"

  # A finished run: --resume trains nothing and writes the same model.
  cp -r "$work/default-full" "$work/done"
  if "$SOMA" train --out "$work/done" --resume > /dev/null 2> "$work/err" \
    && grep -q "already finished" "$work/err" \
    && cmp -s "$work/done/model.safetensors" "$work/default-full/model.safetensors"; then
    pass "--resume of a finished run: '$(cat "$work/err")', same model"
  else
    fail "--resume of a finished run: $(cat "$work/err")"
  fi
  # A run that stopped early re-opens with --epochs N > epochs done, its patience reset.
  if "$SOMA" train --out "$work/done" --resume --epochs $((run + 2)) --quiet > /dev/null \
    2> "$work/err"; then
    rows=$(($(wc -l < "$work/done/history.csv") - 1))
    [ "$rows" = $((run + 2)) ] && grep -q "re-opening" "$work/err" \
      && pass "a run stopped early re-opens: $rows epochs ('$(head -1 "$work/err")')" \
      || fail "re-open: $rows epochs, want $((run + 2)) ($(cat "$work/err"))"
  else
    fail "re-open failed: $(cat "$work/err")"
  fi
elif [ -n "${CI:-}" ]; then
  fail "the Fashion-MNIST data is missing from $DATA (CI needs it: scripts/bootstrap.sh)"
else
  echo "skip  exact resume on Fashion-MNIST (no data in $DATA)"
fi

# ---- the README's example: a run, then --resume --epochs larger -------------------------
blobs_csv "$work/blobs.csv" 3
"$SOMA" train --csv "$work/blobs.csv" --hidden 512,256 --optimizer sgd --momentum 0.9 \
  --lr 0.05 --epochs 3 --quiet --out "$work/sgd" 2> "$work/err" || fail "README run: $(cat "$work/err")"
cp "$work/sgd/model.safetensors" "$work/sgd-3.safetensors"
if "$SOMA" train --out "$work/sgd" --epochs 5 --resume --quiet > /dev/null 2> "$work/err"; then
  pass "README: --out runs/sgd --epochs 5 --resume (no other flag) runs"
  grep -q "extending .* from 3 to 5 epochs; the cosine schedule is re-planned" "$work/err" \
    && pass "one-line notice: $(cat "$work/err")" || fail "notice: '$(cat "$work/err")'"
  rows=$(($(wc -l < "$work/sgd/history.csv") - 1))
  [ "$rows" = 5 ] && pass "history has 5 epochs" || fail "history has $rows epochs"
  awk -F, 'NR > 4 { if (!($6 > 0)) bad = 1 } END { exit bad }' "$work/sgd/history.csv" \
    && pass "epochs 4-5 train at lr $(awk -F, 'NR > 4 { printf "%s ", $6 }' "$work/sgd/history.csv")> 0" \
    || fail "an extended epoch has lr <= 0: $(cat "$work/sgd/history.csv")"
  cmp -s "$work/sgd-3.safetensors" "$work/sgd/model.safetensors" \
    && fail "the extended epochs left the weights unchanged" || pass "the extended epochs moved the weights"
else
  fail "README resume example: $(cat "$work/err")"
fi

# Each schedule: the extended epochs' rates are > 0 (cosine and step are re-planned).
for sched in cosine step exponential plateau none; do
  d="$work/ext-$sched"
  "$SOMA" train --csv "$work/blobs.csv" --hidden 8 --schedule "$sched" --epochs 3 --quiet \
    --out "$d" 2> "$work/err" \
    && "$SOMA" train --out "$d" --epochs 7 --resume --quiet 2> "$work/err" \
    && awk -F, 'NR > 4 { if (!($6 > 0)) bad = 1 } END { exit bad }' "$d/history.csv" \
    && [ "$(($(wc -l < "$d/history.csv") - 1))" = 7 ] \
    && pass "$sched: 3 epochs extended to 7, lr > 0: $(cut -d, -f6 "$d/history.csv" | tail -n +2 | tr '\n' ' ')" \
    || fail "$sched: extension ($(cat "$work/err"); $(cut -d, -f6 "$d/history.csv" 2> /dev/null | tr '\n' ' '))"
done
# Extending is the same as planning the longer run from the start for a schedule that does
# not depend on the horizon; for cosine the extended epochs follow cos over the new horizon.
"$SOMA" train --csv "$work/blobs.csv" --hidden 8 --schedule cosine --epochs 7 --quiet \
  --out "$work/cos7" 2> "$work/err" || fail "cosine 7 epochs: $(cat "$work/err")"
cmp -s <(cut -d, -f6 "$work/cos7/history.csv" | tail -n +5) \
  <(cut -d, -f6 "$work/ext-cosine/history.csv" | tail -n +5) \
  && pass "cosine extended to 7: epochs 4-7 run at the 7-epoch plan's rates" \
  || fail "cosine extended: rates $(cut -d, -f6 "$work/ext-cosine/history.csv" | tr '\n' ' ') vs $(cut -d, -f6 "$work/cos7/history.csv" | tr '\n' ' ')"

# ---- the recorded options ------------------------------------------------------------------
# A --hidden 32 run resumes without repeating --hidden (it used to build the default network).
"$SOMA" train --csv "$work/blobs.csv" --hidden 32 --epochs 2 --quiet --out "$work/h32" 2> "$work/err" \
  && "$SOMA" train --out "$work/h32" --resume --epochs 3 --quiet 2> "$work/err" \
  && pass "a --hidden 32 run resumes with --out and --resume alone" \
  || fail "--hidden 32 resume: $(cat "$work/err")"
bad() {  # bad "name" "expected message part" args...
  local name=$1 want=$2
  shift 2
  "$SOMA" "$@" > "$work/out" 2> "$work/err"
  local rc=$? nl
  nl=$(wc -l < "$work/err")
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$nl" = 1 ] && grep -qF -- "$want" "$work/err"; then
    pass "$name -> exit $rc: $(cat "$work/err")"
  else
    fail "$name (exit $rc, $nl lines: $(head -c 300 "$work/err"))"
  fi
}
bad "another --lr on resume" "--lr 0.5 differs from the recorded 0.05" \
  train --out "$work/sgd" --resume --lr 0.5
bad "another --hidden on resume" "--hidden 64 differs from the recorded 32" \
  train --out "$work/h32" --resume --hidden 64
bad "another --seed and --batch-size on resume" \
  "--batch-size 64 differs from the recorded 128; --seed 5 differs from the recorded 0" \
  train --out "$work/h32" --resume --seed 5 --batch-size 64
bad "--epochs below the epochs done" "--epochs 2 is less than the 3 epochs" \
  train --out "$work/h32" --resume --epochs 2
# The same value again is fine, and --threads / --quiet may change.
"$SOMA" train --out "$work/h32" --resume --hidden 32 --lr 0.001 --threads 1 --quiet --epochs 4 \
  2> "$work/err" && pass "recorded values given again, --threads changed: accepted" \
  || fail "same values on resume: $(cat "$work/err")"
# --override applies the new value and records it.
if "$SOMA" train --out "$work/sgd" --resume --lr 0.01 --override --epochs 6 --quiet 2> "$work/err"; then
  lr6=$(awk -F, 'NR == 7 { print $6 }' "$work/sgd/history.csv")
  grep -q -- "--override: --lr 0.01 differs from the recorded 0.05" "$work/err" \
    && pass "--override applies --lr 0.01 (epoch 6 lr $lr6)" || fail "--override notice: $(cat "$work/err")"
  "$SOMA" train --out "$work/sgd" --resume --lr 0.01 --epochs 7 --quiet 2> "$work/err" \
    && pass "the overridden --lr is recorded" || fail "override not recorded: $(cat "$work/err")"
else
  fail "--override: $(cat "$work/err")"
fi

# ---- checkpoints written by earlier soma versions keep loading -----------------------------
# tests/cli/data/v0.2-run (see its README): a CSV run recorded with --csv blobs.csv (relative),
# so it resumes from a directory holding that file.
cp -r "$here/data/v0.2-run" "$work/old"
"$SOMA" summary --model "$work/old/model.safetensors" > /dev/null 2> "$work/err" \
  && pass "an earlier model.safetensors loads" || fail "earlier model file: $(cat "$work/err")"
"$SOMA" eval --model "$work/old/model.safetensors" --csv "$work/blobs.csv" > "$work/out" 2> "$work/err" \
  && pass "an earlier model evaluates: $(cat "$work/out")" || fail "earlier model eval: $(cat "$work/err")"
if (cd "$work" && "$SOMA" train --out old --resume --epochs 3 --quiet 2> "$work/err"); then
  rows=$(($(wc -l < "$work/old/history.csv") - 1))
  [ "$rows" = 3 ] && pass "an earlier checkpoint resumes with its recorded options (3 epochs)" \
    || fail "earlier checkpoint: $rows epochs"
else
  fail "earlier checkpoint: $(cat "$work/err")"
fi

[ "$failures" = 0 ] && echo "all resume checks passed" || echo "$failures resume checks failed"
exit $((failures > 0))
