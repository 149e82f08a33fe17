#!/usr/bin/env bash
# The whole test suite, as CI runs it, warnings as errors everywhere:
# - g++ at -Og (g++ warns about uninitialized uses when it optimizes, and -Og compiles these tests
#   in half the time of -O1 and faster than -O0): every test but the MPI ones for C++17, in the
#   compiled mode (the library's code compiled once, with g++'s warnings, and a test in half its
#   header-only time) but for the header-only core (two_tu: the same functions from two units of one
#   program; restore, saving, async: the whole save and restore path; the examples that use MPI, the
#   crash soak and the consumer projects are header-only as well), and for C++20 (the C++17 library
#   links into C++20 programs, as a user's may) but for those that drive the tool or an example as
#   programs (the same programs) and those that test the library's compiled code at run time rather
#   than its templates (the foreign formats, I/O faults, the file format and its readers, threads,
#   signals, warnings: C++20 adds nothing to code compiled once, in C++17, in ckpt::ckpt_compiled),
#   the installed package, the compile-fail checks for C++20, every example (in the compiled mode,
#   which compiles in half the time), and the MPI flagship example interrupted and resumed;
# - clang++ under AddressSanitizer and UndefinedBehaviorSanitizer, at -O0 (instrumented code
#   compiles 2.3 times faster than at -O1; clang's warnings do not depend on optimization): every
#   test for C++17 in the compiled mode (the library's code instrumented once, in
#   ckpt::ckpt_compiled: a test compiles in 40-60% of its header-only time under the sanitizers;
#   header-only, the same code is tested by the g++ tree, compiled by clang++ in the consumer and
#   the standalone headers, and instrumented in the fuzzers), the MPI tests of tests/mpi/'s own
#   programs (compiled mode too: the MPI layer is header-only in both), a short fuzzing run, every
#   header and the benchmark programs on their own (parsed only), the compile-fail checks for C++17,
#   and a consumer project (users' strict warnings, added with add_subdirectory, header-only) for
#   C++20, so that clang++ compiles the headers for both standards (a C++17 consumer as well found
#   nothing the C++20 one and the tests did not: 28 s); the C++20 tests run in the g++ tree
#   (building them a second time under the sanitizers took about a fifth of CI's time);
# - each check in one tree only where a second would find nothing new (CI has 2 cores and 30
#   minutes): the MPI unit tests under the sanitizers (g++ still compiles the MPI layer's templates
#   in the MPI examples), the MPI flagship's interruptions (end to end, 2.5 times as long under the
#   sanitizers) without them, the standalone headers and the compile-fail checks with one compiler
#   per standard;
# - the MPI tests at -O1 (many ranks on two cores), and restore_atomic (tens of MiB through Eigen
#   loops); every example in the g++ tree, only those that the clang tree's tests drive as
#   programs (train_resume, redistribute_data_mpi) there;
# - clang++ under ThreadSanitizer, at -O0: the thread-sensitive tests, in the compiled mode (the
#   code under test is the library's, instrumented once in ckpt::ckpt_compiled).
# Build trees under build/ are reused. Overrides: CKPT_COMPILERS="gcc clang tsan", CKPT_TEST_STANDARDS="17;20".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1

jobs=$(nproc)
standards=${CKPT_TEST_STANDARDS:-17;20}
compilers=${CKPT_COMPILERS:-gcc clang tsan}
# No debug info keeps the link small; the optimization of each tree is above.
common=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-Og -g0" -DCKPT_BUILD_TESTS=ON -DCKPT_BUILD_EXAMPLES=ON
        -DCKPT_BUILD_TOOLS=ON "-DCKPT_TEST_STANDARDS=$standards")
total_passed=0
total_failed=0
status=0

run_tree() {
  local name=$1; shift
  local dir=build/$name
  local started=$SECONDS
  echo "=== $name: configure and build"
  if ! cmake -S . -B "$dir" "${common[@]}" "$@" >"$dir.configure.log" 2>&1; then
    cat "$dir.configure.log"; status=1; total_failed=$((total_failed + 1)); return
  fi
  if ! cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1; then
    grep -E "error|Error" -A5 "$dir.build.log" | head -100; status=1; total_failed=$((total_failed + 1)); return
  fi
  echo "=== $name: test (built in $((SECONDS - started)) s)"
  started=$SECONDS
  local log=$dir.ctest.log
  ctest --test-dir "$dir" -j"$jobs" --output-on-failure --timeout 600 2>&1 | tee "$log"
  echo "=== $name: tested in $((SECONDS - started)) s"
  local line
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$log" | tail -1)
  if [ -z "$line" ]; then
    status=1; total_failed=$((total_failed + 1)); return
  fi
  local failed all
  failed=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
  all=$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
  total_passed=$((total_passed + all - failed))
  total_failed=$((total_failed + failed))
  [ "$failed" -eq 0 ] || status=1
}

mkdir -p build
for c in $compilers; do
  case $c in
    gcc) run_tree gcc -DCMAKE_CXX_COMPILER=g++ -DCKPT_SANITIZE= -DCKPT_TEST_UNOPTIMIZED_STANDARDS= \
                  "-DCKPT_TEST_FIRST_STANDARD_ONLY=^(tool|tool_import|tool_listing|train_resume|foreign_.*|safetensors_header|faults.*|\
file_io|format.*|read_ckpt|inspection|writer_checks|restore_atomic|threads|interrupt|warning)$" \
                  "-DCKPT_TEST_COMPILED_STANDARDS=17;20" "-DCKPT_TEST_HEADER_ONLY=^(two_tu|restore|saving|async)$" \
                  -DCKPT_TEST_COMPILED= -DCKPT_TEST_CONSUMER_STANDARDS=17 \
                  -DCKPT_TEST_MPI=flagship -DCKPT_TEST_STANDALONE_HEADERS=OFF -DCKPT_TEST_COMPILE_FAIL_STANDARDS=20 \
                  -DCKPT_EXAMPLES_COMPILED=ON ;;
    clang) run_tree clang -DCMAKE_CXX_COMPILER=clang++ -DCKPT_SANITIZE=address,undefined -DCKPT_FUZZ_SECONDS=10 \
                    "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -g0" -DCKPT_TEST_STANDARDS=17 -DCKPT_TEST_CONSUMER_STANDARDS=20 \
                    -DCKPT_TEST_CONSUMER_SOURCE_MODES=add_subdirectory \
                    -DCKPT_TEST_PACKAGED_CONSUMERS=OFF -DCKPT_TEST_COMPILED= -DCKPT_TEST_COMPILED_STANDARDS=17 \
                    -DCKPT_TEST_MPI=units "-DCKPT_EXAMPLES_FILTER=^(train_resume|redistribute_data_mpi)$" ;;
    tsan) run_tree tsan -DCMAKE_CXX_COMPILER=clang++ -DCKPT_SANITIZE=thread -DCKPT_FUZZ_SECONDS=0 "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -g0" \
                   "-DCKPT_TEST_FILTER=^(manager.*|interrupt|restore|restore_atomic|restore_parallel|saving|threads|async|format)$" \
                   -DCKPT_TEST_COMPILED= -DCKPT_TEST_COMPILED_STANDARDS=17 -DCKPT_BUILD_EXAMPLES=OFF -DCKPT_BUILD_TOOLS=OFF -DCKPT_TEST_STANDARDS=17 ;;
    *) echo "unknown compiler setting: $c" >&2; exit 2 ;;
  esac
done

echo
echo "all builds: $total_passed passed, $total_failed failed"
echo "$total_passed passed, $total_failed failed"
exit $status
