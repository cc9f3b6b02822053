#!/usr/bin/env bash
# docs/cli.md against `soma <command> --help`: for every command, the flags in its section of
# the reference (the first column of its table) must be exactly the long flags --help prints.
#   tests/cli/doc_test.sh path/to/soma path/to/docs/cli.md
set -uo pipefail
soma=$1 doc=$2
failures=0
for cmd in train eval predict summary export bench quantize; do
  help=$("$soma" "$cmd" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
  # The table rows of "## soma <cmd>", up to the next "## " heading: `--flag ...` in column 1.
  documented=$(awk -v h="## soma $cmd" '$0 == h { on = 1; next } /^## / { on = 0 } on' "$doc" \
    | grep -E '^\| `--' | sed -E 's/^\| `(--[a-z0-9-]+).*/\1/' | sort -u)
  if [[ -z "$documented" ]]; then
    echo "FAIL  soma $cmd: no flag table in $doc"; failures=$((failures + 1)); continue
  fi
  missing=$(comm -23 <(echo "$help") <(echo "$documented"))
  extra=$(comm -13 <(echo "$help") <(echo "$documented"))
  if [[ -z "$missing" && -z "$extra" ]]; then
    echo "ok    soma $cmd: $(echo "$help" | wc -l) flags, the reference and --help agree"
  else
    echo "FAIL  soma $cmd: in --help but not in the reference: ${missing//$'\n'/ }; in the reference but not in --help: ${extra//$'\n'/ }"
    failures=$((failures + 1))
  fi
done
[[ $failures -eq 0 ]]
