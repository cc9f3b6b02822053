#!/usr/bin/env bash
# `soma bench`: the JSON object (one line, parses, sane and consistent values), the table, the
# training mode, safetensors (MLP and the CNN fixture) and ONNX models, and bad flags (one-line
# `soma: error:` and a non-zero exit). A few seconds.
#   tests/cli/bench_test.sh <path to soma>
set -u
SOMA=${1:?usage: bench_test.sh SOMA}
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
CNN=$(dirname "$0")/data/cnn-run/model.safetensors

blobs_csv "$work/blobs.csv" 5
if ! "$SOMA" train --csv "$work/blobs.csv" --hidden 16,8 --epochs 1 --quiet --out "$work/run" \
     2> "$work/err"; then
  fail "train the model to time ($(cat "$work/err"))"
  exit 1
fi
MODEL=$work/run/model.safetensors

# check_json NAME FILE PYTHON-CONDITIONS...: FILE is one line holding one JSON object `j` for
# which every condition holds.
check_json() {
  local name=$1 file=$2
  shift 2
  if "$PY" - "$file" "$@" > "$work/why" 2>&1 <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
assert text.count("\n") == 1 and text.endswith("\n"), f"not one line: {text!r}"
j = json.loads(text)
lat = j["latency_ms"]
base = ["0 < lat['p50'] <= lat['p90'] <= lat['p99'] <= lat['max']",
        "lat['min'] <= lat['p50']",
        "j['samples_per_second'] > 0",
        # throughput is the timed batches over the timed seconds
        "abs(j['samples_per_second'] * j['seconds'] / j['batch_size'] - j['iterations']) < 1e-6 * j['iterations']",
        # the mean batch time cannot exceed the wall time per batch
        "lat['mean'] * j['iterations'] <= j['seconds'] * 1000 * 1.0001",
        "isinstance(j['cpu_isa'], str) and j['cpu_isa']"]
for cond in base + sys.argv[2:]:
    assert eval(cond), f"{cond} is false for {j}"
EOF
  then pass "$name"; else fail "$name: $(cat "$work/why")"; fi
}

# ---- inference, JSON -----------------------------------------------------------------------
if "$SOMA" bench --model "$MODEL" --batch-size 4 --threads 1 --warmup 3 --iterations 50 --json \
     > "$work/j1" 2> "$work/err"; then
  check_json "bench --json (MLP, inference)" "$work/j1" "j['batch_size'] == 4" "j['threads'] == 1" \
    "j['precision'] == 'fp32'" "j['mode'] == 'inference'" "j['iterations'] == 50" \
    "j['warmup'] == 3" "j['model'].endswith('model.safetensors')"
else
  fail "bench --json exits 0 ($(cat "$work/err"))"
fi

# --seconds: runs until the time is up
if "$SOMA" bench --model "$MODEL" --batch-size 8 --threads 1 --seconds 0.3 --json > "$work/j2" \
     2> "$work/err"; then
  check_json "bench --seconds 0.3" "$work/j2" "j['seconds'] >= 0.3" "j['iterations'] >= 1" \
    "j['batch_size'] == 8"
else
  fail "bench --seconds exits 0 ($(cat "$work/err"))"
fi

# --train: Adam steps on random labels
if "$SOMA" bench --model "$MODEL" --batch-size 16 --threads 1 --train --warmup 2 \
     --iterations 20 --json > "$work/j3" 2> "$work/err"; then
  check_json "bench --train --json" "$work/j3" "j['mode'] == 'train'" "j['iterations'] == 20"
else
  fail "bench --train exits 0 ($(cat "$work/err"))"
fi

# the CNN fixture (image input [1, 28, 28]), inference and training
for mode in "" "--train"; do
  if "$SOMA" bench --model "$CNN" --batch-size 2 --threads 1 --warmup 1 --iterations 3 $mode \
       --json > "$work/j4" 2> "$work/err"; then
    check_json "bench CNN ${mode:-inference}" "$work/j4" "j['iterations'] == 3" \
      "j['architecture'].startswith('cnn')"
  else
    fail "bench CNN ${mode:-inference} exits 0 ($(cat "$work/err"))"
  fi
done

# an ONNX model (the MLP exported)
if "$SOMA" export --model "$MODEL" --out "$work/m.onnx" > /dev/null 2> "$work/err" &&
   "$SOMA" bench --model "$work/m.onnx" --batch-size 4 --threads 1 --iterations 10 --json \
     > "$work/j5" 2> "$work/err"; then
  check_json "bench ONNX model" "$work/j5" "j['architecture'] == 'ONNX'"
  "$SOMA" bench --model "$work/m.onnx" --batch-size 4 --threads 1 --iterations 5 --train \
    --json > "$work/j6" 2> "$work/err" && check_json "bench ONNX --train" "$work/j6" \
    "j['mode'] == 'train'" || fail "bench ONNX --train ($(cat "$work/err"))"
