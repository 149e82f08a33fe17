#pragma once
// What a checkpoint_manager finds in its directory when the state file does not say it all: the
// sound checkpoint files there (a lost or damaged state file is rebuilt from them), and the files
// a crash left written but unrecorded, which the manager adopts when they are its own; the repair
// of what a crash left when a manager opens the directory; and whether a file is the manager's.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint_record.hpp>
#include <ckpt/detail/manager/state_file.hpp>
#include <ckpt/detail/manager/naming.hpp>
#include <ckpt/detail/manager/rotation.hpp>
#include <ckpt/reader.hpp>

namespace ckpt::detail {

/// The sound checkpoint files in `dir`, oldest first (by wall time, then save counter), numbered
/// in that order. Files whose header or index do not read are left out: never adopted, and so
/// never deleted by a manager either.
CKPT_INLINE manager_state scan_directory(const std::filesystem::path& dir);

/// A lost or damaged state file, rebuilt from the files this manager would have made, and only
/// those (a "pretrained" checkpoint kept in the same directory is not ours to rotate).
CKPT_INLINE manager_state rebuild_state(const std::filesystem::path& dir, const checkpoint_naming& naming);

/// A crash between writing a checkpoint and recording it leaves a complete file the state does not
/// list. Files named as this manager names them and newer than its latest record are its own: they
/// are appended to `s`. Returns whether any was.
CKPT_INLINE bool adopt_unrecorded(manager_state& s, const std::filesystem::path& dir, const checkpoint_naming& naming);

/// The state of `dir` as a manager opening it finds it: its state file (without a readable one,
/// the directory rebuilt), repaired: the deletions a crash interrupted finished, the records of
/// files that are gone dropped, the files written but unrecorded adopted. `read_only` (the
/// directory opened for restoring only): repaired in memory, nothing deleted. `changed`: whether
/// the state differs from the state file.
CKPT_INLINE manager_state open_state(const std::filesystem::path& dir, const checkpoint_naming& naming, bool read_only,
                                     bool& changed);

/// Saving under a name that already exists replaces the file. That is right for a checkpoint of
/// the manager's (the same step saved again, or one a crash left unrecorded), never for a file
/// someone else put there: throws for such a file at `r.path`.
CKPT_INLINE void refuse_to_replace_foreign(const checkpoint_record& r, const manager_state& s,
                                           const checkpoint_naming& naming);

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE manager_state scan_directory(const std::filesystem::path& dir) {
    std::vector<std::pair<std::uint64_t, checkpoint_record>> found;  // with its save counter
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
        const auto name = it->path().filename().string();
        // A sharded checkpoint (ckpt/mpi.hpp) is a directory with a manifest; it counts like a file.
        const bool sharded = is_sharded_checkpoint(it->path());
        if (!is_plain_file_name(name) || (!sharded && (!it->is_regular_file(ec) || !peek_header(it->path())))) continue;
        try {
            reader r(it->path());
            checkpoint_record rec;
            rec.name = name;
            rec.path = it->path();
            rec.step = r.metadata().step;
            rec.wall_time = r.metadata().wall_time;
            rec.metrics = r.metadata().metrics;
            rec.strings = r.metadata().strings;
            found.emplace_back(r.metadata().save_counter, std::move(rec));
        } catch (const error&) {
            // Damaged: left out.
        }
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
        return std::tie(a.second.wall_time, a.first, a.second.name) <
               std::tie(b.second.wall_time, b.first, b.second.name);
    });
    manager_state s;
    for (auto& counted : found) {
        counted.second.number = s.next_number++;
        s.records.push_back(std::move(counted.second));
    }
    return s;
}

CKPT_INLINE manager_state rebuild_state(const std::filesystem::path& dir, const checkpoint_naming& naming) {
    manager_state s = scan_directory(dir);
    const auto foreign = [&](const checkpoint_record& r) { return !naming.named_by_us(r); };
    s.records.erase(std::remove_if(s.records.begin(), s.records.end(), foreign), s.records.end());
    s.next_number = 1;
    for (auto& r : s.records) r.number = s.next_number++;
    return s;
}

CKPT_INLINE bool adopt_unrecorded(manager_state& s, const std::filesystem::path& dir, const checkpoint_naming& naming) {
    const auto latest = s.records.empty() ? std::chrono::system_clock::time_point::min() : s.records.back().wall_time;
    std::vector<checkpoint_record> found;
    for (auto& r : scan_directory(dir).records)
        if (naming.named_by_us(r) && !lists(s, r.name) && r.wall_time > latest) found.push_back(std::move(r));
    for (auto& r : found) {
        r.number = s.next_number++;
        s.records.push_back(std::move(r));
    }
    return !found.empty();
}

CKPT_INLINE manager_state open_state(const std::filesystem::path& dir, const checkpoint_naming& naming, bool read_only,
                                     bool& changed) {
    changed = false;
    manager_state s;
    if (auto file = read_state_file(dir)) {
        s = std::move(*file);
    } else {
        s = rebuild_state(dir, naming);
        changed = true;
    }
    if (!read_only) {
        // Deletions a crash interrupted: the files are ours and no longer listed.
        std::error_code ec;
        for (const auto& name : s.deleting) remove_checkpoint(dir / name, ec);
        changed = changed || !s.deleting.empty();
        s.deleting.clear();
    }
    // A recorded file that is gone was deleted by a save that crashed before recording it. A
    // sharded checkpoint is a directory; one that is damaged stays listed (restore_or_initialize
    // passes over it, and saving its name again replaces it). Read-only, only a sound one stays.
    const auto before = s.records.size();
    s.records.erase(
        std::remove_if(s.records.begin(), s.records.end(),
                       [read_only](const auto& r) {
                           std::error_code e;
                           if (read_only)
                               return !std::filesystem::is_regular_file(r.path, e) && !is_sharded_checkpoint(r.path);
                           const auto st = std::filesystem::symlink_status(r.path, e);
                           return !std::filesystem::is_regular_file(r.path, e) && !std::filesystem::is_directory(st);
                       }),
        s.records.end());
    changed = changed || s.records.size() != before;
    for (const auto& r : s.records) s.next_number = std::max(s.next_number, r.number + 1);
    changed = adopt_unrecorded(s, dir, naming) || changed;
    return s;
}

CKPT_INLINE void refuse_to_replace_foreign(const checkpoint_record& r, const manager_state& s,
                                           const checkpoint_naming& naming) {
    std::error_code ec;
    if (lists(s, r.name) || !std::filesystem::exists(std::filesystem::symlink_status(r.path, ec))) return;
    bool ours = false;
    if (std::filesystem::is_regular_file(std::filesystem::symlink_status(r.path, ec)) ||
        is_sharded_checkpoint(r.path)) {
        try {
            reader existing(r.path);
            checkpoint_record e;
            e.name = r.name;
            e.step = existing.metadata().step;
            e.metrics = existing.metadata().metrics;
            e.strings = existing.metadata().strings;
            ours = naming.named_by_us(e);
        } catch (const error&) {}
    }
    if (!ours)
        throw error(
            "a file of this name exists that this manager did not write; refusing to replace it (move it, or use "
            "another prefix or name template)",
            r.path);
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
