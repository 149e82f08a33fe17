#!/usr/bin/env bash
# signal_manager.sh MPIEXEC PROGRAM: a 3-rank loop (manager.cpp, signal-wait) gets SIGUSR1 from
# outside, at a random moment, in one of its ranks only; every rank must save the same step and
# stop (the program checks it and exits 0). Twice, a different rank each time when it can be.
set -u
mpiexec=$1 program=$2
for round in 1 2; do
  dir=outside-$round
  rm -f "$dir".pid-*
  "$mpiexec" --oversubscribe -np 3 "$program" signal-wait "$dir" &
  launcher=$!
  for ((wait_ms = 0; wait_ms < 20000; wait_ms += 50)); do
    [ -s "$dir.pid-0" ] && [ -s "$dir.pid-1" ] && [ -s "$dir.pid-2" ] && break
    sleep 0.05
  done
  sleep "0.$((RANDOM % 10))"
  rank=$(((RANDOM + round) % 3))
  pid=$(head -1 "$dir.pid-$rank")
  kill -USR1 "$pid" || { echo "round $round: cannot signal rank $rank ($pid)"; kill "$launcher"; exit 1; }
  wait "$launcher" || { echo "round $round: the job failed after SIGUSR1 to rank $rank"; exit 1; }
  echo "round $round: SIGUSR1 to rank $rank (pid $pid) only"
done
