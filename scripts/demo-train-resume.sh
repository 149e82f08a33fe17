#!/usr/bin/env bash
# The interruption demo behind scripts/demo.sh: the same training run three ways, compared.
#   1. uninterrupted;  2. stopped by SIGTERM, then killed with kill -9, then resumed to the end.
# Usage: demo-train-resume.sh TRAIN_RESUME_BINARY [CKPT_TOOL_BINARY]
set -euo pipefail
bin=$1
tool=${2:-}
work=$(mktemp -d /tmp/ckpt-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
args=(--steps 3000 --save-every 250 --keep 3 --print-every 500)

wait_for_line() {  # wait until the log shows a line starting with $2
  until grep -q "^$2" "$1" 2>/dev/null; do
    if ! kill -0 "$3" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
}

echo "== 1. An uninterrupted run ($bin ${args[*]})"
"$bin" --dir "$work/straight" "${args[@]}" | tee "$work/straight.log"
straight=$(sed -n 's/^final_digest=//p' "$work/straight.log")

# Starts the run in the background, sends signal $2 once its log ($1) shows step $3, waits for it.
run_and_signal() {
  "$bin" --dir "$work/resumed" "${args[@]}" --sleep-ms-per-step 1 > "$1" 2>&1 &
  local pid=$!
  wait_for_line "$1" "step $3 " "$pid"
  kill "-$2" "$pid"
  status=0; wait "$pid" 2>/dev/null || status=$?
  cat "$1"
}

echo
echo "== 2a. The same run in another directory, stopped with SIGTERM after step 1000"
run_and_signal "$work/run1.log" TERM 1000
echo "(exit status $status: 75 means 'interrupted and saved, run me again')"

echo
echo "== 2b. Rerun the same command; this time kill -9 after step 2000 (no chance to save)"
run_and_signal "$work/run2.log" KILL 2000
echo "(killed: exit status $status)"

echo
echo "== 2c. Rerun the same command again: it resumes from the last complete checkpoint"
"$bin" --dir "$work/resumed" "${args[@]}" | tee "$work/run3.log"
resumed=$(sed -n 's/^final_digest=//p' "$work/run3.log")

if [ -n "$tool" ] && [ -x "$tool" ]; then
  echo
  echo "== The checkpoints the resumed run keeps (ckpt ls)"
  "$tool" ls "$work/resumed" || true
  echo
  echo "== ckpt diff of the two final checkpoints"
  "$tool" diff "$work/straight/ckpt-3000" "$work/resumed/ckpt-3000" || true
fi

echo
echo "uninterrupted run:             final_digest=$straight"
echo "interrupted, killed, resumed:  final_digest=$resumed"
if [ "$straight" = "$resumed" ] && [ -n "$straight" ]; then
  echo "identical: the resumed run ended bit for bit where the uninterrupted one did"
else
  echo "DIFFERENT: resume did not reproduce the run" >&2
  exit 1
fi
