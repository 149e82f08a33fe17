#pragma once
// The lock a checkpoint_manager holds on its directory, so that two managers never rotate the same
// checkpoints. flock locks belong to the open file description: a second manager is refused in
// this process as in another, and the lock dies with the process (no stale lock after a crash).

#include <cerrno>
#include <filesystem>

#include <fcntl.h>
#include <sys/file.h>

#include <ckpt/detail/config.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/io/descriptor.hpp>

namespace ckpt::detail {

inline constexpr const char* manager_lock_name = ".ckpt-lock";

/// An exclusive lock on `dir`, held while the object lives: `directory_lock lock(dir);`
class directory_lock {
public:
    directory_lock() = default;
    explicit directory_lock(const std::filesystem::path& dir);

private:
    file_descriptor fd_;
};

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE directory_lock::directory_lock(const std::filesystem::path& dir) {
    const auto file = dir / manager_lock_name;
    fd_ = file_descriptor(open_created(file, O_RDWR));
    if (!fd_) throw io_error("cannot create the directory's lock file", file, last_error());
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            throw error("another checkpoint_manager (in this or another process) is using this directory", dir);
        throw io_error("cannot lock the directory", dir, last_error());
    }
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
