#!/usr/bin/env bash
# train_resume_mpi.sh MPIEXEC PROGRAM WORK_DIR SCENARIO [TRAIN_RESUME or CKPT_TOOL]: the flagship
# MPI example (examples/train_resume_mpi.cpp) interrupted and resumed with the same command, in a
# fresh WORK_DIR. Every run is followed through its output (no sleeping for a guessed time), and
# every resumed run must end with the final_digest of an uninterrupted run on as many ranks.
#   signals  4 ranks: SIGTERM to mpirun (which passes it on), SIGUSR1 to one rank only, SIGTERM to
#            one rank only, one after the other in one directory, then resumed to the end
#   kills    4 ranks: kill -9 of one rank before the first save and later, rank 3 killed halfway
#            through writing its file of a save, rank 0 (the manager's leader) killed halfway
#            through its file and once the checkpoint is committed but not yet recorded
#   async    4 ranks, the manager's asynchronous mode (--async in every run; MPI_THREAD_MULTIPLE):
#            SIGTERM to one rank, kill -9 of one rank, a rank killed halfway through its file of a
#            save (written in the background), the leader killed after a commit; the digest of
#            the uninterrupted synchronous run
#   uneven   3 ranks (64 rows split 21, 21, 22): SIGUSR1 to one rank, a kill during a save, kill -9
#   resize   a 4-rank checkpoint resumed on 2 ranks: the global state restored is the state saved
#            (digests of the gathered tensors; and with CKPT_TOOL, `ckpt diff` of the checkpoint and
#            of the state the 2-rank run restored, saved by --dump), and the run goes on to the end
#   serial   on 1 rank the example computes exactly what train_resume computes (TRAIN_RESUME)
set -u
mpiexec=$1 program=$2 work=$3 scenario=$4 helper=${5:-}
args=(--steps 300 --save-every 50 --keep 2 --print-every 10)

fail() {
  echo "FAIL ($scenario): $*"
  exit 1
}
value() { sed -n "s/^$2=//p" "$1" | tail -1; }  # value LOG KEY: the last KEY=value line

# Runs NP ranks of the example to the end in the foreground: run NP DIR LOG [more args].
run() {
  local np=$1 dir=$2 log=$3
  shift 3
  "$mpiexec" --oversubscribe -np "$np" "$program" --dir "$dir" "${args[@]}" "$@" >"$log" 2>&1
}

