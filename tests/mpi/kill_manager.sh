#!/usr/bin/env bash
# kill_manager.sh MPIEXEC PROGRAM ROUNDS: ROUNDS times, a 3-rank job that resumes from the latest
# checkpoint and saves through a checkpoint_manager in a loop has one of its ranks (any, the leader
# included) killed with SIGKILL at a random moment (mpirun then ends the job). After each, on 3
# ranks: the state file lists only whole checkpoints, the latest restores on every rank, and no
# temporary file or directory remains once a manager opened the directory (manager.cpp, check).
# Every other round the loop uses the manager's asynchronous mode (under MPI_THREAD_SINGLE: the
# commit and the record at the next save), so kills also land between a write and its commit.
set -u
mpiexec=$1 program=$2 rounds=$3
run() { "$mpiexec" --oversubscribe "$@"; }
source "$(dirname "$0")/wait_for_mpirun.sh"
run -np 3 "$program" loop run 4 || { echo "the first run failed"; exit 1; }
for ((i = 1; i <= rounds; i++)); do
  mode=$([ $((i % 2)) = 0 ] && echo async || echo sync)
  "$mpiexec" --oversubscribe -np 3 "$program" loop run 1000000 $mode >/dev/null 2>&1 &  # not through run(): $! must be mpirun
  launcher=$!
  for ((wait_ms = 0; wait_ms < 10000; wait_ms += 50)); do
    mapfile -t ranks < <(pgrep -P "$launcher")
    [ ${#ranks[@]} -eq 3 ] && break
    sleep 0.05
  done
  # A random moment: the start-up (MPI_Init, the manager's open, the restore) or the save loop.
  sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
  if [ ${#ranks[@]} -eq 0 ]; then echo "round $i: no rank processes found under mpirun $launcher"; exit 1; fi
  victim=${ranks[RANDOM % ${#ranks[@]}]}
  kill -9 "$victim"
  wait_for_mpirun "$launcher"
  status=$?
  before=$(ls run | tr '\n' ' ')
  out=$(run -np 3 "$program" check run 2>&1) || { echo "round $i: after killing $victim ($before):"; echo "$out"; exit 1; }
  echo "round $i ($mode): killed $victim, mpirun exited with $status; $before-> $(echo "$out" | tail -1)"
done
