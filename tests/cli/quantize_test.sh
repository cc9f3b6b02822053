#!/usr/bin/env bash
# ctest cli.quantize: `soma quantize` (dynamic and static int8) and `soma train --precision bf16`.
#   - the checked-in trained CNN (tests/cli/data/cnn-run) quantized both ways keeps its test
#     accuracy on the 10,000 Fashion-MNIST test images within 0.3 points (the issue's bound);
#     eval, predict and summary read the quantized files;
#   - an MLP trained here, quantized dynamically, agrees with the float model;
#   - bf16 training runs and learns;
#   - bad arguments: one line, exit 1.
# Usage: quantize_test.sh SOMA
set -uo pipefail
SOMA=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
fashion=/usr/share/datasets/fashion-mnist
cnn=$here/data/cnn-run/model.safetensors

acc_of() { sed -n 's/.*accuracy \([0-9.]*\).*/\1/p' <<< "$1"; }
float_out=$("$SOMA" eval --model "$cnn" 2>&1) || fail "eval of the float CNN ($float_out)"
float_acc=$(acc_of "$float_out")

for mode in dynamic static; do
  args=()
  [ $mode = static ] && args=(--static --calibrate 8)
  if out=$("$SOMA" quantize --model "$cnn" --out "$work/cnn-$mode.safetensors" "${args[@]}" 2>&1); then
    pass "quantize $mode: $(echo "$out" | grep quantized)"
  else
    fail "quantize $mode ($out)"; continue
  fi
  out=$("$SOMA" eval --model "$work/cnn-$mode.safetensors" 2>&1) || { fail "eval $mode ($out)"; continue; }
  acc=$(acc_of "$out")
  if awk -v a="$acc" -v f="$float_acc" 'BEGIN { exit !(a >= f - 0.003 && a <= 1) }'; then
    pass "cnn int8 $mode: test accuracy $acc (float32: $float_acc)"
  else
    fail "cnn int8 $mode: test accuracy $acc, float32 $float_acc (more than 0.3 points lost)"
  fi
  summary=$("$SOMA" summary --model "$work/cnn-$mode.safetensors" 2>&1)
  grep -q "quantization: $mode int8" <<< "$summary" && pass "summary $mode names the quantization" ||
    fail "summary $mode: $summary"
  n=$("$SOMA" predict --model "$work/cnn-$mode.safetensors" 2> "$work/err" | wc -l)
  [ "$n" -eq 10000 ] && pass "predict $mode: 10000 classes" || fail "predict $mode: $n lines ($(cat "$work/err"))"
done
grep -q "QuantizedConv2d(1 -> 32, kernel 3x3, stride 1x1, padding 1x1, ReLU, int8)" \
  <<< "$("$SOMA" summary --model "$work/cnn-static.safetensors" 2>&1)" &&
  pass "static: the first Conv2d+BatchNorm2d+ReLU is one QuantizedConv2d" ||
  fail "static: the summary lacks the fused QuantizedConv2d"
# the quantized file is smaller: int8 weights
fsize() { stat -c %s "$1"; }
if [ "$(fsize "$work/cnn-dynamic.safetensors")" -lt "$(( $(fsize "$cnn") / 2 ))" ]; then
  pass "the dynamic int8 file is less than half the float32 one"
else
  fail "the dynamic int8 file is not smaller: $(fsize "$work/cnn-dynamic.safetensors") vs $(fsize "$cnn")"
fi

# An MLP trained here: float and int8 predictions agree on >= 97% of the test subset.
fashion_subset "$fashion" "$work/fm" 2000 1000
if "$SOMA" train --data "$work/fm" --hidden 64 --epochs 2 --quiet --out "$work/mlp" > /dev/null 2> "$work/err"; then
  "$SOMA" quantize --model "$work/mlp/model.safetensors" --out "$work/mlp-int8.safetensors" > /dev/null 2> "$work/err" ||
    fail "quantize mlp ($(cat "$work/err"))"
  "$SOMA" predict --model "$work/mlp/model.safetensors" --data "$work/fm" > "$work/f.txt"
  "$SOMA" predict --model "$work/mlp-int8.safetensors" --data "$work/fm" > "$work/q.txt"
  same=$(paste -d' ' "$work/f.txt" "$work/q.txt" | awk '$1 == $2' | wc -l)
  [ "$same" -ge 970 ] && pass "mlp: int8 and float32 predict the same class for $same of 1000" ||
    fail "mlp: int8 and float32 agree on only $same of 1000"
else
  fail "train mlp ($(cat "$work/err"))"
fi

# bf16 training: runs, records the precision, and learns (far above chance).
if "$SOMA" train --data "$work/fm" --hidden 64 --epochs 2 --precision bf16 --quiet \
     --out "$work/bf16" > /dev/null 2> "$work/err"; then
  acc=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_accuracy"])' "$work/bf16/metrics.json")
  awk -v a="$acc" 'BEGIN { exit !(a > 0.6) }' && pass "train --precision bf16: test accuracy $acc" ||
    fail "train --precision bf16: test accuracy $acc"
  # the checkpoint's recorded options (what --resume checks) hold the precision
  grep -aq '\\"precision\\": \\"bf16\\"' "$work/bf16/checkpoint.safetensors" &&
    pass "the checkpoint records --precision bf16" || fail "the checkpoint does not record its precision"
else
  fail "train --precision bf16 ($(cat "$work/err"))"
fi

bad() {
  local what=$1; shift
  "$SOMA" "$@" > /dev/null 2> "$work/err"
  local rc=$?
  if [ $rc -eq 1 ] && [ "$(wc -l < "$work/err")" -eq 1 ]; then pass "$what: exit 1, one line ($(cat "$work/err"))"
  else fail "$what: exit $rc, $(wc -l < "$work/err") lines: $(cat "$work/err")"; fi
}
bad "quantize twice" quantize --model "$work/cnn-dynamic.safetensors" --out "$work/x.safetensors"
bad "calibrate 0" quantize --model "$cnn" --out "$work/x.safetensors" --static --calibrate 0
bad "unknown observer" quantize --model "$cnn" --out "$work/x.safetensors" --static --observer kl
bad "data without --static" quantize --model "$cnn" --out "$work/x.safetensors" --data "$work/fm"
bad "missing model" quantize --model "$work/none.safetensors" --out "$work/x.safetensors"
bad "unwritable output" quantize --model "$cnn" --out "$work/no/such/dir/x.safetensors"
bad "precision fp16" train --data "$work/fm" --precision fp16 --epochs 1 --out "$work/y"

[ "$failures" -eq 0 ] && echo "cli_quantize: all passed" || echo "cli_quantize: $failures failed"
[ "$failures" -eq 0 ]
