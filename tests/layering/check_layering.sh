#!/usr/bin/env bash
# The layering check (ctest `layering`): DESIGN.md's rules, enforced on the source tree.
#   1. Only src/kernels/ may include omp.h or cblas.h or use `#pragma omp` (src/, include/,
#      tools/ are checked).
#   2. A file of layer L (src/L/... or include/soma/L/...) includes no header of a higher layer,
#      in DESIGN.md's order (lowest first):
#        core < kernels < autograd = ops < io < nn < optim < data < dist < train
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
    optim) echo 5 ;; data) echo 6 ;; dist) echo 7 ;; train) echo 8 ;; *) echo "" ;;
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

# 2. Includes point downwards.
while IFS= read -r file; do
  case "$file" in
    src/*) layer=$(cut -d/ -f2 <<<"$file") ;;
    include/soma/*/*) layer=$(cut -d/ -f3 <<<"$file") ;;
    *) continue ;;
  esac
  r=$(rank "$layer")
  if [ -z "$r" ]; then
    case "$file" in src/*.cpp | src/*.h) report "$file: directory '$layer' has no place in DESIGN.md's layer order" ;; esac
    continue
  fi
  while IFS= read -r inc; do
    hdr=$(sed -E 's/^#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$inc")
    case "$hdr" in
      soma/soma.h) target=umbrella ;;
      soma/*/*) target=$(cut -d/ -f2 <<<"$hdr") ;;
      */*) target=$(cut -d/ -f1 <<<"$hdr") ;;
      *) continue ;;
    esac
    if [ "$target" = umbrella ]; then
      report "$file includes $hdr (the umbrella header is for users, not for the library)"
      continue
    fi
    tr=$(rank "$target")
    [ -z "$tr" ] && continue
    if [ "$tr" -gt "$r" ]; then
      if [ -n "${allowed["$file|$hdr"]:-}" ]; then
        used["$file|$hdr"]=1
      else
        report "$file ($layer) includes $hdr ($target is a higher layer)"
      fi
    fi
  done < <(grep -E '^#[[:space:]]*include[[:space:]]*"' "$file")
done < <(find src include -name '*.cpp' -o -name '*.h' | sort)

for key in "${!allowed[@]}"; do
  [ -n "${used[$key]:-}" ] || report "DESIGN.md lists ${key%%|*} including ${key#*|} as an exception, but it no longer does (remove it from the list)"
done

if [ "$fail" = 0 ]; then
  echo "layering: OK (${#allowed[@]} listed exception(s))"
fi
exit "$fail"
