#!/usr/bin/env bash
# A `soma train --arch cnn` model file and its torch twin predict the same classes: `soma predict`
# on the 10,000 Fashion-MNIST test images against the twin's checked-in predictions
# (tests/cli/data/cnn-run/torch_predictions.txt, made by tests/cli/make_cnn_twin_reference.py).
# At least 9990 of 10000 must agree.
#   tests/cli/cnn_twin_test.sh <path to soma> [fashion-mnist dir]
set -u
SOMA=${1:?usage: cnn_twin_test.sh SOMA [DATA_DIR]}
DATA=${2:-/usr/share/datasets/fashion-mnist}
here=$(cd "$(dirname "$0")" && pwd)
model=$here/data/cnn-run/model.safetensors
golden=$here/data/cnn-run/torch_predictions.txt
need=9990

if [ ! -e "$DATA/t10k-images-idx3-ubyte.gz" ] && [ ! -e "$DATA/t10k-images-idx3-ubyte" ]; then
  if [ "${CI:-}" = true ]; then
    echo "FAIL  no Fashion-MNIST test images in $DATA (CI=true)"; exit 1
  fi
  echo "skip  cnn torch twin: no Fashion-MNIST test images in $DATA"; exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! "$SOMA" predict --model "$model" --data "$DATA" --split test > "$work/soma_pred" 2> "$work/err"; then
  echo "FAIL  soma predict: $(cat "$work/err")"; exit 1
fi
grep -v '^#' "$golden" > "$work/torch_pred"
n=$(wc -l < "$work/soma_pred")
m=$(wc -l < "$work/torch_pred")
if [ "$n" != "$m" ] || [ "$n" = 0 ]; then
  echo "FAIL  soma predict printed $n lines, the torch twin's golden has $m"; exit 1
fi
same=$(paste "$work/soma_pred" "$work/torch_pred" | awk '$1 == $2' | wc -l)
if [ "$same" -ge "$need" ]; then
  echo "ok  torch twin agrees on $same/$n test images (>= $need required)"
else
  echo "FAIL  torch twin agrees on $same/$n test images (>= $need required)"; exit 1
fi
