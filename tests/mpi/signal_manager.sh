#!/usr/bin/env bash
# signal_manager.sh MPIEXEC PROGRAM: a 3-rank loop (manager.cpp, signal-wait) gets a signal from
# outside at a random moment: SIGUSR1 to one of its ranks only (twice, a different rank each time
# when it can be), then SIGTERM to mpirun, which forwards it to every rank at its own moment. Every
# rank must save the same step and stop (the program checks it, rank 0 says "ok"; mpirun itself
# exits with 1 once it was sent SIGTERM, whatever its ranks did).
set -u
mpiexec=$1 program=$2
for round in 1 2 3; do
  dir=outside-$round
  sig=$([ $round -le 2 ] && echo 10 || echo 15)  # SIGUSR1, SIGTERM (Linux numbers)
  rm -f "$dir".pid-*
  "$mpiexec" --oversubscribe -np 3 "$program" signal-wait "$dir" "$sig" >"$dir.log" 2>&1 &
  launcher=$!
  for ((wait_ms = 0; wait_ms < 20000; wait_ms += 50)); do
    [ -s "$dir.pid-0" ] && [ -s "$dir.pid-1" ] && [ -s "$dir.pid-2" ] && break
    sleep 0.05
  done
  sleep "0.$((RANDOM % 10))"
  if [ "$sig" = 10 ]; then
    rank=$(((RANDOM + round) % 3))
    target=$(head -1 "$dir.pid-$rank")
    what="SIGUSR1 to rank $rank (pid $target) only"
  else
    target=$launcher
    what="SIGTERM to mpirun (pid $target)"
  fi
  kill -"$sig" "$target" || { echo "round $round: cannot send $what"; kill "$launcher"; exit 1; }
  wait "$launcher"
  status=$?
  if ! grep -q "signal-wait: ok on 3 ranks, signal $sig" "$dir.log" || { [ "$sig" = 10 ] && [ $status != 0 ]; }; then
    echo "round $round: the job failed (mpirun exited with $status) after $what:"
    cat "$dir.log"
    exit 1
  fi
  echo "round $round: $what; $(grep "signal-wait: ok" "$dir.log")"
done
