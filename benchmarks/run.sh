#!/usr/bin/env bash
# Runs the benchmark suite and writes benchmarks/results/: results.md (tables) and results.png (plot).
#   bash benchmarks/run.sh [--quick] [--reps N]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/install-deps.sh
missing=()
for p in libboost-serialization1.81-dev libhdf5-dev libtorch-dev gnuplot-nox; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build=build/bench
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCKPT_BUILD_BENCHMARKS=ON -DCKPT_BUILD_TESTS=OFF \
      -DCKPT_BUILD_EXAMPLES=OFF -DCKPT_BUILD_TOOLS=OFF >/dev/null
cmake --build "$build" --target bench_checkpoint -j"$(nproc)"

out=benchmarks/results
mkdir -p "$out"
# The scratch directory sits on the same file system as the repository, as a checkpoint dir would.
"$build/benchmarks/bench_checkpoint" --dir "$build/scratch" --csv "$out/results.csv" "$@" > "$out/tables.md"

# Compile time: each translation unit compiled three times with the flags CMake uses, median.
time_compile() {
  local file=$1 times=() t0 t1
  for _ in 1 2 3; do
    t0=$(date +%s.%N)
    c++ -std=c++17 -O2 -I include -I /usr/include/eigen3 -c "$file" -o "$build/compile_time.o"
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 2p
}
ckpt_s=$(time_compile benchmarks/compile_time_ckpt.cpp)
cereal_s=$(time_compile benchmarks/compile_time_cereal.cpp)

{
  echo "# Benchmark results"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); compiler: $(c++ --version | head -1); $(date -u +%Y-%m-%d)."
  echo
  cat "$out/tables.md"
  echo
  echo "| compile time (one TU, -O2, median of 3) | seconds |"
  echo "|---|---:|"
  echo "| 10-struct model tracked with ckpt (save + restore) | $ckpt_s |"
  echo "| same state written by hand with cereal (save + load) | $cereal_s |"
} > "$out/results.md"
rm -f "$out/tables.md"

# Plot: throughput relative to raw I/O, save and restore, per state and method.
if command -v gnuplot >/dev/null; then
  awk -F, 'NR>1 {gsub(/"/,""); print $1 "|" $2 "," $5 "," $6}' "$out/results.csv" > "$build/plot.dat"
  gnuplot <<GP
set terminal pngcairo size 1400,700 noenhanced font ",10"
set output "$out/results.png"
set datafile separator ","
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set ylabel "throughput relative to raw fwrite/fread (higher is better)"
set logscale y
set yrange [0.00001:4]
set bmargin 14
set rmargin 12
set xtics rotate by -40 scale 0
set key top right
set title "ckpt and peers: save and restore throughput vs raw I/O (medians)"
plot "$build/plot.dat" using 2:xtic(1) title "save", "" using 3 title "restore"
GP
fi
echo "wrote $out/results.md${out:+ and $out/results.png}"
cat "$out/results.md"
