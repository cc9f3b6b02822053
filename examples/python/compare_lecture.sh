#!/bin/sh
# Runs examples/python/lecture1.py --small and the C++ examples it mirrors (--small) and checks
# that the lines each prints about its experiment (losses, accuracies, learned weights, epochs)
# are identical, digit for digit; wall-clock times are cut off before comparing.
#
#   examples/python/compare_lecture.sh BUILD_DIR [PYTHON]   (ctest: python.lecture1)
#
# Both sides run with SOMA_NUM_THREADS=1, so the result cannot depend on the machine's cores.
# Exits non-zero when an example or lecture1.py fails its own checks or any line differs.
set -u
build=${1:?usage: compare_lecture.sh BUILD_DIR [PYTHON]}
python=${2:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
export SOMA_NUM_THREADS=1

status=0
PYTHONPATH="$build/python${PYTHONPATH:+:$PYTHONPATH}" "$python" "$here/lecture1.py" --small \
  > "$tmp/py.txt" 2>&1 || { echo "FAIL: lecture1.py --small exited non-zero:"; tail -20 "$tmp/py.txt"; status=1; }

# example name, then the regular expression of the lines to compare
for spec in \
  'perceptron|^(perceptron:|step |learned weights|decision boundary|training accuracy)' \
  'custom_dense_layer|^(training:|epoch |training accuracy)' \
  'mlp|^(mlp:|model |linear  |one hidden layer |deep \(3 hidden\) )' \
  'gradient_tape|^GradientTape loop' \
  'optimizers|^(optimizers:|  SGD|  Adam|  RMSprop|  Adagrad|  Adadelta)' \
  'minibatch|^(full batch|batch 32 |batch 1 )' \
  'overfitting|^(no regularisation|dropout 0\.8|early stopping)'; do
  name=${spec%%|*}
  pattern=${spec#*|}
  cut_times='s/ +[0-9.]+s$//; s/, [0-9.]+ ms$//'
  "$build/$name" --small --out "$tmp" > "$tmp/$name.cpp.txt" 2>&1 ||
    { echo "FAIL: $name --small exited non-zero"; status=1; }
  grep -E "$pattern" "$tmp/$name.cpp.txt" | sed -E "$cut_times" > "$tmp/$name.a"
  # lecture1.py's section "== name", up to the next section
  sed -n "/^== $name\$/,/^== /p" "$tmp/py.txt" | grep -E "$pattern" | sed -E "$cut_times" > "$tmp/$name.b"
  lines=$(wc -l < "$tmp/$name.a")
  if [ "$lines" -eq 0 ]; then
    echo "FAIL: $name: no lines to compare"; status=1
  elif cmp -s "$tmp/$name.a" "$tmp/$name.b"; then
    echo "ok   $name: $lines lines identical"
  else
    echo "FAIL: $name: C++ (<) and Python (>) differ:"
    diff "$tmp/$name.a" "$tmp/$name.b"
    status=1
  fi
done
[ $status -eq 0 ] && echo "lecture1.py matches the C++ examples" 
exit $status
