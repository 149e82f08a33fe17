#pragma once
// The restore side of the walk. One pass over the tracked objects checks everything and produces a
// plan; executing the plan is the only thing that changes them. The check pass finds every entry,
// compares kinds, dtypes, shapes, sizes and keys, reads every block it uses into staging storage
// (checking checksum, padding and the bytes of bools) and decodes every opaque value (cereal
// types, move-only ones too, engines and distributions) into a staged value. The plan then only
// moves or swaps staged values into the tracked objects, which does not fail. So a restore that
// fails, for any reason, leaves every tracked object as it was.
//
// Staging costs no extra copy: a block is read once, into memory that becomes the object's storage
// by a swap (dynamic Eigen objects, std::vector, sparse matrices). Fixed-size objects are copied
// from staging, which is cheap because they are small. Containers that take their size from the
// file (an empty std::vector or std::map of structures) are built whole and swapped in; their
// elements are restored straight into the new container ("direct"): nobody sees it before the swap.
//
// Staging memory is recycled: the storage a restore swaps out of the objects is kept (a
// spare_storage, owned by the checkpoint, from its second restore on) and the next restore stages
// the same tensors into it. Why: memory nobody touched yet costs a page fault per page on first
// write, and on our machines that costs more than the read itself (about 2.5 us per 4 KiB page in
// a VM, against under 1 us to copy it from the page cache; benchmarks/results/restore_modes.md); a
// restore into pages an earlier one already faulted runs at the speed of an in-place read. The
// first restore of a process has no spares and pays for its pages.
//
// The default restore stages no tensor whose storage already has the file's shape (and is not of
// bools): the check pass verifies its block (reads it into a small scratch
// buffer per thread and checks its checksums, keeping nothing), and apply() lands it in place,
// reading the block again straight into the object and checking it again while landing. The second
// read comes from the page cache and costs less than a second copy of the model would: it needs no
// memory beyond the objects'. Only when the file changes between the two reads (someone else wrote
// or truncated it) does the landing fail, after some objects changed; apply() then says so.
//
// In in_place mode plain (non-bool) tensor blocks are not staged at all, whatever their shape:
// the plan resizes the objects and reads the blocks into them when it runs. A damaged tensor block
// is then found after earlier objects changed (unless the blocks are verified first, verify_first).
//
// This file: the plan (restore_plan_core, basic_restore_plan) and the interface of its steps.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/restore/block_reads.hpp>
#include <ckpt/detail/restore/source.hpp>
#include <ckpt/detail/restore/spare_storage.hpp>
#include <ckpt/detail/restore/tensor_ops.hpp>

namespace ckpt::detail {

struct restore_problem {
    std::string path;
    std::string what;
};

/// One change to a tracked object, prepared by the check pass.
struct plan_step {
    virtual ~plan_step() = default;
    /// Staged steps only move or swap and do not throw.
    virtual void apply() = 0;
};

/// A tensor that the plan reads into its object in place when it runs, after giving the object the
/// entry's shape. A record rather than a step: a restore of 100k small tensors allocated and called
/// one step per tensor.
struct landing {
    const entry_info* entry;
    void* target;
    const tensor_ops* ops;
};

/// What the check pass found and prepared: problems, the objects the file lacks, the entries it
/// used, and the steps that restore the objects. `walk into it; throw_if_problems(); apply();`
class restore_plan_core {
public:
    restore_plan_core(restore_source& s, bool partial_mode, bool in_place_mode, spare_storage* spare_pool)
        : source(s), partial(partial_mode), in_place(in_place_mode), consumed(s.entries().size(), 0),
          spares(spare_pool) {}
    restore_plan_core(const restore_plan_core&) = delete;
    restore_plan_core& operator=(const restore_plan_core&) = delete;

    restore_source& source;
    const bool partial;
    const bool in_place;
    std::vector<restore_problem> problems;          // mismatches: reported together, before any change
    std::vector<std::string> missing;               // tracked paths the file lacks (partial mode)
    std::vector<char> consumed;                     // per entry of the file
    std::vector<std::unique_ptr<plan_step>> steps;  // in visiting order
    std::vector<landing> landings;                  // in visiting order, read before the steps apply
    spare_storage* spares;                          // staging storage to reuse, and to refill; may be null
    std::size_t boxed = 0;                          // staged tensors that take and leave a spare
    std::vector<std::unique_ptr<spare_storage::item>> swapped_out;  // slot i: what box i's step swapped out

