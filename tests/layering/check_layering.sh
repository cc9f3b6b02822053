#!/usr/bin/env bash
# The layering check (ctest `layering`): DESIGN.md's rules, enforced on the source tree.
#   1. Only src/kernels/ may include omp.h or cblas.h or use `#pragma omp` (src/, include/,
#      tools/ are checked).
#   2. A file of layer L (src/L/... or include/soma/L/...) includes no header of a higher layer,
#      in DESIGN.md's order (lowest first):
#        core < kernels < autograd = ops < io < nn < optim = onnx = quantization < data < dist
#        < train
#      tools/ is above them all.
#   3. Exceptions are exactly the lines of DESIGN.md's "Layering exceptions" list, of the form
#        - `src/path/file.cpp` includes `header/path.h`: the reason
#      A listed exception that no longer occurs is an error too, so the list stays true.
# Usage: check_layering.sh [repo root]   (exit 0 when clean; prints every violation otherwise)
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 2
[ -f DESIGN.md ] || { echo "layering: DESIGN.md not found in $root"; exit 2; }

rank() {
  case "$1" in
    core) echo 0 ;; kernels) echo 1 ;; autograd | ops) echo 2 ;; io) echo 3 ;; nn) echo 4 ;;
    optim | onnx | quantization) echo 5 ;; data) echo 6 ;; dist) echo 7 ;; train) echo 8 ;; *) echo "" ;;
  esac
}

declare -A allowed=() used=()
while IFS= read -r line; do
  f=$(sed -E 's/^- `([^`]+)` includes `([^`]+)`.*/\1/' <<<"$line")
  h=$(sed -E 's/^- `([^`]+)` includes `([^`]+)`.*/\2/' <<<"$line")
  allowed["$f|$h"]=1
done < <(awk '/^## Layering exceptions/{on=1; next} /^## /{on=0} on && /^- `[^`]+` includes `[^`]+`/' DESIGN.md)

fail=0
report() { echo "layering: $*"; fail=1; }

# 1. OpenMP and BLAS stay in kernels/.
while IFS= read -r hit; do
  report "$hit (OpenMP/BLAS outside src/kernels/)"
done < <(grep -rnE '#[[:space:]]*include[[:space:]]*[<"](omp|cblas)\.h[>"]|#[[:space:]]*pragma[[:space:]]+omp' \
           src include tools --include='*.cpp' --include='*.h' --include='*.hpp' 2>/dev/null |
         grep -v '^src/kernels/')

# 2. Includes point downwards (one awk pass over every quoted include).
while IFS='|' read -r file hdr msg; do
  if [ "$msg" = higher ]; then
    if [ -n "${allowed["$file|$hdr"]:-}" ]; then
      used["$file|$hdr"]=1
    else
      report "$file includes $hdr (a higher layer)"
    fi
  else
    report "$file: $msg"
  fi
done < <(find src include -name '*.cpp' -o -name '*.h' | sort |
         xargs grep -HE '^#[[:space:]]*include[[:space:]]*"' /dev/null |
         awk -F: '
  function rank(l) {
    if (l == "core") return 0; if (l == "kernels") return 1;
    if (l == "autograd" || l == "ops") return 2; if (l == "io") return 3;
    if (l == "nn") return 4; if (l == "optim" || l == "onnx" || l == "quantization") return 5; if (l == "data") return 6;
    if (l == "dist") return 7; if (l == "train") return 8; return -1;
  }
  {
    file = $1; line = substr($0, length($1) + 2);
    n = split(file, fp, "/");
    if (fp[1] == "src") layer = fp[2];
    else if (fp[1] == "include" && fp[2] == "soma" && n >= 4) layer = fp[3];
    else next;
    r = rank(layer);
    if (r < 0) {
      if (fp[1] == "src" && !(file in seen)) { seen[file] = 1; print file "||directory " layer " has no place in the layer order"; }
      next;
    }
    match(line, /"[^"]+"/); hdr = substr(line, RSTART + 1, RLENGTH - 2);
    m = split(hdr, hp, "/");
    if (hdr == "soma/soma.h") { print file "|" hdr "|includes the umbrella header (for users, not the library)"; next; }
    if (hp[1] == "soma" && m >= 3) target = hp[2]; else if (m >= 2) target = hp[1]; else next;
    tr = rank(target);
    if (tr > r) print file "|" hdr "|higher";
  }')

for key in "${!allowed[@]}"; do
  [ -n "${used[$key]:-}" ] || report "DESIGN.md lists ${key%%|*} including ${key#*|} as an exception, but it no longer does (remove it from the list)"
done

if [ "$fail" = 0 ]; then
  echo "layering: OK (${#allowed[@]} listed exception(s))"
fi
exit "$fail"
