#!/usr/bin/env bash
# End-to-end tests of the `soma` tool: outputs, eval/predict/summary, exact resume, bad input
# (one-line message, non-zero exit, no partial files) and, when Chromium is installed, the
# report rendered headless.
#   tests/cli/cli_test.sh <path to soma> [fashion-mnist dir]
set -u
SOMA=${1:?usage: cli_test.sh SOMA [DATA_DIR]}
DATA=${2:-/usr/share/datasets/fashion-mnist}
. "$(dirname "$0")/lib.sh"

blobs_csv "$work/blobs.csv" 7

# ---- training on CSV: outputs and metrics -------------------------------------------------
if "$SOMA" train --csv "$work/blobs.csv" --label-column label --hidden 16 --epochs 4 \
     --batch-size 32 --patience 0 --quiet --out "$work/run" 2> "$work/err"; then
  pass "train on CSV exits 0"
else
  fail "train on CSV exits 0 ($(cat "$work/err"))"
fi
for f in model.safetensors checkpoint.safetensors history.csv metrics.json report.html; do
  [ -s "$work/run/$f" ] && pass "run/$f written" || fail "run/$f written"
done
for k in test_accuracy test_loss epochs_run best_epoch train_seconds samples_per_second; do
  grep -q "\"$k\"" "$work/run/metrics.json" && pass "metrics.json has $k" || fail "metrics.json has $k"
done
[ "$(ls -a "$work/run" | grep -c tmp)" = 0 ] && pass "no temporary files left" || fail "no temporary files left"
lines=$(wc -l < "$work/run/history.csv")
[ "$lines" = 5 ] && pass "history.csv has a header and 4 epochs" || fail "history.csv has 5 lines (got $lines)"

# ---- eval / predict / summary -------------------------------------------------------------
out=$("$SOMA" eval --model "$work/run/model.safetensors" --csv "$work/blobs.csv" --label-column label)
echo "$out" | grep -q "accuracy" && pass "eval prints accuracy ($out)" || fail "eval prints accuracy"
n=$("$SOMA" predict --model "$work/run/model.safetensors" --csv "$work/blobs.csv" --label-column label | wc -l)
[ "$n" = 600 ] && pass "predict prints one class per row" || fail "predict prints 600 lines (got $n)"
"$SOMA" summary --model "$work/run/model.safetensors" | grep -q "Total params" \
  && pass "summary prints the layer table" || fail "summary prints the layer table"

# ---- resume extending a run: 2 epochs + 2 more == 4 uninterrupted --------------------------
# (a schedule that does not depend on --epochs; early stopping (default patience), dropout and
# shuffling on; the resume names only --out and --epochs: the rest is recorded. Interrupted
# runs with every default, cosine included, are tests/cli/resume_test.sh's.)
common=(--csv "$work/blobs.csv" --label-column label --hidden 16 --batch-size 32 \
        --dropout 0.3 --quiet --schedule exponential)
"$SOMA" train "${common[@]}" --epochs 4 --out "$work/full" 2> "$work/err" || fail "4-epoch run ($(cat "$work/err"))"
"$SOMA" train "${common[@]}" --epochs 2 --out "$work/part" 2> "$work/err" || fail "2-epoch run ($(cat "$work/err"))"
"$SOMA" train --epochs 4 --out "$work/part" --resume 2> "$work/err" || fail "resume ($(cat "$work/err"))"
if cmp -s "$work/full/model.safetensors" "$work/part/model.safetensors"; then
  pass "resume gives bit-identical weights"
else
  fail "resume gives bit-identical weights"
fi

# ---- --label-smoothing: changes the training loss, recorded, checked on resume ---------------
"$SOMA" train "${common[@]}" --epochs 2 --label-smoothing 0.2 --out "$work/ls" 2> "$work/err" \
  || fail "--label-smoothing run ($(cat "$work/err"))"
"$SOMA" train "${common[@]}" --epochs 2 --out "$work/ls0" 2> "$work/err" || fail "2-epoch run ($(cat "$work/err"))"
cmp -s "$work/ls/model.safetensors" "$work/ls0/model.safetensors" \
  && fail "--label-smoothing 0.2 trained the same weights as without" \
  || pass "--label-smoothing 0.2 trains other weights"
"$SOMA" train --out "$work/ls" --resume --label-smoothing 0.1 --epochs 3 > /dev/null 2> "$work/err" \
  && fail "--resume with another --label-smoothing was accepted" \
  || { grep -qF -- "--label-smoothing 0.1 differs from the recorded 0.2" "$work/err" \
         && pass "--resume names --label-smoothing and both values" \
         || fail "--label-smoothing on resume: $(cat "$work/err")"; }

