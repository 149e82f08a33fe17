#pragma once
// Asynchronous saves. The caller's thread only takes a snapshot: tensor bytes copied and opaque
// leaves encoded into a buffer that is reused from one save to the next. A background thread
// then checksums, writes, fsyncs and renames. At most one save is in flight; the next waits for
// it. Errors from the background are kept and rethrown by the next save or by wait().

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <ckpt/format/writer.hpp>
#include <ckpt/warning.hpp>

namespace ckpt::detail {

/// The tracked state at one moment, owned: what a save walk produced, ready to be written later.
/// A sink for save_walker, like file_writer.
class snapshot {
public:
    /// Empties the snapshot for a save to `file` (named in errors).
    void clear(const std::filesystem::path& file) {
        file_ = file;
        records_.clear();
        paths_.clear();
        size_ = 0;
    }

    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major, const void* data,
               std::size_t size) {
        // Refused here, on the caller's thread, before a file is created.
        check_writable_entry(path, kind, type, dims, size, records_.size(), file_);
        records_.push_back({paths_.size(), path.size(), kind, type, column_major, dims, size_, size});
        paths_.append(path);
        reserve(size_ + size);
        if (size) std::memcpy(bytes_.get() + size_, data, size);
        size_ += size;
    }

    /// Writes the snapshot as a checkpoint file; runs on the background thread.
    void write(const std::filesystem::path& file, const save_options& options, std::uint64_t counter,
               std::chrono::system_clock::time_point when) const {
        file_writer writer(file);
        for (const auto& r : records_)
            writer.block(std::string_view(paths_).substr(r.path_offset, r.path_length), r.kind, r.type, r.dims, r.column_major,
                         bytes_.get() + r.offset, r.length);
        writer.finish(options, counter, when);
    }

    std::size_t bytes() const noexcept { return size_; }

private:
    struct record {
        std::size_t path_offset, path_length;
        entry_kind kind;
        dtype type;
        bool column_major;
        shape dims;
        std::size_t offset, length;
    };

    // Grows without zero-filling (new char[] leaves bytes uninitialised: every byte is copied
    // into before it is read); once grown, later saves of the same state allocate nothing.
    void reserve(std::size_t needed) {
        if (needed <= capacity_) return;
        const std::size_t capacity = std::max(needed, capacity_ + capacity_ / 2);
        std::unique_ptr<char[]> grown(new char[capacity]);
        if (size_) std::memcpy(grown.get(), bytes_.get(), size_);
        bytes_ = std::move(grown);
        capacity_ = capacity;
    }

    std::filesystem::path file_;
    std::vector<record> records_;
    std::string paths_;
    std::unique_ptr<char[]> bytes_;
    std::size_t capacity_ = 0, size_ = 0;
};

/// One background thread running one job at a time.
class background_worker {
public:
    background_worker() = default;
    background_worker(const background_worker&) = delete;
    background_worker& operator=(const background_worker&) = delete;

    /// Waits for any job in flight; a destructor must not throw, so an error nobody collected is
    /// reported as a ckpt::warning rather than lost silently.
    ~background_worker() {
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
                     std::string("an asynchronous save failed and no later save or wait() collected the error: ") + e.what());
            } catch (...) {
                warn(warning_kind::async_save_failed, "an asynchronous save failed with an unknown exception");
            }
        }
    }

    /// Blocks until no job is in flight, then rethrows the error of the last one, if it failed.
    void wait() {
        std::unique_lock lock(mutex_);
        idle_.wait(lock, [&] { return !job_; });
        if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    }

    bool busy() const {
        std::lock_guard lock(mutex_);
        return static_cast<bool>(job_);
    }

    /// Runs `job` on the background thread, started on first use. The caller must have wait()ed
    /// first. When the thread cannot start (EAGAIN: a pids limit, RLIMIT_AS), throws ckpt::error
    /// naming `file` and leaves no job recorded: a job nobody runs would block every wait().
    void submit(std::function<void()> job, const std::filesystem::path& file) {
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
                                "); nothing was written", file);
                }
            }
            job_ = std::move(job);
        }
        wake_.notify_all();
    }

    /// Test hook: when set, called before the background thread is started; a non-zero return is
    /// taken as the errno of a failed start. Never set outside tests.
    static inline int (*thread_start_injector)() = nullptr;

private:
    void run() {
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

    mutable std::mutex mutex_;
    std::condition_variable wake_, idle_;
    std::function<void()> job_;
    std::exception_ptr error_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace ckpt::detail
