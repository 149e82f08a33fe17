#pragma once
// ckpt::any_checkpoint: a checkpoint whatever it tracks, what a checkpoint_manager (or other code
// that should not know the tracked types) saves and restores through. Its saves (synchronous and
// asynchronous) and their numbering live here; ckpt::checkpoint<Ts...> (ckpt/checkpoint.hpp)
// implements the walks over the tracked objects.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include <ckpt/async.hpp>
#include <ckpt/coordination.hpp>
#include <ckpt/detail/checkpoint/save_names.hpp>
#include <ckpt/detail/config.hpp>
#include <ckpt/detail/restore/staged_reads.hpp>
#include <ckpt/detail/restore/walker.hpp>
#include <ckpt/detail/save/save_walk.hpp>
#include <ckpt/error.hpp>
#include <ckpt/metadata.hpp>
#include <ckpt/restore_mode.hpp>
#include <ckpt/restore_status.hpp>
#include <ckpt/warning.hpp>

namespace ckpt {

class name_map;  // ckpt/foreign.hpp
namespace detail {
class foreign_bridge;  // ckpt/foreign.hpp: reaches a checkpoint's walks for foreign files
}  // namespace detail

/// What a checkpoint_manager (or other code that should not know the tracked types) needs.
/// Every save first waits for an asynchronous save still in flight and rethrows its error.
/// Saves, restores and waits on one checkpoint object may come from several threads: they take
/// turns (the tracked objects themselves must not change while a save copies them).
class any_checkpoint {
public:
    any_checkpoint() = default;
    any_checkpoint(const any_checkpoint&) = delete;
    any_checkpoint& operator=(const any_checkpoint&) = delete;
    virtual ~any_checkpoint() = default;

    /// Writes the tracked state to exactly `file` (atomically), leaving the save counter as it is.
    /// `ck.write("export/final");`
    std::filesystem::path write(const std::filesystem::path& file, const save_options& options = {});
    /// Counts one more save and writes it to exactly `file`: what a manager uses for its own names.
    /// `ck.save_as("run/best");`
    std::filesystem::path save_as(const std::filesystem::path& file, const save_options& options = {});
    /// Counts one more save and writes it to `<prefix>-<n>`, n the new save counter (moved past any
    /// file that already has that name, so an earlier run's checkpoint is never overwritten).
    /// Temporary files of `<prefix>-<n>` that a crashed save left are removed.
    /// `auto p = ck.save("run/ckpt");  // run/ckpt-1`
    std::filesystem::path save(const std::filesystem::path& prefix, const save_options& options = {});

    /// As save(), but returns once the state is copied; the file is written in the background.
    /// `ck.save_async("run/ckpt"); train_more(); ck.wait();`
    std::filesystem::path save_async(const std::filesystem::path& prefix, const save_options& options = {});
    /// As write(), in the background. `ck.write_async("export/final"); ck.wait();`
    std::filesystem::path write_async(const std::filesystem::path& file, const save_options& options = {});
    /// As save_as(), in the background; `then(file)` runs on the background thread once the file is
    /// durable (a manager records and rotates there). An exception from it surfaces like a write error.
    /// `ck.save_as_async("run/best", {}, [](const auto& p) { log(p); });`
    std::filesystem::path save_as_async(const std::filesystem::path& file, const save_options& options = {},
                                        std::function<void(const std::filesystem::path&)> then = {}) {
        std::lock_guard lock(mutex_);
        wait_for_worker();
        start_async(file, options, save_counter_ + 1, std::move(then));
        ++save_counter_;
        return file;
    }
    /// Blocks until the asynchronous save in flight (if any) is durable; rethrows its error.
    /// `ck.wait();`
    void wait();
    /// True while an asynchronous save is being written (or, over MPI without MPI_THREAD_MULTIPLE,
    /// waits for its commit at the next save or wait()). `if (!ck.save_in_progress()) ...`
    bool save_in_progress() const { return worker_.busy() || commit_pending_; }

