#pragma once
// ckpt::mpi::checkpoint: one checkpoint of a training state spread over the ranks of an MPI
// communicator; see ckpt/mpi.hpp. The class holds the tracked objects and the communicator; the
// protocols are in mpi/detail/: collective_save.hpp (a save), async_save.hpp (an asynchronous
// save), shard_restore.hpp (a restore).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <ckpt/checkpoint.hpp>
#include <ckpt/detail/restore/spare_storage.hpp>
#include <ckpt/mpi/detail/async_save.hpp>
#include <ckpt/mpi/detail/collective_save.hpp>
#include <ckpt/mpi/detail/communicator.hpp>
#include <ckpt/mpi/detail/coordinator.hpp>
#include <ckpt/mpi/detail/mpi_h.hpp>
#include <ckpt/mpi/detail/shard_restore.hpp>
#include <ckpt/mpi/detail/sinks.hpp>
#include <ckpt/mpi/track.hpp>
#include <ckpt/threads.hpp>

namespace ckpt::mpi {

/// A training state spread over the ranks of a communicator; see ckpt/mpi.hpp. Every
/// rank constructs it with the same names in the same order; save and restore are collective.
template <class... Ts>
class checkpoint : public any_checkpoint {
    static_assert((detail::is_tracked_item<Ts>::value && ...),
                  "ckpt: ckpt::mpi::checkpoint takes ckpt::track, ckpt::track_per_rank and ckpt::track_shard items");

public:
    /// `ckpt::mpi::checkpoint ck{MPI_COMM_WORLD, ckpt::track("model", model), ckpt::track_per_rank("rng", rng)};`
    explicit checkpoint(MPI_Comm comm, Ts... objects) : comm_(comm), objects_(std::move(objects)...) {
        ckpt::detail::check_track_names(
            std::apply([](const auto&... t) { return std::vector<std::string>{t.name...}; }, objects_));
        ckpt::detail::warn_overlapping_objects(std::apply(
            [](const auto&... t) { return std::vector<ckpt::detail::tracked_extent>{ckpt::detail::extent_of(t)...}; },
            objects_));
    }

    /// Ends an asynchronous save still in flight (its commit is collective: every rank destroys its
    /// checkpoint; errors go to the warning handler). Under MPI_THREAD_MULTIPLE frees the duplicate
    /// communicator of the background thread.
    ~checkpoint() override {
        const bool finalized = detail::communicator::finalized();
        // Unwinding from an exception (maybe on this rank alone) or after MPI_Finalize, a commit
        // over the caller's communicator could wait forever: it is dropped, never half done.
        const bool may_commit = !finalized && std::uncaught_exceptions() <= uncaught_;
        if (settle_async(may_commit)) async_.abandoned(finalized);
    }
    checkpoint(const checkpoint&) = delete;
    checkpoint& operator=(const checkpoint&) = delete;

    /// `ck.on_divergent_replicas(ckpt::mpi::divergence::warn);` see divergence.
    void on_divergent_replicas(divergence policy) noexcept { divergence_ = policy; }
    /// The communicator's rank of this process: `if (ck.rank() == 0) log(...);`
    int rank() const noexcept { return comm_.rank(); }
    /// The number of ranks: `auto rows = global_rows / ck.size();`
    int size() const noexcept { return comm_.size(); }
    /// The communicator the checkpoint runs on (the caller's): `MPI_Barrier(ck.communicator());`
    MPI_Comm communicator() const noexcept { return comm_.get(); }
    /// Decisions shared by every rank (a checkpoint_manager takes them through it).
    coordinator* coordination() noexcept override { return &coordinator_; }

private:
    void do_write(const std::filesystem::path& file, const save_options& options, std::uint64_t counter) override {
        share_the_machine();
        spares_.clear();  // a run that saves is training, not restoring again: give the memory back
        detail::save_collectively(comm_, file, options, counter, divergence_,
                                  [this](detail::plan_sink& s) { walk(s); });
    }

    std::size_t kept_async_memory() const noexcept override { return async_.memory(); }

