#pragma once
// ckpt::checkpoint_manager: numbered checkpoints in a directory, a crash-safe state file, composable
// rotation policies, save intervals, and restore_or_initialize.
//
//   ckpt::checkpoint_manager mgr{ck, "run", ckpt::keep_last(3)};
//   mgr.restore_or_initialize();
//   for (; step < steps; ++step) { train(); mgr.save_if_due(step); }
//
// Order of work in a save: write the checkpoint (atomically), record it in the state file
// (atomically), record what the policies drop as "deleting", delete those files, record again. A
// crash between any two steps leaves every listed checkpoint loadable and every checkpoint file
// accounted for: the next manager to open the directory finishes the deletions and removes the
// temporary files of an interrupted write. Opening never applies the policies (a process that
// opens a manager only to restore must not rotate the directory): the next save does.
//
// On many processes (a ckpt::mpi::checkpoint, whose coordination() is a coordinator of more than
// one process) there is one manager object per rank, and every rank makes the same calls. Rank 0,
// the leader, alone takes the directory's lock, reads and writes the state file, scans, adopts and
// deletes; every decision that could differ between ranks (is a save due, names and numbers, what
// to drop, which checkpoint is the latest) is the leader's, shared: after the open and after each
// save every rank's records are the leader's, and an error of the leader's is thrown on every rank
// (coordinator::agree) instead of leaving the others waiting. save_if_due costs one small
// collective per call (coordinator::combine). Only ckpt/coordination.hpp is used: nothing here
// knows of MPI. docs/distributed.md describes it.
//
// Each concern has its own header under detail/manager/: the state file's codec (state_file.hpp),
// file names and name templates (naming.hpp), the policies combined and the deletion of what they
// drop (rotation.hpp), the save intervals (schedule.hpp), the directory scan, adoption and repair
// (scan.hpp), the leader protocol (leader.hpp), and the directory the leader keeps: lock, open,
// record, rotate (directory.hpp). The policies themselves are in policy.hpp, the lock in detail/io/directory_lock.hpp.

#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint.hpp>
#include <ckpt/checkpoint_record.hpp>
#include <ckpt/coordination.hpp>
#include <ckpt/detail/manager/directory.hpp>
#include <ckpt/detail/manager/leader.hpp>
#include <ckpt/detail/manager/rotation.hpp>
#include <ckpt/detail/manager/schedule.hpp>
#include <ckpt/error.hpp>
#include <ckpt/interrupt.hpp>
#include <ckpt/metadata.hpp>
#include <ckpt/policy.hpp>
#include <ckpt/reader.hpp>
#include <ckpt/warning.hpp>

namespace ckpt {

namespace detail {

/// Points in a manager's save where tests inject crashes.
enum class manager_point { written, recorded, deleted };
inline void (*manager_test_hook)(manager_point) = nullptr;

// Calls the test hook, if set: `written` before a checkpoint is recorded, `recorded` once the state
// file lists it, `deleted` once what the policies dropped is deleted.
inline void manager_hook(manager_point p) {
    if (manager_test_hook) manager_test_hook(p);
}

}  // namespace detail

/// The checkpoints a manager keeps in `dir`, read from its state file without taking the
/// directory's lock (a running training keeps it); nothing if there is no readable state file.
CKPT_INLINE std::optional<std::vector<checkpoint_record>> read_manager_records(const std::filesystem::path& dir);

/// The most recent checkpoint in `dir`: the latest its manager recorded, or, without a readable
/// state file, the most recently saved sound checkpoint file found there. `if (auto p = ckpt::latest_checkpoint("run"))
/// ...`
CKPT_INLINE std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& dir);

/// Keeps a directory of numbered checkpoints of one ckpt::checkpoint, rotated by policies: `ckpt::checkpoint_manager
/// mgr{ck, "run", ckpt::keep_last(3)};`
class checkpoint_manager {
public:
    /// Opens (creating it if needed) `dir` for `ck`, with any of the policies and naming options of
    /// policy.hpp. Refuses a directory another manager holds, in this process or another.
    template <class... Options>
    checkpoint_manager(any_checkpoint& ck, std::filesystem::path dir, Options... options)
        : ck_(ck), coord_(detail::shared_coordinator(ck)),
          directory_(std::move(dir), [] { detail::manager_hook(detail::manager_point::deleted); }) {
        (apply(std::move(options)), ...);
        open();
    }
    checkpoint_manager(const checkpoint_manager&) = delete;
    checkpoint_manager& operator=(const checkpoint_manager&) = delete;
    /// Waits for an asynchronous save in flight (its error, if any, is reported as a ckpt::warning).
    /// On several processes, while an exception unwinds, it does not wait: that wait can be
    /// collective, and the other ranks may not be destroying theirs (the checkpoint's own
    /// destructor then settles the save).
    ~checkpoint_manager();

