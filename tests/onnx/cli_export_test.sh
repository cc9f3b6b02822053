#!/usr/bin/env bash
# ctest onnx.cli_export: `soma export` on models `soma train` wrote validates (ONNX checker,
# Debian python3-onnx) and predicts in ONNX Runtime (onnxruntime-node, scripts/bootstrap.sh
# --test) the same classes as `soma predict`:
#   - the checked-in trained CNN (tests/cli/data/cnn-run), on the whole Fashion-MNIST test set,
#     at opsets 17 and 13, and without preprocessing (the graph starts with the Conv);
#   - an MLP on CSV data (per-column normalisation) and a JSON layer list (tests/onnx/layers.json)
#     and the default MLP, each trained here for an epoch or two on small data;
#   - the CNN quantized by soma quantize (dynamic and static), exported as QDQ graphs;
#   - bad arguments: one line, exit 1.
# Usage: cli_export_test.sh SOMA ORT_DIR   (exit 77: skipped, node or ONNX Runtime missing)
set -uo pipefail
SOMA=$1
ORT_DIR=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../cli/lib.sh"
fashion=/usr/share/datasets/fashion-mnist

if ! command -v node >/dev/null 2>&1; then
  echo "SKIP: node is not installed (Node.js 20 runs ONNX Runtime here)"; exit 77
