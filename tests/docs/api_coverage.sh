#!/usr/bin/env bash
# docs/api.md lists every public function of soma's tensor, op and autograd API: this check
# extracts the function names declared in the public headers below and fails, naming them,
# when one does not appear in docs/api.md (as `name(` or `.name(` or `::name`).
#   tests/docs/api_coverage.sh [repo root] [api.md]
set -u
ROOT=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
DOC=${2:-$ROOT/docs/api.md}
[ -f "$DOC" ] || { echo "FAIL  $DOC does not exist"; exit 1; }
headers=("$ROOT"/include/soma/ops/*.h "$ROOT"/include/soma/core/tensor.h
         "$ROOT"/include/soma/autograd/*.h "$ROOT"/include/soma/nn/functional.h
         "$ROOT"/include/soma/nn/conv.h "$ROOT"/include/soma/nn/pooling.h
         "$ROOT"/include/soma/nn/normalization.h "$ROOT"/include/soma/nn/fusion.h)
# Declarations: a return type, then a lower-case name and '(' (comments, operators, macros and
# constructors excluded). Names soma uses only internally start with an underscore or live in
# a 'detail' namespace (skipped by the awk state machine).
names=$(awk '
  /namespace (soma::)?detail/ { skip = 1 }
  skip && /^}  \/\/ namespace (soma::)?detail/ { skip = 0; next }
  skip { next }
  /^[[:space:]]*\/\// { next }
  /^[[:space:]]*#/ { next }
  /^[[:space:]]*return / { next }
  /^    / { next }  # bodies of inline functions (declarations sit at indent 0 or 2)
  /private:/ { priv = 1 } /public:/ { priv = 0 } /^};/ { priv = 0 }
  priv { next }
  {
    line = $0
    if (match(line, /^[[:space:]]*(static |inline |virtual |friend |constexpr |explicit )*(const )?[A-Za-z_][A-Za-z0-9_:<>,]*( ?[&*])?[[:space:]]+[&*]?[a-z][a-z0-9_]*\(/)) {
      decl = substr(line, RSTART, RLENGTH - 1)
      n = split(decl, parts, /[[:space:]&*]+/)
      name = parts[n]
      if (name != "return" && name != "operator" && name != "if" && name != "while" && name != "for")
        print name
    }
  }' "${headers[@]}" | sort -u)
missing=()
for n in $names; do
  grep -qE "(\`|[.:>]|[[:space:]])$n([(<]|\`|[[:space:]])" "$DOC" || missing+=("$n")
done
count=$(echo "$names" | wc -w)
if [ ${#missing[@]} -ne 0 ]; then
  echo "FAIL  ${#missing[@]} of $count public functions are missing from $DOC: ${missing[*]}"
  exit 1
fi
echo "ok    all $count public functions of the tensor, op and autograd headers are in $DOC"
