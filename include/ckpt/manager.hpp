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
// Each concern has its own header: the state file's codec in detail/manager_state.hpp, the directory
// scan and the adoption of unrecorded files in detail/directory_scan.hpp, file names in
// detail/name_template.hpp, the directory lock in io/lock.hpp, and the policies in policy.hpp
// (combined, with the save schedule, in detail/rotation.hpp).

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <unistd.h>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint.hpp>
#include <ckpt/checkpoint_record.hpp>
#include <ckpt/coordination.hpp>
#include <ckpt/detail/manager/naming.hpp>
#include <ckpt/detail/manager/rotation.hpp>
#include <ckpt/detail/manager/scan.hpp>
#include <ckpt/detail/manager/schedule.hpp>
#include <ckpt/detail/manager/state_file.hpp>
#include <ckpt/interrupt.hpp>
#include <ckpt/io/lock.hpp>
#include <ckpt/policy.hpp>
#include <ckpt/reader.hpp>
#include <ckpt/warning.hpp>

namespace ckpt {

namespace detail {

/// Points in a manager's save where tests inject crashes.
enum class manager_point { written, recorded, deleted };
inline void (*manager_test_hook)(manager_point) = nullptr;

/// A checkpoint's coordinator when it spans several processes; null for one process.
CKPT_INLINE coordinator* shared_coordinator(any_checkpoint& ck) noexcept;

// The messages a leader shares: length-prefixed parts.
CKPT_INLINE void append_part(std::string& out, const std::string& part);
CKPT_INLINE bool next_part(const std::string& in, std::size_t& at, std::string& part);

/// A checkpoint file, or a sharded checkpoint's directory. The directory is first renamed to a
/// temporary name, so that a crash in the middle leaves no half-deleted checkpoint under its own
/// name: the leftover is a stale temporary directory, which the next manager to open removes.
CKPT_INLINE void remove_checkpoint(const std::filesystem::path& path, std::error_code& ec);

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
        : ck_(ck), dir_(std::move(dir)), coord_(detail::shared_coordinator(ck)) {
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
    const std::filesystem::path& directory() const noexcept { return dir_; }

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
            retention_.add(std::move(o));
        else if constexpr (std::is_same_v<Option, save_every_n_steps> || std::is_same_v<Option, save_every>)
            schedule_.set(o);
        else if constexpr (std::is_same_v<Option, prefix>)
            naming_.set_prefix(std::move(o.value));
        else if constexpr (std::is_same_v<Option, name_template>)
            naming_.name_template = std::move(o.value);
        else if constexpr (std::is_same_v<Option, asynchronous_t>)
            async_ = true;
        else if constexpr (std::is_same_v<Option, rotate_before_save_t>)
            rotate_before_ = true;
        else
            static_assert(detail::is_retention_policy<Option>::value,
                          "ckpt: not a checkpoint_manager option (see policy.hpp)");
    }

    bool leader() const noexcept { return !coord_ || coord_->rank() == 0; }

    // Runs `work` on the leader alone (in one process: just runs it). On several processes every
    // rank then takes the leader's state, the leader's error (if any) is thrown on every rank with
    // its type, and every rank returns what `work` returned on the leader. One broadcast when all
    // is well.
    template <class Work>
    std::string led(const char* during, Work&& work) {
        if (!coord_) return work();
        std::exception_ptr failed;
        std::string result, message;
        if (leader()) {
            try {
                result = work();
            } catch (...) {
                failed = std::current_exception();
            }
            std::lock_guard lock(mutex_);
            detail::append_part(message, failed ? "E" : "S");
            detail::append_part(message, result);
            detail::append_part(message, detail::encode_state(state_));
        }
        message = coord_->share(std::move(message));
        std::size_t at = 0;
        std::string flag, state;
        if (!detail::next_part(message, at, flag) || !detail::next_part(message, at, result) ||
            !detail::next_part(message, at, state))
            throw error("the manager's leader sent a malformed message", dir_);  // not reached
        if (!leader()) {
            detail::manager_state s;
            if (!detail::decode_state(state, dir_, s))
                throw error("the manager's leader sent a malformed state", dir_);  // not reached
            std::lock_guard lock(mutex_);
            state_ = std::move(s);
        }
        if (flag != "S") {
            coord_->agree(failed, during, dir_);
            throw error(std::string("the manager's leader failed ") + during, dir_);  // agree threw
        }
        return result;
    }

