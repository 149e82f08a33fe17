# Sourced by kill_save.sh and kill_manager.sh. wait_for_mpirun PID: waits for the mpirun started in
# the background as PID and returns its exit status. Once a rank is killed, mpirun ends the job;
# once in a while (seen with the victim killed while the ranks start) it waits forever for ranks
# that already exited. These tests are about the checkpoint directory a kill leaves, not about the
# launcher: after 20 s (an ending job takes under 2 s, even under the sanitizers on 2 loaded cores)
# mpirun and whatever it still runs are killed, the round goes on (status 137).
wait_for_mpirun() {
  local launcher=$1 tenths state
  for ((tenths = 0; tenths < 200; tenths++)); do
    state=$(ps -o stat= -p "$launcher" 2>/dev/null) || break  # reaped already
    [[ $state == Z* ]] && break                               # exited, not yet waited for
    sleep 0.1
  done
  if ((tenths == 200)); then
    echo "mpirun $launcher did not end the job 20 s after the kill: killing it and its ranks" >&2
    pkill -9 -P "$launcher"
    kill -9 "$launcher" 2>/dev/null
  else
    echo "mpirun $launcher ended $((tenths / 10)).$((tenths % 10)) s after the kill" >&2
  fi
  wait "$launcher"
}