    void do_snapshot(ckpt::detail::snapshot&) override {
        // Unused: do_start_async below replaces the single-file snapshot.
        throw error("internal: ckpt::mpi::checkpoint takes no single-file snapshot");
    }

    // The caller's thread copies; the rest runs on the background thread, or (when MPI forbids
    // that thread MPI calls) the commit on the caller's thread later: see async_save.hpp.
    async_save do_start_async(const std::filesystem::path& file, const save_options& options, std::uint64_t counter,
                              std::chrono::system_clock::time_point when) override {
        share_the_machine();
        spares_.clear();
        async_save parts;
        parts.collective = true;
        if (async_.start(
                comm_, file, options, counter, when, divergence_, [this](detail::copy_sink& s) { walk(s); },
                async_memory_budget_of_save())) {
            parts.write = [this] { async_.write_and_commit(); };
        } else {
            parts.write = [this] { async_.write(); };
            parts.commit = [this] { async_.commit(comm_); };
        }
        return parts;
    }

    restore_status do_restore(const std::filesystem::path& file, restore_mode mode) override {
        share_the_machine();
        const auto world = static_cast<std::uint32_t>(comm_.size());
        // Spares from the second restore on, as ckpt::checkpoint keeps them (see its restore_from).
        auto done = detail::restore_collectively(
            comm_, file, mode, restored_ ? &spares_ : nullptr, [&](detail::sharded_plan& plan, std::uint32_t saved) {
                std::apply([&](auto&... t) { (detail::stage(plan, t, saved, world), ...); }, objects_);
            });
        restored_ = true;
        save_counter_ = done.second;
        return std::move(done.first);
    }

    // At the first save or restore (collective, as they are): the ranks that share this machine
    // share its cores too, so that each rank's data path defaults to its part (ckpt::max_threads)
    // rather than every rank starting a thread per core.
    void share_the_machine() {
        if (counted_ranks_on_machine_) return;
        const auto ranks = static_cast<std::size_t>(comm_.ranks_on_this_machine());
        auto& processes = ckpt::detail::processes_per_machine();
        std::size_t known = processes.load();
        while (ranks > known && !processes.compare_exchange_weak(known, ranks)) {}
        counted_ranks_on_machine_ = true;
    }

    template <class Sink>
    void walk(Sink& sink) {
        std::apply([&](auto&... t) { (walk_one(sink, t), ...); }, objects_);
    }
    template <class Sink, class T>
    static void walk_one(Sink& sink, const tracked<T>& t) {
        sink.role = detail::entry_role::replicated;
        ckpt::detail::save_walker<Sink>(sink, t.name).visit(*t.object);
    }
    template <class Sink, class T>
    static void walk_one(Sink& sink, const tracked_per_rank<T>& t) {
        sink.role = detail::entry_role::per_rank;
        ckpt::detail::save_walker<Sink>(sink, t.name).visit(*t.object);
    }
    template <class Sink, class T>
    static void walk_one(Sink& sink, const tracked_shard<T>& t) {
        sink.role = detail::entry_role::shard;
        ckpt::detail::save_walker<Sink>(sink, t.name).visit(*t.object);
        sink.blocks.back().global = t.global;
        sink.blocks.back().offsets = t.offsets;
    }

    detail::communicator comm_;
    detail::mpi_coordinator coordinator_{comm_};
    std::tuple<Ts...> objects_;
    divergence divergence_ = divergence::refuse;
    bool counted_ranks_on_machine_ = false;
    // The tensor storage the last restore swapped out of replicated and per-rank objects, for the
    // next restore to stage into (detail/restore/spare_storage.hpp): kept from the second restore
    // on, until the next save or restore.
    ckpt::detail::spare_storage spares_;
    bool restored_ = false;
    detail::async_saver async_;
    int uncaught_ = std::uncaught_exceptions();
};

template <class... Ts>
checkpoint(MPI_Comm, Ts...) -> checkpoint<Ts...>;

}  // namespace ckpt::mpi