# ---- determinism: the same seed and flags give bit-identical weights ------------------------
# (twice at 2 threads and twice at 1 thread, with a layer wide enough that its GEMMs are split
# over the threads; 1 vs 2 threads may differ in the last bits of GEMM results, see README)
for t in 1 2; do
  for r in a b; do
    "$SOMA" train --csv "$work/blobs.csv" --label-column label --hidden 1024 --batch-size 300 \
      --dropout 0.3 --patience 0 --quiet --epochs 2 --threads $t --out "$work/det$t$r" \
      2> "$work/err" || fail "determinism run ($(cat "$work/err"))"
  done
  cmp -s "$work/det${t}a/model.safetensors" "$work/det${t}b/model.safetensors" \
    && pass "two runs at $t thread(s), same seed: bit-identical weights" \
    || fail "two runs at $t thread(s), same seed: weights differ"
done

# ---- bad input: one line on stderr, non-zero exit, no core dump, no partial output ---------
bad() {  # bad "name" args...
  local name=$1; shift
  "$SOMA" "$@" > "$work/out" 2> "$work/err"
  local rc=$?
  local nl; nl=$(wc -l < "$work/err")
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$nl" = 1 ]; then
    pass "$name -> exit $rc: $(cat "$work/err")"
  else
    fail "$name (exit $rc, $nl lines: $(head -c 300 "$work/err"))"
  fi
}
printf 'a,b,label\n1,2,0\n3,x,1\n' > "$work/text.csv"
printf 'a,b,label\n1,2,0\n3,4\n' > "$work/ragged.csv"
: > "$work/empty.csv"
printf 'a,b,label\n1,2,0\n3,4,-1\n' > "$work/neglabel.csv"
printf 'a,b,label\n1,nan,0\n3,4,1\n' > "$work/nan.csv"
mkdir -p "$work/notidx" && printf "garbage" > "$work/notidx/train-images-idx3-ubyte" && printf "garbage!" > "$work/notidx/train-labels-idx1-ubyte"
bad "unknown subcommand" frobnicate
bad "unknown flag" train --frobnicate 3
bad "missing CSV file" train --csv "$work/nope.csv" --out "$work/o1"
bad "directory instead of CSV" train --csv "$work" --out "$work/o2"
grep -q "is a directory" "$work/err" && pass "the message says it is a directory" || fail "directory message: $(cat "$work/err")"
bad "CSV with a text cell" train --csv "$work/text.csv" --label-column label --out "$work/o3"
bad "ragged CSV" train --csv "$work/ragged.csv" --label-column label --out "$work/o4"
bad "empty CSV" train --csv "$work/empty.csv" --out "$work/o5"
bad "negative label" train --csv "$work/neglabel.csv" --label-column label --out "$work/o6"
bad "NaN feature" train --csv "$work/nan.csv" --label-column label --out "$work/o7"
bad "missing label column" train --csv "$work/blobs.csv" --label-column nope --out "$work/o8"
bad "zero batch size" train --csv "$work/blobs.csv" --batch-size 0 --out "$work/o9"
bad "negative batch size" train --csv "$work/blobs.csv" --batch-size -4 --out "$work/o10"
bad "unknown optimizer" train --csv "$work/blobs.csv" --optimizer adamax --out "$work/o11"
bad "negative lr" train --csv "$work/blobs.csv" --lr -1 --out "$work/o12"
bad "dropout 1.5" train --csv "$work/blobs.csv" --dropout 1.5 --out "$work/o13"
bad "label smoothing 1" train --csv "$work/blobs.csv" --label-smoothing 1 --out "$work/o13b"
bad "bad hidden list" train --csv "$work/blobs.csv" --hidden 16,x --out "$work/o14"
bad "unwritable output directory" train --csv "$work/blobs.csv" --out /proc/soma-cannot-write
bad "IDX with a wrong magic" train --data "$work/notidx" --out "$work/o15"
bad "missing model" eval --model "$work/nope.safetensors" --csv "$work/blobs.csv"
bad "model is not safetensors" eval --model "$work/blobs.csv" --csv "$work/blobs.csv"
head -c 100 "$work/run/model.safetensors" > "$work/trunc.safetensors"
bad "truncated safetensors" eval --model "$work/trunc.safetensors" --csv "$work/blobs.csv"
printf 'a,b,label\n1,2,0\n3,4,1\n' > "$work/two.csv"
bad "features do not match the model" eval --model "$work/run/model.safetensors" --csv "$work/two.csv"
bad "resume without a checkpoint" train --csv "$work/blobs.csv" --out "$work/empty-run" --resume
printf '{"epochs": "many"}' > "$work/bad.json"
bad "config with a bad value" train --config "$work/bad.json" --csv "$work/blobs.csv"
printf 'epochs = \n' > "$work/bad.toml"
bad "malformed TOML config" train --config "$work/bad.toml" --csv "$work/blobs.csv"
printf 'a,b,label\n1,2,0\n3,4,99999999999\n' > "$work/biglabel.csv"
bad "label out of range" train --csv "$work/biglabel.csv" --label-column label --out "$work/o16"
printf 'a,b,label\n1,2,0\n3,4,1.5\n' > "$work/fraclabel.csv"
bad "fractional label" train --csv "$work/fraclabel.csv" --label-column label --out "$work/o17"
bad "lr = nan" train --csv "$work/blobs.csv" --lr nan --out "$work/o18"
# IDX files: header bytes written with printf (idx_header in lib.sh).
mkdir -p "$work/tidx" "$work/cidx"
{ printf "$(idx_header 3 10 28 28)"; head -c 100 /dev/zero; } > "$work/tidx/train-images-idx3-ubyte"
{ printf "$(idx_header 1 10)"; head -c 10 /dev/zero; } > "$work/tidx/train-labels-idx1-ubyte"
bad "truncated IDX" train --data "$work/tidx" --out "$work/o19"
{ printf "$(idx_header 3 3 2 2)"; head -c 12 /dev/zero; } > "$work/cidx/train-images-idx3-ubyte"
{ printf "$(idx_header 1 4)"; head -c 4 /dev/zero; } > "$work/cidx/train-labels-idx1-ubyte"
bad "image and label counts differ" train --data "$work/cidx" --out "$work/o20"
# A checkpoint of another architecture: --resume (a copy of) the --hidden 16 run with --hidden 32.
cp -r "$work/run" "$work/arch"
bad "checkpoint of another architecture" train --csv "$work/blobs.csv" --label-column label \
  --hidden 32 --epochs 5 --out "$work/arch" --resume