    // save_if_due's decision on several processes, in one combine: bit 63 the leader's "this step
    // is saved already", bit 62 the leader's "due by the intervals", bit 61 any rank's `force`, and
    // one bit per signal any rank's guard received (signals 1 to 56; bit 56 for any above, which a
    // second combine, only then, tells apart). Returns whether to save and the lowest signal.
    std::pair<bool, int> agreed_due(std::int64_t step, bool force, int signal);

    void wait_for_checkpoint();

    // What save_every measures from, for `last` (the latest checkpoint, or the one in flight).
    detail::schedule_clock clock_for(const checkpoint_record* last) const;

    // A full disk: the write's error, with what the save needed, what is free, and that deleting
    // first is the caller's decision (ckpt::rotate_before_save).
    io_error explain_full_disk(const io_error& e) const;
    void forget_in_flight();

    // After an asynchronous save on several processes (called after ck_.wait(), so its recording
    // is over): every rank takes the leader's state, and the leader's recording error is thrown
    // on every rank. One broadcast; nothing without a save since the last.
    void catch_up();

    void open();

    // The leader's part of opening the directory (all of it, in one process).
    void open_here();

    bool listed(const std::string& name) const { return detail::lists(state_, name); }

    std::filesystem::path save_impl(save_options options, bool async);

    // The next checkpoint's record (the leader's part of a save). A sharded checkpoint of ours
    // under that name (the same step saved again) is removed first: a directory cannot be replaced
    // by a rename.
    checkpoint_record prepare(const save_options& options);

    // Called with mutex_ held. Drops the record first and writes the state, then deletes: a listed
    // checkpoint always exists. The state is written again once it is gone, so that a crash after
    // the new save cannot take the new checkpoint for one to delete.
    void replace_sharded(const checkpoint_record& r);

    // Saving under a name that already exists replaces the file. That is right for a checkpoint
    // of ours (the same step saved again, or one a crash left unrecorded), never for a file
    // someone else put there.
    void refuse_to_replace_foreign(const checkpoint_record& r) const;

    void hook(detail::manager_point p) {
        if (detail::manager_test_hook) detail::manager_test_hook(p);
    }

    void record_and_rotate(checkpoint_record r);

    /// Applies the policies and brings the state file in line with state_; throws when the
    /// state file cannot be written (dirty_ stays set, and the next save tries again).
    void settle();

    // Called with mutex_ held: drops (as "deleting", then deletes) the records `keep` says not to keep.
    void drop_unkept(const std::vector<bool>& keep);

    // Called with mutex_ held, for ckpt::rotate_before_save: applies the policies as if `next`
    // were already recorded.
    void rotate_before(const checkpoint_record& next);

    void write_state();

    any_checkpoint& ck_;
    std::filesystem::path dir_;
    coordinator* coord_;                          // null in one process
    bool behind_ = false;                         // an asynchronous save since the last catch_up() (several processes)
    std::exception_ptr record_failed_;            // the leader's: its recording of an asynchronous save failed
    std::optional<checkpoint_record> in_flight_;  // the leader's: the asynchronous save not yet waited for
    detail::directory_lock lock_;                 // the leader's
    std::mutex save_mutex_;                       // held through each save_impl
    mutable std::mutex mutex_;                    // the state is updated on the background thread by asynchronous saves
    detail::manager_state state_;
    bool dirty_ = false;  // state_ differs from the state file (a write failed)

    detail::retention_set retention_;
    detail::save_schedule schedule_;
    detail::checkpoint_naming naming_;
    bool async_ = false;
    bool rotate_before_ = false;
    bool read_only_ = false;  // opened without the lock, for restoring only
    detail::schedule_clock clock_;
    std::string started_name_;  // the checkpoint this process started at clock_.latest_started
};

}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE coordinator* shared_coordinator(any_checkpoint& ck) noexcept {
    coordinator* c = ck.coordination();
    return c && c->size() > 1 ? c : nullptr;
}

CKPT_INLINE void append_part(std::string& out, const std::string& part) {
    out += std::to_string(part.size());
    out += ':';
    out += part;
}

