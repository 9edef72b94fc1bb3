#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Licence lines of megaring's source files.
#
#   scripts/spdx.sh --check   lists every source file without the line
#                             "SPDX-License-Identifier: Apache-2.0" in its
#                             first 3 lines; exits 1 if there is one
#   scripts/spdx.sh --fix     adds the line to each of them, as a comment in
#                             the file's own syntax, after a shebang line
#
# Source files are the tracked ones (git ls-files) named
#   *.h *.hpp *.c *.cpp *.cu *.cuh          // SPDX-...
#   *.pml (Promela takes C comments)        /* SPDX-... */
#   CMakeLists.txt *.cmake *.cmake.in *.sh *.py .ci/run     # SPDX-...
# outside bench/results/ and fuzz/corpus/ (data, not source); documentation
# and data files carry no licence line. The megaring_spdx test runs --check.
set -euo pipefail

readonly LICENSE_LINE="SPDX-License-Identifier: Apache-2.0"

usage() {
  sed -n '5,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -eq 1 ]] || usage
case "$1" in
  --check | --fix) MODE="$1" ;;
  *) usage ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
  { echo "spdx: $ROOT is not a git work tree (source files are the tracked ones)" >&2; exit 2; }

# comment_for FILE: the licence line as FILE's comment, or nothing when FILE
# is not a source file.
comment_for() {
  case "$1" in
    bench/results/* | fuzz/corpus/*) ;;
    *.h | *.hpp | *.c | *.cpp | *.cu | *.cuh) echo "// $LICENSE_LINE" ;;
    *.pml) echo "/* $LICENSE_LINE */" ;;
    CMakeLists.txt | */CMakeLists.txt | *.cmake | *.cmake.in | *.sh | *.py | .ci/run)
      echo "# $LICENSE_LINE" ;;
  esac
}

has_license_line() { head -n 3 -- "$1" | grep -qF "$LICENSE_LINE"; }

# lines_to_keep_first FILE: how many leading lines must stay first: a shebang
# (the kernel reads it from byte 0), and after it a Python encoding
# declaration (Python reads it from line 1 or 2 only).
lines_to_keep_first() {
  local first second keep=0
  first="$(sed -n 1p -- "$1")"
  second="$(sed -n 2p -- "$1")"
  if [[ "$first" == '#!'* ]]; then
    keep=1
    if [[ "$1" == *.py && "$second" =~ ^[[:space:]]*#.*coding[:=] ]]; then keep=2; fi
  elif [[ "$1" == *.py && "$first" =~ ^[[:space:]]*#.*coding[:=] ]]; then
    keep=1
  fi
  echo "$keep"
}

# add_license_line FILE COMMENT: rewrites FILE in place (same inode, so its
# mode stays), COMMENT after the lines that must stay first.
add_license_line() {
  local file="$1" comment="$2" keep tmp
  keep="$(lines_to_keep_first "$file")"
  tmp="$(mktemp)"
  awk -v text="$comment" -v keep="$keep" \
    'NR == keep + 1 { print text } { print } END { if (NR <= keep) print text }' \
    "$file" >"$tmp"
  cat "$tmp" >"$file"
  rm -f "$tmp"
}

missing=()
sources=0
while IFS= read -r -d '' file; do
  comment="$(comment_for "$file")"
  [[ -n "$comment" ]] || continue
  # A tracked file deleted in the work tree, or a symlink (its target is
  # checked as itself), is nothing to check.
  [[ -f "$file" && ! -L "$file" ]] || continue
  sources=$((sources + 1))
  has_license_line "$file" && continue
  missing+=("$file")
  if [[ "$MODE" == --fix ]]; then add_license_line "$file" "$comment"; fi
done < <(git ls-files -z)

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "spdx: all $sources source files carry '$LICENSE_LINE'"
  exit 0
fi
if [[ "$MODE" == --fix ]]; then
  printf 'spdx: added the licence line to %d of %d source files:\n' "${#missing[@]}" "$sources"
  printf '  %s\n' "${missing[@]}"
  exit 0
fi
printf "spdx: %d of %d source files lack '%s' in their first 3 lines (--fix adds it):\n" \
  "${#missing[@]}" "$sources" "$LICENSE_LINE"
printf '  %s\n' "${missing[@]}"
exit 1