# safetensors whose two tensors share bytes [8, 12).
h='{"0.weight":{"dtype":"F32","shape":[1,4],"data_offsets":[0,16]},"0.bias":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}'
{ printf "\\x$(printf %02x ${#h})\\x00\\x00\\x00\\x00\\x00\\x00\\x00"; printf '%s' "$h"; head -c 16 /dev/zero; } > "$work/overlap.safetensors"
bad "safetensors with overlapping offsets" eval --model "$work/overlap.safetensors" --csv "$work/blobs.csv"
# ONNX models (--model X.onnx, soma::onnx::load): bad files and data that does not fit.
onnx_dir=$(cd "$(dirname "$0")/../reference/onnx" && pwd)
bad "missing ONNX file" eval --model "$work/nope.onnx" --csv "$work/blobs.csv"
printf 'a,b,label\n1,2,0\n' > "$work/text.onnx"
bad "ONNX file that is not protobuf" eval --model "$work/text.onnx" --csv "$work/blobs.csv"
head -c 2000 "$onnx_dir/mlp.onnx" > "$work/trunc.onnx"
bad "truncated ONNX file" predict --model "$work/trunc.onnx" --csv "$work/blobs.csv"
grep -q "bytes but only" "$work/err" && pass "truncated ONNX: the message says so" \
  || fail "truncated ONNX message: $(cat "$work/err")"
# mlp.onnx ends with its opset_import (version 13 in the last byte): make it opset 12.
{ head -c -1 "$onnx_dir/mlp.onnx"; printf '\x0c'; } > "$work/opset12.onnx"
bad "ONNX opset 12" summary --model "$work/opset12.onnx"
grep -q "opset 12 of the default domain is not supported" "$work/err" \
  && pass "ONNX opset 12: the message names it" || fail "ONNX opset message: $(cat "$work/err")"
bad "ONNX model of 12 inputs on 4 CSV features" eval --model "$onnx_dir/mlp.onnx" --csv "$work/blobs.csv" --label-column label
grep -q "features per sample, the ONNX model" "$work/err" \
  && pass "ONNX input size: the message names both" || fail "ONNX input message: $(cat "$work/err")"
bad "--init of a file that is not .onnx" train --init "$work/blobs.csv" --csv "$work/blobs.csv" --out "$work/oi1"
bad "--init with --arch" train --init "$onnx_dir/mlp.onnx" --arch cnn --csv "$work/blobs.csv" --out "$work/oi2"
bad "--init with --resume" train --init "$onnx_dir/mlp.onnx" --csv "$work/blobs.csv" --resume --out "$work/oi3"
bad "--init ONNX model of 12 inputs on 4 CSV features" train --init "$onnx_dir/mlp.onnx" \
  --csv "$work/blobs.csv" --label-column label --out "$work/oi4"
