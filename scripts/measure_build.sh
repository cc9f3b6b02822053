#!/usr/bin/env bash
# Build-time measurements (issue 2 acceptance: clean build <= 3 min, one-file compile <= 3 s).
#
#   scripts/measure_build.sh [scratch-build-dir]      (default /tmp/soma-clean-build)
#   scripts/measure_build.sh --compile-only BUILD_DIR   (b) only, with BUILD_DIR's compile
#                                                       commands (an existing configured build)
#
# (a) Configures a fresh Release build in the scratch dir (same command as `make configure`,
#     so every default target is built: libsoma, the gtest suite, examples, and bench/ when
#     Google Benchmark is installed) and times `cmake --build -j$JOBS` (default 2).
# (b) Times compiling one translation unit that includes <soma/soma.h>, with the exact compile
#     command CMake uses (from compile_commands.json): examples/tensor_basics.cpp, and a
#     minimal file that only includes the header. Each is compiled $REPS times (default 3); the
#     median is printed.
# The machine is shared: the load average is printed so a noisy run can be spotted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPILE_ONLY=0
if [ "${1:-}" = "--compile-only" ]; then
  COMPILE_ONLY=1
  shift
  [ -f "${1:-}/compile_commands.json" ] || { echo "--compile-only needs a configured build dir" >&2; exit 2; }
  ROOT="$(git -C "$1" rev-parse --show-toplevel)"  # the tree that build dir was configured from
fi
SCRATCH="${1:-/tmp/soma-clean-build}"
JOBS="${JOBS:-2}"
REPS="${REPS:-3}"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), nproc=$(nproc), $(c++ --version | head -1)"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- (a) clean build ----------------------------------------------------------------------
if [ "$COMPILE_ONLY" = 0 ]; then
rm -rf "$SCRATCH"
t0=$(now)
cmake -S "$ROOT" -B "$SCRATCH" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
t1=$(now)
cmake --build "$SCRATCH" -j"$JOBS" >/dev/null
t2=$(now)
ncompiles=$(ninja -C "$SCRATCH" -t commands | grep -c -- ' -c ' || true)
echo "clean configure: $(secs "$t0" "$t1") s"
echo "clean build (cmake --build -j$JOBS): $(secs "$t1" "$t2") s   [$ncompiles translation units]"
echo "clean configure + build: $(secs "$t0" "$t2") s"
fi

# ---- (b) one-file compile -----------------------------------------------------------------
# The compile command CMake uses for examples/tensor_basics.cpp, writing its object to /tmp.
cmd=$(jq -r --arg f "$ROOT/examples/tensor_basics.cpp" \
  '.[] | select(.file == $f) | .command' "$SCRATCH/compile_commands.json")
if [ -z "$cmd" ]; then
  echo "no compile command for examples/tensor_basics.cpp in $SCRATCH/compile_commands.json" >&2
  exit 1
fi
obj=$(mktemp /tmp/soma-one-file.XXXXXX.o)
minimal=$(mktemp /tmp/soma-include-only.XXXXXX.cpp)
printf '#include <soma/soma.h>\nint main() { return soma::get_num_threads() > 0 ? 0 : 1; }\n' \
  >"$minimal"
# Swap the -o argument and the source for our own; keep every flag.
flags=$(sed -E 's/ -o [^ ]+//; s/ -c [^ ]+$//' <<<"$cmd")

time_compile() {  # $1 = source file; prints the median of $REPS compiles in seconds
  local times=""
  for _ in $(seq "$REPS"); do
    local a b
    a=$(now)
    (cd "$SCRATCH" && eval "$flags -o $obj -c $1")
    b=$(now)
    times="$times $(secs "$a" "$b")"
  done
  echo "$(echo $times | median) s (runs:$times)"
}

echo "compile command: $flags -o <obj> -c <file>"
echo "one-file compile, examples/tensor_basics.cpp: $(time_compile "$ROOT/examples/tensor_basics.cpp")"
echo "one-file compile, #include <soma/soma.h> only: $(time_compile "$minimal")"
rm -f "$obj" "$minimal"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
