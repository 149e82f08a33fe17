#pragma once
// Test hooks: the points where a test (or a crash drill such as examples/train_resume.cpp) makes
// the library fail on purpose. NOT for production: every hook is a process-wide global, read
// without synchronization, so set it before the saves it should affect start and reset it to
// nullptr after. With no hook set (the default) the library behaves as if this header did not exist.
//
//   ckpt::testing::io_fault_injector = [](ckpt::testing::io_op op, const std::filesystem::path&) {
//       return op == ckpt::testing::io_op::fsync ? EIO : 0;  // every fsync of a save fails with EIO
//   };
//
// The hooks are declared next to the code that calls them (detail/io/fault_injection.hpp,
// manager.hpp, async.hpp); this header gives them one public name each.

#include <ckpt/async.hpp>
#include <ckpt/detail/io/fault_injection.hpp>
#include <ckpt/detail/parallel/thread_pool.hpp>
#include <ckpt/manager.hpp>

namespace ckpt::testing {

/// The system calls a save makes: create, write, fsync, close, rename, fsync_directory; and the
/// reads of a restore: read.
using detail::io_op;

/// When set, called before each of those system calls with the call and the file it is about;
/// a non-zero return is taken as the call's errno, as if the system had failed it. Reads may be
/// made on several threads at once: an injector that counts them must count atomically.
using detail::io_fault_injector;

/// The points of a checkpoint_manager's save where a test may crash the process: the checkpoint
/// written, the manager's record of it written, an old checkpoint deleted.
using detail::manager_point;

/// When set, called with each manager_point as a manager's save reaches it: on the thread that
/// records the save (the background thread for an asynchronous one) and under the manager's lock,
/// so a hook may crash, stop or delay the process but must not call the manager (its is_due,
/// checkpoints, save or wait would wait for the hook). To hold a save before it is committed, hold
/// it at io_op::rename through io_fault_injector instead.
using detail::manager_test_hook;

/// When set, called before the library starts a thread (the background thread of asynchronous
/// saves, a thread of the data-path pool of ckpt/threads.hpp); a non-zero return is taken as the
/// errno of a failed start (EAGAIN: a pids limit). A pool thread that cannot start is no error:
/// the work is done on fewer threads.
using detail::thread_start_injector;

}  // namespace ckpt::testing