# A run whose loss becomes NaN stops naming the epoch and batch; --detect-anomaly names the op.
bad "loss becomes NaN (sgd, lr 1e10)" train --csv "$work/blobs.csv" --label-column label \
  --optimizer sgd --lr 1e10 --quiet --out "$work/nan-run"
grep -Eq "non-finite loss \(nan\) at epoch [0-9]+, batch [0-9]+" "$work/err" \
  && pass "the NaN message names epoch and batch" || fail "NaN message: $(cat "$work/err")"
bad "--detect-anomaly" train --csv "$work/blobs.csv" --label-column label --optimizer sgd \
  --lr 1e10 --quiet --detect-anomaly --out "$work/anomaly-run"
grep -Eq "detect_anomaly: the forward of linear produced (inf|nan)" "$work/err" \
  && pass "--detect-anomaly names the op" || fail "--detect-anomaly: $(cat "$work/err")"
# --arch FILE.json, --input-shape, --augment (issue 18): one line naming the layer index, its
# type and the shapes, before training.
printf '[{"type": "Linear", "in_features": 4, "out_features": 3}, {"type": "Frobnicate"}]' > "$work/unknown_type.json"
bad "unknown layer type" train --csv "$work/blobs.csv" --arch "$work/unknown_type.json" --out "$work/o21"
grep -qF "arch: layer 1: unknown type 'Frobnicate' (known: " "$work/err" && pass "the message names layer 1 and the type" || fail "unknown type: $(cat "$work/err")"
printf '[{"type": "Linear", "in_features": 4, "out_feature": 3}]' > "$work/bad_arg.json"
bad "unknown layer argument" train --csv "$work/blobs.csv" --arch "$work/bad_arg.json" --out "$work/o22"
grep -qF "arch: layer 0 (Linear): unknown argument 'out_feature' (Linear takes 'in_features', 'out_features', 'bias')" "$work/err" \
  && pass "the message lists Linear's arguments" || fail "unknown argument: $(cat "$work/err")"
printf '[{"type": "Linear", "in_features": 4, "out_features": "3"}]' > "$work/bad_type.json"
bad "ill-typed layer argument" train --csv "$work/blobs.csv" --arch "$work/bad_type.json" --out "$work/o23"
grep -qF "arch: layer 0 (Linear): 'out_features' must be an integer, got \"3\"" "$work/err" \
  && pass "the message names the argument and its value" || fail "ill-typed argument: $(cat "$work/err")"
printf '[{"type": "Linear", "in_features": 4, "out_features": 8}, {"type": "ReLU"}, {"type": "Linear", "in_features": 9, "out_features": 3}]' > "$work/no_chain.json"
bad "layers that do not chain" train --csv "$work/blobs.csv" --arch "$work/no_chain.json" --out "$work/o24"
grep -qF "arch: layer 2 (Linear): input [1, 8]: " "$work/err" && pass "the message names layer 2 and its input [1, 8]" || fail "chain: $(cat "$work/err")"
printf '[{"type": "Linear", "in_features": 4, "out_features": 8}]' > "$work/bad_out.json"
bad "last layer's output is not [1, classes]" train --csv "$work/blobs.csv" --arch "$work/bad_out.json" --out "$work/o25"
grep -qF "outputs [1, 8] for an input [1, 4]; the data has 3 classes" "$work/err" && pass "the message names the output and the classes" || fail "output: $(cat "$work/err")"
printf '[{"type": "Dropout", "p": 1.5}, {"type": "Linear", "in_features": 4, "out_features": 3}]' > "$work/bad_value.json"
bad "a value the layer refuses" train --csv "$work/blobs.csv" --arch "$work/bad_value.json" --out "$work/o26"
printf '{"type": "Linear"}' > "$work/not_list.json"
bad "arch file that is not a list" train --csv "$work/blobs.csv" --arch "$work/not_list.json" --out "$work/o27"
bad "missing arch file" train --csv "$work/blobs.csv" --arch "$work/nope.json" --out "$work/o28"
bad "unknown --arch" train --csv "$work/blobs.csv" --arch resnet --out "$work/o29"
bad "malformed --input-shape" train --csv "$work/blobs.csv" --input-shape 1,x,2 --out "$work/o30"
bad "--input-shape of the wrong size" train --csv "$work/blobs.csv" --input-shape 1,3,3 --out "$work/o31"
grep -qF "has 9 elements, the samples of" "$work/err" && pass "the message names both sizes" || fail "input shape: $(cat "$work/err")"
bad "--input-shape 0,4" train --csv "$work/blobs.csv" --input-shape 0,4 --out "$work/o32"
bad "unknown --augment" train --csv "$work/blobs.csv" --augment rotate --out "$work/o33"
bad "--augment crop without images" train --csv "$work/blobs.csv" --augment crop --out "$work/o34"
for d in o1 o2 o3 o4 o5 o6 o7 o8 o9 o10 o11 o12 o13 o14 o15 o16 o17 o18 o19 o20 o21 o22 o23 o24 o25 o26 o27 o28 o29 o30 o31 o32 o33 o34; do
  if [ -d "$work/$d" ] && [ -n "$(ls -A "$work/$d")" ]; then fail "no output left in $d"; fi
