#!/usr/bin/env bash
# Runs bench_mpi (benchmarks/bench_mpi.cpp) under mpirun with 1, 2 and 4 ranks, then the resharding
# restore of the 4-rank checkpoint on 3 ranks and asynchronous saves on 4 ranks (MPI_THREAD_MULTIPLE
# and SINGLE), and writes benchmarks/results/mpi.md. About 10 minutes on 2 cores.
#   bash benchmarks/run_mpi.sh [--reps N] [--mib M]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=7
mib=256
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --mib) mib=$2; shift 2 ;;
    *) echo "usage: $0 [--reps N] [--mib M]" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh
# Parallel HDF5 is the benchmark's peer only: not a dependency of ckpt or of its tests.
if ! dpkg -s libhdf5-openmpi-dev >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends libhdf5-openmpi-dev >/dev/null
fi

build=build/bench-mpi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCKPT_BUILD_BENCHMARKS=ON -DCKPT_BUILD_TESTS=OFF \
      -DCKPT_BUILD_EXAMPLES=OFF -DCKPT_BUILD_TOOLS=OFF >/dev/null
cmake --build "$build" --target bench_mpi -j"$(nproc)"

# Open MPI refuses root without these; more ranks than cores needs --oversubscribe.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The scratch directory sits on the same file system as the repository, as a checkpoint dir would.
scratch="$build/scratch"
csv="$build/mpi.csv"
rm -rf "$scratch" "$csv"
mkdir -p "$scratch"
loads=()
run() {
  local n=$1; shift
  loads+=("$n ranks: load $(cut -d' ' -f1-3 /proc/loadavg) before")
  mpirun -n "$n" --oversubscribe "$build/benchmarks/bench_mpi" --dir "$scratch" --csv "$csv" --reps "$reps" \
         --mib "$mib" "$@"
  loads[-1]+=", $(cut -d' ' -f1-3 /proc/loadavg) after"
}
run 1 --parts interrupt,io
run 2 --parts interrupt,io
run 4 --parts interrupt,io --keep "$scratch/keep"
run 3 --reshard "$scratch/keep"
# Asynchronous saves on 4 ranks, with the thread level they are meant for and with the default one.
run 4 --parts async --thread-multiple
run 4 --parts async
rm -rf "$scratch"

out=benchmarks/results
mkdir -p "$out"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
CKPT_MACHINE="$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), $(findmnt -no FSTYPE -T . 2>/dev/null || echo '?') file system; $(mpirun --version | head -1); $(c++ --version | head -1); $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit" \
CKPT_LOADS="$(printf '%s; ' "${loads[@]}")" CKPT_REPS="$reps" CKPT_MIB="$mib" \
python3 - "$csv" > "$out/mpi.md" <<'PY'
import csv, os, sys
from collections import defaultdict

rows = list(csv.reader(open(sys.argv[1])))
t = {}
for section, state, n, method, sec, mibps, base, ratio in rows:
    t[(section, state, int(n), method)] = (float(sec), float(mibps), float(ratio))
mib = os.environ["CKPT_MIB"]
print("# ckpt over MPI: benchmark results\n")
print(f"Machine: {os.environ['CKPT_MACHINE']}.")
print(f"Machine load (1/5/15-minute averages, other sessions share this machine): {os.environ['CKPT_LOADS']}\n")
print("**Read with care: this machine has 2 cores and one virtual disk, and the 4-rank runs are "
      "oversubscribed (4 processes on 2 cores, with Open MPI's busy-polling progress). These figures "
      "show ratios between methods on one node, not how a parallel file system scales.**\n")
print(f"Written by `benchmarks/run_mpi.sh` (`benchmarks/bench_mpi.cpp`): medians of {os.environ['CKPT_REPS']} "
      "repetitions after a warm-up, every method run in turn within each repetition (order rotated), time "
      "from a barrier before to a barrier after. Ratios are to `raw` of the same run and rank count "
      "(higher is better).\n")
print(f"- *replicated*: a {mib} MiB model of 16 equal Eigen matrices, the same on every rank. "
      f"*sharded*: one {mib} MiB float tensor [rows, 4096] split by rows, each rank its rows.")
print("- **ckpt**: `ckpt::mpi::checkpoint::save` / `restore` (temporary directory, one file per rank, "
      "manifest, rename; every file and directory fsync'd; restore checks every checksum and stages before it applies).")
print("- **raw** (the limit): each rank `write()`s exactly the bytes ckpt gives it (its replicated matrices, "
      "round robin as ckpt assigns them; its rows) to its own file, then `fsync`. Restore: `pread` of the same "
      "bytes into the matrices (replicated: every rank reads every matrix; sharded: its rows).")
print("- **rank0**: what naive code does: rank 0 writes everything to one file and fsyncs it "
      "(sharded: after an `MPI_Gatherv` of the rows to rank 0).")
