#!/bin/sh
# Compiles one #include with a layer's include paths: "allowed" must compile; "climbs" must fail
# because the header is not found (not for some other reason).
#   check_include.sh allowed|climbs HEADER COMPILER FLAGS...
set -u
expect=$1 header=$2 cxx=$3
shift 3
src=$(mktemp --suffix=.cpp)
err=$(mktemp)
trap 'rm -f "$src" "$err"' EXIT
printf '#include "%s"\n' "$header" >"$src"
if "$cxx" -std=c++20 -fsyntax-only "$@" "$src" 2>"$err"; then
  result=allowed
elif grep -q "$header.*No such file\|'$header' file not found" "$err"; then
  result=climbs
else
  echo "FAIL: #include \"$header\" did not compile for another reason:"
  cat "$err"
  exit 1
fi
if [ "$result" != "$expect" ]; then
  echo "FAIL: #include \"$header\" $result, expected $expect (flags: $*)"
  exit 1
fi
echo "ok: #include \"$header\" $result"
