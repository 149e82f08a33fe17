#pragma once
// Thin POSIX file handling: descriptors, full reads and writes, and the atomic publication of a
// file (write a temporary in the same directory, fsync, rename over the final name, fsync the
// directory) so a reader never finds a partial checkpoint under a final name.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ckpt/detail/config.hpp>
#include <ckpt/error.hpp>

namespace ckpt::detail {

inline std::error_code last_error() noexcept { return {errno, std::generic_category()}; }

/// The system calls a save makes, for fault-injection tests.
enum class io_op { create, write, fsync, close, rename, fsync_directory };

/// Test hook: when set, called before each of those calls; a non-zero return is taken as the
/// call's errno, as if the system had failed it. Never set outside tests.
inline int (*io_fault_injector)(io_op op, const std::filesystem::path& path) = nullptr;

CKPT_INLINE bool injected_failure(io_op op, const std::filesystem::path& path) noexcept;

/// An owned file descriptor.
class file_descriptor {
public:
    file_descriptor() = default;
    explicit file_descriptor(int fd) noexcept : fd_(fd) {}
    file_descriptor(file_descriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    file_descriptor& operator=(file_descriptor&& other) noexcept {
        if (this != &other) {
            close();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    file_descriptor(const file_descriptor&) = delete;
    file_descriptor& operator=(const file_descriptor&) = delete;
    ~file_descriptor() { close(); }

    int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void close() noexcept;

private:
    int fd_ = -1;
};

/// Opens a file to read it whole: never blocks (O_NONBLOCK, so a FIFO planted where a checkpoint
/// was expected cannot hang a directory scan or every rank of a job), and refuses what is not a
/// regular file (format_error naming what it is: a directory, a FIFO, a device, a socket).
CKPT_INLINE file_descriptor open_for_reading(const std::filesystem::path& path);

/// What a file of this mode is, in words: "a FIFO", "a character device", ... ("" for a regular file).
CKPT_INLINE const char* special_file_kind(unsigned mode) noexcept;

/// Refuses to replace `path` (io_error naming it and what it is) when it exists and is not a
/// regular file: a FIFO, a device, a directory, a socket, or a symbolic link to one. Every file
/// the library publishes by temp + rename is checked first: the rename would silently replace
/// a device node (`-o /dev/null` as root) or a FIFO by a regular file. An existing regular file
/// (or a symbolic link to one: the link is replaced) is replaced, as `cp` and `tar -f` do.
/// `check_replaceable("run/ckpt-7");`
CKPT_INLINE void check_replaceable(const std::filesystem::path& path);

CKPT_INLINE std::uint64_t file_size(int fd, const std::filesystem::path& path);

CKPT_INLINE void write_all(int fd, const void* data, std::size_t size, const std::filesystem::path& path);

CKPT_INLINE void pwrite_all(int fd, const void* data, std::size_t size, std::uint64_t offset,
                            const std::filesystem::path& path);

/// Reads exactly `size` bytes at `offset`; a short read means the file shrank under us.
CKPT_INLINE void pread_all(int fd, void* data, std::size_t size, std::uint64_t offset,
                           const std::filesystem::path& path);

/// Reads `size` bytes into `data` and the `tail_size` bytes that follow them into `tail`: one
/// system call for a block and its padding when the kernel returns everything at once.
CKPT_INLINE void pread_all_with_tail(int fd, void* data, std::size_t size, void* tail, std::size_t tail_size,
                                     std::uint64_t offset, const std::filesystem::path& path);

CKPT_INLINE void fsync_or_throw(int fd, const std::filesystem::path& path, io_op op = io_op::fsync);

/// Hints for a buffer just allocated and about to be filled whole, such as a restore's staged
/// tensor. Why: a first restore fills every staged byte into pages nobody touched, and on our VMs a
/// fault costs 2.5-30 us, more than the read (benchmarks/results/restore_modes.md). Two hints:
/// - from 4 MiB, transparent huge pages, where the system gives them only on request
///   (/sys/kernel/mm/transparent_hugepage/enabled = madvise), so that its first touch costs a fault
///   per 2 MiB rather than per 4 KiB (filling 85 MiB fell from 490 to 20 ms; a first restore of
///   16 x 16 MiB took half the time). Only the 2 MiB-aligned interior, so no page outside the
///   buffer changes its advice. Buffers of 32 MiB and more are always mapped on their own by
///   glibc, so the hint ends with them; a smaller one may come from the heap, where the hint
///   outlives it and only makes later heap use of those pages huge too.
/// - then the pages of its page-aligned interior are mapped at once (MADV_POPULATE_WRITE, Linux
///   5.14), one system call instead of a fault per page: the first restore of a process measured
///   4x faster for 16 x 16 MiB and 1.5x for 4096 x 64 KiB (2026-12-04). It costs no memory that the
///   fill would not: every byte of the buffer is written next. Pages already mapped stay as they
///   are, but the call itself costs about 5 us here even then (a restore without spares, into
///   memory the allocator had mapped already), which 4096 blocks of 64 KiB turned into 20-35 ms: so
///   a buffer is populated alone only from 1 MiB (`populate`; a restore that reads its blocks after
///   the walk collects the smaller ones and populates them together, populate_pages).
/// Linux only; a refusal (an older kernel, no huge pages) is ignored: these are only hints.
CKPT_INLINE void advise_fresh_buffer(void* data, std::size_t size, bool populate = true) noexcept;

/// The whole pages inside [data, data + size), as addresses [first, second).
CKPT_INLINE std::pair<std::uintptr_t, std::uintptr_t> page_interior(const void* data, std::size_t size) noexcept;

/// Maps the pages of fresh buffers about to be filled (page_interior of each; see
/// advise_fresh_buffer) in as few calls as there are runs of neighbouring buffers: buffers the
/// allocator placed one after another are merged across the at most one page between their
/// interiors (which holds the allocator's header, mapped already). Sorts `ranges`.
CKPT_INLINE void populate_pages(std::vector<std::pair<std::uintptr_t, std::uintptr_t>>& ranges) noexcept;

/// Makes a rename or unlink in `dir` durable.
CKPT_INLINE void fsync_directory(const std::filesystem::path& dir);

/// Creates `dir` and any missing parents, each made durable in its own parent (a directory entry
/// is data of the directory that holds it: without an fsync of the parent, a crash can lose a new
/// directory and every checkpoint inside it, although those were fsynced).
CKPT_INLINE void create_directories_durably(const std::filesystem::path& dir);

CKPT_INLINE void create_parent_directories(const std::filesystem::path& file);

/// Temporary files carry this marker in their names; readers and managers skip such files and
/// managers delete the ones a crash left behind.
inline constexpr const char* temp_marker = ".ckpt-tmp.";

inline bool is_temp_name(const std::filesystem::path& path) {
    return path.filename().string().find(temp_marker) != std::string::npos;
}

/// Opens a file the library creates: never through a symbolic link (a dangling one planted in the
/// directory would otherwise make us create or truncate a file elsewhere).
CKPT_INLINE int open_created(const std::filesystem::path& path, int flags) noexcept;

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
            file_descriptor fd(::open(it->path().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
            if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
                continue;  // a writer is at work (or not ours to open)
            struct stat opened {
            }, named{};
            // Unlink only the file we locked, not one that replaced it meanwhile.
            if (::fstat(fd.get(), &opened) == 0 && ::lstat(it->path().c_str(), &named) == 0 &&
                S_ISREG(opened.st_mode) && opened.st_ino == named.st_ino && opened.st_dev == named.st_dev)
                ::unlink(it->path().c_str());
        }
    } catch (...) {}
}

/// Renames `from` to `to` only if `to` does not exist; false with errno EEXIST if it does. Two
/// processes that picked the same name then never replace each other's file.
CKPT_INLINE bool rename_no_replace(const std::filesystem::path& from, const std::filesystem::path& to) noexcept;

/// Holds the temporary directory of a sharded save (ckpt/mpi.hpp) against cleaners, as atomic_file
/// holds a temporary file: an flock on the directory from just after its creation until the save
/// returns (committed or not). Returns the descriptor that holds it; throws io_error when the
/// directory is no longer the one created (a cleaner took it meanwhile).
/// `file_descriptor held = hold_directory(temp);`
CKPT_INLINE file_descriptor hold_directory(const std::filesystem::path& dir);

/// Removes the temporary directories in `dir` (a sharded save's, or a sharded checkpoint's being
/// deleted) that no live writer holds: the equivalent of remove_stale_temporaries for directories.
/// A sharded save holds an flock on its temporary directory (hold_directory), so a directory we
/// can lock is one whose save died. Never throws: cleaning up is best effort.
CKPT_INLINE void remove_stale_temporary_directories(const std::filesystem::path& dir) noexcept;

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

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE bool injected_failure(io_op op, const std::filesystem::path& path) noexcept {
    if (!io_fault_injector) return false;
    const int err = io_fault_injector(op, path);
    if (err) errno = err;
    return err != 0;
}

CKPT_INLINE void file_descriptor::close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

CKPT_INLINE file_descriptor open_for_reading(const std::filesystem::path& path) {
    int fd;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; regular files
    // ignore the flag.
    do fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) throw io_error("cannot open for reading", path, last_error());
    file_descriptor owned(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw io_error("cannot stat", path, last_error());
    if (S_ISDIR(st.st_mode)) throw io_error("is a directory, not a checkpoint file", path);
    if (!S_ISREG(st.st_mode))
        throw format_error(std::string("is ") + special_file_kind(st.st_mode) + ", not a checkpoint file", path);
    return owned;
}

CKPT_INLINE const char* special_file_kind(unsigned mode) noexcept {
    if (S_ISREG(mode)) return "";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

CKPT_INLINE void check_replaceable(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        // Absent (or a dangling link: the rename replaces the link): nothing is lost. Any other
        // reason the rename will report itself.
        return;
    }
    if (S_ISREG(st.st_mode)) return;
    struct stat link {};
    const bool linked = ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode);
    throw io_error(std::string("refusing to replace ") + (linked ? "a symbolic link to " : "") +
                       special_file_kind(st.st_mode) +
                       " (a file is written only where there is nothing or a regular file)",
                   path);
}

CKPT_INLINE std::uint64_t file_size(int fd, const std::filesystem::path& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw io_error("cannot stat", path, last_error());
    return static_cast<std::uint64_t>(st.st_size);
}

CKPT_INLINE void write_all(int fd, const void* data, std::size_t size, const std::filesystem::path& path) {
    auto p = static_cast<const char*>(data);
    while (size > 0) {
        // Linux writes at most ~2 GiB per call.
        const ssize_t n = injected_failure(io_op::write, path)
                              ? -1
                              : ::write(fd, p, size < (std::size_t{1} << 30) ? size : (std::size_t{1} << 30));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw io_error("cannot write", path, last_error());
        }
        p += n;
        size -= static_cast<std::size_t>(n);
    }
}

CKPT_INLINE void pwrite_all(int fd, const void* data, std::size_t size, std::uint64_t offset,
                            const std::filesystem::path& path) {
    auto p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = injected_failure(io_op::write, path) ? -1 : ::pwrite(fd, p, size, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw io_error("cannot write", path, last_error());
        }
        p += n;
        offset += static_cast<std::uint64_t>(n);
        size -= static_cast<std::size_t>(n);
    }
}