CKPT_INLINE bool next_part(const std::string& in, std::size_t& at, std::string& part) {
    const auto colon = in.find(':', at);
    if (colon == std::string::npos || colon == at || colon - at > 19) return false;
    std::size_t n = 0;
    for (std::size_t i = at; i < colon; ++i) {
        if (in[i] < '0' || in[i] > '9') return false;
        n = n * 10 + static_cast<std::size_t>(in[i] - '0');
    }
    if (n > in.size() - colon - 1) return false;
    part = in.substr(colon + 1, n);
    at = colon + 1 + n;
    return true;
}

CKPT_INLINE void remove_checkpoint(const std::filesystem::path& path, std::error_code& ec) {
    ec.clear();
    if (!std::filesystem::is_directory(std::filesystem::symlink_status(path, ec))) {
        ec.clear();
        std::filesystem::remove(path, ec);
        return;
    }
    static std::atomic<unsigned> counter{0};
    auto doomed = path;
    doomed += std::string(temp_marker) + "deleting." + std::to_string(::getpid()) + "." + process_token() + "." +
              std::to_string(counter++);
    std::filesystem::rename(path, doomed, ec);
    if (ec) return;
    fsync_directory(path.parent_path());
    std::filesystem::remove_all(doomed, ec);
}

}  // namespace ckpt::detail
namespace ckpt {

CKPT_INLINE std::optional<std::vector<checkpoint_record>> read_manager_records(const std::filesystem::path& dir) {
    auto s = detail::read_state_file(dir);
    if (!s) return std::nullopt;
    return std::move(s->records);
}

CKPT_INLINE std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& dir) {
    if (auto s = detail::read_state_file(dir)) {
        for (auto it = s->records.rbegin(); it != s->records.rend(); ++it) {
            std::error_code ec;
            if (std::filesystem::is_regular_file(it->path, ec) || detail::is_sharded_checkpoint(it->path))
                return it->path;
        }
        // Every listed file is gone: a manager rotated while it could not update the state file
        // (a full disk); the files it kept are found as without a state file.
    }
    auto found = detail::scan_directory(dir).records;
    if (found.empty()) return std::nullopt;
    return found.back().path;
}

CKPT_INLINE checkpoint_manager::~checkpoint_manager() {
    if (coord_ && std::uncaught_exceptions() > 0) return;
    try {
        ck_.wait();
    } catch (const std::exception& e) {
        detail::warn(warning_kind::async_save_failed,
                     "the last asynchronous save of " + dir_.string() + " failed: " + e.what());
    }
    std::lock_guard lock(mutex_);
    if (record_failed_) {
        try {
            std::rethrow_exception(record_failed_);
        } catch (const std::exception& e) {
            detail::warn(warning_kind::async_save_failed,
                         "the last asynchronous save of " + dir_.string() + " was not recorded: " + e.what());
        } catch (...) {}
    }
}

CKPT_INLINE std::filesystem::path checkpoint_manager::save(std::int64_t step, save_options options) {
    options.step = step;
    return save_impl(options, false);
}

CKPT_INLINE std::optional<std::filesystem::path> checkpoint_manager::save_if_due(std::int64_t step, bool force,
                                                                                 save_options options) {
    if (!coord_) {
        if (!is_due(step, force)) return std::nullopt;
    } else if (!agreed_due(step, force, 0).first) {
        return std::nullopt;
    }
    options.step = step;
    return save_impl(options, async_);
}

CKPT_INLINE std::optional<std::filesystem::path> checkpoint_manager::save_if_due(std::int64_t step,
                                                                                 interrupt_guard& guard,
                                                                                 save_options options) {
    if (!coord_) {
        // A guard shared with other processes but given to a manager of one: its own signal.
        if (guard.agreed_.load() != interrupt_guard::unshared) guard.agreed_.store(guard.signal_.load());
        return save_if_due(step, guard.requested(), std::move(options));
    }
    const auto [due, signal] = agreed_due(step, false, guard.signal_.load());
    guard.agreed_.store(signal);
    if (!due) return std::nullopt;
    options.step = step;
    return save_impl(options, async_);
}