done

# ---- config file: flags override it --------------------------------------------------------
printf 'hidden = [8]\nepochs = 1\nbatch_size = 64\nquiet = true\n' > "$work/run.toml"
"$SOMA" train --config "$work/run.toml" --epochs 2 --csv "$work/blobs.csv" --label-column label \
  --out "$work/cfg" 2> "$work/err" && grep -q '"epochs_run": 2' "$work/cfg/metrics.json" \
  && pass "TOML config read, --epochs overrides it" || fail "TOML config ($(cat "$work/err"))"

# ---- --arch FILE.json, --input-shape, --augment, and the model file's layer list (issue 18) --
# CSV rows of 4 features seen as 1x2x2 images: the ReLU and Identity outputs are image stacks,
# so the report shows feature maps (as it does for convolutions).
cat > "$work/layers.json" <<'JSON'
[{"type": "ReLU"}, {"type": "Identity"}, {"type": "Flatten"},
 {"type": "Linear", "in_features": 4, "out_features": 16}, {"type": "Tanh"},
 {"type": "Dropout", "p": 0.1}, {"type": "Linear", "in_features": 16, "out_features": 3}]
JSON
jcommon=(--csv "$work/blobs.csv" --label-column label --arch "$work/layers.json" --input-shape 1,2,2 \
         --augment flip --lr 1e-2 --batch-size 32 --quiet --schedule exponential)
if "$SOMA" train "${jcommon[@]}" --epochs 6 --out "$work/json" 2> "$work/err"; then
  pass "train --arch FILE.json --input-shape 1,2,2 --augment flip"
  out=$("$SOMA" eval --model "$work/json/model.safetensors" --csv "$work/blobs.csv" --label-column label)
  acc=$(echo "$out" | sed -n 's/.*accuracy \([0-9.]*\).*/\1/p')
  awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' && pass "the JSON model evaluates: $out" || fail "JSON model eval: $out"
  n=$("$SOMA" predict --model "$work/json/model.safetensors" --csv "$work/blobs.csv" --label-column label | wc -l)
  [ "$n" = 600 ] && pass "the JSON model predicts 600 rows" || fail "JSON model predict ($n rows)"
  "$SOMA" summary --model "$work/json/model.safetensors" > "$work/sum" 2>&1
  grep -q "input \[1, 1, 2, 2\]" "$work/sum" && grep -q "Tanh" "$work/sum" \
    && pass "summary rebuilds the layer list for [1, 1, 2, 2]" || fail "JSON summary: $(cat "$work/sum")"
  grep -aq '\\"layers\\":\[{\\"type\\":\\"ReLU\\"}' "$work/json/model.safetensors" \
    && grep -aq '\\"input_shape\\":\[1,2,2\]' "$work/json/model.safetensors" \
    && pass "model.safetensors records the layer list and the input shape" \
    || fail "model.safetensors records the layer list and the input shape"
  grep -q 'Feature maps of one test image' "$work/json/report.html" \
    && grep -q '<h3>layer 0: ReLU: output \[1, 1, 2, 2\]</h3>' "$work/json/report.html" \
    && pass "report.html shows the 4-D outputs as feature maps" || fail "report feature maps"
  grep -q '<table class="metrics" id="metrics">' "$work/json/report.html" \
    && grep -q '<th>test accuracy</th>' "$work/json/report.html" \
    && pass "report.html shows the metrics as a table" || fail "report metrics table"
  # the torch twin of docs/interop.md (torch.nn.Sequential from the JSON layer list) predicts
  # the same classes
  if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    "$SOMA" predict --model "$work/json/model.safetensors" --csv "$work/blobs.csv" > "$work/soma_pred"
    /usr/bin/python3 "$(dirname "$0")/torch_twin.py" "$work/json/model.safetensors" "$work/blobs.csv" label \
      > "$work/torch_pred" 2> "$work/err" && cmp -s "$work/soma_pred" "$work/torch_pred" \
      && pass "the torch twin of the JSON model predicts as soma" || fail "torch twin ($(tail -2 "$work/err"))"
  fi
  # --resume: the recorded --arch (the run keeps its layer list even if the file moves);
  # another --arch is an error naming the flag and both values
  "$SOMA" train "${jcommon[@]}" --epochs 3 --out "$work/json-part" 2> "$work/err" || fail "3-epoch JSON run ($(cat "$work/err"))"
  mv "$work/layers.json" "$work/layers-moved.json"
  "$SOMA" train --epochs 6 --out "$work/json-part" --resume --quiet 2> "$work/err" \
    && cmp -s "$work/json/model.safetensors" "$work/json-part/model.safetensors" \
    && pass "a JSON-layer run resumed (its file moved away) equals the uninterrupted run" \
    || fail "JSON-layer resume ($(cat "$work/err"))"
  mv "$work/layers-moved.json" "$work/layers.json"
  bad "--resume with another --arch" train --arch cnn --epochs 7 --out "$work/json-part" --resume
  grep -qF -- "--arch cnn differs from the recorded $work/layers.json (give --override" "$work/err" \
    && pass "the message names --arch and both values" || fail "--arch on resume: $(cat "$work/err")"
  bad "--resume with another --augment" train --augment crop,flip --epochs 7 --out "$work/json-part" --resume
  grep -qF -- "--augment crop,flip differs from the recorded flip" "$work/err" \
    && pass "the message names --augment and both values" || fail "--augment on resume: $(cat "$work/err")"
