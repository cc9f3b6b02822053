#!/usr/bin/env bash
# One line: how many lines the library is (include/ + src/). STYLE.md: keep the size visible.
set -euo pipefail
cd "$(dirname "$0")/.."

count() {  # lines in the .h/.cpp files under $1 (0 if absent)
  if [[ -d "$1" ]]; then
    find "$1" -type f \( -name '*.h' -o -name '*.cpp' \) -print0 | xargs -0 -r cat | wc -l
  else
    echo 0
  fi
}
files() {
  if [[ -d "$1" ]]; then find "$1" -type f \( -name '*.h' -o -name '*.cpp' \) | wc -l; else echo 0; fi
}
inc=$(count include); src=$(count src)
echo "loc: include/ ${inc} + src/ ${src} = $((inc + src)) lines in $(( $(files include) + $(files src) )) files"
