#pragma once
// An asynchronous sharded save (save_async, write_async, save_as_async; docs/distributed.md):
// every rank copies its state into a buffer kept between saves and returns. Then, collectively:
// an exchange (the name, each rank's outcome, the block sizes that decide which rank writes which
// replicated block, a fixed-size header when nothing changed since the last save; rank 0 makes
// the temporary directory); each rank hashes, writes and fsyncs its file on a background thread;
// the commit (commit_save: checksums exchanged, replicas compared, manifest, rename, agreed).
//   MPI_THREAD_MULTIPLE provided: the caller's thread makes no MPI call; the background thread
//     does the exchange and the commit over a duplicate of the communicator made by the first
//     asynchronous save (never the caller's, where the caller's own collectives run meanwhile);
//     `then` of save_as_async runs there after the commit.
//   otherwise (SINGLE, FUNNELED, SERIALIZED): the background thread makes no MPI call; the
//     exchange runs on the caller's thread around the copy, the commit at the next save, wait(),
//     restore or the destructor, which every rank must therefore call alike; `then` runs there.
//   under a memory budget (set_async_memory_budget, per rank): the exchange runs on the caller's
//     thread first (under MPI_THREAD_MULTIPLE over the duplicate, after the same barrier, so
//     ranks with and without a budget meet), then the rank begins its file there and writes (or
//     hashes) from its objects what does not fit in the budget, and copies only the rest; the
//     background thread goes on from there (rank_file.hpp).
// Either way an error on any rank surfaces on every rank at that point as the same typed error,
// and nothing exists under the final name until the rename.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include <ckpt/detail/hash.hpp>
#include <ckpt/detail/format/layout.hpp>
#include <ckpt/detail/format/writer.hpp>
#include <ckpt/detail/io/descriptor.hpp>
#include <ckpt/metadata.hpp>
#include <ckpt/mpi/detail/collective_save.hpp>
#include <ckpt/mpi/detail/communicator.hpp>
#include <ckpt/mpi/detail/failure.hpp>
#include <ckpt/mpi/detail/rank_file.hpp>
#include <ckpt/mpi/detail/save_plan.hpp>
#include <ckpt/mpi/detail/sinks.hpp>
#include <ckpt/mpi/track.hpp>
#include <ckpt/warning.hpp>

namespace ckpt::mpi::detail {

/// What an asynchronous save of a rank carries from its start to its commit.
struct async_state {
    std::filesystem::path file, temp;
    save_options options;
    std::uint64_t counter = 0;
    std::chrono::system_clock::time_point when;
    divergence policy = divergence::refuse;
    copy_sink sink;                                     // this rank's copied blocks
    std::vector<std::vector<planned_block>> all;        // every rank's descriptions
    std::vector<std::uint32_t> owner;                   // per replicated block: its writer
    std::vector<std::uint64_t> planned_hashes;          // per rank: its descriptions' hash, when planned
    failure start;                                      // of this rank's copy
    failure outcome;                                    // of this rank's write (start_within's part too)
    ckpt::detail::file_descriptor held;                 // rank 0: the temporary directory, until the commit
    bool budgeted = false;                              // under a memory budget: see start_within
    rank_part part;                                     // what this rank writes and hashes
    std::unique_ptr<ckpt::detail::file_writer> writer;  // begun by start_within, if at all
    resume_point resume;                                // where start_within stopped
};

/// The asynchronous saves of one ckpt::mpi::checkpoint: what one carries from its start to its
/// commit, and the duplicate communicator of the background thread.
class async_saver {
public:
    async_saver() = default;
    async_saver(const async_saver&) = delete;
    async_saver& operator=(const async_saver&) = delete;
    // Frees the background thread's duplicate (the checkpoint settled its save in flight first).
    ~async_saver() {
        if (own_ && !communicator::finalized()) own_->free();
    }

    /// The memory this rank's copies keep from one save to the next.
    std::size_t memory() const noexcept { return state_.sink.memory(); }