print("- **hdf5**: parallel HDF5 1.10 (`H5Pset_fapl_mpio`), one shared file, one dataset per tensor "
      "(no fill values, early allocation), each rank its hyperslab of rows (replicated: its share of "
      "every matrix) in a collective `H5Dwrite`; `H5Fflush(H5F_SCOPE_GLOBAL)`, which in the MPI-IO driver is "
      "`MPI_File_sync` (an fsync on every rank), then `H5Fclose`, then rank 0 fsyncs the file once more "
      "because `H5Fclose` writes metadata after the flush. Restore: collective `H5Dread` of the same selections.")
print("- **staged** (restore only): the floor of a checked, staged restore, which is what ckpt's restore is "
      "(every block read and checked into fresh tensors before any rank changes its objects): the raw "
      "reads into freshly allocated tensors that are then moved in, plus one XXH3 pass over the bytes; "
      "fresh tensors of 4 MiB or more get the transparent-huge-page hint that ckpt gives its staged shards "
      "(`ckpt::detail::advise_fresh_buffer`).")
print("- Aggregate throughput: save, the checkpoint's bytes / time; restore, the bytes that land in all "
      "ranks' objects / time (replicated: ranks x the model, since every rank needs all of it).")
print("- *warm*: the files as the save left them in the page cache. *cold*: every file of the method dropped "
      "with `posix_fadvise(POSIX_FADV_DONTNEED)` first (the VM's host may still cache the disk).\n")

def cell(key):
    v = t.get(key)
    if not v:
        return "-"
    return f"{v[1]:,.0f} ({v[2]:.2f}x)"

ranks = [1, 2, 4]
for section, title in [("save", "Save"), ("restore-warm", "Restore, warm"), ("restore-cold", "Restore, cold")]:
    print(f"## {title}: aggregate MiB/s (ratio to raw)\n")
    print("| state | method | " + " | ".join(f"{n} rank{'s' if n > 1 else ''}" for n in ranks) + " |")
    print("|---|---|" + "---:|" * len(ranks))
    for state in ["replicated", "sharded"]:
        methods = ["ckpt", "raw", "rank0", "hdf5"] if section == "save" else ["ckpt", "raw", "staged", "hdf5"]
        for m in methods:
            if any((section, state, n, m) in t for n in ranks):
                print(f"| {state} | {m} | " + " | ".join(cell((section, state, n, m)) for n in ranks) + " |")
    print()

print("## Checksums in ckpt's save\n")
print("Every rank computing the checksums of every block it tracks, all ranks at once, as milliseconds "
      "and as a share of ckpt's save time. `ckpt::mpi::checkpoint::save` hashes each block once: those a "
      "rank writes while writing them, the replicas other ranks write (for the replicated model, three "
      "quarters of it on 4 ranks) only to compare replicas, after asking the kernel to start writing its "
      "file back, and not at all under `divergence::off`.\n")
print("| state | " + " | ".join(f"{n} rank{'s' if n > 1 else ''}" for n in ranks) + " |")
print("|---|" + "---:|" * len(ranks))
for state in ["replicated", "sharded"]:
    cells = []
    for n in ranks:
        h, c = t.get(("diagnose", state, n, "hash tracked")), t.get(("save", state, n, "ckpt"))
        cells.append(f"{h[0] * 1e3:.0f} ms ({h[0] / c[0] * 100:.0f}%)" if h and c else "-")
    print(f"| {state} | " + " | ".join(cells) + " |")
print()

print("## Resharding restore: a 4-rank sharded checkpoint restored on 3 ranks\n")
print("Each of the 3 ranks restores its rows; raw reads, with `pread`, exactly the bytes of the 4 raw rank "
      "files that hold its rows (a \"full read\" of what each rank needs); staged does the same into a fresh "
      "tensor and hashes it.\n")
print("| cache | method | time (ms) | aggregate MiB/s | ratio to raw |")
print("|---|---|---:|---:|---:|")
for key, v in sorted(t.items(), key=lambda kv: (kv[0][0] != "reshard-warm", kv[0][3] != "ckpt")):
    if key[0].startswith("reshard-"):
        print(f"| {key[0][8:]} | {key[3]} | {v[0] * 1e3:.1f} | {v[1]:,.0f} | {v[2]:.2f}x |")
print()

print("## Asynchronous save: time blocked per save against a memcpy of each rank's state\n")
print("4 ranks. *save_async*: the slowest rank's time inside `save_async`. *wait*: the slowest rank's time "
      "in `wait()` called 2 s later, when the background write is long done (what is left on the caller's "
      "thread: nothing under `MPI_THREAD_MULTIPLE`, the commit under lower thread levels, where it runs at "
      "the next save, `wait()` or restore). *memcpy*: a copy of the same rank's state (replicated: the whole "
      "model; sharded: its rows) into a buffer touched beforehand, all ranks at once. *Budget*: the same "
      "saves by a checkpoint given `set_async_memory_budget` of half the rank's state (each rank its own), "
      "whose caller waits while the part that does not fit is written; *kept*: the copies that checkpoint "
      "holds between saves (`async_memory()`), as a share of the rank's state, the largest of any rank.\n")
