#pragma once
// ckpt::set_max_threads: how many threads ckpt's data path (the reads of a restore, the copy of an
// asynchronous snapshot, the hashing of a save) splits its work over.
//
// The threads are one pool per process, started the first time a restore or save has enough bytes
// to share (never at startup, never one per call) and kept until the process ends, idle and
// asleep between uses. The calling thread always works too, so a pool busy with another
// checkpoint's restore slows a restore down but never blocks it. On Linux the pool's threads are
// named "ckpt-pool" and an asynchronous save's background thread "ckpt-writer" (top -H, gdb, perf).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <thread>

#include <ckpt/detail/config.hpp>

namespace ckpt {

/// The most threads one restore, snapshot or save uses, the calling thread included: `n`, or with
/// 0 the default again, which is the CKPT_NUM_THREADS environment variable when it holds a positive
/// number and otherwise the machine's hardware threads (std::thread::hardware_concurrency())
/// shared among the MPI ranks on this machine: divided by their number, at least 1, from the first
/// save or restore of a ckpt::mpi::checkpoint (which counts the ranks of its communicator that
/// share the machine).
/// 1: everything on the calling thread, and no thread is ever started for it. Takes effect for the
/// work that starts after it; threads already started stay (asleep) when the limit goes down.
CKPT_INLINE void set_max_threads(std::size_t n) noexcept;

/// The limit set_max_threads describes, as it is now.
CKPT_INLINE std::size_t max_threads() noexcept;

}  // namespace ckpt

namespace ckpt::detail {
/// What set_max_threads set (0: the default).
CKPT_INLINE std::atomic<std::size_t>& thread_limit() noexcept;
/// How many processes share this machine's cores, as far as ckpt knows: 1, or the most ranks of one
/// communicator on this machine that a ckpt::mpi::checkpoint counted (see set_max_threads).
CKPT_INLINE std::atomic<std::size_t>& processes_per_machine() noexcept;
/// The default of max_threads(): CKPT_NUM_THREADS, else the machine's hardware threads divided by
/// processes_per_machine(), at least 1.
CKPT_INLINE std::size_t default_thread_count() noexcept;
}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE std::atomic<std::size_t>& thread_limit() noexcept {
    static std::atomic<std::size_t> limit{0};
    return limit;
}

CKPT_INLINE std::atomic<std::size_t>& processes_per_machine() noexcept {
    static std::atomic<std::size_t> processes{1};
    return processes;
}

CKPT_INLINE std::size_t default_thread_count() noexcept {
    // Asked once: glibc reads /sys for the count, and the environment is the process's start.
    // 0: CKPT_NUM_THREADS is not set (or not a count).
    static const std::size_t from_environment = []() -> std::size_t {
        if (const char* text = std::getenv("CKPT_NUM_THREADS")) {
            char* end = nullptr;
            const unsigned long long n = std::strtoull(text, &end, 10);
            if (end != text && *end == '\0' && n > 0 && n <= 4096) return static_cast<std::size_t>(n);
        }
        return 0;
    }();
    static const std::size_t hardware = std::thread::hardware_concurrency();  // 0 when unknown
    if (from_environment != 0) return from_environment;
    const std::size_t processes = processes_per_machine().load(std::memory_order_relaxed);
    return std::max<std::size_t>(1, hardware / std::max<std::size_t>(1, processes));
}

}  // namespace ckpt::detail

namespace ckpt {

CKPT_INLINE void set_max_threads(std::size_t n) noexcept { detail::thread_limit().store(n); }

CKPT_INLINE std::size_t max_threads() noexcept {
    const std::size_t n = detail::thread_limit().load();
    return n != 0 ? n : detail::default_thread_count();
}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
