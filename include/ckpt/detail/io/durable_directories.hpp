#pragma once
// Directories made durable: fsync of a directory after a rename or unlink in it, and creation of
// directories each fsynced in its parent.

#include <cerrno>
#include <filesystem>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/detail/config.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/io/descriptor.hpp>
#include <ckpt/detail/io/fault_injection.hpp>
#include <ckpt/detail/io/read_write.hpp>

namespace ckpt::detail {

/// Makes a rename or unlink in `dir` durable.
CKPT_INLINE void fsync_directory(const std::filesystem::path& dir);

/// Creates `dir` and any missing parents, each made durable in its own parent (a directory entry
/// is data of the directory that holds it: without an fsync of the parent, a crash can lose a new
/// directory and every checkpoint inside it, although those were fsynced).
CKPT_INLINE void create_directories_durably(const std::filesystem::path& dir);

CKPT_INLINE void create_parent_directories(const std::filesystem::path& file);

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

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

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
