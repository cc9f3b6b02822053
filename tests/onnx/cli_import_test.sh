#!/usr/bin/env bash
# ctest onnx.cli_import: `soma eval|predict|summary --model X.onnx` on imported models.
#   - tests/reference/onnx/fashion_cnn.onnx (torch-trained, exported by torch.onnx.export with
#     its own x / 255 and normalisation, a BatchNormalization kept; tests/reference/
#     onnx_import.py): `soma predict` on the 10,000 Fashion-MNIST test images agrees with
#     torch's checked-in predictions (>= 9990), `soma eval` prints torch's accuracy;
#   - `soma export` of the checked-in trained CNN (tests/cli/data/cnn-run), then
#     `soma eval --model x.onnx`: the accuracy `soma eval` gives on the .safetensors, and the
#     same predictions;
#   - `soma train --init X.onnx` fine-tunes an imported model (when the CLI has it).
# Usage: cli_import_test.sh SOMA [DATA_DIR]   (without Fashion-MNIST: skipped, exit 77)
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

# 3. Fine-tuning an imported model.
if "$SOMA" train --help 2>&1 | grep -q -- "--init"; then
  if "$SOMA" train --init "$fixtures/fashion_cnn.onnx" --data "$DATA" --epochs 1 --lr 1e-4 \
       --optimizer adam --validation 0.9 --quiet --out "$work/tuned" 2> "$work/err"; then
    pass "soma train --init fashion_cnn.onnx: $(grep -o '"test_accuracy": [0-9.]*' "$work/tuned/metrics.json")"
    out=$("$SOMA" eval --model "$work/tuned/model.onnx" --data "$DATA" 2>&1) \
      && pass "soma eval on the fine-tuned model.onnx: $out" \
      || fail "soma eval on the fine-tuned model.onnx: $out"
  else
    fail "soma train --init fashion_cnn.onnx ($(cat "$work/err"))"
  fi
fi
exit $((failures > 0))