CKPT_INLINE bool checkpoint_manager::is_due(std::int64_t step, bool force) const {
    std::lock_guard lock(mutex_);
    // An asynchronous save in flight counts as the latest, recorded or not: a save still being
    // written counts toward the interval (else a fast loop saves twice per interval).
    const checkpoint_record* last = in_flight_               ? &*in_flight_
                                    : state_.records.empty() ? nullptr
                                                             : &state_.records.back();
    return schedule_.is_due(step, force, last, clock_for(last));
}

CKPT_INLINE detail::schedule_clock checkpoint_manager::clock_for(const checkpoint_record* last) const {
    detail::schedule_clock c = clock_;
    if (!last || last->name != started_name_) c.latest_started.reset();
    return c;
}

CKPT_INLINE void checkpoint_manager::wait() {
    std::lock_guard serial(save_mutex_);
    wait_for_checkpoint();
    catch_up();
}

CKPT_INLINE std::optional<std::filesystem::path> checkpoint_manager::latest_checkpoint() const {
    std::lock_guard lock(mutex_);
    if (state_.records.empty()) return std::nullopt;
    return state_.records.back().path;
}

CKPT_INLINE std::vector<std::filesystem::path> checkpoint_manager::checkpoints() const {
    std::lock_guard lock(mutex_);
    std::vector<std::filesystem::path> out;
    for (const auto& r : state_.records) out.push_back(r.path);
    return out;
}

CKPT_INLINE std::vector<checkpoint_record> checkpoint_manager::records() const {
    std::lock_guard lock(mutex_);
    return state_.records;
}

CKPT_INLINE std::optional<std::filesystem::path> checkpoint_manager::best_checkpoint(const std::string& metric,
                                                                                     direction goal) const {
    std::lock_guard lock(mutex_);
    const checkpoint_record* best = nullptr;
    double best_value = 0;
    for (const auto& r : state_.records) {
        const auto m = r.metrics.find(metric);
        if (m == r.metrics.end() || m->second != m->second) continue;  // absent or NaN
        if (!best || (goal == minimize ? m->second <= best_value : m->second >= best_value)) {
            best = &r;
            best_value = m->second;
        }
    }
    if (!best) return std::nullopt;
    return best->path;
}

CKPT_INLINE std::optional<std::filesystem::path> checkpoint_manager::restore_or_initialize(
    const std::function<void()>& init) {
    return restore_or_initialize(init, restore_mode::strict);
}

CKPT_INLINE std::optional<std::filesystem::path> checkpoint_manager::restore_or_initialize(
    const std::function<void()>& init, restore_mode mode) {
    if (coord_) wait();  // an asynchronous save's record first, the same on every rank
    const auto all = records();
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        try {
            ck_.restore(it->path, mode);
            return it->path;
        } catch (const error& e) {
            // Damaged, unreadable or unopenable: the one before is tried. Anything else (a
            // mismatch with the program's state) is the caller's to see at once.
            const char* why = skip_reason(e);
            if (!why || std::next(it) == all.rend()) throw;
            detail::warn(warning_kind::skipped_checkpoint, std::string("skipping ") + why + ": " + e.what());
        }
    }
    if (init) init();
    return std::nullopt;
}

CKPT_INLINE const char* checkpoint_manager::skip_reason(const error& e) {
    if (dynamic_cast<const corrupt_error*>(&e)) return "a damaged checkpoint";
    if (dynamic_cast<const format_error*>(&e)) return "an unreadable checkpoint";
    if (dynamic_cast<const io_error*>(&e)) return "a checkpoint that cannot be read";
    return nullptr;
}

CKPT_INLINE std::pair<bool, int> checkpoint_manager::agreed_due(std::int64_t step, bool force, int signal) {
    constexpr std::uint64_t saved_bit = 1ull << 63, due_bit = 1ull << 62, force_bit = 1ull << 61, high_bit = 1ull << 56;
    constexpr int low_signals = 56;
    std::uint64_t mine = force ? force_bit : 0;
    if (signal > 0) mine |= signal <= low_signals ? 1ull << (signal - 1) : high_bit;
    if (leader()) {
        std::lock_guard lock(mutex_);
        // An asynchronous save in flight counts as the latest: its record may come only at the
        // next wait (without MPI_THREAD_MULTIPLE), and the intervals count from it.
        const checkpoint_record* last = in_flight_               ? &*in_flight_
                                        : state_.records.empty() ? nullptr
                                                                 : &state_.records.back();
        if (last && last->step && *last->step == step)
            mine |= saved_bit;
        else if (schedule_.is_due(step, false, last, clock_for(last)))
            mine |= due_bit;
    }
    const std::uint64_t all = coord_->combine(mine);
    int agreed = 0;
    for (int s = 1; s <= low_signals && !agreed; ++s)
        if (all & (1ull << (s - 1))) agreed = s;
    if (!agreed && (all & high_bit)) {
        const std::uint64_t high = coord_->combine(signal > low_signals ? 1ull << (signal - low_signals - 1) : 0);
        for (int b = 0; b < 64 && !agreed; ++b)
            if (high & (1ull << b)) agreed = low_signals + 1 + b;
    }
    const bool due = !(all & saved_bit) && ((all & (due_bit | force_bit)) || agreed != 0);
    return {due, agreed};
}

