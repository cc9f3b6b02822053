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

# idx_header NDIM D1 D2 ...: printf escapes of an IDX header of uint8 data (big-endian sizes).
idx_header() {
  printf '\\x00\\x00\\x08\\x%02x' "$1"; shift
  for d in "$@"; do printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((d >> 24 & 255)) $((d >> 16 & 255)) $((d >> 8 & 255)) $((d & 255)); done
}

# fashion_subset SRC DST NTRAIN NTEST: the first NTRAIN training and NTEST test samples of the
# Fashion-MNIST IDX files in SRC, as uncompressed IDX files in DST.
fashion_subset() {
  local src=$1 dst=$2 split n
  mkdir -p "$dst"
  for split in "train:$3" "t10k:$4"; do
    n=${split#*:}; split=${split%%:*}
    { printf "$(idx_header 3 "$n" 28 28)"; zcat "$src/$split-images-idx3-ubyte.gz" | tail -c +17 | head -c $((n * 784)); } > "$dst/$split-images-idx3-ubyte"
    { printf "$(idx_header 1 "$n")"; zcat "$src/$split-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$n"; } > "$dst/$split-labels-idx1-ubyte"
  done
}
