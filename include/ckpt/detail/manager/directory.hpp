#pragma once
// A checkpoint_manager's directory as its leader keeps it (every process's, in one process): the
// lock, the state file and the repair at open, the naming of the next checkpoint, and the save's
// bookkeeping: record it, then rotate. Order of work: write the checkpoint, record it in the state
// file, record what the policies drop as "deleting", delete those files, record again; a crash
// between any two steps leaves every listed checkpoint loadable and every file accounted for.
// Not thread-safe: the manager calls it under its own mutex.

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint_record.hpp>
#include <ckpt/detail/manager/naming.hpp>
#include <ckpt/detail/manager/rotation.hpp>
#include <ckpt/detail/manager/scan.hpp>
#include <ckpt/detail/manager/state_file.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/io/durable_directories.hpp>
#include <ckpt/detail/io/read_write.hpp>
#include <ckpt/detail/io/temp_names.hpp>
#include <ckpt/detail/io/directory_lock.hpp>
#include <ckpt/metadata.hpp>
#include <ckpt/warning.hpp>

namespace ckpt::detail {

/// Whether an I/O error is a full disk (or an exhausted quota).
inline bool is_disk_full(const io_error& e) {
    return e.code() == std::errc::no_space_on_device || e.code().value() == EDQUOT;
}

/// A full disk: the write's error, with what the save needed (the size of `latest`, the best
/// estimate at hand: the write stopped midway), what is free in `dir`, and that deleting first is
/// the caller's decision (ckpt::rotate_before_save).
CKPT_INLINE io_error explain_full_disk(const io_error& e, const std::filesystem::path& dir,
                                       const std::optional<std::filesystem::path>& latest);

class managed_directory {
public:
    /// `on_deleted` runs after each deletion of dropped checkpoints (a test hook's crash point).
    managed_directory(std::filesystem::path dir, void (*on_deleted)())
        : dir_(std::move(dir)), on_deleted_(on_deleted) {}

    // The manager's options (policy.hpp), set before open().
    checkpoint_naming naming;
    retention_set retention;
    bool rotate_before_save = false;

    const std::filesystem::path& path() const noexcept { return dir_; }
    manager_state& state() noexcept { return state_; }
    const manager_state& state() const noexcept { return state_; }
    /// Opened without the lock, for restoring only (the directory is read-only).
    bool read_only() const noexcept { return read_only_; }

    /// Creates the directory if needed, takes its lock (or, read-only, none), removes what a crash
    /// left there and repairs the state (detail::open_state), recording it. Never rotates.
    void open();

    /// The next checkpoint's record. A sharded checkpoint of ours under that name (the same step
    /// saved again) is removed first: a directory cannot be replaced by a rename.
    checkpoint_record prepare(const save_options& options);

    /// Records a written checkpoint (replacing one of its name); whether the state file was written.
    bool record(checkpoint_record r);

    /// After record(): applies the policies and brings the state file in line; throws, naming
    /// `saved`, when the state file cannot be written (the next save tries again).
    void rotate(const std::filesystem::path& saved);

private:
    // Drops the record first and writes the state, then deletes: a listed checkpoint always exists.
    // The state is written again once it is gone, so that a crash after the new save cannot take
    // the new checkpoint for one to delete.
    void replace_sharded(const checkpoint_record& r);

    /// Applies the policies and brings the state file in line with state_; throws when the
    /// state file cannot be written (dirty_ stays set, and the next save tries again).
    void settle();

    // For ckpt::rotate_before_save: applies the policies as if `next` were already recorded.
    void rotate_before(const checkpoint_record& next);

    // Drops (as "deleting", then deletes) the records `keep` says not to keep.
    void drop_unkept(const std::vector<bool>& keep);

    void write_state() { write_state_file(dir_, state_); }

    std::filesystem::path dir_;
    void (*on_deleted_)();
    directory_lock lock_;
    manager_state state_;
    bool dirty_ = false;      // state_ differs from the state file (a write failed)
    bool read_only_ = false;  // opened without the lock, for restoring only
};

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE io_error explain_full_disk(const io_error& e, const std::filesystem::path& dir,
                                       const std::optional<std::filesystem::path>& latest) {
    std::string what = e.what();
    if (what.rfind("ckpt: ", 0) == 0) what.erase(0, 6);
    const std::string reason = ": " + e.code().message();
    if (what.size() > reason.size() && what.compare(what.size() - reason.size(), reason.size(), reason) == 0)
        what.resize(what.size() - reason.size());
    std::error_code ec;
    const auto space = std::filesystem::space(dir, ec);
    const std::string free = ec ? std::string("an unknown number of") : std::to_string(space.available);
    std::string needed = "more than the " + free + " bytes that are free";
    if (latest) {
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
                    dir, e.code());
}

CKPT_INLINE void managed_directory::open() {
    create_directories_durably(dir_);
    std::error_code ec;
    if (!std::filesystem::is_directory(dir_, ec))
        throw io_error("is not a directory (a checkpoint directory was expected)", dir_, ec);
    try {
        lock_ = directory_lock(dir_);
    } catch (const io_error& e) {
        // A read-only directory (a shared pretrained run, a read-only mount) can still be restored
        // from: without the lock, and changing nothing there. Saving is refused (prepare()).
        if (e.code() != std::errc::read_only_file_system && e.code() != std::errc::permission_denied) throw;
        read_only_ = true;
        bool changed = false;
        state_ = open_state(dir_, naming, true, changed);  // in memory only
        return;
    }
    // Left by a crash; a temporary some other writer still holds (a ck.write into this
    // directory) is left alone.
    remove_stale_temporaries(dir_, [](const std::string&) { return true; });
    remove_stale_temporary_directories(dir_);  // of sharded saves and deletions

    bool changed = false;
    state_ = open_state(dir_, naming, false, changed);
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
            if (!is_disk_full(e)) throw;
            warn(warning_kind::state_not_recorded,
                 std::string(e.what()) + " (the next save records the directory's checkpoints)");
        }
    }
}