CKPT_INLINE void pread_all(int fd, void* data, std::size_t size, std::uint64_t offset,
                           const std::filesystem::path& path) {
    auto p = static_cast<char*>(data);
    while (size > 0) {
        const ssize_t n =
            ::pread(fd, p, size < (std::size_t{1} << 30) ? size : (std::size_t{1} << 30), static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            throw io_error("cannot read", path, last_error());
        }
        if (n == 0) throw corrupt_error("file ended early at byte " + std::to_string(offset), path);
        p += n;
        offset += static_cast<std::uint64_t>(n);
        size -= static_cast<std::size_t>(n);
    }
}

CKPT_INLINE void pread_all_with_tail(int fd, void* data, std::size_t size, void* tail, std::size_t tail_size,
                                     std::uint64_t offset, const std::filesystem::path& path) {
    iovec pieces[2] = {{data, size}, {tail, tail_size}};
    ssize_t n;
    do n = ::preadv(fd, pieces, tail_size ? 2 : 1, static_cast<off_t>(offset));
    while (n < 0 && errno == EINTR);
    if (n < 0) throw io_error("cannot read", path, last_error());
    // A short read (end of file, a signal, a huge request) finishes piece by piece.
    const auto got = static_cast<std::size_t>(n);
    if (got < size) pread_all(fd, static_cast<char*>(data) + got, size - got, offset + got, path);
    const std::size_t tail_got = got > size ? got - size : 0;
    pread_all(fd, static_cast<char*>(tail) + tail_got, tail_size - tail_got, offset + size + tail_got, path);
}

