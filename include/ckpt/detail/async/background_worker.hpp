#pragma once
// The background thread of asynchronous saves (see ckpt/async.hpp): one thread running one job at
// a time, whose error the next wait() rethrows.

#include <condition_variable>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/parallel/thread_pool.hpp>  // thread_start_injector, name_this_thread
#include <ckpt/error.hpp>
#include <ckpt/warning.hpp>

namespace ckpt::detail {

/// One background thread running one job at a time.
class background_worker {
public:
    background_worker() = default;
    background_worker(const background_worker&) = delete;
    background_worker& operator=(const background_worker&) = delete;

    /// Waits for any job in flight; a destructor must not throw, so an error nobody collected is
    /// reported as a ckpt::warning rather than lost silently.
    ~background_worker();

    /// Blocks until no job is in flight, then rethrows the error of the last one, if it failed.
    void wait();

    bool busy() const;

    /// Runs `job` on the background thread, started on first use. The caller must have wait()ed
    /// first. When the thread cannot start (EAGAIN: a pids limit, RLIMIT_AS), throws ckpt::error
    /// naming `file` and leaves no job recorded: a job nobody runs would block every wait().
    void submit(std::function<void()> job, const std::filesystem::path& file);

private:
    void run();

    mutable std::mutex mutex_;
    std::condition_variable wake_, idle_;
    std::function<void()> job_;
    std::exception_ptr error_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE background_worker::~background_worker() {
    {
        std::unique_lock lock(mutex_);
        idle_.wait(lock, [&] { return !job_; });
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (error_) {
        try {
            std::rethrow_exception(error_);
        } catch (const std::exception& e) {
            warn(warning_kind::async_save_failed,
                 std::string("an asynchronous save failed and no later save or wait() collected the error: ") +
                     e.what());
        } catch (...) {
            warn(warning_kind::async_save_failed, "an asynchronous save failed with an unknown exception");
        }
    }
}

CKPT_INLINE void background_worker::wait() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return !job_; });
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

CKPT_INLINE bool background_worker::busy() const {
    std::lock_guard lock(mutex_);
    return static_cast<bool>(job_);
}

CKPT_INLINE void background_worker::submit(std::function<void()> job, const std::filesystem::path& file) {
    {
        std::lock_guard lock(mutex_);
        if (!thread_.joinable()) {
            try {
                if (thread_start_injector) {
                    if (const int err = thread_start_injector()) throw std::system_error(err, std::generic_category());
                }
                thread_ = std::thread([this] { run(); });
            } catch (const std::system_error& e) {
                throw error("cannot start the background thread of an asynchronous save (" + e.code().message() +
                                "); nothing was written",
                            file);
            }
        }
        job_ = std::move(job);
    }
    wake_.notify_all();
}

CKPT_INLINE void background_worker::run() {
    name_this_thread("ckpt-writer");
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [&] { return job_ || stopping_; });
        if (!job_) return;
        lock.unlock();
        std::exception_ptr failure;
        try {
            job_();
        } catch (...) {
            failure = std::current_exception();
        }
        lock.lock();
        error_ = failure;
        job_ = nullptr;
        idle_.notify_all();
    }
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