    /// Bounds the memory the asynchronous saves copy tensors into, kept from one save to the next.
    /// Unbounded by default (std::nullopt): the whole state is copied and the caller waits for the
    /// copy only. A save whose tensors come to more than `bytes` first writes what does not fit, on
    /// the caller's thread, straight from the tracked objects (the caller waits for that write, as
    /// in save()), then copies the last `bytes` and writes them in the background. Other leaves
    /// (counters, engines, serialized values) are always copied; the file is the same either way.
    /// A ckpt::mpi::checkpoint bounds each rank's copies so (docs/distributed.md). Throws
    /// ckpt::error where unsupported (a derived checkpoint whose bounds_async_memory() is false).
    /// `ck.set_async_memory_budget(std::size_t{8} << 30);  // 8 GiB of host memory at most`
    void set_async_memory_budget(std::optional<std::size_t> bytes);
    /// The budget set_async_memory_budget set, or std::nullopt: `if (!ck.async_memory_budget()) ...`
    std::optional<std::size_t> async_memory_budget() const;
    /// The memory the asynchronous saves keep from one save to the next, in bytes: their copies.
    /// `log("async saves hold", ck.async_memory());`
    std::size_t async_memory() const;

    /// Restores every tracked object from `file`; see restore_mode. Checks everything before it
    /// changes anything: any error (mismatch_error, corrupt_error, ...) leaves every object as it was.
    restore_status restore(const std::filesystem::path& file, restore_mode mode = restore_mode::strict);

    /// Restores from a safetensors file, an HF-sharded safetensors model, an npz or an npy file, the
    /// foreign names given by `names`. Needs `#include <ckpt/foreign.hpp>` (target ckpt::foreign).
    /// `ck.restore("model.safetensors", ckpt::strict, ckpt::name_map{});`
    template <class NameMap>
    restore_status restore(const std::filesystem::path& file, restore_mode mode, const NameMap& names) {
        return restore_foreign(*this, file, mode, names);  // found by ADL in ckpt/foreign.hpp
    }
    /// Writes the tracked tensors to a foreign file (`ckpt::as_safetensors`), named by `names`. Needs
    /// `#include <ckpt/foreign.hpp>`. `ck.write("model.safetensors", ckpt::as_safetensors, ckpt::name_map{});`
    template <class Format, class NameMap>
    std::filesystem::path write(const std::filesystem::path& file, Format format, const NameMap& names) {
        return write_foreign(*this, file, format, names);  // found by ADL in ckpt/foreign.hpp
    }

    /// Saves so far, including those of the run a restore came from.
    std::uint64_t save_counter() const noexcept { return save_counter_; }

    /// The processes that save this checkpoint together (ckpt/coordination.hpp), or null for a
    /// checkpoint of one process. `if (auto* c = ck.coordination()) leader = c->rank() == 0;`
    virtual coordinator* coordination() noexcept { return nullptr; }

protected:
    /// Implemented by checkpoint<Ts...>: writes the tracked objects to `file`.
    virtual void do_write(const std::filesystem::path& file, const save_options& options, std::uint64_t counter) = 0;
    /// Implemented by checkpoint<Ts...>: copies the tracked state for an asynchronous save.
    virtual void do_snapshot(detail::snapshot& into) = 0;
    /// Implemented by checkpoint<Ts...>: restores the tracked objects from `file`.
    virtual restore_status do_restore(const std::filesystem::path& file, restore_mode mode) = 0;
    /// For foreign files (ckpt/foreign.hpp): the save walk of every tracked object into `sink`.
    /// Checkpoints that do not override it (ckpt::mpi::checkpoint) refuse foreign files.
    virtual void do_save_walk(detail::block_sink& sink);
    /// For foreign files: a restore from any `source`; refused as do_save_walk is.
    virtual restore_status do_restore_source(detail::restore_source& source, const std::filesystem::path& file,
                                             restore_mode mode);
    friend class detail::foreign_bridge;

