#!/usr/bin/env bash
# ctest onnx.cli_import: `soma eval|predict|summary --model X.onnx` on imported models.
#   - tests/reference/onnx/fashion_cnn.onnx (torch-trained, exported by torch.onnx.export with
#     its own x / 255 and normalisation, a BatchNormalization kept; tests/reference/
#     onnx_import.py): `soma predict` on the 10,000 Fashion-MNIST test images agrees with
#     torch's checked-in predictions (>= 9990), `soma eval` prints torch's accuracy;
#   - `soma export` of the checked-in trained CNN (tests/cli/data/cnn-run), then
#     `soma eval --model x.onnx`: the accuracy `soma eval` gives on the .safetensors, and the
#     same predictions;
#   - torch's MLP with a static batch of 1 and a final Softmax (fashion_mlp_static.onnx):
#     predict/eval/summary give torch's predictions, accuracy and negative log-likelihood;
#   - `soma train --init X.onnx` fine-tunes both: the weights change, the accuracy holds.
# Usage: cli_import_test.sh SOMA [DATA_DIR]   (without Fashion-MNIST: skipped, exit 77)
# SOMA_TEST_QUICK=1 (the sanitizer build): the fine-tuning of the CNN is left out (its 64,000
# evaluated samples take minutes there); the MLP's fine-tuning runs the same code path.
set -uo pipefail
SOMA=$1
DATA=${2:-/usr/share/datasets/fashion-mnist}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../cli/lib.sh"
fixtures=$here/../reference/onnx

if [ ! -e "$DATA/t10k-images-idx3-ubyte.gz" ] && [ ! -e "$DATA/t10k-images-idx3-ubyte" ]; then
  echo "SKIP: no Fashion-MNIST test images in $DATA"; exit 77
fi

# 1. torch's CNN.
if "$SOMA" predict --model "$fixtures/fashion_cnn.onnx" --data "$DATA" > "$work/pred" 2> "$work/err"; then
  grep -v '^#' "$fixtures/fashion_cnn_predictions.txt" > "$work/torch_pred"
  n=$(wc -l < "$work/pred")
  same=$(paste "$work/pred" "$work/torch_pred" | awk '$1 == $2' | wc -l)
  if [ "$n" = 10000 ] && [ "$same" -ge 9990 ]; then
    pass "torch's fashion_cnn.onnx: soma predict agrees with torch on $same/$n test images"
  else
    fail "torch's fashion_cnn.onnx: soma predict agrees with torch on $same/$n (>= 9990 of 10000)"
  fi
else
  fail "soma predict --model fashion_cnn.onnx ($(cat "$work/err"))"
fi
want=$(head -1 "$fixtures/fashion_cnn_predictions.txt" | sed -E 's/.*accuracy ([0-9.]+).*/\1/')
if out=$("$SOMA" eval --model "$fixtures/fashion_cnn.onnx" --data "$DATA" 2> "$work/err"); then
  got=$(echo "$out" | sed -E 's/.*accuracy ([0-9.]+).*/\1/')
  if awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; exit !(d < 0.0015 && d > -0.0015) }'; then
    pass "soma eval --model fashion_cnn.onnx: $out (torch: accuracy $want)"
  else
    fail "soma eval --model fashion_cnn.onnx: $out (torch: accuracy $want)"
  fi
else
  fail "soma eval --model fashion_cnn.onnx ($(cat "$work/err"))"
fi
if "$SOMA" summary --model "$fixtures/fashion_cnn.onnx" > "$work/sum" 2>&1 &&
   grep -q "OnnxModel(pytorch" "$work/sum" && grep -q "input  input \[-1, 1, 28, 28\]" "$work/sum" &&
   grep -q "Total params" "$work/sum"; then
  pass "soma summary --model fashion_cnn.onnx"
else
  fail "soma summary --model fashion_cnn.onnx: $(head -c 400 "$work/sum")"
fi

# 2. soma export -> soma eval on the .onnx == soma eval on the .safetensors.
cnn=$here/../cli/data/cnn-run/model.safetensors
if "$SOMA" export --model "$cnn" --out "$work/cnn.onnx" 2> "$work/err"; then
  a=$("$SOMA" eval --model "$cnn" --data "$DATA" 2>&1 | sed -E 's/.*accuracy ([0-9.]+).*/\1/')
  b=$("$SOMA" eval --model "$work/cnn.onnx" --data "$DATA" 2>&1 | sed -E 's/.*accuracy ([0-9.]+).*/\1/')
  if [ -n "$a" ] && [ "$a" = "$b" ]; then
    pass "exported CNN: soma eval on the .onnx gives the .safetensors' accuracy $a"
  else
    fail "exported CNN: accuracy $b on the .onnx, $a on the .safetensors"
  fi
  "$SOMA" predict --model "$cnn" --data "$DATA" > "$work/p1" 2>&1
  "$SOMA" predict --model "$work/cnn.onnx" --data "$DATA" > "$work/p2" 2>&1
  d=$(paste "$work/p1" "$work/p2" | awk '$1 != $2' | wc -l)
  [ "$d" -le 2 ] && [ "$(wc -l < "$work/p2")" = 10000 ] \
    && pass "exported CNN: the .onnx predicts the .safetensors' classes ($d of 10000 differ)" \
    || fail "exported CNN: $d of 10000 predictions differ"