    /// Tensors whose storage has the file's shape are landed in place (see the top of this file),
    /// not staged: the default restore, over a source that reads_in_parallel().
    bool lands_sized_in_place = false;
    /// The check pass verifies the block of every landing (lands_sized_in_place, or in_place with
    /// verify_first), so that apply() finds no damage; a landing that fails all the same (the file
    /// changed meanwhile) is reported as such.
    bool verifies_landings = false;
    /// How apply() reads the landings' blocks (`reads`, on up to `threads` threads); by default
    /// read_blocks from the source. A sharded restore reads each block from the rank file that
    /// holds it instead (ckpt/mpi/detail/shard_restore.hpp).
    std::function<void(const std::vector<block_read>& reads, std::size_t threads)> read_landings;
    /// Other reads into the objects that apply() makes after the landings, which may fail as they
    /// do: a sharded restore's shards, their boxes verified by the check pass.
    std::vector<std::function<void()>> late_landings;

    /// A tensor block that the check pass reads after the walk, with the others (read_staged), into
    /// staging memory that nothing else sees before apply(); or, with memory nullptr, only checks.
    using staged_read = block_read;
    /// 0: the walk reads each block it stages when it meets it. From 1 (sources that
    /// reads_in_parallel() only): the walk collects the staged tensor blocks of a page or more in
    /// staged_reads, and read_staged() reads them, on up to this many threads.
    std::size_t read_threads = 0;
    std::vector<staged_read> staged_reads;
    std::uint64_t staged_bytes = 0;
    std::uint64_t fresh_bytes = 0;                                       // of staged_bytes: into new memory
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> fresh_pages;  // of staged_reads: populated together

    /// Throws mismatch_error listing every problem the check pass found.
    void throw_if_problems() const;
    /// Executes the plan: the only part of a restore that changes tracked objects. The landings
    /// first, read on up to read_threads threads (the pool's) when worth it, then the other steps
    /// in order. A landing may fail (in_place); no other step does.
    void apply();
    std::vector<std::string> unused() const;
};

/// A restore plan over a Source (see restore_source), which the caller still reaches by its own
/// type as `file` (ckpt/mpi.hpp asks a sharded_reader for more than a restore_source offers).
template <class Source>
class basic_restore_plan : private restore_source_of<Source>, public restore_plan_core {
public:
    basic_restore_plan(Source& f, bool partial_mode, bool in_place_mode, spare_storage* spare_pool = nullptr)
        : restore_source_of<Source>(f),
          restore_plan_core(static_cast<restore_source&>(*this), partial_mode, in_place_mode, spare_pool), file(f) {}

    Source& file;
};
using restore_plan = basic_restore_plan<file_reader>;

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void restore_plan_core::throw_if_problems() const {
    if (problems.empty()) return;
    std::string what = problems.front().what;
    for (std::size_t i = 1; i < problems.size() && i < 20; ++i)
        what += "\n  and entry '" + problems[i].path + "': " + problems[i].what;
    if (problems.size() > 20) what += "\n  and " + std::to_string(problems.size() - 20) + " more";
    throw mismatch_error(what, source.path(), problems.front().path);
}

CKPT_INLINE void restore_plan_core::apply() {
    swapped_out.resize(boxed);  // may throw: before the first change
    std::vector<block_read> reads;
    reads.reserve(landings.size());  // grown by doubling, 100k small tensors took twice the memory
    std::uint64_t landing_bytes = 0;
    for (const landing& l : landings) {
        const tensor_ops& ops = *l.ops;
        if (ops.shape_of(l.target) != l.entry->shape) ops.resize(l.target, l.entry->shape);
        reads.push_back({l.entry, ops.data(l.target), static_cast<std::uint32_t>(ops.element_size),
                         static_cast<std::uint16_t>(ops.rank), ops.column_major, ops.bools});
        landing_bytes += l.entry->length;
    }
    try {
        const std::size_t threads = parallel_read_threads(landing_bytes, 0, read_threads);
        if (read_landings)
            read_landings(reads, threads);
        else
            read_blocks(source, reads, threads);
        for (const auto& land : late_landings) land();
    } catch (const error& x) {
        if (!verifies_landings) throw;
        // Every block checked out in the check pass: the file changed since, or the device failed.
        const std::string what =
            "the restore failed after it began changing the tracked objects, some of which now hold the "
            "file's values and others their own: every block had checked out, then reading it again "
            "failed (another program changed or truncated the file, or the device failed); restore again. "
            "The failure: " +
            std::string(x.what());
        if (const auto* io = dynamic_cast<const io_error*>(&x)) throw io_error(what, x.file(), io->code());
        throw corrupt_error(what, x.file(), x.entry());
    }
    for (const auto& s : steps) s->apply();
    steps.clear();
    landings.clear();
    late_landings.clear();
    if (spares) spares->replace(std::move(swapped_out));
    swapped_out.clear();
}

CKPT_INLINE std::vector<std::string> restore_plan_core::unused() const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < consumed.size(); ++i)
        if (!consumed[i]) out.push_back(source.entries()[i].path);
    return out;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
