#pragma once
// A restore from a sharded checkpoint, collective over a communicator, on any number of ranks:
// every rank opens the checkpoint, checks what its objects need (a shard: only the pieces and
// chunks its box covers), staging what must take new storage, and collects every problem; the
// ranks agree before any of them applies, which lands the rest in place.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <ckpt/checkpoint.hpp>
#include <ckpt/detail/format/sharded_reader.hpp>
#include <ckpt/detail/hash.hpp>
#include <ckpt/detail/restore/block_reads.hpp>
#include <ckpt/detail/restore/spare_storage.hpp>
#include <ckpt/detail/restore/staged_reads.hpp>
#include <ckpt/detail/restore/walker.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/io/page_population.hpp>
#include <ckpt/mpi/detail/communicator.hpp>
#include <ckpt/mpi/detail/failure.hpp>
#include <ckpt/mpi/track.hpp>
#include <ckpt/threads.hpp>

namespace ckpt::mpi::detail {

using sharded_plan = ckpt::detail::basic_restore_plan<ckpt::detail::sharded_reader>;
using sharded_walker = ckpt::detail::basic_restore_walker<ckpt::detail::sharded_reader>;

/// Stages a replicated object (`world`: the ranks restoring).
template <class T>
void stage(sharded_plan& plan, tracked<T>& t, std::uint32_t, std::uint32_t) {
    sharded_walker(plan, t.name).visit(*t.object);
}
/// Stages a per-rank object: only from a checkpoint saved by as many ranks.
template <class T>
void stage(sharded_plan& plan, tracked_per_rank<T>& t, std::uint32_t saved, std::uint32_t world) {
    if (saved == world) return sharded_walker(plan, t.name).visit(*t.object);
    // Another rank's state is never silently dropped or reused.
    if (plan.partial)
        plan.missing.push_back(t.name);
    else
        plan.problems.push_back({t.name, "per-rank state was saved by " + std::to_string(saved) +
                                             " ranks and is restored on " + std::to_string(world) +
                                             ": restore with ckpt::partial to leave it as it is " +
                                             "(ckpt::reader can read any rank's copy)"});
}
/// Checks a shard, whose box is the object's own shape: its box is verified (only the pieces and
/// chunks that cover it are read and checked, nothing kept) and read again straight into the
/// object by the plan's apply (late_landings), checked again as it lands. Bool shards, whose bytes
/// must be checked too, are staged instead: read into a fresh tensor that a plan step moves in.
template <class T>
void stage(sharded_plan& plan, tracked_shard<T>& t, std::uint32_t, std::uint32_t) {
    namespace cd = ckpt::detail;
    using traits = tensor_traits<T>;
    const entry_info* e = plan.file.find(t.name);
    if (!e) {
        if (plan.partial)
            plan.missing.push_back(t.name);
        else
            plan.problems.push_back({t.name, "not found in the checkpoint"});
        return;
    }
    plan.consumed[plan.file.index_of(*e)] = 1;
    const auto& m = plan.file.logical(*e);
    const shape ext = traits::shape_of(*t.object);
    std::string why;
    if (m.kind != entry_kind::tensor || m.role == ckpt::detail::entry_role::per_rank)
        why = "checkpoint has a " + std::string(cd::role_name(m.role)) + " " + entry_kind_name(m.kind) +
              ", object is a shard";
    else if (m.dtype != dtype_of<typename traits::element>() || m.dims != t.global)
        why = "checkpoint has a global tensor of " + std::string(dtype_name(m.dtype)) + " " + m.dims.to_string() +
              ", the shard is of " + dtype_name(dtype_of<typename traits::element>()) + " " + t.global.to_string();
    else
        for (std::size_t d = 0; d < ext.rank(); ++d)
            if (t.offsets[d] > t.global[d] || ext[d] > t.global[d] - t.offsets[d])
                why = "the object's block " + ext.to_string() + " at offsets " + t.offsets.to_string() +
                      " lies outside the global shape " + t.global.to_string();
    if (!why.empty()) return plan.problems.push_back({t.name, why});
    if (!plan.problems.empty()) return;  // the restore will throw: not worth reading
    if (m.dtype != dtype::boolean) {
        plan.file.read_box(m, t.offsets, ext, traits::column_major, nullptr);
        plan.late_landings.push_back([&file = plan.file, &m, &t, ext] {
            file.read_box(m, t.offsets, ext, traits::column_major, traits::data(*t.object));
        });
        return;
    }
    auto read_into = [&](auto& value) {
        plan.file.read_box(m, t.offsets, ext, traits::column_major, traits::data(value));
    };
    if constexpr (std::is_array_v<T>) {
        auto step = std::make_unique<cd::array_step<T>>(*t.object);
        read_into(step->value);
        plan.steps.push_back(std::move(step));
    } else if constexpr (std::is_default_constructible_v<T> && std::is_move_assignable_v<T>) {
        std::unique_ptr<cd::move_step<T>> step;
        try {
            step = std::make_unique<cd::move_step<T>>(*t.object);
            if (traits::shape_of(step->value) != ext) {
                traits::resize(step->value, ext);
                // Fresh memory, filled next: see advise_fresh_buffer.
                cd::advise_fresh_buffer(traits::data(step->value),
                                        cd::to_size(ext.elements() * sizeof(typename traits::element)));
            }
        } catch (const std::bad_alloc&) {
            throw error("not enough memory to stage the shard's " +
                            std::to_string(ext.elements() * sizeof(typename traits::element)) +
                            " bytes for the restore",
                        plan.file.path(), t.name);
        }
        if (traits::shape_of(step->value) == ext) {
            read_into(step->value);
            return plan.steps.push_back(std::move(step));
        }
    }
    if constexpr (!std::is_array_v<T>) {
        // A tensor type that cannot be made empty and resized: stage a copy of the object.
        static_assert(
            std::is_copy_constructible_v<T> && std::is_move_assignable_v<T>,
            "ckpt: a restored shard's tensor type must be default-constructible or copyable, and move-assignable");
        T copy = *t.object;
        read_into(copy);
        plan.steps.push_back(std::make_unique<cd::move_step<T>>(*t.object, std::move(copy)));
    }
}

inline void read_pieces(sharded_plan& plan, const std::vector<ckpt::detail::block_read>& reads, std::size_t threads);

/// Reads the tensor blocks the check pass collected (plan.staged_reads: replicated and per-rank
/// tensors of a page or more, and the blocks of landings, only checked), as read_staged reads a
/// single file's: each such block is one piece in one rank file, so the blocks are read through
/// the reader of the file that holds them (read_pieces), on up to plan.read_threads threads
/// (`one_thread`: on this one) when the blocks are enough bytes to be worth it
/// (parallel_read_threads), in parts of whole chunks and small blocks in runs. Throws the error of
/// the first damaged block in the walk's order.
inline void read_staged_pieces(sharded_plan& plan, bool one_thread) {
    namespace cd = ckpt::detail;
    const std::vector<cd::block_read> reads = std::move(plan.staged_reads);
    plan.staged_reads.clear();
    const std::uint64_t bytes = plan.staged_bytes, fresh = plan.fresh_bytes;
    plan.staged_bytes = plan.fresh_bytes = 0;
    cd::populate_pages(plan.fresh_pages);
    plan.fresh_pages.clear();
    if (reads.empty()) return;
    read_pieces(plan, reads, one_thread ? 1 : cd::parallel_read_threads(bytes, fresh, plan.read_threads));
}

/// Shares the check of replicated blocks among the ranks (collective: every rank calls it, after
/// its walk). Every rank lands every replicated tensor it tracks and checks it again while it lands;
/// the check pass before need not read each such block on every rank as well: when every rank
/// collected the same replicated blocks to check (`walked`: this rank's walk succeeded), each
/// checks a share of them, by bytes, and drops the others from plan.staged_reads. The ranks agree
/// on the outcome of the check pass before any applies, so damage any rank finds still leaves
/// every object as it was; should the files differ between ranks' views (another program
/// rewriting them), the landing's own check fails and says the objects are partly restored. Where
/// the ranks collected different blocks (partial restores tracking different objects) nothing is
/// shared: every rank checks all of its own.
inline void share_replica_checks(const communicator& c, sharded_plan& plan, bool walked) {
    namespace cd = ckpt::detail;
    const auto world = static_cast<std::uint64_t>(c.size()), me = static_cast<std::uint64_t>(c.rank());
    // The replicated blocks only to check (no memory: landings), as (manifest index, bytes, read).
    struct check {
        std::uint64_t index, bytes;
        std::size_t read;
    };
    std::vector<check> checks;
    std::string mine;
    if (walked) {
        const auto* first = plan.file.manifest().entries.data();
        for (std::size_t i = 0; i < plan.staged_reads.size(); ++i) {
            const cd::block_read& r = plan.staged_reads[i];
            if (r.memory) continue;
            try {
                const cd::manifest_entry& m = plan.file.logical(*r.entry);
                if (m.role == cd::entry_role::replicated)
                    checks.push_back({static_cast<std::uint64_t>(&m - first), r.entry->length, i});
            } catch (...) {  // left to read_staged_pieces, which reports it
            }
        }
        std::sort(checks.begin(), checks.end(), [](const check& a, const check& b) { return a.index < b.index; });
        std::vector<std::uint64_t> words;
        for (const check& k : checks) words.insert(words.end(), {k.index, k.bytes});
        const std::uint64_t digest[2] = {cd::hash64(words.data(), words.size() * 8), words.size()};
        mine.assign(reinterpret_cast<const char*>(digest), sizeof digest);
    }
    const std::vector<std::string> all = c.allgather(mine);
    if (!walked || checks.empty() ||
        std::any_of(all.begin(), all.end(), [&](const std::string& a) { return a != mine; }))
        return;
    std::uint64_t total = 0;
    for (const check& k : checks) total += k.bytes;
    // Block k goes to the rank in whose share of the bytes it begins: the same on every rank.
    std::vector<bool> dropped(plan.staged_reads.size(), false);
    std::uint64_t before = 0;
    for (const check& k : checks) {
        const std::uint64_t owner =
            total == 0 ? 0 : static_cast<std::uint64_t>(static_cast<long double>(before) * world / total);
        before += k.bytes;
        if (std::min(owner, world - 1) != me) dropped[k.read] = true;
    }
    std::vector<cd::block_read> kept;
    kept.reserve(plan.staged_reads.size());
    for (std::size_t i = 0; i < plan.staged_reads.size(); ++i) {
        if (dropped[i])
            plan.staged_bytes -= plan.staged_reads[i].entry->length;
        else
            kept.push_back(plan.staged_reads[i]);
    }
    plan.staged_reads = std::move(kept);
}

/// Reads `reads` (blocks of replicated and per-rank entries, by their logical entries) through the
/// reader of the rank file that holds each, file after file, each file's on up to `threads`
/// threads; what read_staged_pieces and the landings of apply() read with. Throws the error of the
/// first damaged block in the order of `reads`.
inline void read_pieces(sharded_plan& plan, const std::vector<ckpt::detail::block_read>& reads, std::size_t threads) {
    namespace cd = ckpt::detail;

    // Per rank file, its blocks in the walk's order and where each stands in it. Blocks that are
    // not one piece (a shard's whole global tensor, which a replicated object may track) are read
    // through the sharded reader, on this thread.
    struct file_reads {
        std::vector<cd::block_read> reads;
        std::vector<std::size_t> walk_index;
    };
    std::vector<file_reads> by_file(plan.file.world_size() + 1);  // the last: not one piece
    std::exception_ptr unresolved;  // a piece that does not match the manifest, at walk index `stop`
    std::size_t stop = reads.size();
    for (std::size_t i = 0; i < reads.size(); ++i) {
        cd::block_read r = reads[i];
        std::size_t f = by_file.size() - 1;
        try {
            const cd::manifest_entry& m = plan.file.logical(*r.entry);
            if (m.role != cd::entry_role::shard && m.pieces.size() == 1) {
                f = m.pieces[0].file;
                r.entry = &plan.file.piece_entry(m, m.pieces[0]);  // the block in its rank file
            }
        } catch (...) {
            unresolved = std::current_exception();
            stop = i;
            break;
        }
        by_file[f].reads.push_back(r);
        by_file[f].walk_index.push_back(i);
    }

    // Every file's blocks are read (as read_staged reads every block), then the error of the
    // block that comes first in the walk is thrown.
    std::exception_ptr first;
    std::size_t first_index = stop;
    for (std::size_t f = 0; f < by_file.size(); ++f) {
        const file_reads& g = by_file[f];
        if (g.reads.empty()) continue;
        try {
            if (f + 1 == by_file.size()) {
                cd::read_blocks(plan.source, g.reads, 1);
            } else {
                cd::restore_source_of<cd::file_reader> rank_file(plan.file.file(static_cast<std::uint32_t>(f)));
                cd::read_blocks(rank_file, g.reads, threads);
            }
        } catch (const error& x) {
            // The failed block: the first of this file's blocks that bears the error's entry.
            std::size_t at = g.walk_index.front();
            for (std::size_t k = 0; k < g.reads.size(); ++k)
                if (g.reads[k].entry->path == x.entry()) {
                    at = g.walk_index[k];
                    break;
                }
            if (at < first_index) {
                first = std::current_exception();
                first_index = at;
            }
        } catch (...) {
            if (g.walk_index.front() < first_index) {
                first = std::current_exception();
                first_index = g.walk_index.front();
            }
        }
    }
    if (first) std::rethrow_exception(first);
    if (unresolved) std::rethrow_exception(unresolved);
}

/// A restore from the sharded checkpoint `file`, collective over `c`: `check_all` stages every
/// tracked object into the plan (`saved`: the ranks that saved); `spares`: storage the last
/// restore swapped out, to stage into (may be null). Returns the status and the save counter of
/// the checkpoint.
inline std::pair<restore_status, std::uint64_t> restore_collectively(
    const communicator& c, const std::filesystem::path& file, restore_mode mode, ckpt::detail::spare_storage* spares,
    const std::function<void(sharded_plan& plan, std::uint32_t saved)>& check_all) {
    namespace cd = ckpt::detail;
    const bool partial = cd::includes(mode, restore_mode::partial);
    const auto me = static_cast<std::uint32_t>(c.rank()), world = static_cast<std::uint32_t>(c.size());
    failure mine;
    std::optional<cd::sharded_reader> source;
    try {
        source.emplace(file);
        if (source->world_size() == world) source->view_rank(me);
    } catch (...) {
        mine = capture();
    }
    if (auto f = c.agree(mine, "to open the checkpoint")) raise(f, file);
    const std::uint32_t saved = source->world_size();

    // Check pass: nothing changes. Every rank finds its entries, reads and checks every block
    // it uses (shards: only the covering pieces and chunks) into staged values or, for shards and
    // for replicated and per-rank tensors whose storage has the file's shape, only checks it
    // (landed in place by apply(), read again and checked again, as in one process: no second
    // copy of the model; the replicated blocks every rank lands are checked once among the ranks,
    // each rank its share: share_replica_checks), and collects every problem. The ranks agree before any of them
    // applies: a restore that fails on any rank (a damaged chunk, a mismatch) leaves every object on every rank as it
    // was. ckpt::in_place is the same here: reading an unchecked block at apply time could fail on one rank after the
    // others changed their objects.
    sharded_plan plan(*source, partial, false, spares);
    plan.lands_sized_in_place = plan.verifies_landings = true;
    plan.read_landings = [&plan](const std::vector<cd::block_read>& reads, std::size_t threads) {
        read_pieces(plan, reads, threads);
    };
    // Replicated and per-rank tensors are read after the walk, on the pool (read_staged_pieces).
    if (!cd::includes(mode, restore_mode::single_threaded)) plan.read_threads = max_threads();
    bool walked = false;
    try {
        check_all(plan, saved);
        walked = true;
    } catch (...) {
        try {
            // The blocks the walk collected come before its failure: a damaged one among them is
            // what a restore reading in order meets first, so its error wins (as in run_restore).
            read_staged_pieces(plan, true);
            throw;
        } catch (...) {
            mine = capture();
        }
    }
    if (world > 1) share_replica_checks(c, plan, walked);
    if (walked) {
        try {
            read_staged_pieces(plan, false);
            if (!plan.problems.empty()) {
                std::string what = plan.problems.front().what;
                for (std::size_t i = 1; i < plan.problems.size() && i < 20; ++i)
                    what += "\n  and entry '" + plan.problems[i].path + "': " + plan.problems[i].what;
                if (plan.problems.size() > 20) what += "\n  and " + std::to_string(plan.problems.size() - 20) + " more";
                throw mismatch_error(what, {}, plan.problems.front().path);
            }
        } catch (...) {
            mine = capture();
        }
    }
    if (auto f = c.agree(mine, "to check the checkpoint against its objects")) raise(f, file);

    // Apply: staged steps only move or swap values in, which does not fail; landings read their
    // blocks again, which fails only where the files changed since the check (or the device
    // failed): then every rank says so, as the same error.
    try {
        plan.apply();
    } catch (...) {
        mine = capture();
    }
    if (auto f = c.agree(mine, "to land the checkpoint's blocks in its objects")) raise(f, file);
    return {restore_status(file, source->metadata(), std::move(plan.missing), plan.unused()),
            source->metadata().save_counter};
}

}  // namespace ckpt::mpi::detail