CKPT_INLINE void checkpoint_manager::wait_for_checkpoint() {
    try {
        ck_.wait();
    } catch (const io_error& e) {
        forget_in_flight();
        if (e.code() == std::errc::no_space_on_device || e.code().value() == EDQUOT) throw explain_full_disk(e);
        throw;
    } catch (...) {
        forget_in_flight();
        throw;
    }
    forget_in_flight();
}

CKPT_INLINE io_error checkpoint_manager::explain_full_disk(const io_error& e) const {
    std::string what = e.what();
    if (what.rfind("ckpt: ", 0) == 0) what.erase(0, 6);
    const std::string reason = ": " + e.code().message();
    if (what.size() > reason.size() && what.compare(what.size() - reason.size(), reason.size(), reason) == 0)
        what.resize(what.size() - reason.size());
    std::error_code ec;
    const auto space = std::filesystem::space(dir_, ec);
    const std::string free = ec ? std::string("an unknown number of") : std::to_string(space.available);
    // The size of the latest checkpoint is the best estimate at hand: the write stopped midway.
    std::string needed = "more than the " + free + " bytes that are free";
    if (const auto latest = latest_checkpoint()) {
        std::uintmax_t bytes = 0;
        if (std::filesystem::is_directory(std::filesystem::symlink_status(*latest, ec))) {
            for (const auto& f : std::filesystem::recursive_directory_iterator(*latest, ec))
                if (f.is_regular_file(ec)) bytes += f.file_size(ec);
        } else {
            bytes = std::filesystem::file_size(*latest, ec);
        }
        if (!ec && bytes > 0)
            needed = "about " + std::to_string(bytes) + " bytes (the size of the latest checkpoint, " +
                     latest->filename().string() + "), and " + free + " bytes are free";
    }
    return io_error("the disk is full: the save needs " + needed +
                        ". The manager deletes old checkpoints only after a save succeeded; deleting "
                        "first is your call: free some space, or give the manager "
                        "ckpt::rotate_before_save (see its risk in ckpt/policy.hpp). (" +
                        what + ")",
                    dir_, e.code());
}

CKPT_INLINE void checkpoint_manager::forget_in_flight() {
    std::lock_guard lock(mutex_);
    in_flight_.reset();
}

CKPT_INLINE void checkpoint_manager::catch_up() {
    if (!coord_ || !behind_) return;
    behind_ = false;
    led("to record the last asynchronous checkpoint", [&] {
        std::lock_guard lock(mutex_);
        if (auto failed = std::exchange(record_failed_, nullptr)) std::rethrow_exception(failed);
        return std::string();
    });
}

CKPT_INLINE void checkpoint_manager::open() {
    read_only_ = led("to open the checkpoint directory", [&] {
                     open_here();
                     return std::string(read_only_ ? "read-only" : "");
                 }) == "read-only";
}