CKPT_INLINE void fsync_or_throw(int fd, const std::filesystem::path& path, io_op op) {
    int rc;
    do rc = injected_failure(op, path) ? -1 : ::fsync(fd);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) throw io_error("cannot fsync", path, last_error());
}

CKPT_INLINE void advise_fresh_buffer(void* data, std::size_t size, bool populate) noexcept {
#if defined(__linux__)
    const auto at = reinterpret_cast<std::uintptr_t>(data);
#if defined(MADV_HUGEPAGE)
    constexpr std::uintptr_t huge = std::uintptr_t{2} << 20;
    if (size >= (std::size_t{4} << 20)) {
        const std::uintptr_t begin = (at + huge - 1) & ~(huge - 1), end = (at + size) & ~(huge - 1);
        if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
    }
#endif
#if defined(MADV_POPULATE_WRITE)
    static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const std::uintptr_t begin = (at + page - 1) & ~(page - 1), end = (at + size) & ~(page - 1);
    if (populate && size >= (std::size_t{1} << 20) && end > begin)
        (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
#endif
    (void)at;
#endif
    (void)data;
    (void)size;
    (void)populate;
}

CKPT_INLINE std::pair<std::uintptr_t, std::uintptr_t> page_interior(const void* data, std::size_t size) noexcept {
    static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto at = reinterpret_cast<std::uintptr_t>(data);
    return {(at + page - 1) & ~(page - 1), (at + size) & ~(page - 1)};
}

CKPT_INLINE void populate_pages(std::vector<std::pair<std::uintptr_t, std::uintptr_t>>& ranges) noexcept {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 0; i < ranges.size();) {
        std::uintptr_t begin = ranges[i].first, end = ranges[i].second;
        for (++i; i < ranges.size() && ranges[i].first <= end + page; ++i) end = std::max(end, ranges[i].second);
        if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
    }
#else
    (void)ranges;
#endif
}

