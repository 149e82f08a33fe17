#pragma once
// Temporary names: the marker temporaries carry, what names a process's temporaries apart, and
// the cleanup of temporaries (files and directories) whose writer died.

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/io/descriptor.hpp>
#include <ckpt/detail/io/fault_injection.hpp>
#include <ckpt/error.hpp>

namespace ckpt::detail {

/// Temporary files carry this marker in their names; readers and managers skip such files and
/// managers delete the ones a crash left behind.
inline constexpr const char* temp_marker = ".ckpt-tmp.";

inline bool is_temp_name(const std::filesystem::path& path) {
    return path.filename().string().find(temp_marker) != std::string::npos;
}

/// Whatever names this process's temporary files apart from those of an earlier process that had
/// the same id (PID 1 of a container restarted after a crash): drawn once per process.
CKPT_INLINE const std::string& process_token();

/// Removes the temporary files in `dir` whose names `ours` accepts and that no live writer holds.
/// A writer holds an flock on its temporary from creation until after the rename, so a file we
/// can lock is one whose writer died (a crash, kill -9, a restart with the same process id) --
/// in this process or another, in any PID namespace, on the same machine or (with NFS locks)
/// another. Never throws: cleaning up is best effort.
template <class Accept>
void remove_stale_temporaries(const std::filesystem::path& dir, Accept&& ours) noexcept {
    try {
        std::error_code ec;
        const auto d = dir.empty() ? std::filesystem::path(".") : dir;
        for (auto it = std::filesystem::directory_iterator(d, ec); !ec && it != std::filesystem::directory_iterator();
             it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (name.find(temp_marker) == std::string::npos || !ours(name)) continue;
            // Files only, and not even locked otherwise: a sharded save's new temporary directory,
            // locked here for a moment before its save holds it, would cost that save its name.
            struct stat named {
            }, opened{};
            if (::lstat(it->path().c_str(), &named) != 0 || !S_ISREG(named.st_mode)) continue;
            file_descriptor fd(::open(it->path().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
            if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
                continue;  // a writer is at work (or not ours to open)
            // Unlink only the file we locked, not one that replaced it meanwhile.
            if (::fstat(fd.get(), &opened) == 0 && S_ISREG(opened.st_mode) && opened.st_ino == named.st_ino &&
                opened.st_dev == named.st_dev)
                ::unlink(it->path().c_str());
        }
    } catch (...) {}
}

/// Holds the temporary directory of a sharded save (ckpt/mpi.hpp) against cleaners, as atomic_file
/// holds a temporary file: an flock on the directory from just after its creation until the save
/// returns (committed or not). Returns the descriptor that holds it; throws io_error when the
/// directory is no longer the one created (a cleaner took it meanwhile).
/// `file_descriptor held = hold_directory(temp);`
CKPT_INLINE file_descriptor hold_directory(const std::filesystem::path& dir);

/// Creates the directory `dir` (a sharded save's temporary directory, named as the ranks agreed)
/// and holds it (hold_directory). A cleaner (remove_stale_temporary_directories: a manager
/// removing dead saves' temporaries, this process's own previous asynchronous save's commit or
/// another process) can lock the new directory before we do, and removes it under its lock: then
/// this waits until the cleaner lets go and makes the directory again, up to 5 times. Throws
/// io_error when it cannot create or hold it. `file_descriptor held = make_held_directory(temp);`
CKPT_INLINE file_descriptor make_held_directory(const std::filesystem::path& dir);

/// Removes the temporary directories in `dir` (a sharded save's, or a sharded checkpoint's being
/// deleted) that no live writer holds: the equivalent of remove_stale_temporaries for directories.
/// A sharded save holds an flock on its temporary directory (hold_directory), so a directory we
/// can lock is one whose save died. Never throws: cleaning up is best effort.
CKPT_INLINE void remove_stale_temporary_directories(const std::filesystem::path& dir) noexcept;

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE const std::string& process_token() {
    static const std::string token = [] {
        std::random_device device;
        const std::uint64_t bits =
            (std::uint64_t{device()} << 32) ^ device() ^
            static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        // 32 bits: names stay short (a long template name plus this suffix must fit NAME_MAX), and
        // the rare collision is passed over like any existing name.
        char text[9];
        std::snprintf(text, sizeof text, "%08llx",
                      static_cast<unsigned long long>((bits ^ (bits >> 32)) & 0xffffffffu));
        return std::string(text);
    }();
    return token;
}

CKPT_INLINE file_descriptor hold_directory(const std::filesystem::path& dir) {
    file_descriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) throw io_error("cannot open the temporary directory", dir, last_error());
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        // No locks on this file system: no cleaner can lock it either.
        if (errno == EWOULDBLOCK) throw io_error("the temporary directory is held by a cleaner", dir, last_error());
        return fd;
    }
    struct stat opened {
    }, named{};
    if (::fstat(fd.get(), &opened) != 0 || ::lstat(dir.c_str(), &named) != 0 || opened.st_ino != named.st_ino ||
        opened.st_dev != named.st_dev)
        throw io_error("the temporary directory was removed while it was being created", dir);
    return fd;
}

CKPT_INLINE file_descriptor make_held_directory(const std::filesystem::path& dir) {
    constexpr int attempts = 5;
    for (int attempt = 1;; ++attempt) {
        std::error_code ec;
        // After a cleaner took it, the directory is gone, or still there when the cleaner only
        // looked (it is ours: the name is this save's): then it is held as it is.
        const bool created = std::filesystem::create_directory(dir, ec);
        if (!created && (ec || attempt == 1)) throw io_error("cannot create the temporary directory", dir, ec);
        if (created && temporary_created_hook) temporary_created_hook(dir);
        try {
            return hold_directory(dir);
        } catch (const io_error&) {
            if (attempt == attempts) throw;
        }
        // A cleaner took it: once its lock is gone, the directory is gone too (the name is the
        // ranks' agreed one, so the same name is made again) or, where it only looked, still ours.
        file_descriptor cleaned(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (cleaned) ::flock(cleaned.get(), LOCK_EX);
    }
}

CKPT_INLINE void remove_stale_temporary_directories(const std::filesystem::path& dir) noexcept {
    try {
        std::error_code ec;
        std::vector<std::filesystem::path> stale;
        for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
             it.increment(ec)) {
            if (it->path().filename().string().find(temp_marker) == std::string::npos) continue;
            struct stat named {};
            if (::lstat(it->path().c_str(), &named) != 0 || !S_ISDIR(named.st_mode)) continue;
            file_descriptor fd(::open(it->path().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;  // a save is at work
            struct stat opened {};
            // Remove only the directory we locked, not one that replaced it meanwhile; the lock
            // is held until it is gone.
            if (::fstat(fd.get(), &opened) == 0 && opened.st_ino == named.st_ino && opened.st_dev == named.st_dev)
                std::filesystem::remove_all(it->path(), ec);
        }
    } catch (...) {}
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