else
  fail "train --arch FILE.json ($(cat "$work/err"))"
fi
# the same options from a TOML config file
printf 'arch = "%s"\ninput_shape = [1, 2, 2]\naugment = ["flip"]\nepochs = 1\nquiet = true\n' "$work/layers.json" > "$work/arch.toml"
"$SOMA" train --config "$work/arch.toml" --csv "$work/blobs.csv" --label-column label --out "$work/toml-arch" 2> "$work/err" \
  && grep -aqF '\"augment\": [' "$work/toml-arch/checkpoint.safetensors" \
  && grep -aqF '\"input_shape\": [' "$work/toml-arch/checkpoint.safetensors" \
  && pass "TOML arch, input_shape and augment read and recorded" || fail "TOML arch ($(cat "$work/err"))"
# --arch mlp with --augment: IDX-like rows seen as images for the crop and flip, flat again after
"$SOMA" train --csv "$work/blobs.csv" --label-column label --input-shape 1,2,2 --augment crop,flip \
  --hidden 8 --epochs 1 --quiet --out "$work/mlp-aug" 2> "$work/err" \
  && "$SOMA" summary --model "$work/mlp-aug/model.safetensors" | grep -q "input \[1, 4\]" \
  && pass "--arch mlp --augment crop,flip keeps flat samples" || fail "MLP augment ($(cat "$work/err"))"