CKPT_INLINE void checkpoint_manager::open_here() {
    detail::create_directories_durably(dir_);
    std::error_code ec;
    if (!std::filesystem::is_directory(dir_, ec))
        throw io_error("is not a directory (a checkpoint directory was expected)", dir_, ec);
    try {
        lock_ = detail::directory_lock(dir_);
    } catch (const io_error& e) {
        // A read-only directory (a shared pretrained run, a read-only mount) can still be restored
        // from: without the lock, and changing nothing there. Saving is refused (prepare()).
        if (e.code() != std::errc::read_only_file_system && e.code() != std::errc::permission_denied) throw;
        read_only_ = true;
        if (auto s = detail::read_state_file(dir_)) {
            state_ = std::move(*s);
        } else {
            state_ = detail::rebuild_state(dir_, naming_);
        }
        // As below, in memory only: what a crash left recorded but gone, or written but unrecorded.
        state_.records.erase(std::remove_if(state_.records.begin(), state_.records.end(),
                                            [](const auto& r) {
                                                std::error_code e2;
                                                return !std::filesystem::is_regular_file(r.path, e2) &&
                                                       !detail::is_sharded_checkpoint(r.path);
                                            }),
                             state_.records.end());
        for (const auto& r : state_.records) state_.next_number = std::max(state_.next_number, r.number + 1);
        detail::adopt_unrecorded(state_, dir_, naming_);
        return;
    }
    // Left by a crash; a temporary some other writer still holds (a ck.write into this
    // directory) is left alone.
    detail::remove_stale_temporaries(dir_, [](const std::string&) { return true; });
    detail::remove_stale_temporary_directories(dir_);  // of sharded saves and deletions

    bool changed = false;
    if (auto s = detail::read_state_file(dir_)) {
        state_ = std::move(*s);
    } else {
        state_ = detail::rebuild_state(dir_, naming_);
        changed = true;
    }
    // Deletions a crash interrupted: the files are ours and no longer listed.
    for (const auto& name : state_.deleting) detail::remove_checkpoint(dir_ / name, ec);
    changed = changed || !state_.deleting.empty();
    state_.deleting.clear();
    // A recorded file that is gone was deleted by a save that crashed before recording it. A
    // sharded checkpoint is a directory; one that is damaged stays listed (restore_or_initialize
    // passes over it, and saving its name again replaces it).
    const auto before = state_.records.size();
    state_.records.erase(std::remove_if(state_.records.begin(), state_.records.end(),
                                        [](const auto& r) {
                                            std::error_code e;
                                            const auto st = std::filesystem::symlink_status(r.path, e);
                                            return !std::filesystem::is_regular_file(r.path, e) &&
                                                   !std::filesystem::is_directory(st);
                                        }),
                         state_.records.end());
    changed = changed || state_.records.size() != before;
    for (const auto& r : state_.records) state_.next_number = std::max(state_.next_number, r.number + 1);
    changed = detail::adopt_unrecorded(state_, dir_, naming_) || changed;
    // The directory was not as the state file said (a crash, or a state file that could not
    // be written): record what is there. The policies are not applied here but at the next save:
    // opening never deletes a listed checkpoint, since a process that opens a manager only to
    // restore (an evaluation script) must not rotate a directory. A full disk must not keep a
    // restarted training from restoring: the record is left to the next save. Any other reason
    // is an error at once.
    if (changed) {
        dirty_ = true;
        try {
            write_state();
            dirty_ = false;
        } catch (const io_error& e) {
            if (e.code() != std::errc::no_space_on_device && e.code().value() != EDQUOT) throw;
            detail::warn(warning_kind::state_not_recorded,
                         std::string(e.what()) + " (the next save records the directory's checkpoints)");
        }
    }
}

CKPT_INLINE std::filesystem::path checkpoint_manager::save_impl(save_options options, bool async) {
    // One save at a time: two threads saving through one manager would take the same number.
    std::lock_guard serial(save_mutex_);
    wait_for_checkpoint();  // an earlier asynchronous save's error surfaces here
    catch_up();
    // The leader names the checkpoint; every rank saves under that name.
    checkpoint_record r;
    if (!coord_) {
        r = prepare(options);
    } else {
        const std::string named = led("to name the checkpoint", [&] {
            detail::manager_state one;
            one.records.push_back(prepare(options));
            return detail::encode_state(one);
        });
        detail::manager_state one;
        if (!detail::decode_state(named, dir_, one) || one.records.size() != 1)
            throw error("the manager's leader sent a malformed record", dir_);  // not reached
        r = std::move(one.records.front());
    }
    {
        std::lock_guard lock(mutex_);
        clock_.latest_started = std::chrono::steady_clock::now();  // save_every counts from here
        started_name_ = r.name;
    }
    if (async) {
        if (!coord_) {
            ck_.save_as_async(r.path, options, [this, r](const std::filesystem::path&) { record_and_rotate(r); });
            std::lock_guard lock(mutex_);
            in_flight_ = r;  // started: save_if_due counts from it
        } else {
            // The callback runs on every rank after the commit, on the background thread or in
            // a later wait, and makes no collective call: the leader records there and keeps an
            // error for catch_up(), the others do nothing until then.
            std::function<void(const std::filesystem::path&)> then;
            if (leader())
                then = [this, r](const std::filesystem::path&) {
                    try {
                        record_and_rotate(r);
                    } catch (...) {
                        std::lock_guard lock(mutex_);
                        record_failed_ = std::current_exception();
                    }
                };
            ck_.save_as_async(r.path, options, std::move(then));
            behind_ = true;
            if (leader()) {
                std::lock_guard lock(mutex_);
                in_flight_ = r;  // started: save_if_due counts from it
            }
        }
    } else {
        try {
            ck_.save_as(r.path, options);
        } catch (const io_error& e) {
            if (e.code() == std::errc::no_space_on_device || e.code().value() == EDQUOT) throw explain_full_disk(e);
            throw;
        }
        led("to record the checkpoint", [&] {
            record_and_rotate(r);
            return std::string();
        });
    }
    return r.path;
}