fi
if [ ! -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
  echo "SKIP: ONNX Runtime is not installed in $ORT_DIR (scripts/bootstrap.sh --test)"; exit 77
fi
if ! /usr/bin/python3 -c 'import onnx' 2>/dev/null; then
  fail "the ONNX checker needs Debian python3-onnx (scripts/bootstrap.sh --test)"; exit 1
fi
export NODE_PATH="$ORT_DIR/node_modules"
ort() { node "$here/ort_run.js" "$@"; }
check() { /usr/bin/python3 "$here/check_model.py" "$@"; }

# export_and_compare NAME MODEL ORT-MODE ORT-ARGS... -- SOMA-PREDICT-ARGS...
export_and_compare() {
  local name=$1 model=$2; shift 2
  local ort_args=() predict_args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do ort_args+=("$1"); shift; done
  shift
  predict_args=("$@")
  if ! "$SOMA" export --model "$model" --out "$work/$name.onnx" 2> "$work/err"; then
    fail "$name: export ($(cat "$work/err"))"; return
  fi
  if check "$work/$name.onnx" > "$work/check" 2>&1; then pass "$name: ONNX checker"
  else fail "$name: ONNX checker ($(cat "$work/check"))"; fi
  "$SOMA" predict --model "$model" "${predict_args[@]}" > "$work/$name.soma" 2> "$work/err" ||
    fail "$name: soma predict ($(cat "$work/err"))"
  if ort "${ort_args[0]}" "$work/$name.onnx" "${ort_args[@]:1}" > "$work/$name.ort" 2> "$work/err"; then
    local n differ
    n=$(wc -l < "$work/$name.soma")
    differ=$(paste -d' ' "$work/$name.soma" "$work/$name.ort" | awk '$1 != $2' | wc -l)
    if [ "$n" -gt 0 ] && [ "$differ" -eq 0 ] && [ "$(wc -l < "$work/$name.ort")" -eq "$n" ]; then
      pass "$name: ONNX Runtime predicts soma's classes on all $n samples"
    else
      fail "$name: ONNX Runtime and soma differ on $differ of $n samples"
    fi
  else
    fail "$name: ONNX Runtime ($(cat "$work/err"))"
  fi
}

# 1. The checked-in trained CNN on the whole test set.
cnn=$here/../cli/data/cnn-run/model.safetensors
export_and_compare cnn "$cnn" predict-idx "$fashion/t10k-images-idx3-ubyte.gz" 1,28,28 --
if "$SOMA" export --model "$cnn" --out "$work/cnn13.onnx" --opset 13 2> "$work/err" &&
   check "$work/cnn13.onnx" > "$work/check" 2>&1 &&
   ort predict-idx "$work/cnn13.onnx" "$fashion/t10k-images-idx3-ubyte.gz" 1,28,28 > "$work/cnn13.ort" &&
   cmp -s "$work/cnn13.ort" "$work/cnn.soma"; then
  pass "cnn: opset 13 validates and predicts the same classes"
else
  fail "cnn: opset 13 ($(cat "$work/err" "$work/check" 2>/dev/null))"
fi
if "$SOMA" export --model "$cnn" --out "$work/raw.onnx" --no-preprocessing 2> "$work/err" &&
   check "$work/raw.onnx" > "$work/check" 2>&1 &&
   /usr/bin/python3 -c 'import onnx, sys; m = onnx.load(sys.argv[1]); sys.exit(m.graph.node[0].op_type != "Conv")' "$work/raw.onnx"; then
  pass "cnn: --no-preprocessing starts the graph with the Conv"
else
  fail "cnn: --no-preprocessing ($(cat "$work/err" "$work/check" 2>/dev/null))"
fi
if /usr/bin/python3 -c '
import json, onnx, sys
m = {p.key: p.value for p in onnx.load(sys.argv[1]).metadata_props}
names = json.loads(m["class_names"])
sys.exit(not (names[0] == "T-shirt/top" and len(names) == 10 and m["soma_version"]))' "$work/cnn.onnx"; then
  pass "cnn: class names and soma's version in the metadata"
else
  fail "cnn: metadata"
fi

# 2. An MLP on CSV data (per-column normalisation).
blobs_csv "$work/blobs.csv" 5
if "$SOMA" train --csv "$work/blobs.csv" --label-column label --hidden 8 --epochs 2 --quiet \
     --out "$work/csv-run" > /dev/null 2> "$work/err"; then
  export_and_compare csv "$work/csv-run/model.safetensors" predict-csv "$work/blobs.csv" label 4 -- \
    --csv "$work/blobs.csv" --label-column label
else
  fail "csv: train ($(cat "$work/err"))"
fi

# 3. A JSON layer list and the default MLP, on a Fashion-MNIST subset.
fashion_subset "$fashion" "$work/fm" 600 300
for arch in "$here/layers.json" mlp; do
  name=$(basename "$arch" .json)
  shape=1,28,28
  [ "$arch" = mlp ] && shape=784
  if "$SOMA" train --data "$work/fm" --arch "$arch" --hidden 32 --epochs 1 --quiet \
       --out "$work/$name-run" > /dev/null 2> "$work/err"; then
    export_and_compare "$name" "$work/$name-run/model.safetensors" \
      predict-idx "$work/fm/t10k-images-idx3-ubyte" "$shape" -- --data "$work/fm"
  else
    fail "$name: train ($(cat "$work/err"))"
  fi
done

# 4. Quantized models (soma quantize) as QDQ graphs: ONNX Runtime's DynamicQuantizeLinear picks
# its zero point by the ONNX formula, which may differ from torch's (soma's) by one step, so
# the classes must agree on >= 99.5% of the test set (static: the same scale and zero point,
# only the float epilogue's rounding differs).
quantized_export() {
  local name=$1; shift
  if ! "$SOMA" quantize --model "$cnn" --out "$work/$name.safetensors" "$@" > /dev/null 2> "$work/err"; then
    fail "$name: soma quantize ($(cat "$work/err"))"; return
  fi
  if ! "$SOMA" export --model "$work/$name.safetensors" --out "$work/$name.onnx" 2> "$work/err"; then
    fail "$name: export ($(cat "$work/err"))"; return
  fi
  if check "$work/$name.onnx" > "$work/check" 2>&1; then pass "$name: ONNX checker"
  else fail "$name: ONNX checker ($(cat "$work/check"))"; fi
  /usr/bin/python3 -c '
import onnx, sys
ops = {n.op_type for n in onnx.load(sys.argv[1]).graph.node}
need = {"DequantizeLinear", sys.argv[2]}
sys.exit(not need <= ops)' "$work/$name.onnx" "$([ "$name" = cnn-int8-dynamic ] && echo DynamicQuantizeLinear || echo QuantizeLinear)" &&
    pass "$name: the graph holds the QDQ nodes" || fail "$name: QDQ nodes missing"
  "$SOMA" predict --model "$work/$name.safetensors" > "$work/$name.soma" 2> "$work/err" ||
    fail "$name: soma predict ($(cat "$work/err"))"
  if ort predict-idx "$work/$name.onnx" "$fashion/t10k-images-idx3-ubyte.gz" 1,28,28 > "$work/$name.ort" 2> "$work/err"; then
    local differ
    differ=$(paste -d' ' "$work/$name.soma" "$work/$name.ort" | awk '$1 != $2' | wc -l)
    if [ "$(wc -l < "$work/$name.ort")" -eq 10000 ] && [ "$differ" -le 50 ]; then
      pass "$name: ONNX Runtime predicts soma's classes on $((10000 - differ)) of 10000"
    else
      fail "$name: ONNX Runtime and soma differ on $differ of 10000"
    fi
  else
    fail "$name: ONNX Runtime ($(cat "$work/err"))"
  fi
}
quantized_export cnn-int8-dynamic
quantized_export cnn-int8-static --static --calibrate 4

# 5. Bad arguments: one line on stderr, exit 1.
bad() {
  local what=$1; shift
  "$SOMA" export "$@" > /dev/null 2> "$work/err"
  local rc=$?
  if [ $rc -eq 1 ] && [ "$(wc -l < "$work/err")" -eq 1 ]; then pass "$what: exit 1, one line"
  else fail "$what: exit $rc, $(wc -l < "$work/err") lines: $(cat "$work/err")"; fi
}
bad "opset 12" --model "$cnn" --out "$work/x.onnx" --opset 12
bad "opset 18" --model "$cnn" --out "$work/x.onnx" --opset 18
bad "missing model" --model "$work/none.safetensors" --out "$work/x.onnx"
bad "unwritable output" --model "$cnn" --out "$work/no/such/dir/x.onnx"
bad "wrong class-name count" --model "$cnn" --out "$work/x.onnx" --class-names a,b

[ "$failures" -eq 0 ] && echo "cli_export: all passed" || echo "cli_export: $failures failed"
[ "$failures" -eq 0 ]