    /// On the caller's thread: every rank copies its blocks (`walk` walks its tracked objects into
    /// the sink; no hashing). Returns true under MPI_THREAD_MULTIPLE: then that is all, and
    /// write_and_commit() does the rest on the background thread. Otherwise the background thread
    /// can make no MPI call, so the exchange runs here first, before the copy (no rank waits in it
    /// for another's copy); then write() on the background thread and commit() on the caller's.
    /// Under a memory `budget` (bytes of tensor copies; the ranks may differ) see start_within.
    bool start(const communicator& comm, const std::filesystem::path& file, const save_options& options,
               std::uint64_t counter, std::chrono::system_clock::time_point when, divergence policy,
               const std::function<void(copy_sink&)>& walk, std::optional<std::size_t> budget) {
        const bool multiple = communicator::thread_multiple();
        // The background thread's collectives never share the caller's communicator, where the
        // caller's own collectives (a manager's per-step check, an Allreduce) run meanwhile.
        if (multiple && !own_) own_.emplace(comm.duplicate());
        rank_ = comm.rank();
        auto& a = state_;
        a.file = file;
        a.options = options;
        a.counter = counter;
        a.when = when;
        a.temp = temp_directory(file, counter);
        a.policy = policy;
        a.outcome = a.start = {};
        a.budgeted = budget.has_value();
        a.part = {};
        a.resume = {};
        a.sink.clear(file);
        try {
            walk(a.sink);
            if (!a.budgeted) a.sink.reserve();
        } catch (...) {
            // Not thrown here: the other ranks go on to the exchange, which reports it on all.
            a.start = capture();
            a.start.what = "while copying its tracked objects: " + a.start.what;
        }
        if (a.budgeted) {
            start_within(comm, *budget);
        } else if (multiple) {
            if (!a.start) a.sink.copy();
        } else {
            exchange(comm, true);
        }
        return multiple;
    }

    /// Background thread, MPI_THREAD_MULTIPLE: the exchange, this rank's file and the commit, over
    /// the duplicate; the ranks meet in a polled barrier before each collective part.
    void write_and_commit() {
        if (!state_.budgeted) {
            own_->arrive();
            exchange(*own_, false);
        }
        write_own_file();
        own_->arrive();
        commit(*own_);
    }
    /// Background thread, no MPI: this rank's file.
    void write() noexcept { write_own_file(); }
    /// The commit, collective over `c` (the checkpoint's own communicator on the background thread
    /// under MPI_THREAD_MULTIPLE, else the caller's, on the caller's thread); see commit_save.
    void commit(const communicator& c) {
        auto& a = state_;
        commit_save(c, a.all, a.sink.blocks, a.outcome, a.temp, a.file, a.policy, a.options, a.counter, a.when, a.held);
    }

    /// A save whose commit was dropped (the checkpoint destroyed after MPI_Finalize, or by an
    /// exception): rank 0 removes its temporary directory, and the warning handler hears of it.
    void abandoned(bool finalized) noexcept {
        if (rank_ == 0) {
            std::error_code ec;
            std::filesystem::remove_all(state_.temp, ec);
        }
        ckpt::detail::warn(warning_kind::async_save_failed,
                           "an asynchronous save to '" + state_.file.string() +
                               "' was abandoned before its commit (the checkpoint was destroyed " +
                               (finalized ? "after MPI_Finalize" : "by an exception") + "): call wait() first");
    }

private:
    // Under a memory budget, on the caller's thread: the exchange first (under MPI_THREAD_MULTIPLE
    // over the duplicate, after the barrier the background thread passes, so that a rank without
    // a budget meets it there), which says which blocks this rank writes; then its file begun, the
    // blocks that do not fit in the budget written (or hashed) from the objects' memory, and the
    // rest copied. A failure here is this rank's outcome, reported on every rank by the commit.
    void start_within(const communicator& comm, std::size_t budget) {
        namespace cd = ckpt::detail;
        auto& a = state_;
        if (own_) own_->arrive();
        exchange(own_ ? *own_ : comm, false);
        a.part = rank_part_of(a.sink.blocks, a.owner, static_cast<std::uint32_t>(rank_), a.policy);
        try {
            a.sink.point_at_values();
            const std::size_t total = tensor_bytes(a.sink.blocks, a.part);
            if (total > budget) {
                a.writer =
                    std::make_unique<cd::file_writer>(a.temp / cd::rank_file_name(static_cast<std::uint64_t>(rank_)));
                a.resume = write_ahead(*a.writer, a.sink.blocks, a.part, total - budget);
            }
            a.sink.copy_rest(a.part, a.resume, budget);
        } catch (...) {
            a.outcome = capture();
            a.writer.reset();
        }
    }

    // Collective over `c`: what must be agreed before any rank writes. Rank 0 creates the temporary
    // directory. A fixed-size header from every rank (MPI_Iallgather) carries its outcome so far,
    // name, number, time, process id and a hash of its block descriptions; `copy`: this rank copies
    // its tensors while the others' headers arrive. When every rank succeeded, chose rank 0's name
    // and has the descriptions of the last exchange, the plan made then stands. Otherwise one more
    // allgather carries the messages, names and descriptions (sizes, no checksums), from which every
    // rank derives the same plan of which rank writes which replicated block. Refusals (a failed
    // copy, another name, replicated entries or shards that do not match) throw on every rank
    // alike, the temporary directory removed.
    void exchange(const communicator& c, bool copy) {
        namespace cd = ckpt::detail;
        namespace fs = std::filesystem;
        auto& a = state_;
        const int world = c.size();
        failure mine = a.start;
        if (c.rank() == 0 && !mine) {
            try {
                a.held = make_temp_directory(a.file, a.temp);
            } catch (...) {
                mine = capture();
                mine.what = "to create the checkpoint's temporary directory: " + mine.what;
            }
        }
        const std::string descriptions = encode_descriptions(a.sink.blocks);
        const std::string name = a.file.string();
        enum { kind, counter, time, pid, name_hash, descriptions_hash, fields };
        std::uint64_t header[fields] = {
            static_cast<std::uint64_t>(mine.kind),
            a.counter,
            static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(a.when.time_since_epoch()).count()),
            static_cast<std::uint64_t>(::getpid()),
            cd::hash64(name.data(), name.size()),
            cd::hash64(descriptions.data(), descriptions.size())};
        std::vector<std::uint64_t> headers(cd::to_size(world) * fields);
        c.allgather_during(header, fields, headers.data(), [&] {
            if (copy && !a.start) a.sink.copy();
        });