# ---- Fashion-MNIST, one epoch, and the report in headless Chromium -------------------------
if [ -d "$DATA" ]; then
  "$SOMA" train --data "$DATA" --epochs 1 --quiet --out "$work/fm" 2> "$work/err" \
    && pass "one epoch on Fashion-MNIST" || fail "one epoch on Fashion-MNIST ($(cat "$work/err"))"
  # interop with PyTorch, when /usr/bin/python3 has torch (python3-torch)
  here=$(cd "$(dirname "$0")/.." && pwd)
  if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    /usr/bin/python3 "$here/interop/fashion_interop.py" soma-to-torch "$SOMA" "$work/fm" > "$work/io1" 2>&1 \
      && pass "soma model in torch: $(cat "$work/io1")" || fail "soma model in torch: $(tail -3 "$work/io1")"
    /usr/bin/python3 "$here/interop/fashion_interop.py" torch-to-soma "$SOMA" "$work/tm" > "$work/io2" 2>&1 \
      && pass "torch model in soma eval: $(cat "$work/io2")" || fail "torch model in soma eval: $(tail -3 "$work/io2")"
  else
    echo "skip  PyTorch interop (no python3-torch)"
  fi
  # --arch cnn (the preset) on a Fashion-MNIST subset, with augmentation: [N, 1, 28, 28] inputs,
  # the model file rebuilt by eval / predict / summary, filters and feature maps in the report.
  # (Skipped, saying so, in a build whose layer registry has no Conv2d yet.)
  fashion_subset "$DATA" "$work/fm-small" 512 128
  if "$SOMA" train --data "$work/fm-small" --arch cnn --augment crop,flip --epochs 1 --batch-size 64 \
       --quiet --out "$work/cnn" 2> "$work/err"; then
    pass "train --arch cnn --augment crop,flip"
    "$SOMA" eval --model "$work/cnn/model.safetensors" --data "$work/fm-small" > "$work/out" 2>&1 \
      && grep -q "samples 128" "$work/out" && pass "cnn eval: $(cat "$work/out")" || fail "cnn eval: $(cat "$work/out")"
    n=$("$SOMA" predict --model "$work/cnn/model.safetensors" --data "$work/fm-small" | wc -l)
    [ "$n" = 128 ] && pass "cnn predict prints 128 classes" || fail "cnn predict ($n lines)"
    "$SOMA" summary --model "$work/cnn/model.safetensors" | grep -q "input \[1, 1, 28, 28\]" \
      && pass "cnn summary for [1, 1, 28, 28]" || fail "cnn summary"
    grep -q "First layer's filters" "$work/cnn/report.html" && grep -q "Feature maps of one test image" "$work/cnn/report.html" \
      && pass "the cnn report shows filters and feature maps" || fail "the cnn report shows filters and feature maps"
    if /usr/bin/python3 -c "import torch" 2>/dev/null; then
      "$SOMA" predict --model "$work/cnn/model.safetensors" --data "$work/fm-small" > "$work/soma_pred"
      /usr/bin/python3 "$(dirname "$0")/torch_twin.py" "$work/cnn/model.safetensors" --idx \
        "$work/fm-small/t10k-images-idx3-ubyte" > "$work/torch_pred" 2> "$work/err"
      same=$(paste "$work/soma_pred" "$work/torch_pred" | awk '$1 == $2' | wc -l)
      [ "$same" -ge 127 ] && pass "the torch twin of the cnn agrees on $same/128 test images" \
        || fail "cnn torch twin: $same/128 agree ($(tail -2 "$work/err"))"
    fi
  else
    fail "train --arch cnn ($(cat "$work/err"))"
  fi
  chrome=$(command -v chromium || command -v chromium-browser || true)
  if [ -n "$chrome" ] && [ -s "$work/fm/report.html" ]; then
    dom=$(timeout 60 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
      --disable-background-networking --disable-component-update --disable-sync \
      --user-data-dir="$work/chrome" --dump-dom "file://$work/fm/report.html" 2>/dev/null)
    drawn=$(echo "$dom" | grep -o 'data-drawn="1"' | wc -l)
    lines=$(echo "$dom" | grep -o '<polyline' | wc -l)
    echo "$dom" | grep -q 'data-ready="1"' && pass "report script ran in Chromium" || fail "report script ran in Chromium"
    [ "$drawn" -ge 1 ] && pass "Chromium drew $drawn misclassified images" || fail "Chromium drew the images"
    [ "$lines" -ge 4 ] && pass "report has $lines curves" || fail "report curves ($lines)"
    if [ -s "$work/json/report.html" ]; then  # feature maps: canvases of other sizes
      drawn=$(timeout 60 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$work/chrome" --dump-dom "file://$work/json/report.html" 2>/dev/null \
        | grep -o 'data-drawn="1"' | wc -l)
      [ "$drawn" -ge 3 ] && pass "Chromium drew $drawn feature maps" || fail "Chromium drew the feature maps ($drawn)"
    fi
  else
    echo "skip  report rendering (no chromium)"
  fi
elif [ -n "${CI:-}" ]; then
  fail "the Fashion-MNIST data is missing from $DATA (CI needs it: scripts/bootstrap.sh installs dataset-fashion-mnist)"
else
  echo "skip  Fashion-MNIST, interop and report checks (no data in $DATA)"
fi

# ---- CSV columns standardised per feature; older model files; TOML configs (issue 15) -------
here_data=$(cd "$(dirname "$0")" && pwd)/data
# A column ~1e4 that is noise and a column ~1e-3 that holds the class. One mean/std for all
# columns (soma before per-feature statistics) squeezed the small one into ~1e-7 around one
# value: eval printed "loss 1.0989  accuracy 0.3383" (chance) for this run.
awk 'BEGIN { srand(3); print "big,small,label"; for (i = 0; i < 600; i++) { k = i % 3;
  printf "%.3f,%.8f,%d\n", 10000 + 10000 * rand(), 0.001 * (k + 0.5 * rand()), k } }' > "$work/scales.csv"
"$SOMA" train --csv "$work/scales.csv" --label-column label --hidden 16 --epochs 10 --patience 0 \
  --lr 1e-2 --quiet --out "$work/scales" 2> "$work/err" || fail "train on mixed scales ($(cat "$work/err"))"
out=$("$SOMA" eval --model "$work/scales/model.safetensors" --csv "$work/scales.csv" --label-column label 2>&1)
acc=$(echo "$out" | sed -n 's/.*accuracy \([0-9.]*\).*/\1/p')
awk -v a="$acc" 'BEGIN { exit !(a >= 0.95) }' \
  && pass "columns on scales 1e4 and 1e-3: eval accuracy $acc" || fail "mixed-scale CSV eval: $out"
grep -q '\\"mean\\":\[' "$work/scales/model.safetensors" \
  && pass "model.safetensors stores a mean per feature" || fail "model.safetensors stores a mean per feature"
