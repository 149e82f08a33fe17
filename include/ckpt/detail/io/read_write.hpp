#pragma once
// Full reads and writes: a short read or write is retried or is an error, never silently short.

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>

#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ckpt/detail/config.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/io/descriptor.hpp>
#include <ckpt/detail/io/fault_injection.hpp>

namespace ckpt::detail {

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

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

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
        const ssize_t n = injected_failure(io_op::read, path)
                              ? -1
                              : ::pread(fd, p, size < (std::size_t{1} << 30) ? size : (std::size_t{1} << 30),
                                        static_cast<off_t>(offset));
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
    do
        n = injected_failure(io_op::read, path) ? -1
                                                : ::preadv(fd, pieces, tail_size ? 2 : 1, static_cast<off_t>(offset));
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

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