print("| MPI thread level | state | memcpy (ms) | save_async (ms) | ratio | wait (ms) | (save_async + wait) / memcpy "
      "| budget: save_async (ms) | budget: wait (ms) | budget: kept / state |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for section, level in [("async-multiple", "MULTIPLE"), ("async-single", "SINGLE")]:
    for state in ["replicated", "sharded"]:
        if (section, state, 4, "not available") in t:
            print(f"| {level} | {state} | | not available: `save_async` threw | | | | | | |")
            continue
        v = {m: t.get((section, state, 4, m)) for m in ["memcpy", "save_async", "wait"]}
        if not all(v.values()):
            continue
        c, a, w = v["memcpy"][0], v["save_async"][0], v["wait"][0]
        b = [t.get((section, state, 4, m), (None,))[0] for m in ["save_async budget", "wait budget", "kept budget"]]
        budget = (f"{b[0] * 1e3:.1f} | {b[1] * 1e3:.1f} | {b[2]:.2f}" if None not in b else "| |")
        print(f"| {level} | {state} | {c * 1e3:.1f} | {a * 1e3:.1f} | {a / c:.2f}x | {w * 1e3:.1f} | {(a + w) / c:.2f}x "
              f"| {budget} |")
print()

print("## The interrupt check per step\n")
print("`train_step` of `examples/mlp_training.hpp` (16-64-4 MLP, batch 32) plus an `MPI_Allreduce` of its 1,348 "
      "gradient floats, as the data-parallel flagship does per step = *step*. The check is one more "
      "`MPI_Allreduce` of one int per step (what `save_if_due(step, guard)` does to combine the ranks' "
      "signals); *overlapped* starts it with `MPI_Iallreduce` after step n and completes it after step n+1 "
      "(the decision is one step late). Per-step times, medians of 2,000-step blocks.\n")
print("| ranks | train_step alone (us) | step (us) | allreduce(1 int) alone (us) | alone / step | step+check - step | step+overlapped - step |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for n in ranks:
    g = lambda m: t.get(("interrupt", "mlp step", n, m), (0,))[0]
    step = g("step")
    if not step:
        continue
    print(f"| {n} | {g('train_step only') * 1e6:.1f} | {step * 1e6:.1f} | {g('allreduce alone') * 1e6:.2f} | "
          f"{g('allreduce alone') / step * 100:.1f}% | {(g('step+allreduce') - step) / step * 100:+.1f}% | "
          f"{(g('step+iallreduce') - step) / step * 100:+.1f}% |")
print()

print("## Targets (issue 15)\n")
def r(key):
    v = t.get(key)
    return v[2] if v else None
def s(key):
    v = t.get(key)
    return v[0] if v else None
lines = []
x = r(("save", "replicated", 4, "ckpt"))
if x is not None:
    lines.append(f"- Replicated save, 4 ranks, >= 0.9x raw: **{x:.2f}x** ({'met' if x >= 0.9 else 'missed'}).")
    for peer in ["rank0", "hdf5"]:
        a, b = s(("save", "replicated", 4, "ckpt")), s(("save", "replicated", 4, peer))
        if a and b:
            lines.append(f"- Replicated save, 4 ranks, ahead of {peer}: ckpt {a * 1e3:.0f} ms, {peer} {b * 1e3:.0f} ms "
                         f"(**{b / a:.2f}x** ckpt's speed; {'met' if a < b else 'missed'}).")
for c in ["warm", "cold"]:
    x = r((f"reshard-{c}", "sharded 4->3", 3, "ckpt"))
    if x is not None:
        st = s((f"reshard-{c}", "sharded 4->3", 3, "staged")) / s((f"reshard-{c}", "sharded 4->3", 3, "ckpt"))
        lines.append(f"- Resharding restore 4 -> 3, {c}, >= 0.8x raw read of the bytes each rank needs: "
                     f"**{x:.2f}x** ({'met' if x >= 0.8 else 'missed'}; {st:.2f}x the staged floor).")
for (section, state, n, m), v in sorted(t.items()):
    level = section[6:].upper()
    if section.startswith("async-") and m == "save_async":
        c, w = t[(section, state, n, "memcpy")][0], t[(section, state, n, "wait")][0]
        x = (v[0] + w) / c
        lines.append(f"- Async blocked, {state}, 4 ranks, MPI_THREAD_{level}, <= 1.5x memcpy: **{x:.2f}x** "
                     f"(save_async {v[0] / c:.2f}x + wait {w / c:.2f}x; {'met' if x <= 1.5 else 'missed'}).")
    if section.startswith("async-") and m == "not available":
        lines.append(f"- Async blocked, {state}, 4 ranks, MPI_THREAD_{level}: not measured (`save_async` threw).")
for n in ranks:
    step, alone = s(("interrupt", "mlp step", n, "step")), s(("interrupt", "mlp step", n, "allreduce alone"))
    if step and n > 1:
        p = alone / step * 100
        lines.append(f"- Interrupt check, {n} ranks, < 1% of a step: **{p:.1f}%** ({'met' if p < 1 else 'missed'}).")
print("\n".join(lines))
PY
echo "wrote $out/mpi.md"
cat "$out/mpi.md"