# A model written by soma with one mean/std for a CSV (tests/cli/data/old_format_*: the
# predictions and eval line that soma printed then) loads and predicts exactly as before.
"$SOMA" predict --model "$here_data/old_format_model.safetensors" --csv "$here_data/old_format.csv" \
  > "$work/old_pred" 2> "$work/err" && cmp -s "$work/old_pred" "$here_data/old_format_predictions.txt" \
  && pass "an old-format model predicts as before" || fail "old-format model predictions ($(cat "$work/err"))"
"$SOMA" eval --model "$here_data/old_format_model.safetensors" --csv "$here_data/old_format.csv" \
  > "$work/old_eval" 2> "$work/err" && cmp -s "$work/old_eval" "$here_data/old_format_eval.txt" \
  && pass "an old-format model evaluates as before: $(cat "$work/old_eval")" \
  || fail "old-format model eval: $(cat "$work/old_eval" "$work/err")"
bad "3 features for a model of 2" predict --model "$work/scales/model.safetensors" --csv "$here_data/old_format.csv"

# TOML configs are read by toml++: tables (flattened: [model] hidden = ... sets --hidden), 1_000,
# comments after quoted strings. The flat reader before it refused each of these lines
# ("expected `key = value`" for [model] and [train.loop], "cannot parse the value" for 1_00,
# 1_000 and `"tanh" # "..."`).
cat > "$work/tables.toml" <<'TOML'
# every kind of line the old reader refused
[model]
hidden = [8]
activation = "tanh" # "a comment with quotes"
[optimizer]
lr = 1e-2
[train.loop]
batch_size = 1_00
epochs = 2
seed = 1_000
quiet = true
TOML
if "$SOMA" train --config "$work/tables.toml" --csv "$work/blobs.csv" --label-column label \
     --patience 0 --out "$work/toml" 2> "$work/err"; then
  pass "TOML with tables, 1_000 and comments read"
  grep -q '"epochs_run": 2' "$work/toml/metrics.json" && pass "TOML [train.loop] epochs = 2" \
    || fail "TOML [train.loop] epochs = 2"
  for kv in '\"batch_size\": 100,' '\"seed\": 1000,' '\"lr\": 0.01,' '\"activation\": \"tanh\",'; do
    grep -aqF "$kv" "$work/toml/checkpoint.safetensors" && pass "TOML config recorded $kv" \
      || fail "TOML config recorded $kv"
  done
  "$SOMA" summary --model "$work/toml/model.safetensors" | grep -q "Tanh" \
    && pass "TOML [model] activation = \"tanh\"" || fail "TOML [model] activation = \"tanh\""
else
  fail "TOML with tables, 1_000 and comments read ($(cat "$work/err"))"
fi
toml_bad() {  # toml_bad NAME TEXT EXPECTED: one-line error that contains EXPECTED
  printf '%s\n' "$2" > "$work/bad_cfg.toml"
  bad "$1" train --config "$work/bad_cfg.toml" --csv "$work/blobs.csv" --out "$work/o_toml"
  grep -qF -- "$3" "$work/err" && pass "$1: message names $3" || fail "$1: $(cat "$work/err")"
}
# Old messages: "cannot parse the value of 'epochs': 1979-05-27"; "expected `key = value`"
# (tables); the second `epochs` silently won; "cannot parse the value of 'lr': nan".
toml_bad "TOML date for a number" 'epochs = 1979-05-27' "bad_cfg.toml:1:10: 'epochs' is a date (1979-05-27)"
toml_bad "TOML option in two tables" $'[model]\nlr = 1\n[optimizer]\nlr = 2' \
  "option 'lr' is given twice ('model.lr' and 'optimizer.lr')"
toml_bad "TOML key given twice" $'epochs = 2\nepochs = 3' "bad_cfg.toml:2:"
toml_bad "TOML lr = nan" 'lr = nan' "invalid --lr nan"
toml_bad "TOML string for an integer" $'[train]\nepochs = "ten"' "'epochs' must be a number"
toml_bad "malformed TOML" 'hidden = [8' "bad_cfg.toml:1:"
# Two inputs that reached undefined behaviour inside toml++ 3.3 (see tools/soma/config.cpp).
toml_bad "TOML table header [/]" '[/]' "bad_cfg.toml:1:2: invalid TOML"
toml_bad "TOML U+03DA after a key" $'B\xcf\x9au = 1' "bad_cfg.toml:1:2: invalid TOML"
[ -e "$work/o_toml" ] && fail "a bad TOML config left $work/o_toml" || pass "a bad TOML config writes nothing"

[ "$failures" = 0 ] && echo "all CLI checks passed" || echo "$failures CLI checks failed"
exit $((failures > 0))
