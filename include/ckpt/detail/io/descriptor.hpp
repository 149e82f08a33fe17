#pragma once
// File descriptors: an owned descriptor, and the opens that refuse what is not a regular file
// (reading) or follow no symbolic link (creating).

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/detail/config.hpp>
#include <ckpt/error.hpp>

namespace ckpt::detail {

inline std::error_code last_error() noexcept { return {errno, std::generic_category()}; }

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

/// Opens a file the library creates: never through a symbolic link (a dangling one planted in the
/// directory would otherwise make us create or truncate a file elsewhere).
CKPT_INLINE int open_created(const std::filesystem::path& path, int flags) noexcept;

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

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

CKPT_INLINE int open_created(const std::filesystem::path& path, int flags) noexcept {
    int fd;
    do fd = ::open(path.c_str(), flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    while (fd < 0 && errno == EINTR);
    return fd;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