CKPT_INLINE void fsync_directory(const std::filesystem::path& dir) {
    const auto d = dir.empty() ? std::filesystem::path(".") : dir;
    file_descriptor fd(::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) throw io_error("cannot open directory to fsync it", d, last_error());
    fsync_or_throw(fd.get(), d, io_op::fsync_directory);
}

CKPT_INLINE void create_directories_durably(const std::filesystem::path& dir) {
    std::error_code ec;
    if (dir.empty() || std::filesystem::is_directory(dir, ec)) return;
    // The missing components, innermost first.
    std::vector<std::filesystem::path> missing;
    for (auto p = dir; !p.empty(); p = p.parent_path()) {
        struct stat st {};
        if (::lstat(p.c_str(), &st) == 0 || errno != ENOENT) break;  // exists, or mkdir will say why not
        missing.push_back(p);
        if (p == p.parent_path()) break;
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        if (::mkdir(it->c_str(), 0777) != 0) {
            if (errno == EEXIST && std::filesystem::is_directory(*it, ec)) continue;  // made by someone else meanwhile
            throw io_error("cannot create directory", *it, last_error());
        }
        fsync_directory(it->parent_path());
    }
    if (!std::filesystem::is_directory(dir, ec)) throw io_error("is not a directory", dir);
}

CKPT_INLINE void create_parent_directories(const std::filesystem::path& file) {
    const auto parent = file.parent_path();
    if (parent.empty()) return;
    create_directories_durably(parent);
}

CKPT_INLINE int open_created(const std::filesystem::path& path, int flags) noexcept {
    int fd;
    do fd = ::open(path.c_str(), flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    while (fd < 0 && errno == EINTR);
    return fd;
}

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
