#!/usr/bin/env bash
# Installs the Debian packages soma's build and tests need; prints nothing when all are there.
#   scripts/bootstrap.sh         build + test dependencies (OpenMPI: soma::dist, mpirun; Python
#                                bindings: pybind11, NumPy, pytest)
#   scripts/bootstrap.sh --dev   also python3-torch (tests/ reference generator, the
#                                Python tests' comparisons), libtorch-dev (make compare's
#                                libtorch C++ peer, bench/libtorch) and clang-format
#   scripts/bootstrap.sh --test  also chromium (the CLI test renders report.html headless),
#                                python3-torch (python/tests compare with it; CI fails without),
#                                python3-onnx (the ONNX checker) and, with npm, ONNX Runtime
#                                (onnxruntime-node into $SOMA_ORT_DIR, default build/ort)
#   scripts/bootstrap.sh --fuzz  also clang with libFuzzer and libomp (make fuzz)
#   scripts/bootstrap.sh --docs  also doxygen (make docs)
set -euo pipefail
want_ort=0

packages=(build-essential cmake ninja-build libopenblas-openmp-dev libdnnl-dev libgtest-dev
          libbenchmark-dev zlib1g-dev nlohmann-json3-dev libcli11-dev libtomlplusplus-dev
          dataset-fashion-mnist
          libopenmpi-dev openmpi-bin
          python3-dev python3-numpy python3-pytest pybind11-dev libdlpack-dev)
for arg in "$@"; do
  case "$arg" in
    --dev) packages+=(python3-torch libtorch-dev clang-format) ;;
    --test) packages+=(chromium python3-onnx python3-torch); want_ort=1 ;;  # report.html; ONNX checker; python/tests vs torch
    --fuzz) packages+=(clang libclang-rt-14-dev libomp-14-dev) ;;
    --docs) packages+=(doxygen) ;;
    -h|--help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "bootstrap.sh: unknown argument '$arg' (use --dev, --test, --fuzz or --docs)" >&2; exit 2 ;;
  esac
done

# ONNX Runtime for tests/onnx: Node.js's npm client (preinstalled with node here; Debian's npm
# package conflicts with it, so it is not apt-installed), into a directory under build/.
install_ort() {
  local dir=${SOMA_ORT_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build/ort}
  [[ -d "$dir/node_modules/onnxruntime-node" ]] && return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap.sh: no npm: the ONNX Runtime tests will be skipped (install Node.js 20)" >&2
    return 0
  fi
  echo "bootstrap.sh: installing onnxruntime-node@1.30.0 into $dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --ignore-scripts --no-audit --no-fund --silent onnxruntime-node@1.30.0
}

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  [[ $want_ort -eq 1 ]] && install_ort
  exit 0
fi

echo "bootstrap.sh: installing ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "bootstrap.sh: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
[[ $want_ort -eq 1 ]] && install_ort
exit 0