else
  fail "soma export ($(cat "$work/err"))"
fi

# 3. torch's MLP exported without dynamic_axes: a static batch of 1, Softmax probabilities out.
#    The CLI feeds it in chunks of 1 and reads log(p) as the class scores: torch's predictions,
#    accuracy and negative log-likelihood.
static=$fixtures/fashion_mlp_static.onnx
static_ref=$fixtures/fashion_mlp_static_predictions.txt
if "$SOMA" predict --model "$static" --data "$DATA" > "$work/spred" 2> "$work/err"; then
  same=$(paste "$work/spred" <(grep -v '^#' "$static_ref") | awk '$1 == $2' | wc -l)
  [ "$same" -ge 9990 ] && [ "$(wc -l < "$work/spred")" = 10000 ] \
    && pass "static-batch softmax MLP: soma predict agrees with torch on $same/10000" \
    || fail "static-batch softmax MLP: soma predict agrees with torch on $same/10000 (>= 9990)"
else
  fail "soma predict --model fashion_mlp_static.onnx ($(cat "$work/err"))"
fi
want_acc=$(head -1 "$static_ref" | sed -E 's/.*accuracy ([0-9.]+).*/\1/')
want_loss=$(head -1 "$static_ref" | sed -E 's/.*loss ([0-9.]+).*/\1/')
if out=$("$SOMA" eval --model "$static" --data "$DATA" 2> "$work/err"); then
  got_acc=$(echo "$out" | sed -E 's/.*accuracy ([0-9.]+).*/\1/')
  got_loss=$(echo "$out" | sed -E 's/^loss ([0-9.]+).*/\1/')
  if awk -v a="$got_acc" -v b="$want_acc" -v c="$got_loss" -v d="$want_loss" \
       'BEGIN { e = a - b; f = c - d; exit !(e < 0.0015 && e > -0.0015 && f < 0.002 && f > -0.002) }'; then
    pass "static-batch softmax MLP: soma eval: $out (torch: accuracy $want_acc, loss $want_loss)"
  else
    fail "static-batch softmax MLP: soma eval: $out (torch: accuracy $want_acc, loss $want_loss)"
  fi
else
  fail "soma eval --model fashion_mlp_static.onnx ($(cat "$work/err"))"
fi
if "$SOMA" summary --model "$static" > "$work/ssum" 2>&1 &&
   grep -q "the batch size is fixed at 1" "$work/ssum" && grep -q "Softmax" "$work/ssum"; then
  pass "soma summary --model fashion_mlp_static.onnx names the static batch and the Softmax"
else
  fail "soma summary --model fashion_mlp_static.onnx: $(head -c 400 "$work/ssum")"
fi

# 4. Fine-tuning an imported model: the weights change (model.onnx differs from the input) and
#    the test accuracy holds (no more than a point below the model's own).
tune() {  # NAME MODEL WANT_ACCURACY
  local name=$1 model=$2 want=$3
  if ! "$SOMA" train --init "$model" --data "$DATA" --epochs 1 --lr 1e-4 --optimizer adam \
       --validation 0.9 --quiet --out "$work/tuned-$name" 2> "$work/err"; then
    fail "soma train --init $name.onnx ($(cat "$work/err"))"; return
  fi
  local acc
  acc=$(grep -o '"test_accuracy": [0-9.]*' "$work/tuned-$name/metrics.json" | grep -o '[0-9.]*$')
  if cmp -s "$model" "$work/tuned-$name/model.onnx"; then
    fail "soma train --init $name.onnx: model.onnx equals the input (no weight changed)"
  elif awk -v a="$acc" -v b="$want" 'BEGIN { exit !(a >= b - 0.01) }'; then
    pass "soma train --init $name.onnx: weights changed, test accuracy $acc (before: $want)"
  else
    fail "soma train --init $name.onnx: test accuracy $acc, more than a point below $want"
  fi
  local out
  out=$("$SOMA" eval --model "$work/tuned-$name/model.onnx" --data "$DATA" 2>&1) \
    && pass "soma eval on the fine-tuned $name model.onnx: $out" \
    || fail "soma eval on the fine-tuned $name model.onnx: $out"
}
if [ "${SOMA_TEST_QUICK:-0}" = 1 ]; then
  echo "SKIP  soma train --init fashion_cnn.onnx (SOMA_TEST_QUICK=1)"
else
  tune fashion_cnn "$fixtures/fashion_cnn.onnx" "$want"
fi
tune fashion_mlp_static "$static" "$want_acc"
exit $((failures > 0))
