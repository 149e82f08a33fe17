#!/usr/bin/env bash
# Compiler launcher of the standalone-header check (tests/CMakeLists.txt): a header compiles on its
# own when the compiler accepts it, so the generated sources are only parsed and checked
# (-fsyntax-only, a quarter faster than generating code at -O0), and the object file the build
# expects is then created empty, so that an unchanged header is not checked again.
set -euo pipefail
object=
previous=
for arg in "$@"; do
  if [ "$previous" = "-o" ]; then object=$arg; fi
  previous=$arg
done
"$@" -fsyntax-only
if [ -n "$object" ]; then : > "$object"; fi
