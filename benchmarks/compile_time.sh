#!/usr/bin/env bash
# What a translation unit costs to compile, header-only and in the compiled mode (-DCKPT_COMPILED),
# against hand-written cereal and against the headers a user includes anyway. Each unit is compiled
# REPS times per compiler, the units interleaved round by round so that a change in the machine's
# load touches all of them; prints a markdown table of medians: CPU time (user + system), wall
# time, peak compiler memory (/usr/bin/time's %M).
#   bash benchmarks/compile_time.sh [REPS]      (default 3; -std=c++17 -O2, as the README's table)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# name|source|extra flags
units=(
  "10-struct model, header-only|benchmarks/compile_time_ckpt.cpp|"
  "10-struct model, compiled mode|benchmarks/compile_time_ckpt.cpp|-DCKPT_COMPILED"
  "the same state by hand with cereal|benchmarks/compile_time_cereal.cpp|"
  "include alone, header-only|benchmarks/compile_time_include.cpp|"
  "include alone, compiled mode|benchmarks/compile_time_include.cpp|-DCKPT_COMPILED"
  "Eigen/Dense + cereal (what a user includes anyway)|benchmarks/compile_time_baseline.cpp|"
  "one int, header-only|benchmarks/compile_time_one_int.cpp|"
  "one int, compiled mode|benchmarks/compile_time_one_int.cpp|-DCKPT_COMPILED"
)
compilers=(g++ clang++)

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for ((r = 0; r < reps; r++)); do
  for c in "${compilers[@]}"; do
    for i in "${!units[@]}"; do
      IFS='|' read -r _ source flags <<<"${units[$i]}"
      # shellcheck disable=SC2086
      /usr/bin/time -f "%U %S %e %M" -o "$out/t" \
        "$c" -std=c++17 -O2 $flags -I include -isystem /usr/include/eigen3 -c "$source" -o "$out/unit.o"
      read -r user sys wall mem <"$out/t"
      echo "$(echo "$user + $sys" | bc) $wall $mem" >>"$out/$c.$i"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
printf '| translation unit |'
for c in "${compilers[@]}"; do printf ' %s CPU s | %s wall s | %s MB |' "$c" "$c" "$c"; done
printf '\n|---|'
for _ in "${compilers[@]}"; do printf -- '---:|---:|---:|'; done
printf '\n'
for i in "${!units[@]}"; do
  IFS='|' read -r name _ _ <<<"${units[$i]}"
  printf '| %s |' "$name"
  for c in "${compilers[@]}"; do
    cpu=$(cut -d' ' -f1 "$out/$c.$i" | median)
    wall=$(cut -d' ' -f2 "$out/$c.$i" | median)
    mem=$(cut -d' ' -f3 "$out/$c.$i" | median)
    printf ' %.2f | %.2f | %d |' "$cpu" "$wall" "$((${mem%.*} / 1024))"
  done
  printf '\n'
done
