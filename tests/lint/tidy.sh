#!/bin/sh
# Runs clang-tidy on one file (`make lint`), with the checks that
# tests/lint/tidy-overrides.txt turns off for that file. The arguments
# after the file are the compiler's.
set -eu
file=$1
shift
extra=$(awk -F '\t' -v f="$file" '$1 == f { print $2 }' "$(dirname "$0")/tidy-overrides.txt")
if [ -n "$extra" ]; then
	exec clang-tidy --quiet --checks="$extra" "$file" -- "$@"
fi
exec clang-tidy --quiet "$file" -- "$@"