CKPT_INLINE checkpoint_record managed_directory::prepare(const save_options& options) {
    // An earlier save could not update the state file (a full disk): record what is on disk and
    // rotate first, which may free the space this save needs. Best effort: if it fails again, the
    // save below tries once more and reports it.
    if (dirty_) {
        try {
            settle();
        } catch (const error&) {}
    }
    checkpoint_record r;
    r.number = state_.next_number;
    r.step = options.step;
    r.wall_time = std::chrono::system_clock::now();
    r.metrics = options.metrics;
    r.strings = options.strings;
    naming.name(r, state_, dir_);
    refuse_to_replace_foreign(r, state_, naming);
    if (rotate_before_save) rotate_before(r);
    replace_sharded(r);
    return r;
}

CKPT_INLINE void managed_directory::replace_sharded(const checkpoint_record& r) {
    std::error_code ec;
    if (!std::filesystem::is_directory(std::filesystem::symlink_status(r.path, ec))) return;
    manager_state before = state_;
    unlist(state_, r.name);
    state_.deleting.push_back(r.name);
    try {
        write_state();
    } catch (...) {
        state_ = std::move(before);  // nothing changed: the save fails, the checkpoint stays listed
        throw;
    }
    remove_checkpoint(r.path, ec);
    if (ec) throw io_error("cannot remove the earlier checkpoint of this name", r.path, ec);
    state_.deleting.pop_back();
    dirty_ = true;
    try {
        write_state();
        dirty_ = false;
    } catch (const io_error&) {}
}

CKPT_INLINE bool managed_directory::record(checkpoint_record r) {
    // Saving the same name again (the same step) replaces the earlier record.
    unlist(state_, r.name);
    retention.on_saved(r, state_.preserve_anchor_ns);
    state_.next_number = std::max(state_.next_number, r.number + 1);
    state_.records.push_back(std::move(r));
    dirty_ = true;
    try {
        write_state();
        dirty_ = false;
        return true;
    } catch (const io_error&) {
        return false;  // the checkpoint is durable; rotate() frees space and retries the record
    }
}

CKPT_INLINE void managed_directory::rotate(const std::filesystem::path& saved) {
    try {
        settle();
    } catch (const io_error& e) {
        throw io_error("cannot record " + saved.filename().string() +
                           " in the state file, although the checkpoint itself was written and is "
                           "complete (" +
                           std::string(e.what()) +
                           "); the next save, or the next manager to open the directory, records it, "
                           "and the next save applies the policies",
                       dir_ / manager_state_name, e.code());
    }
}

CKPT_INLINE void managed_directory::settle() {
    // Drop from the list first (as "deleting"), then delete: a listed checkpoint always exists.
    // When the state file cannot be written (ENOSPC) the files are deleted all the same: that
    // frees the space to record the save, and a listed file found missing is dropped at the
    // next open (and passed over by latest_checkpoint), so nothing is lost either way.
    drop_unkept(retention.kept(state_.records));
    if (!dirty_) return;
    write_state();
    dirty_ = false;
}

CKPT_INLINE void managed_directory::rotate_before(const checkpoint_record& next) {
    drop_unkept(retention.kept_before(state_.records, next, state_.preserve_anchor_ns));
    // Best effort, as in settle(): the files are gone either way, and the record of the save
    // writes the state again.
    try {
        if (dirty_) write_state();
        dirty_ = false;
    } catch (const io_error&) {}
}

CKPT_INLINE void managed_directory::drop_unkept(const std::vector<bool>& keep) {
    std::vector<checkpoint_record> survivors;
    for (std::size_t i = 0; i < state_.records.size(); ++i) {
        if (keep[i])
            survivors.push_back(state_.records[i]);
        else
            state_.deleting.push_back(state_.records[i].name);
    }
    if (state_.deleting.empty()) return;
    state_.records = std::move(survivors);
    dirty_ = true;
    try {
        write_state();
    } catch (const io_error&) {}
    auto remaining = remove_checkpoints(dir_, state_.deleting);
    on_deleted_();
    state_.deleting = std::move(remaining);
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