else
  fail "bench ONNX model exits 0 ($(cat "$work/err"))"
fi

# ---- the table ------------------------------------------------------------------------------
out=$("$SOMA" bench --model "$MODEL" --threads 1 --iterations 20 2>&1)
for word in "samples/s" "p50" "p90" "p99" "fp32" "1 threads" "CPU "; do
  grep -qF -- "$word" <<< "$out" && pass "table shows '$word'" || fail "table shows '$word': $out"
done

# ---- cpu_isa: the level soma's kernels use, after the SOMA_MAX_CPU_ISA cap ------------------
# The expected level comes from the kernel's view of cpuid (/proc/cpuinfo's flags), capped.
levels=(sse41 avx2 avx512_core avx512_core_vnni avx512_core_bf16)
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2> /dev/null | cut -d: -f2) "
has() { [[ $flags == *" $1 "* ]]; }
top=0
if has avx512f && has avx512bw && has avx512vl; then
  top=2
  has avx512_vnni && top=3
  has avx512_vnni && has avx512_bf16 && top=4
elif has avx2 && has fma; then
  top=1
fi
for cap in "${levels[@]}" all; do
  c=${#levels[@]}
  for i in "${!levels[@]}"; do [ "${levels[$i]}" = "$cap" ] && c=$i; done
  expected=${levels[$((c < top ? c : top))]}
  if SOMA_MAX_CPU_ISA=$cap "$SOMA" bench --model "$MODEL" --threads 1 --warmup 1 --iterations 3 \
       --json > "$work/j8" 2> "$work/err"; then
    check_json "SOMA_MAX_CPU_ISA=$cap: cpu_isa $expected" "$work/j8" "j['cpu_isa'] == '$expected'"
  else
    fail "SOMA_MAX_CPU_ISA=$cap exits 0 ($(cat "$work/err"))"
  fi
done
out=$(SOMA_MAX_CPU_ISA=avx2 "$SOMA" bench --model "$MODEL" --threads 1 --iterations 3 2>&1)
expected=${levels[$((top < 1 ? top : 1))]}
grep -qF "CPU $expected," <<< "$out" && pass "table shows the capped 'CPU $expected'" ||
  fail "table shows the capped 'CPU $expected': $out"

# ---- bad input: one line on stderr, `soma: error:`, non-zero exit, nothing on stdout ---------
bad() {  # bad NAME EXPECTED ARGS...
  local name=$1 expected=$2
  shift 2
  "$SOMA" bench "$@" > "$work/out" 2> "$work/err"
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$(wc -l < "$work/err")" = 1 ] && grep -q '^soma: error: ' "$work/err" &&
     grep -qF -- "$expected" "$work/err" && [ ! -s "$work/out" ]; then
    pass "$name: exit $rc, $(cat "$work/err")"
  else
    fail "$name: exit $rc, stderr: $(cat "$work/err"), stdout: $(cat "$work/out")"
  fi
}
bad "batch size 0" "--batch-size 0" --model "$MODEL" --batch-size 0
bad "threads 0" "--threads 0" --model "$MODEL" --threads 0
bad "unknown precision" "--precision fp16" --model "$MODEL" --precision fp16
bad "missing file" "$work/nope.safetensors: no such file" --model "$work/nope.safetensors"
bad "iterations 0" "--iterations 0" --model "$MODEL" --iterations 0
bad "negative seconds" "--seconds -1" --model "$MODEL" --seconds -1
bad "iterations and seconds" "excludes" --model "$MODEL" --iterations 5 --seconds 1
bad "no --model" "--model is required" --batch-size 4
bad "int8 training" "--precision int8 --train" --model "$MODEL" --precision int8 --train
bad "not a model" "$work/blobs.csv" --model "$work/blobs.csv"
SOMA_MAX_CPU_ISA=avx3 bad "unknown SOMA_MAX_CPU_ISA" "SOMA_MAX_CPU_ISA: unknown ISA 'avx3'" \
  --model "$MODEL"
# bf16 (autocast) and int8 (quantize_dynamic of the float model) run; bf16 trains too.
for args in "--precision bf16" "--precision int8" "--precision bf16 --train"; do
  prec=$(set -- $args; echo "$2")
  if "$SOMA" bench --model "$MODEL" --threads 1 --iterations 5 $args --json \
       > "$work/j7" 2> "$work/err"; then
    check_json "$args runs" "$work/j7" "j['precision'] == '$prec'" "j['samples_per_second'] > 0"
  else
    fail "$args: stderr $(cat "$work/err")"
  fi
done

[ "$failures" = 0 ] && echo "all bench checks passed" || echo "$failures bench checks failed"
exit $((failures > 0))