        // Rank 0's time and temporary directory are the save's.
        a.when = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(static_cast<std::int64_t>(headers[time]))));
        a.temp = temp_directory(a.file, a.counter, headers[pid]);
        bool again = a.planned_hashes.size() != cd::to_size(world);
        for (int r = 0; r < world && !again; ++r) {
            const std::uint64_t* h = &headers[cd::to_size(r) * fields];
            again = h[kind] != failure::none || h[counter] != headers[counter] || h[name_hash] != headers[name_hash] ||
                    h[descriptions_hash] != a.planned_hashes[cd::to_size(r)];
        }
        if (!again) return;  // a.all and a.owner are the last exchange's
        a.planned_hashes.clear();

        cd::index_builder out;
        encode_failure(out, mine);
        out.text(name);
        out.u64(a.counter);
        out.text(descriptions);
        const auto gathered = c.allgather(out.bytes());

        failure agreed;
        a.all.clear();
        std::string name0;
        std::uint64_t counter0 = 0;
        for (int r = 0; r < world; ++r) {
            cd::index_parser in(gathered[cd::to_size(r)], a.file);
            const failure f = decode_failure(in);
            const std::string their_name = in.text("file");
            const std::uint64_t their_counter = in.u64();
            a.all.push_back(decode_descriptions(in.text("descriptions")));
            if (r == 0) {
                name0 = their_name;
                counter0 = their_counter;
            }
            if (agreed) continue;
            if (f) {
                agreed = blame(f, r, world, "");
            } else if (their_name != name0 || their_counter != counter0) {
                agreed = {failure::generic,
                          {},
                          "rank " + std::to_string(r) + " of " + std::to_string(world) +
                              " failed to agree on the checkpoint's name: it would save to '" + their_name +
                              "' (save " + std::to_string(their_counter) + "), rank 0 to '" + name0 + "' (save " +
                              std::to_string(counter0) + ")"};
            }
        }
        if (agreed) {
            discard(a.temp, c);
            raise(agreed, a.file);
        }
        try {
            // Sizes only: the owners do not depend on checksums, which the commit compares.
            a.owner = plan_save(a.all, divergence::off, a.file).owner;
        } catch (...) {
            discard(a.temp, c);
            throw;
        }
        for (int r = 0; r < world; ++r)
            a.planned_hashes.push_back(headers[cd::to_size(r) * fields + descriptions_hash]);
    }

    // Background thread, no MPI: this rank's file, written and fsynced in the temporary directory,
    // and the checksums of its blocks (of the replicated ones it does not write too, unless
    // divergence::off, for the commit's comparison). The outcome is kept, never thrown: every rank
    // must reach the commit, where the outcomes are agreed.
    void write_own_file() noexcept {
        namespace cd = ckpt::detail;
        auto& a = state_;
        if (a.outcome) return;  // start_within failed
        try {
            if (!a.budgeted) a.part = rank_part_of(a.sink.blocks, a.owner, static_cast<std::uint32_t>(rank_), a.policy);
            if (!a.writer)
                a.writer =
                    std::make_unique<cd::file_writer>(a.temp / cd::rank_file_name(static_cast<std::uint64_t>(rank_)));
            a.writer->hash_on_one_thread();  // beside the training, as ckpt::detail::snapshot::write
            if (a.resume.begun) finish_begun_block(*a.writer, a.sink.blocks, a.part, a.resume, a.sink.begun_tail());
            write_blocks(*a.writer, a.sink.blocks, a.part, a.resume.next);
            a.writer->finish(a.options, a.counter, a.when);
        } catch (...) {
            a.outcome = capture();
        }
        a.writer.reset();  // and a failed write's temporary file goes
    }

    async_state state_;
    int rank_ = 0;
    std::optional<communicator> own_;  // MPI_THREAD_MULTIPLE: the background thread's duplicate
};

}  // namespace ckpt::mpi::detail