CKPT_INLINE checkpoint_record checkpoint_manager::prepare(const save_options& options) {
    checkpoint_record r;
    if (read_only_)
        throw io_error(
            "the checkpoint directory is read-only (it was opened for restoring only, without its lock); "
            "cannot save into it",
            dir_, std::make_error_code(std::errc::read_only_file_system));
    {
        std::lock_guard lock(mutex_);
        // An earlier save could not update the state file (a full disk): record what is on
        // disk and rotate first, which may free the space this save needs. Best effort: if it
        // fails again, the save below tries once more and reports it.
        if (dirty_) {
            try {
                settle();
            } catch (const error&) {}
        }
        r.number = state_.next_number;
        r.step = options.step;
        r.wall_time = std::chrono::system_clock::now();
        r.metrics = options.metrics;
        r.strings = options.strings;
        if (!naming_.name_template.empty()) {
            r.name = detail::fill_template(naming_.name_template, options.step, options.metrics, options.strings);
        } else {
            r.name = naming_.default_name(options.step, r.number);
            // A numbered name never replaces a file this manager did not record.
            std::error_code ec;
            while (!options.step && !listed(r.name) && std::filesystem::exists(dir_ / r.name, ec))
                r.name = naming_.default_name(std::nullopt, ++r.number);
        }
        if (!detail::is_plain_file_name(r.name))
            throw error("the checkpoint's name '" + r.name + "' is not a plain file name", dir_);
        r.path = dir_ / r.name;
        refuse_to_replace_foreign(r);
        if (rotate_before_) rotate_before(r);
        replace_sharded(r);
    }
    return r;
}

CKPT_INLINE void checkpoint_manager::replace_sharded(const checkpoint_record& r) {
    std::error_code ec;
    if (!std::filesystem::is_directory(std::filesystem::symlink_status(r.path, ec))) return;
    detail::manager_state before = state_;
    state_.records.erase(
        std::remove_if(state_.records.begin(), state_.records.end(), [&](const auto& x) { return x.name == r.name; }),
        state_.records.end());
    state_.deleting.push_back(r.name);
    try {
        write_state();
    } catch (...) {
        state_ = std::move(before);  // nothing changed: the save fails, the checkpoint stays listed
        throw;
    }
    detail::remove_checkpoint(r.path, ec);
    if (ec) throw io_error("cannot remove the earlier checkpoint of this name", r.path, ec);
    state_.deleting.pop_back();
    dirty_ = true;
    try {
        write_state();
        dirty_ = false;
    } catch (const io_error&) {}
}

CKPT_INLINE void checkpoint_manager::refuse_to_replace_foreign(const checkpoint_record& r) const {
    std::error_code ec;
    if (listed(r.name) || !std::filesystem::exists(std::filesystem::symlink_status(r.path, ec))) return;
    bool ours = false;
    if (std::filesystem::is_regular_file(std::filesystem::symlink_status(r.path, ec)) ||
        detail::is_sharded_checkpoint(r.path)) {
        try {
            reader existing(r.path);
            checkpoint_record e;
            e.name = r.name;
            e.step = existing.metadata().step;
            e.metrics = existing.metadata().metrics;
            e.strings = existing.metadata().strings;
            ours = naming_.named_by_us(e);
        } catch (const error&) {}
    }
    if (!ours)
        throw error(
            "a file of this name exists that this manager did not write; refusing to replace it (move it, or use "
            "another prefix or name template)",
            r.path);
}