    /// The halves of an asynchronous save. `write` runs on the background thread. `commit`, when
    /// set, runs on the caller's thread at the next save, wait(), restore or settle_async(), after
    /// `write` ended whatever its outcome (ckpt::mpi::checkpoint commits there when MPI forbids its
    /// background thread MPI calls); the save is done, and `then` runs, after the last half.
    /// `collective`: the halves must run on every process, so when the background thread cannot
    /// start, `write` runs on the caller's thread instead of the save failing here alone.
    struct async_save {
        std::function<void()> write;   ///< on the background thread
        std::function<void()> commit;  ///< on the caller's thread, later; may be empty
        bool collective = false;       ///< every process must run both halves
    };
    /// Takes on the caller's thread what an asynchronous save needs; by default a snapshot
    /// (do_snapshot) that `write` writes as one file. `return {[this] { ... }, {}};`
    virtual async_save do_start_async(const std::filesystem::path& file, const save_options& options,
                                      std::uint64_t counter, std::chrono::system_clock::time_point when);
    /// False where do_start_async is replaced by one that cannot keep to a memory budget: then
    /// set_async_memory_budget refuses one.
    virtual bool bounds_async_memory() const noexcept { return true; }
    /// The budget set_async_memory_budget set, for a do_start_async that keeps to it: that runs
    /// under the checkpoint's lock, which async_memory_budget() takes.
    std::optional<std::size_t> async_memory_budget_of_save() const noexcept { return async_memory_budget_; }
    /// What async_memory() reports (called under the checkpoint's lock); by default the snapshot's.
    virtual std::size_t kept_async_memory() const noexcept { return snapshot_.memory(); }
    /// For the destructor of a derived checkpoint whose asynchronous saves use its own members: ends
    /// the save in flight, its commit too when `commit` (else the commit is dropped: returns true
    /// when one was). Destructors do not throw: an error goes to the warning handler.
    /// `~my_checkpoint() { settle_async(true); }`
    bool settle_async(bool commit) noexcept;
    /// Saves so far; see save_counter().
    std::atomic<std::uint64_t> save_counter_{0};
    /// Set while save() writes: do_write must not replace a file of the same name (it throws
    /// io_error with code EEXIST, and save() takes the next number).
    bool publish_new_only_ = false;

private:
    // A failed asynchronous save did not happen: its number is given out again. One whose file was
    // written (a manager could not record it) did happen, and keeps its number.
    void wait_for_worker();
    std::uint64_t next_number(const std::filesystem::path& prefix) const {
        return detail::next_number_after(prefix, save_counter_);
    }
    void start_async(const std::filesystem::path& file, const save_options& options, std::uint64_t counter,
                     std::function<void(const std::filesystem::path&)> then);

