#!/usr/bin/env bash
# kill_save.sh MPIEXEC PROGRAM ROUNDS: ROUNDS times, a 3-rank job saving in a loop has one of its
# ranks killed with SIGKILL at a random moment (mpirun then ends the job); after each, the latest
# committed checkpoint must restore whole on 2 ranks, and nothing a crash left may be taken for one.
set -u
mpiexec=$1 program=$2 rounds=$3
run() { "$mpiexec" --oversubscribe "$@"; }
source "$(dirname "$0")/wait_for_mpirun.sh"
run -np 2 "$program" loop run 1 || { echo "the first save failed"; exit 1; }
for ((i = 1; i <= rounds; i++)); do
  "$mpiexec" --oversubscribe -np 3 "$program" loop run 100000 >/dev/null 2>&1 &  # not through run(): $! must be mpirun
  launcher=$!
  # Once the ranks run (their start-up takes a while on a loaded machine), a random moment.
  for ((wait_ms = 0; wait_ms < 10000; wait_ms += 50)); do
    mapfile -t ranks < <(pgrep -P "$launcher")
    [ ${#ranks[@]} -eq 3 ] && break
    sleep 0.05
  done
  sleep "0.$((RANDOM % 9 + 1))"
  if [ ${#ranks[@]} -eq 0 ]; then echo "round $i: no rank processes found under mpirun $launcher"; exit 1; fi
  victim=${ranks[RANDOM % ${#ranks[@]}]}
  kill -9 "$victim"
  wait_for_mpirun "$launcher"
  echo "round $i: killed rank process $victim; mpirun exited with $?; $(ls run | tr '\n' ' ')"
  run -np 2 "$program" check-latest run || { echo "round $i: the latest checkpoint did not restore"; exit 1; }
done
