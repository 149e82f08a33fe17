#pragma once
// Atomic publication of a file: write a temporary in the same directory, fsync, rename over the
// final name, fsync the directory, so a reader never finds a partial checkpoint under a final name.

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/detail/config.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/io/descriptor.hpp>
#include <ckpt/detail/io/durable_directories.hpp>
#include <ckpt/detail/io/fault_injection.hpp>
#include <ckpt/detail/io/read_write.hpp>
#include <ckpt/detail/io/temp_names.hpp>

namespace ckpt::detail {

/// Renames `from` to `to` only if `to` does not exist; false with errno EEXIST if it does. Two
/// processes that picked the same name then never replace each other's file.
CKPT_INLINE bool rename_no_replace(const std::filesystem::path& from, const std::filesystem::path& to) noexcept;

/// A file written under a temporary name and published atomically by commit(). Destroying it
/// uncommitted removes the temporary: a failed save leaves nothing behind.
class atomic_file {
public:
    explicit atomic_file(std::filesystem::path final_path);
    atomic_file(const atomic_file&) = delete;
    atomic_file& operator=(const atomic_file&) = delete;
    ~atomic_file();

    int fd() const noexcept { return fd_.get(); }
    const std::filesystem::path& temp_path() const noexcept { return temp_; }
    const std::filesystem::path& final_path() const noexcept { return final_; }

    /// fsync, rename over the final name (or, with `replace` false, only if no file has that name:
    /// io_error with code EEXIST otherwise, the temporary kept until destruction), fsync the directory.
    void commit(bool replace = true);

private:
    std::filesystem::path final_, temp_;
    file_descriptor fd_, lock_;
    bool committed_ = false;
};

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE bool rename_no_replace(const std::filesystem::path& from, const std::filesystem::path& to) noexcept {
#ifdef RENAME_NOREPLACE
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
    if (errno != EINVAL && errno != ENOSYS) return false;
#endif
    // A file system that cannot rename without replacing: a hard link never replaces either.
    if (::link(from.c_str(), to.c_str()) != 0) return false;
    ::unlink(from.c_str());
    return true;
}

CKPT_INLINE atomic_file::atomic_file(std::filesystem::path final_path) : final_(std::move(final_path)) {
    check_replaceable(final_);
    create_parent_directories(final_);
    static std::atomic<unsigned> counter{0};
    // A name that exists (left by a dead process that had our id, or taken by a writer racing
    // with us) is passed over for the next one: O_EXCL never reuses a file.
    for (int attempt = 0;; ++attempt) {
        temp_ = final_;
        temp_ += std::string(temp_marker) + std::to_string(::getpid()) + "." + process_token() + "." +
                 std::to_string(counter++);
        const int fd = injected_failure(io_op::create, temp_) ? -1 : open_created(temp_, O_WRONLY | O_EXCL);
        if (fd < 0) {
            if (errno == EEXIST && attempt < 100) continue;
            throw io_error("cannot create temporary file", temp_, last_error());
        }
        fd_ = file_descriptor(fd);
        if (temporary_created_hook) temporary_created_hook(temp_);
        // Held until the file has its final name, so remove_stale_temporaries leaves it alone.
        // A cleaner may have locked and unlinked the file between our open and flock: then the
        // name no longer leads to our file, and we start again with another name.
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK) break;  // no locks on this file system: no cleaner can lock it either
        } else {
            struct stat opened {
            }, named{};
            if (::fstat(fd, &opened) == 0 && ::lstat(temp_.c_str(), &named) == 0 && opened.st_ino == named.st_ino &&
                opened.st_dev == named.st_dev) {
                lock_ = file_descriptor(::dup(fd));  // keeps the lock across the close before rename
                if (lock_) break;
                const auto failure = last_error();
                fd_.close();
                ::unlink(temp_.c_str());
                throw io_error("cannot duplicate the descriptor of", temp_, failure);
            }
        }
        fd_.close();  // the cleaner that took it removes it
        if (attempt >= 100) throw io_error("cannot create and lock a temporary file", temp_);
    }
}

CKPT_INLINE atomic_file::~atomic_file() {
    if (!committed_) {
        fd_.close();
        ::unlink(temp_.c_str());
    }
}

CKPT_INLINE void atomic_file::commit(bool replace) {
    fsync_or_throw(fd_.get(), temp_);
    // close() can report a deferred write error (NFS, quota): check it before publishing.
    const int fd = fd_.release();
    if (::close(fd) != 0 || injected_failure(io_op::close, temp_)) throw io_error("cannot close", temp_, last_error());
    check_replaceable(final_);  // again: the target may have been made while we wrote
    if (injected_failure(io_op::rename, final_) ||
        !(replace ? ::rename(temp_.c_str(), final_.c_str()) == 0 : rename_no_replace(temp_, final_))) {
        const auto failure = last_error();
        if (!replace && failure == std::errc::file_exists)
            throw io_error("another writer saved a file of this name meanwhile; not replaced", final_, failure);
        throw io_error("cannot rename temporary file into place", final_, failure);
    }
    committed_ = true;
    lock_.close();
    fsync_directory(final_.parent_path());
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
