#!/usr/bin/env bash
# The layering check must catch what it claims to: on a scratch copy of the tree it passes,
# then fails for each planted violation (OpenMP outside kernels/, cblas.h, a core file
# including an autograd header, a public header including a higher layer's, a stale
# exception in DESIGN.md).
set -euo pipefail
root=${1:?usage: self_test.sh <repo root>}
check="$root/tests/layering/check_layering.sh"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fresh() {
  rm -rf "$scratch/t" && mkdir -p "$scratch/t"
  cp -r "$root/src" "$root/include" "$root/DESIGN.md" "$scratch/t/"
  mkdir -p "$scratch/t/tools" && cp -r "$root/tools/." "$scratch/t/tools/" 2>/dev/null || true
}
fresh
bash "$check" "$scratch/t" >/dev/null || { echo "self_test: the clean copy fails"; exit 1; }
plant() {  # plant <name> <command...>: the check must fail after the command
  local name=$1
  shift
  fresh
  "$@"
  if bash "$check" "$scratch/t" >"$scratch/out" 2>&1; then
    echo "self_test: not caught: $name"
    exit 1
  fi
  echo "caught: $name: $(head -1 "$scratch/out")"
}
plant "omp pragma in ops/" sed -i '1i #pragma omp parallel' "$scratch/t/src/ops/reduce.cpp"
plant "omp.h in train/" sed -i '1i #include <omp.h>' "$scratch/t/src/train/fit.cpp"
plant "cblas.h in nn/" sed -i '1i #include <cblas.h>' "$scratch/t/src/nn/module.cpp"
plant "core includes autograd" sed -i '1i #include "autograd/node.h"' "$scratch/t/src/core/tensor.cpp"
plant "public core header includes nn" \
  sed -i '1i #include "soma/nn/module.h"' "$scratch/t/include/soma/core/tensor.h"
plant "data includes dist" sed -i '1i #include "soma/dist/dist.h"' "$scratch/t/src/data/idx.cpp"
plant "stale exception" sed -i '/^## Layering exceptions/a - `src/core/tensor.cpp` includes `autograd/node.h`: planted' \
  "$scratch/t/DESIGN.md"
echo "self_test: every planted violation was caught"