    /// Saves now, numbered by `options.step` when given (TensorFlow's checkpoint_number), and rotates.
    /// `ckpt::save_options o; o.step = 100; o.metrics["val_loss"] = 0.25; mgr.save(o);`
    std::filesystem::path save(const save_options& options = {}) { return save_impl(options, false); }
    /// `mgr.save(step)`
    std::filesystem::path save(std::int64_t step, save_options options = {});
    /// As save(); the file is written, recorded and rotated in the background. On several
    /// processes the leader records and rotates in the background; the other ranks' records are
    /// the leader's again at the next save, wait() or restore_or_initialize, where an error of the
    /// leader's recording is thrown on every rank. `mgr.save_async(options);`
    std::filesystem::path save_async(const save_options& options = {}) { return save_impl(options, true); }

    /// Saves when the save intervals say so or when `force` is set (an interrupt, the last step);
    /// never twice for the same step. Returns the path saved, if any. On several processes every
    /// rank saves when the leader's intervals say so or when any rank's `force` is set: one small
    /// collective per call. `mgr.save_if_due(step, step + 1 == steps);`
    std::optional<std::filesystem::path> save_if_due(std::int64_t step, bool force = false, save_options options = {});
    /// As save_if_due(step, guard.requested()), and on several processes the guard's request is
    /// combined across ranks in the same collective: a signal on any rank makes every rank save at
    /// this step, and from then on every rank's guard reports the request as agreed here (see
    /// ckpt/interrupt.hpp). `for (; step < steps && !guard.requested(); ++step) { train(); mgr.save_if_due(step,
    /// guard); }`
    std::optional<std::filesystem::path> save_if_due(std::int64_t step, interrupt_guard& guard,
                                                     save_options options = {});
    /// Whether save_if_due(step, force) would save. On several processes this is the rank's own
    /// view, with no collective: only the leader's counts (save_if_due asks it).
    /// Intervals count from the latest checkpoint (an asynchronous save still in flight counts as
    /// the latest), or from step 0 and the manager's creation; save_every's clocks are described
    /// in policy.hpp. `if (mgr.is_due(step)) log("saving");`
    bool is_due(std::int64_t step, bool force = false) const;

    /// Blocks until an asynchronous save is written, recorded and rotated; rethrows its error.
    /// On several processes wait() is collective (every rank calls it): it also brings every rank's
    /// records to the leader's, and throws on every rank an error the leader met recording. `mgr.wait();`
    void wait();

    /// The newest kept checkpoint, or nothing: `if (auto p = mgr.latest_checkpoint()) ck.restore(*p);`
    std::optional<std::filesystem::path> latest_checkpoint() const;
    /// Oldest first.
    std::vector<std::filesystem::path> checkpoints() const;
    /// Everything the state file says about each checkpoint, oldest first.
    std::vector<checkpoint_record> records() const;
    /// The kept checkpoint with the lowest (ckpt::minimize) or highest (ckpt::maximize) value of a
    /// metric given at save time; nothing when no kept checkpoint has it. Ties go to the newest.
    /// `if (auto best = mgr.best_checkpoint("val_loss", ckpt::minimize)) ck.restore(*best);`
    std::optional<std::filesystem::path> best_checkpoint(const std::string& metric, direction goal = minimize) const;
    /// The directory the manager keeps: `mgr.directory() / "checkpoint"`
    const std::filesystem::path& directory() const noexcept { return directory_.path(); }

    /// Restores the latest checkpoint and returns its path; with none, calls `init` (if given)
    /// and returns nothing. A damaged latest checkpoint is reported as a ckpt::warning and the one before
    /// it is tried; when every one is damaged the last error is thrown rather than starting over.
    /// On several processes every rank has the leader's list and a sharded restore's error is the
    /// same on every rank (the lowest failing rank's), so every rank passes over the same checkpoints,
    /// warns alike and restores the same one. `mgr.restore_or_initialize([&] { init_weights(); });`
    std::optional<std::filesystem::path> restore_or_initialize(const std::function<void()>& init = {});
    /// As restore_or_initialize(init), restoring with `mode` (see ckpt::restore_mode): to resume
    /// per-rank state on another number of ranks, `mgr.restore_or_initialize([&] { init_weights(); }, ckpt::partial);`
    std::optional<std::filesystem::path> restore_or_initialize(const std::function<void()>& init, restore_mode mode);
    /// As restore_or_initialize({}, mode): `mgr.restore_or_initialize(ckpt::partial);`
    std::optional<std::filesystem::path> restore_or_initialize(restore_mode mode) {
        return restore_or_initialize({}, mode);
    }