CKPT_INLINE void checkpoint_manager::record_and_rotate(checkpoint_record r) {
    std::lock_guard lock(mutex_);
    hook(detail::manager_point::written);
    // Saving the same name again (the same step) replaces the earlier record.
    state_.records.erase(
        std::remove_if(state_.records.begin(), state_.records.end(), [&](const auto& x) { return x.name == r.name; }),
        state_.records.end());
    retention_.on_saved(r, state_.preserve_anchor_ns);
    state_.next_number = std::max(state_.next_number, r.number + 1);
    const auto path = r.path;
    state_.records.push_back(std::move(r));
    dirty_ = true;
    try {
        write_state();
        dirty_ = false;
        hook(detail::manager_point::recorded);
    } catch (const io_error&) {
        // The checkpoint is durable; what follows frees space and retries the record.
    }
    try {
        settle();
    } catch (const io_error& e) {
        throw io_error("cannot record " + path.filename().string() +
                           " in the state file, although the checkpoint itself was written and is "
                           "complete (" +
                           std::string(e.what()) +
                           "); the next save, or the next manager to open the directory, records it, "
                           "and the next save applies the policies",
                       dir_ / detail::manager_state_name, e.code());
    }
}

CKPT_INLINE void checkpoint_manager::settle() {
    // Drop from the list first (as "deleting"), then delete: a listed checkpoint always exists.
    // When the state file cannot be written (ENOSPC) the files are deleted all the same: that
    // frees the space to record the save, and a listed file found missing is dropped at the
    // next open (and passed over by latest_checkpoint), so nothing is lost either way.
    drop_unkept(retention_.kept(state_.records));
    if (!dirty_) return;
    write_state();
    dirty_ = false;
}

CKPT_INLINE void checkpoint_manager::rotate_before(const checkpoint_record& next) {
    // The records as they will be once `next` is recorded (it replaces one of its name).
    std::vector<checkpoint_record> after;
    for (const auto& x : state_.records)
        if (x.name != next.name) after.push_back(x);
    checkpoint_record n = next;
    auto anchor = state_.preserve_anchor_ns;
    retention_.on_saved(n, anchor);  // on copies: keep_every's own decision comes at the record
    after.push_back(std::move(n));
    const auto kept_after = retention_.kept(after);
    std::vector<bool> keep;
    std::size_t j = 0;
    for (const auto& x : state_.records) keep.push_back(x.name == next.name || kept_after[j++]);
    drop_unkept(keep);
    // Best effort, as in settle(): the files are gone either way, and the record of the save
    // writes the state again.
    try {
        if (dirty_) write_state();
        dirty_ = false;
    } catch (const io_error&) {}
}

CKPT_INLINE void checkpoint_manager::drop_unkept(const std::vector<bool>& keep) {
    std::vector<checkpoint_record> survivors;
    for (std::size_t i = 0; i < state_.records.size(); ++i) {
        if (keep[i])
            survivors.push_back(state_.records[i]);
        else
            state_.deleting.push_back(state_.records[i].name);
    }
    if (!state_.deleting.empty()) {
        state_.records = std::move(survivors);
        dirty_ = true;
        try {
            write_state();
        } catch (const io_error&) {}
        std::vector<std::string> remaining;
        for (const auto& name : state_.deleting) {
            std::error_code ec;
            detail::remove_checkpoint(dir_ / name, ec);
            if (ec) {
                remaining.push_back(name);  // still ours: the next open tries again
                detail::warn(warning_kind::cannot_delete,
                             "cannot delete " + (dir_ / name).string() + ": " + ec.message());
            }
        }
        hook(detail::manager_point::deleted);
        state_.deleting = std::move(remaining);
    }
}

CKPT_INLINE void checkpoint_manager::write_state() {
    const std::string text = detail::encode_state(state_);
    detail::atomic_file file(dir_ / detail::manager_state_name);
    detail::write_all(file.fd(), text.data(), text.size(), file.temp_path());
    file.commit();
}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
