# Shared by the CLI test scripts (sourced): a scratch directory $work removed on exit, pass/fail
# reporting with a $failures count, and the 3-blob CSV both train on.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; failures=$((failures + 1)); }

# blobs_csv FILE SEED: 600 rows, 3 Gaussian blobs in 4-D, header row, label last.
blobs_csv() {
  awk -v seed="$2" 'BEGIN { srand(seed); print "a,b,c,d,label";
    for (i = 0; i < 600; i++) { k = i % 3; printf "%.5f,%.5f,%.5f,%.5f,%d\n",
      k + rand() - 0.5, -k + rand() - 0.5, 2 * k + rand() - 0.5, rand(), k } }' > "$1"
}