    mutable std::mutex mutex_;  // one save, restore or wait at a time
    std::uint64_t counter_before_async_ = 0;
    std::atomic<bool> async_written_{false};
    std::function<void()> commit_;  // the caller's-thread half of the save in flight (see async_save)
    std::atomic<bool> commit_pending_{false};
    std::optional<std::size_t> async_memory_budget_;
    detail::snapshot snapshot_;
    detail::background_worker worker_;  // last: destroyed (and joined) before the snapshot it writes
};

}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt {

CKPT_INLINE std::filesystem::path any_checkpoint::write(const std::filesystem::path& file,
                                                        const save_options& options) {
    std::lock_guard lock(mutex_);
    wait_for_worker();
    detail::remove_stale_temporaries_of(file);
    do_write(file, options, save_counter_);
    return file;
}

CKPT_INLINE std::filesystem::path any_checkpoint::save_as(const std::filesystem::path& file,
                                                          const save_options& options) {
    std::lock_guard lock(mutex_);
    wait_for_worker();
    do_write(file, options, save_counter_ + 1);
    ++save_counter_;
    return file;
}

CKPT_INLINE std::filesystem::path any_checkpoint::save(const std::filesystem::path& prefix,
                                                       const save_options& options) {
    std::lock_guard lock(mutex_);
    wait_for_worker();
    detail::remove_stale_temporaries_of_prefix(prefix);
    // Another process saving under the same prefix may take the number between our look and
    // our rename: the file is published only under a name still free, else under the next.
    for (std::uint64_t n = next_number(prefix), attempt = 0;; n = detail::next_number_after(prefix, n), ++attempt) {
        const auto file = detail::numbered(prefix, n);
        try {
            publish_new_only_ = true;
            do_write(file, options, n);
            publish_new_only_ = false;
        } catch (const io_error& e) {
            publish_new_only_ = false;
            if (e.code() != std::errc::file_exists || attempt >= 100) throw;
            continue;
        } catch (...) {
            publish_new_only_ = false;
            throw;
        }
        save_counter_ = n;
        return file;
    }
}

CKPT_INLINE std::filesystem::path any_checkpoint::save_async(const std::filesystem::path& prefix,
                                                             const save_options& options) {
    std::lock_guard lock(mutex_);
    wait_for_worker();
    detail::remove_stale_temporaries_of_prefix(prefix);
    const std::uint64_t n = next_number(prefix);
    const auto file = detail::numbered(prefix, n);
    start_async(file, options, n, {});
    save_counter_ = n;
    return file;
}

CKPT_INLINE std::filesystem::path any_checkpoint::write_async(const std::filesystem::path& file,
                                                              const save_options& options) {
    std::lock_guard lock(mutex_);
    wait_for_worker();
    detail::remove_stale_temporaries_of(file);
    start_async(file, options, save_counter_, {});
    return file;
}

CKPT_INLINE void any_checkpoint::wait() {
    std::lock_guard lock(mutex_);
    wait_for_worker();
}

CKPT_INLINE restore_status any_checkpoint::restore(const std::filesystem::path& file, restore_mode mode) {
    std::lock_guard lock(mutex_);
    wait_for_worker();
    return do_restore(file, mode);
}

CKPT_INLINE void any_checkpoint::do_save_walk(detail::block_sink&) {
    throw error("this checkpoint cannot be written to a foreign file (safetensors): only ckpt::checkpoint can");
}

CKPT_INLINE restore_status any_checkpoint::do_restore_source(detail::restore_source&, const std::filesystem::path& file,
                                                             restore_mode) {
    throw error("this checkpoint cannot restore from a foreign file: only ckpt::checkpoint can", file);
}

CKPT_INLINE any_checkpoint::async_save any_checkpoint::do_start_async(const std::filesystem::path& file,
                                                                      const save_options& options,
                                                                      std::uint64_t counter,
                                                                      std::chrono::system_clock::time_point when) {
    snapshot_.clear(file);
    do_snapshot(snapshot_);
    try {
        snapshot_.finish(async_memory_budget_.value_or(detail::snapshot::no_budget));
    } catch (...) {
        snapshot_.discard();  // what a write under the budget began
        throw;
    }
    return {[this, options, counter, when] { snapshot_.write(options, counter, when); }, {}, false};
}

CKPT_INLINE void any_checkpoint::set_async_memory_budget(std::optional<std::size_t> bytes) {
    if (bytes && !bounds_async_memory())
        throw error(
            "this checkpoint's asynchronous saves cannot keep to a memory budget (its do_start_async copies "
            "the whole state); leave it unbounded or save synchronously");
    std::lock_guard lock(mutex_);
    async_memory_budget_ = bytes;  // the copies shrink to it at the next asynchronous save
}

CKPT_INLINE std::optional<std::size_t> any_checkpoint::async_memory_budget() const {
    std::lock_guard lock(mutex_);
    return async_memory_budget_;
}

CKPT_INLINE std::size_t any_checkpoint::async_memory() const {
    std::lock_guard lock(mutex_);
    return kept_async_memory();
}

CKPT_INLINE bool any_checkpoint::settle_async(bool commit) noexcept {
    std::lock_guard lock(mutex_);
    bool dropped = false;
    try {
        if (!commit && commit_pending_) {
            try {
                worker_.wait();
            } catch (...) {}
            commit_ = nullptr;
            commit_pending_ = false;
            dropped = true;
        }
        wait_for_worker();
    } catch (const std::exception& e) {
        detail::warn(
            warning_kind::async_save_failed,
            std::string("an asynchronous save failed and no later save or wait() collected the error: ") + e.what());
    } catch (...) {
        detail::warn(warning_kind::async_save_failed, "an asynchronous save failed with an unknown exception");
    }
    return dropped;
}

CKPT_INLINE void any_checkpoint::wait_for_worker() {
    try {
        std::exception_ptr failed;
        try {
            worker_.wait();
        } catch (...) {
            failed = std::current_exception();
        }
        if (commit_pending_) {
            commit_pending_ = false;
            std::exchange(commit_, nullptr)();  // collective: runs whatever the background half did
        }
        if (failed) std::rethrow_exception(failed);
    } catch (...) {
        if (!async_written_) save_counter_ = counter_before_async_;
        throw;
    }
}

CKPT_INLINE void any_checkpoint::start_async(const std::filesystem::path& file, const save_options& options,
                                             std::uint64_t counter,
                                             std::function<void(const std::filesystem::path&)> then) {
    detail::check_writable_metadata(options, file);
    async_save parts = do_start_async(file, options, counter, std::chrono::system_clock::now());
    async_written_ = false;
    auto done = [this, file, then = std::move(then)] {
        async_written_ = true;
        if (then) then(file);
    };
    std::function<void()> job = std::move(parts.write);
    if (parts.commit)
        commit_ = [commit = std::move(parts.commit), done] {
            commit();
            done();
        };
    else
        job = [write = std::move(job), done] {
            write();
            done();
        };
    counter_before_async_ = save_counter_;
    commit_pending_ = static_cast<bool>(commit_);
    try {
        worker_.submit(job, file);  // a copy: `job` runs here if the thread cannot start
    } catch (...) {
        if (!parts.collective) {
            commit_ = nullptr;
            commit_pending_ = false;
            snapshot_.discard();  // a file begun under a memory budget
            throw;
        }
        job();  // the other processes go on with theirs: this one must take part too
    }
}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
