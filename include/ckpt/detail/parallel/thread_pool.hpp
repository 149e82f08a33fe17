#pragma once
// The process's pool of data-path threads (see ckpt/threads.hpp), and parallel_for, the one way the
// library hands work to it.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <cstring>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/threads.hpp>

#if defined(__linux__)
#include <pthread.h>
#endif

namespace ckpt::detail {

/// When set (ckpt::testing::thread_start_injector), called before the library starts a thread (a
/// pool thread, the background thread of asynchronous saves); a non-zero return is taken as the
/// errno of a failed start.
inline int (*thread_start_injector)() = nullptr;

/// Names the calling thread (at most 15 characters), so that top -H, gdb, perf and the process's
/// /proc/self/task/<tid>/comm tell ckpt's threads from the program's own. Linux only; elsewhere
/// the thread keeps its name.
inline void name_this_thread(const char* name) noexcept {
#if defined(__linux__)
    pthread_setname_np(pthread_self(), name);
#else
    (void)name;
#endif
}

/// Threads that sleep until a caller of run() shares its work with them. Several callers may run at
/// once (two checkpoints restoring on two threads): their jobs queue, each caller works on its own
/// job meanwhile, so no caller ever waits for a pool thread to become free. A job's body must not
/// throw (parallel_for keeps the failures).
class thread_pool {
public:
    /// The process's pool. A child made by fork() gets a new one: the threads did not come along.
    static thread_pool& shared();

    /// Calls body(context, i) for each i in [0, count): on this thread and on up to helpers of the
    /// pool's, each taking the next i; returns once every call has returned.
    void run(std::size_t count, std::size_t helpers, void (*body)(void*, std::size_t), void* context);

private:
    struct job {
        void (*body)(void*, std::size_t);
        void* context;
        std::size_t count;
        std::atomic<std::size_t> next{0};
        std::size_t wanted;      // helpers that may still join (under mutex_)
        std::size_t active = 0;  // helpers working on it (under mutex_)
        std::condition_variable finished;
    };
    static void work_on(job& j) noexcept;
    void start_threads(std::size_t wanted);
    void serve();

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<job*> queue_;
    std::vector<std::thread> threads_;
};

/// Calls body(i) for each i in [0, count) on up to `threads` threads (this one included; capped by
/// ckpt::max_threads()). The calls that throw do not stop the others from being made, except that
/// after a call throws, calls with a larger i are skipped; the exception of the smallest i that
/// threw is rethrown here, once every call has returned. So the error is the one a loop in order
/// would meet first, whichever thread met it.
template <class Body>
void parallel_for(std::size_t count, std::size_t threads, Body&& body);

/// The threads a pass over `bytes` bytes of memory (a copy, a hash) is given, at most `threads`:
/// one below 16 MiB, else one per 4 MiB; for less, waking threads costs more than they save.
constexpr std::size_t threads_for_bytes(std::size_t bytes, std::size_t threads) noexcept {
    constexpr std::size_t parallel_min_bytes = std::size_t{16} << 20, per_thread = std::size_t{4} << 20;
    if (bytes < parallel_min_bytes) return 1;
    return bytes / per_thread < threads ? bytes / per_thread : threads;
}

/// One memcpy of a parallel_copy.
struct copy_part {
    const char* from;
    char* to;
    std::size_t length;
};

/// Adds the copy of `length` bytes to `parts`, cut in parts of at most 4 MiB that threads share.
inline void add_copy(std::vector<copy_part>& parts, const void* from, void* to, std::size_t length) {
    constexpr std::size_t part_bytes = std::size_t{4} << 20;
    for (std::size_t at = 0; at < length; at += part_bytes)
        parts.push_back({static_cast<const char*>(from) + at, static_cast<char*>(to) + at,
                         length - at < part_bytes ? length - at : part_bytes});
}
/// The number of parts add_copy makes of `length` bytes (room to reserve ahead).
constexpr std::size_t copy_parts(std::size_t length) noexcept { return (length + (std::size_t{4} << 20) - 1) >> 22; }

/// The storage an asynchronous save copies tensors into (`bytes`, `capacity` of them), kept from one
/// save to the next: grown to `needed` without zero-filling or keeping the old bytes (every byte is
/// copied into before it is read), shrunk to it when more than `budget` is held. Forgotten before
/// the new allocation, so that a bad_alloc leaves no capacity without bytes.
inline void reserve_copy_storage(std::unique_ptr<char[]>& bytes, std::size_t& capacity, std::size_t needed,
                                 std::size_t budget) {
    if (needed <= capacity && capacity <= budget) return;
    capacity = 0;
    bytes.reset();
    bytes.reset(new char[needed]);
    capacity = needed;
}

/// Makes the copies of `parts`, `bytes` in all, on threads_for_bytes(bytes) of ckpt::max_threads().
/// Throws only where the pool cannot take the job (then nothing or some of it was copied).
inline void parallel_copy(const std::vector<copy_part>& parts, std::size_t bytes) {
    parallel_for(parts.size(), threads_for_bytes(bytes, max_threads()),
                 [&](std::size_t i) { std::memcpy(parts[i].to, parts[i].from, parts[i].length); });
}

}  // namespace ckpt::detail

