#!/usr/bin/env bash
# The interruption demo on many processes: examples/train_resume_mpi.cpp (data-parallel MLP
# training with its first layer split by rows over the ranks) on 4 MPI ranks, oversubscribed on a
# small machine.
#   1. uninterrupted;  2. stopped by SIGTERM to mpirun, then one rank killed with kill -9, then
#   resumed to the end, each time with the same command;  3. a 4-rank checkpoint resumed on 2 ranks.
# Usage: demo-train-resume-mpi.sh [TRAIN_RESUME_MPI_BINARY [CKPT_TOOL_BINARY]]
# Without arguments it installs what is missing and builds both in build/demo, as scripts/demo.sh does.
set -euo pipefail
if [ $# -ge 1 ]; then
  bin=$(realpath "$1")
  tool=${2:+$(realpath "$2")}
else
  cd "$(dirname "$0")/.."
  bash scripts/install-deps.sh
  cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release -DCKPT_BUILD_TESTS=OFF -DCKPT_BUILD_EXAMPLES=ON \
    -DCKPT_BUILD_TOOLS=ON >/dev/null
  if ! cmake --build build/demo -j"$(nproc)" --target train_resume_mpi ckpt_tool >/dev/null; then
    echo "cannot build train_resume_mpi: it needs MPI (libopenmpi-dev, see scripts/install-deps.sh)" >&2
    exit 1
  fi
  bin=$PWD/build/demo/examples/train_resume_mpi
  tool=$PWD/build/demo/tools/ckpt/ckpt
fi
work=$(mktemp -d /tmp/ckpt-demo-mpi.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

if [ "$(id -u)" = 0 ]; then  # Open MPI refuses to run as root without both
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# mpirun answers a SIGTERM with SIGCONT to every rank, SIGTERM this many seconds later, and SIGKILL
# as long again after that (Open MPI's default is 1 s): the time the ranks have to save.
export OMPI_MCA_odls_base_sigkill_timeout=3
# The same command every time. --sleep-ms-per-step only slows the loop, so that the signals land
# mid-run; the numbers it computes do not depend on it.
args=(--steps 2000 --save-every 200 --keep 3 --print-every 100 --sleep-ms-per-step 3)
mpi() {  # mpi NP DIR [more args]: the example on NP ranks (exec: in the background, $! is mpirun)
  local np=$1 dir=$2
  shift 2
  exec mpirun --oversubscribe -np "$np" "$bin" --dir "$dir" "${args[@]}" "$@"
}
value() { sed -n "s/^$2=//p" "$1" | tail -1; }  # value LOG KEY: the last KEY=value line of LOG

wait_for_line() {  # wait_for_line LOG PREFIX PID: until LOG shows a line starting with PREFIX
  until grep -q "^$2" "$1" 2>/dev/null; do
    if ! kill -0 "$3" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
}

# Starts the 4-rank run in the background (log $1), waits for the line "step $2 ", then sends
# signal $3 to mpirun ($4 = mpirun) or to one rank process ($4 = rank), and waits for the job.
run_and_signal() {
  local log=$1 at=$2 sig=$3 target=$4
  (mpi 4 resumed) >"$log" 2>&1 &
  local launcher=$!
  if ! wait_for_line "$log" "step $at " "$launcher"; then
    cat "$log"
    echo "the run ended before step $at" >&2
    exit 1
  fi
  if [ "$target" = mpirun ]; then
    echo "(kill -$sig $launcher: mpirun, after step $at)"
    kill "-$sig" "$launcher"
  else
    local victim
    victim=$(pgrep -P "$launcher" | sort -n | sed -n 3p)
    echo "(kill -$sig $victim: one of the 4 rank processes, after step $at; mpirun then ends the others)"
    kill "-$sig" "$victim"
  fi
  status=0
  wait "$launcher" 2>/dev/null || status=$?
  awk '/^-----/ { banner = !banner; next } !banner' "$log"  # without mpirun's boxed notices
}

echo "== 1. An uninterrupted run on 4 ranks (mpirun -np 4 $(basename "$bin") ${args[*]})"
(mpi 4 straight) | tee straight.log
straight=$(value straight.log final_digest)

echo
echo "== 2a. The same run in another directory, stopped with SIGTERM to mpirun after step 200"
echo "(mpirun passes it on to every rank ${OMPI_MCA_odls_base_sigkill_timeout} s later; they agree on a step, all save it, and stop)"
run_and_signal run1.log 200 TERM mpirun
echo "(mpirun exit status $status; every rank saved the same step and exited with 75: run me again)"
saved_step=$(sed -n 's/^interrupted at step \([0-9]*\);.*/\1/p' run1.log)
saved_path=$(sed -n 's/^interrupted at step [0-9]*; saved \(.*\)$/\1/p' run1.log)
saved_digest=$(value run1.log saved_digest)
if [ -z "$saved_step" ]; then
  echo "the run did not save when stopped" >&2
  exit 1
fi
cp -r resumed resized  # kept for part 3

echo
echo "== 2b. The same command again; this time kill -9 of one rank, 300 steps after the resume"
at=$(((saved_step + 300) / 100 * 100))
run_and_signal run2.log "$at" KILL rank
echo "(mpirun exit status $status: a rank was killed, nothing could be saved)"

echo
echo "== 2c. The same command again: it resumes from the last complete checkpoint and runs to the end"
(mpi 4 resumed) | tee run3.log
resumed=$(value run3.log final_digest)

if [ -n "$tool" ] && [ -x "$tool" ]; then
  echo
  echo "== The checkpoints the resumed run keeps (ckpt ls), and the last one's layout (ckpt inspect)"
  "$tool" ls resumed || true
  "$tool" inspect resumed/ckpt-2000 | grep -v "per-rank" || true
  echo "  (and the per-rank entries: each rank's data position and random engine)"
fi

echo
printf '%-40s final_digest=%s\n' "uninterrupted run on 4 ranks:" "$straight" "stopped, killed, resumed on 4 ranks:" "$resumed"
if [ -n "$straight" ] && [ "$straight" = "$resumed" ]; then
  echo "identical: the resumed run ended bit for bit where the uninterrupted one did"
else
  echo "DIFFERENT: resume did not reproduce the run" >&2
  exit 1
fi

echo
echo "== 3. The checkpoint of step $saved_step, saved by 4 ranks, resumed on 2 ranks"
echo "(the first layer's rows are re-split 32/32 instead of 16/16/16/16; the replicated state is read"
echo " as saved; the data positions, which belong to the 4 old ranks, are dealt out again)"
(mpi 2 resized --dump restored-on-2) | tee dump.log
restored=$(value dump.log restored_digest)
printf '%-40s %s\n' "saved by 4 ranks at step $saved_step:" "saved_digest=$saved_digest" \
  "restored by 2 ranks:" "restored_digest=$restored"
if [ -z "$restored" ] || [ "$restored" != "$saved_digest" ]; then
  echo "DIFFERENT: the 2 ranks did not restore the global state the 4 ranks saved" >&2
  exit 1
fi
if [ -n "$tool" ] && [ -x "$tool" ]; then
  echo
  echo "== ckpt diff of the 4-rank checkpoint and of the state the 2 ranks restored (--dump saved it)"
  "$tool" diff "resized/$(basename "$saved_path")" restored-on-2 || true
fi
echo
echo "== The same command on 2 ranks, to the end"
(mpi 2 resized) | tee run4.log
echo
printf '%-40s final_digest=%s\n' "on 4 ranks throughout:" "$straight" \
  "on 2 ranks from step $saved_step on:" "$(value run4.log final_digest)"
echo "The global tensors restored on 2 ranks are the ones 4 ranks saved, bit for bit. Continuing on"
echo "another number of ranks is not bit-identical to continuing on 4: each rank reads other samples"
echo "in each batch, and the reductions (MPI_Allreduce, the row products) sum in another order."