    /// Whether the directory was opened for restoring only: it is read-only (a shared pretrained
    /// run, a read-only mount), so the manager took no lock, changes nothing there, and every save
    /// throws ckpt::io_error. `if (mgr.read_only()) log("evaluating only");`
    bool read_only() const noexcept { return read_only_; }

private:
    static const char* skip_reason(const error& e);

    // A retention policy is anything with mark_kept (policy.hpp); the rest are naming and saving options.
    template <class Option>
    void apply(Option o) {
        if constexpr (detail::is_retention_policy<Option>::value)
            directory_.retention.add(std::move(o));
        else if constexpr (std::is_same_v<Option, save_every_n_steps> || std::is_same_v<Option, save_every>)
            schedule_.set(o);
        else if constexpr (std::is_same_v<Option, prefix>)
            directory_.naming.set_prefix(std::move(o.value));
        else if constexpr (std::is_same_v<Option, name_template>)
            directory_.naming.name_template = std::move(o.value);
        else if constexpr (std::is_same_v<Option, asynchronous_t>)
            async_ = true;
        else if constexpr (std::is_same_v<Option, rotate_before_save_t>)
            directory_.rotate_before_save = true;
        else
            static_assert(detail::is_retention_policy<Option>::value,
                          "ckpt: not a checkpoint_manager option (see policy.hpp)");
    }

    bool leader() const noexcept { return !coord_ || coord_->rank() == 0; }

    // Runs `work` on the leader alone; every rank takes the leader's state, result and error
    // (detail/manager/leader.hpp).
    template <class Work>
    std::string led(const char* during, Work&& work) {
        return detail::led(coord_, during, directory_.path(), mutex_, directory_.state(), std::forward<Work>(work));
    }

    // save_if_due's decision on several processes (detail::agree_due): whether to save, and the
    // lowest signal any rank's guard received.
    std::pair<bool, int> agreed_due(std::int64_t step, bool force, int signal);

    // Called with mutex_ held: what the intervals count from. An asynchronous save in flight counts
    // as the latest, recorded or not: a save still being written counts toward the interval (else a
    // fast loop saves twice per interval), and on several processes its record may come only at
    // the next wait (without MPI_THREAD_MULTIPLE).
    const checkpoint_record* last_for_schedule() const;

    // What save_every measures from, for `last` (the latest checkpoint, or the one in flight).
    detail::schedule_clock clock_for(const checkpoint_record* last) const;

    void wait_for_checkpoint();
    io_error explain_full_disk(const io_error& e) const {
        return detail::explain_full_disk(e, directory_.path(), latest_checkpoint());
    }

    // After an asynchronous save on several processes (called after ck_.wait(), so its recording
    // is over): every rank takes the leader's state, and the leader's recording error is thrown
    // on every rank. One broadcast; nothing without a save since the last.
    void catch_up();

    void open();
    std::filesystem::path save_impl(save_options options, bool async);
    // The next checkpoint's record (the leader's part of a save).
    checkpoint_record prepare(const save_options& options);
    void record_and_rotate(checkpoint_record r);

    any_checkpoint& ck_;
    coordinator* coord_;                          // null in one process
    bool behind_ = false;                         // an asynchronous save since the last catch_up() (several processes)
    std::exception_ptr record_failed_;            // the leader's: its recording of an asynchronous save failed
    std::optional<checkpoint_record> in_flight_;  // the leader's: the asynchronous save not yet waited for
    std::mutex save_mutex_;                       // held through each save_impl
    mutable std::mutex mutex_;                    // the state is updated on the background thread by asynchronous saves
    detail::managed_directory directory_;         // the leader's bookkeeping; its state is every rank's
    detail::save_schedule schedule_;
    bool async_ = false;
    bool read_only_ = false;  // opened without the lock, for restoring only
    detail::schedule_clock clock_;
    std::string started_name_;  // the checkpoint this process started at clock_.latest_started
};

}  // namespace ckpt

// Out-of-line definitions (detail/manager/manager-inl.hpp, as fmt's format-inl.h): inline in the
// header-only build, compiled once in ckpt::ckpt_compiled in the compiled mode (see
// ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
#include <ckpt/detail/manager/manager-inl.hpp>
#endif
