#pragma once
// Fault injection for tests: the system calls a save makes and the reads of a restore, and the hook that fails them on
// request (re-exported as ckpt::testing::io_fault_injector in ckpt/testing.hpp).

#include <cerrno>
#include <filesystem>

#include <ckpt/detail/config.hpp>

namespace ckpt::detail {

/// The system calls a save makes, and the positioned reads (pread, preadv) of a restore, for
/// fault-injection tests. A read may be made on any thread of the data path (ckpt/threads.hpp).
enum class io_op { create, write, fsync, close, rename, fsync_directory, read };

/// Test hook: when set, called before each of those calls (from several threads at once during a
/// parallel restore); a non-zero return is taken as the
/// call's errno, as if the system had failed it. Never set outside tests.
inline int (*io_fault_injector)(io_op op, const std::filesystem::path& path) = nullptr;

CKPT_INLINE bool injected_failure(io_op op, const std::filesystem::path& path) noexcept;

/// Test hook: when set, called just after a save creates a temporary (file or directory) and
/// before it locks it: the moment a cleaner of dead saves' temporaries can take it from under the
/// save, which must then make another. Never set outside tests.
inline void (*temporary_created_hook)(const std::filesystem::path& temp) = nullptr;

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE bool injected_failure(io_op op, const std::filesystem::path& path) noexcept {
    if (!io_fault_injector) return false;
    const int err = io_fault_injector(op, path);
    if (err) errno = err;
    return err != 0;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