#include <exception>

namespace ckpt::detail {

template <class Body>
void parallel_for(std::size_t count, std::size_t threads, Body&& body) {
    if (threads > max_threads()) threads = max_threads();
    if (threads > count) threads = count;
    if (threads <= 1) {
        for (std::size_t i = 0; i < count; ++i) body(i);
        return;
    }
    struct state {
        Body& body;
        std::atomic<std::size_t> failed;
        std::mutex mutex;
        std::exception_ptr failure;
    } s{body, {count}, {}, {}};
    auto call = [](void* context, std::size_t i) {
        auto& st = *static_cast<state*>(context);
        if (i > st.failed.load(std::memory_order_relaxed)) return;
        try {
            st.body(i);
        } catch (...) {
            const std::lock_guard<std::mutex> lock(st.mutex);
            if (i < st.failed.load()) {
                st.failed.store(i);
                st.failure = std::current_exception();
            }
        }
    };
    thread_pool::shared().run(count, threads - 1, call, &s);
    if (s.failure) std::rethrow_exception(s.failure);
}

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
#include <unistd.h>

namespace ckpt::detail {

CKPT_INLINE thread_pool& thread_pool::shared() {
    // Never destroyed: a pool thread may still be asleep in it while static objects are destroyed
    // at exit, and a std::thread destroyed while running would end the process.
    struct owner {
        pid_t pid;
        thread_pool* pool;
    };
    static std::mutex mutex;
    static owner current{getpid(), new thread_pool};
    const pid_t pid = getpid();
    if (current.pid == pid) return *current.pool;
    // A forked child: the parent's pool had threads (and maybe a locked mutex) that the child has not.
    const std::lock_guard<std::mutex> lock(mutex);
    if (current.pid != pid) current = {pid, new thread_pool};
    return *current.pool;
}

CKPT_INLINE void thread_pool::work_on(job& j) noexcept {
    for (std::size_t i; (i = j.next.fetch_add(1)) < j.count;) j.body(j.context, i);
}

CKPT_INLINE void thread_pool::start_threads(std::size_t wanted) {
    // Under mutex_. A thread that cannot start (a pids limit) is no error: the callers work anyway.
    while (threads_.size() < wanted) {
        try {
            if (thread_start_injector) {
                if (const int err = thread_start_injector()) throw std::system_error(err, std::generic_category());
            }
            threads_.emplace_back([this] { serve(); });
        } catch (const std::system_error&) {
            return;
        }
    }
}

CKPT_INLINE void thread_pool::run(std::size_t count, std::size_t helpers, void (*body)(void*, std::size_t),
                                  void* context) {
    if (helpers == 0) {
        for (std::size_t i = 0; i < count; ++i) body(context, i);
        return;
    }
    job j;
    j.body = body;
    j.context = context;
    j.count = count;
    j.wanted = helpers;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        start_threads(helpers);
        queue_.push_back(&j);
    }
    if (helpers == 1)
        wake_.notify_one();
    else
        wake_.notify_all();
    work_on(j);
    std::unique_lock<std::mutex> lock(mutex_);
    // No helper joins from here on; those that did are finishing their last call.
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
        if (*it == &j) {
            queue_.erase(it);
            break;
        }
    j.finished.wait(lock, [&] { return j.active == 0; });
}

CKPT_INLINE void thread_pool::serve() {
    name_this_thread("ckpt-pool");
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        wake_.wait(lock, [&] { return !queue_.empty(); });
        job& j = *queue_.front();
        ++j.active;
        if (--j.wanted == 0) queue_.pop_front();
        lock.unlock();
        work_on(j);
        lock.lock();
        if (--j.active == 0) j.finished.notify_all();
    }
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