# Starts NP ranks in the background (slowed so that a signal lands mid-run), waits for a line of
# LOG starting with TRIGGER ("step " for the first step it reports), then sends SIG to TARGET:
# "mpirun", or "rank-process K" (the Kth of mpirun's children, 0-based), and waits for the job.
# Sets $status to mpirun's exit status.
#   interrupt NP DIR LOG TRIGGER SIG TARGET [more args]
interrupt() {
  local np=$1 dir=$2 log=$3 trigger=$4 sig=$5 target=$6
  shift 6
  "$mpiexec" --oversubscribe -np "$np" "$program" --dir "$dir" "${args[@]}" "$@" >"$log" 2>&1 &
  local launcher=$!
  until grep -q "^$trigger" "$log" 2>/dev/null; do
    kill -0 "$launcher" 2>/dev/null || { wait "$launcher"; cat "$log"; fail "the job ended before '$trigger'"; }
    sleep 0.02
  done
  if [ "$target" = mpirun ]; then
    kill "-$sig" "$launcher"
  else
    local k=${target#rank-process } ranks=()
    mapfile -t ranks < <(pgrep -P "$launcher" | sort -n)
    if [ ${#ranks[@]} -ne "$np" ]; then
      kill "$launcher"
      wait "$launcher"
      fail "found ${#ranks[@]} rank processes under mpirun $launcher, not $np"
    fi
    kill "-$sig" "${ranks[$k]}"
  fi
  status=0
  wait "$launcher" || status=$?
  echo "  $sig to $target after '$trigger': mpirun exited with $status; $(grep -E '^(interrupted|resumed|starting)' "$log" | tr '\n' ' ')"
  [ "$status" -ne 0 ] || { cat "$log"; fail "the job exited with 0 after $sig"; }
}

# The interrupted run saved its step: the log says so, and its saved_digest is what the next run restores.
expect_saved() {
  grep -q "^interrupted at step [0-9]*; saved " "$1" || { cat "$1"; fail "no 'interrupted at step S; saved PATH' in $1"; }
  [ -n "$(value "$1" saved_digest)" ] || { cat "$1"; fail "no saved_digest in $1"; }
}
expect_restored() {  # expect_restored LOG SAVED_LOG: resumed at the step saved, the same global state
  local step
  step=$(sed -n 's/^interrupted at step \([0-9]*\);.*/\1/p' "$2")
  grep -q "^resumed from .* at step $step[: ]" "$1" || { cat "$1"; fail "$1 did not resume at step $step"; }
  [ "$(value "$1" restored_digest)" = "$(value "$2" saved_digest)" ] || { cat "$1"; fail "restored_digest != saved_digest of $2"; }
}

# The uninterrupted run's digest on NP ranks.
reference() {
  run "$1" "reference-$1" "reference-$1.log" || { cat "reference-$1.log"; fail "the uninterrupted $1-rank run failed"; }
  grep -q "^starting from scratch" "reference-$1.log" || fail "the reference run did not start from scratch"
  reference_digest=$(value "reference-$1.log" final_digest)
  [ -n "$reference_digest" ] || { cat "reference-$1.log"; fail "no final_digest"; }
  echo "uninterrupted on $1 ranks: final_digest=$reference_digest"
}

# Runs the same command to the end and compares its digest with the reference.
finish() {
  local np=$1 dir=$2 log=$3
  run "$np" "$dir" "$log" || { cat "$log"; fail "the final run failed"; }
  local digest
  digest=$(value "$log" final_digest)
  echo "  resumed to the end: $(grep -E '^resumed' "$log") final_digest=$digest"
  [ "$digest" = "$reference_digest" ] || { cat "$log"; fail "final_digest $digest != $reference_digest of the uninterrupted run"; }
  if ls "$dir" | grep -q 'ckpt-tmp'; then
    ls -la "$dir"
    fail "temporary files or directories left in $dir"
  fi
}

rm -rf "$work" && mkdir -p "$work" && cd "$work" || fail "cannot make $work"
case $scenario in
  signals)
    reference 4
    # mpirun answers SIGTERM with SIGCONT, then SIGTERM to every rank odls_base_sigkill_timeout
    # seconds later, then SIGKILL as long after that: 2 s, and a run slow enough to outlast it.
    OMPI_MCA_odls_base_sigkill_timeout=2 interrupt 4 run a.log "step 40 " TERM mpirun --sleep-ms-per-step 20
    expect_saved a.log
    interrupt 4 run b.log "step " USR1 "rank-process 2" --sleep-ms-per-step 5
    expect_restored b.log a.log
    expect_saved b.log
    interrupt 4 run c.log "step " TERM "rank-process 1" --sleep-ms-per-step 5
    expect_restored c.log b.log
    expect_saved c.log
    finish 4 run d.log
    ;;
  kills)
    reference 4
    interrupt 4 run a.log "step 30 " KILL "rank-process 1" --sleep-ms-per-step 5  # before the first save
    interrupt 4 run b.log "step 130 " KILL "rank-process 3" --sleep-ms-per-step 5
    grep -q "^resumed from\|^starting from scratch" b.log || fail "b.log: no start"
    for crash in "3 write" "0 write" "0 commit"; do
      set -- $crash
      run 4 run "crash-$1-$2.log" --crash-during-save 1 --crash-rank "$1" --crash-point "$2"
      status=$?
      echo "  rank $1 killed itself in its first save ($2): mpirun exited with $status; $(grep -E '^(resumed|starting)' "crash-$1-$2.log")"
      [ "$status" -ne 0 ] || fail "the job with rank $1 crashing in a save exited with 0"
      grep -q "^final_digest" "crash-$1-$2.log" && fail "the job with a crash in a save completed"
    done
    finish 4 run d.log
    ;;
  async)
    reference 4  # synchronous: the save mode changes nothing in the numbers
    args+=(--async)
    interrupt 4 run a.log "step 100 " TERM "rank-process 3" --sleep-ms-per-step 5
    expect_saved a.log
    interrupt 4 run b.log "step " KILL "rank-process 0" --sleep-ms-per-step 5
    expect_restored b.log a.log
    for crash in "1 write 2" "0 commit 1"; do
      set -- $crash
      run 4 run "crash-$1-$2.log" --crash-during-save "$3" --crash-rank "$1" --crash-point "$2"
      status=$?
      echo "  rank $1 killed itself in its save $3 ($2): mpirun exited with $status; $(grep -E '^(resumed|starting)' "crash-$1-$2.log")"
      [ "$status" -ne 0 ] || fail "the job with rank $1 crashing in a save exited with 0"
      grep -q "^final_digest" "crash-$1-$2.log" && fail "the job with a crash in a save completed"
    done
    finish 4 run d.log
    ;;
  uneven)
    reference 3
    interrupt 3 run a.log "step 100 " USR1 "rank-process 0" --sleep-ms-per-step 5
    expect_saved a.log
    run 3 run b.log --crash-during-save 1 --crash-rank 2
    status=$?
    echo "  rank 2 killed itself in its first save: mpirun exited with $status; $(grep -E '^resumed' b.log)"
    [ "$status" -ne 0 ] || fail "the job with rank 2 crashing in a save exited with 0"
    expect_restored b.log a.log
    interrupt 3 run c.log "step " KILL "rank-process 2" --sleep-ms-per-step 5
    finish 3 run d.log
    ;;
  resize)
    reference 4
    # A finished 4-rank run resumed on 2 ranks: nothing left to train, the same global state.
    cp -r reference-4 done-on-2
    run 2 done-on-2 done-on-2.log || { cat done-on-2.log; fail "the 2-rank resume of a finished run failed"; }
    grep -q "saved by 4 ranks, restored on 2" done-on-2.log || { cat done-on-2.log; fail "no resize"; }
    [ "$(value done-on-2.log restored_digest)" = "$reference_digest" ] || { cat done-on-2.log; fail "restored_digest differs"; }
    [ "$(value done-on-2.log final_digest)" = "$reference_digest" ] || { cat done-on-2.log; fail "final_digest differs"; }
    echo "  a finished 4-rank run restored on 2 ranks: restored_digest=$(value done-on-2.log restored_digest)"
    # Interrupted mid-epoch on 4 ranks, resumed on 2: the global state restored is the one saved,
    # the data positions are dealt out again, and the run goes on to the end.
    interrupt 4 run a.log "step 150 " USR1 "rank-process 1" --sleep-ms-per-step 5
    expect_saved a.log
    if [ -n "$helper" ]; then
      # What 2 ranks restore, saved as a 2-rank checkpoint, against the 4-rank checkpoint, by the
      # tool: every global tensor and value equal (only the per-rank entries are not compared).
      run 2 run dump.log --dump dumped || { cat dump.log; fail "the 2-rank dump failed"; }
      saved=$(sed -n 's/^interrupted at step [0-9]*; saved \(.*\)$/\1/p' a.log)
      "$helper" diff "$saved" dumped >diff.log 2>&1
      status=$?
      cat diff.log
      [ "$status" -eq 1 ] && grep -q "^identical: 20 entries" diff.log && grep -q "^~ ranks: 4 -> 2" diff.log &&
        [ "$(grep -c '^[~+-] ' diff.log)" -eq 1 ] || fail "ckpt diff of the 4-rank checkpoint and the 2-rank restore (exit $status)"
    fi
    run 2 run b.log || { cat b.log; fail "the 2-rank resume failed"; }
    grep -q "saved by 4 ranks, restored on 2" b.log || { cat b.log; fail "no resize"; }
    expect_restored b.log a.log
    grep -q "^final_digest=" b.log || { cat b.log; fail "the 2-rank run did not finish"; }
    echo "  interrupted on 4 ranks, resumed on 2: $(grep '^resumed' b.log)"
    echo "  saved_digest=$(value a.log saved_digest) restored_digest=$(value b.log restored_digest)"
    # And back on 4 ranks, further.
    run 4 run c.log --steps 350 || { cat c.log; fail "the 4-rank resume of a 2-rank checkpoint failed"; }
    grep -q "saved by 2 ranks, restored on 4" c.log || { cat c.log; fail "no resize back"; }
    [ "$(value c.log restored_digest)" = "$(value b.log final_digest)" ] || { cat c.log; fail "restored_digest differs from the 2-rank run's final state"; }
    ;;
  serial)
    run 1 one one.log || { cat one.log; fail "the 1-rank run failed"; }
    "$helper" --dir serial "${args[@]}" >serial.log 2>&1 || { cat serial.log; fail "train_resume failed"; }
    echo "train_resume_mpi on 1 rank: $(value one.log final_digest); train_resume: $(value serial.log final_digest)"
    [ "$(value one.log final_digest)" = "$(value serial.log final_digest)" ] || fail "the digests differ"
    ;;
  *)
    fail "unknown scenario"
    ;;
esac
echo "ok"
