#pragma once
// The out-of-line definitions of ckpt/manager.hpp (checkpoint_manager, read_manager_records,
// latest_checkpoint), kept apart so that manager.hpp reads as the API: inline in the header-only
// build, compiled once in ckpt::ckpt_compiled in the compiled mode (see ckpt/detail/config.hpp).

#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/error.hpp>
#include <ckpt/manager.hpp>
#include <ckpt/warning.hpp>

#if CKPT_HEADER_DEFINITIONS
namespace ckpt {

CKPT_INLINE std::optional<std::vector<checkpoint_record>> read_manager_records(const std::filesystem::path& dir) {
    auto s = detail::read_state_file(dir);
    if (!s) return std::nullopt;
    return std::move(s->records);
}

CKPT_INLINE std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& dir) {
    if (auto s = detail::read_state_file(dir)) {
        for (auto it = s->records.rbegin(); it != s->records.rend(); ++it) {
            std::error_code ec;
            if (std::filesystem::is_regular_file(it->path, ec) || detail::is_sharded_checkpoint(it->path))
                return it->path;
        }
        // Every listed file is gone: a manager rotated while it could not update the state file
        // (a full disk); the files it kept are found as without a state file.
    }
    auto found = detail::scan_directory(dir).records;
    if (found.empty()) return std::nullopt;
    return found.back().path;
}

CKPT_INLINE checkpoint_manager::~checkpoint_manager() {
    if (coord_ && std::uncaught_exceptions() > 0) return;
    try {
        ck_.wait();
    } catch (const std::exception& e) {
        detail::warn(warning_kind::async_save_failed,
                     "the last asynchronous save of " + directory().string() + " failed: " + e.what());
    }
    std::lock_guard lock(mutex_);
    if (record_failed_) {
        try {
            std::rethrow_exception(record_failed_);
        } catch (const std::exception& e) {
            detail::warn(warning_kind::async_save_failed,
                         "the last asynchronous save of " + directory().string() + " was not recorded: " + e.what());
        } catch (...) {}
    }
}

CKPT_INLINE std::filesystem::path checkpoint_manager::save(std::int64_t step, save_options options) {
    options.step = step;
    return save_impl(options, false);
}

CKPT_INLINE std::optional<std::filesystem::path> checkpoint_manager::save_if_due(std::int64_t step, bool force,
                                                                                 save_options options) {
    if (!coord_) {
        if (!is_due(step, force)) return std::nullopt;
    } else if (!agreed_due(step, force, 0).first) {
        return std::nullopt;
    }
    options.step = step;
    return save_impl(options, async_);
}

CKPT_INLINE std::optional<std::filesystem::path> checkpoint_manager::save_if_due(std::int64_t step,
                                                                                 interrupt_guard& guard,
                                                                                 save_options options) {
    if (!coord_) {
        // A guard shared with other processes but given to a manager of one: its own signal.
        if (guard.agreed_.load() != interrupt_guard::unshared) guard.agreed_.store(guard.signal_.load());
        return save_if_due(step, guard.requested(), std::move(options));
    }
    const auto [due, signal] = agreed_due(step, false, guard.signal_.load());
    guard.agreed_.store(signal);
    if (!due) return std::nullopt;
    options.step = step;
    return save_impl(options, async_);
}

CKPT_INLINE bool checkpoint_manager::is_due(std::int64_t step, bool force) const {
    std::lock_guard lock(mutex_);
    const checkpoint_record* last = last_for_schedule();
    return schedule_.is_due(step, force, last, clock_for(last));
}

CKPT_INLINE std::pair<bool, int> checkpoint_manager::agreed_due(std::int64_t step, bool force, int signal) {
    bool saved = false, due = false;
    if (leader()) {
        std::lock_guard lock(mutex_);
        const checkpoint_record* last = last_for_schedule();
        saved = last && last->step && *last->step == step;
        due = !saved && schedule_.is_due(step, false, last, clock_for(last));
    }
    return detail::agree_due(*coord_, saved, due, force, signal);
}

CKPT_INLINE const checkpoint_record* checkpoint_manager::last_for_schedule() const {
    const auto& records = directory_.state().records;
    return in_flight_ ? &*in_flight_ : records.empty() ? nullptr : &records.back();
}

CKPT_INLINE detail::schedule_clock checkpoint_manager::clock_for(const checkpoint_record* last) const {
    detail::schedule_clock c = clock_;
    if (!last || last->name != started_name_) c.latest_started.reset();
    return c;
}

CKPT_INLINE void checkpoint_manager::wait() {
    std::lock_guard serial(save_mutex_);
    wait_for_checkpoint();
    catch_up();
}

CKPT_INLINE std::optional<std::filesystem::path> checkpoint_manager::latest_checkpoint() const {
    std::lock_guard lock(mutex_);
    if (directory_.state().records.empty()) return std::nullopt;
    return directory_.state().records.back().path;
}

CKPT_INLINE std::vector<std::filesystem::path> checkpoint_manager::checkpoints() const {
    std::lock_guard lock(mutex_);
    std::vector<std::filesystem::path> out;
    for (const auto& r : directory_.state().records) out.push_back(r.path);
    return out;
}

CKPT_INLINE std::vector<checkpoint_record> checkpoint_manager::records() const {
    std::lock_guard lock(mutex_);
    return directory_.state().records;
}

CKPT_INLINE std::optional<std::filesystem::path> checkpoint_manager::best_checkpoint(const std::string& metric,
                                                                                     direction goal) const {
    std::lock_guard lock(mutex_);
    const checkpoint_record* best = nullptr;
    double best_value = 0;
    for (const auto& r : directory_.state().records) {
        const auto m = r.metrics.find(metric);
        if (m == r.metrics.end() || m->second != m->second) continue;  // absent or NaN
        if (!best || (goal == minimize ? m->second <= best_value : m->second >= best_value)) {
            best = &r;
            best_value = m->second;
        }
    }
    if (!best) return std::nullopt;
    return best->path;
}

CKPT_INLINE std::optional<std::filesystem::path> checkpoint_manager::restore_or_initialize(
    const std::function<void()>& init) {
    return restore_or_initialize(init, restore_mode::strict);
}

CKPT_INLINE std::optional<std::filesystem::path> checkpoint_manager::restore_or_initialize(
    const std::function<void()>& init, restore_mode mode) {
    if (coord_) wait();  // an asynchronous save's record first, the same on every rank
    const auto all = records();
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        try {
            ck_.restore(it->path, mode);
            return it->path;
        } catch (const error& e) {
            // Damaged, unreadable or unopenable: the one before is tried. Anything else (a
            // mismatch with the program's state) is the caller's to see at once.
            const char* why = skip_reason(e);
            if (!why || std::next(it) == all.rend()) throw;
            detail::warn(warning_kind::skipped_checkpoint, std::string("skipping ") + why + ": " + e.what());
        }
    }
    if (init) init();
    return std::nullopt;
}

CKPT_INLINE const char* checkpoint_manager::skip_reason(const error& e) {
    if (dynamic_cast<const corrupt_error*>(&e)) return "a damaged checkpoint";
    if (dynamic_cast<const format_error*>(&e)) return "an unreadable checkpoint";
    if (dynamic_cast<const io_error*>(&e)) return "a checkpoint that cannot be read";
    return nullptr;
}

CKPT_INLINE void checkpoint_manager::wait_for_checkpoint() {
    const auto forget_in_flight = [this] {
        std::lock_guard lock(mutex_);
        in_flight_.reset();
    };
    try {
        ck_.wait();
    } catch (const io_error& e) {
        forget_in_flight();
        if (detail::is_disk_full(e)) throw explain_full_disk(e);
        throw;
    } catch (...) {
        forget_in_flight();
        throw;
    }
    forget_in_flight();
}

CKPT_INLINE void checkpoint_manager::catch_up() {
    if (!coord_ || !behind_) return;
    behind_ = false;
    led("to record the last asynchronous checkpoint", [&] {
        std::lock_guard lock(mutex_);
        if (auto failed = std::exchange(record_failed_, nullptr)) std::rethrow_exception(failed);
        return std::string();
    });
}

CKPT_INLINE void checkpoint_manager::open() {
    read_only_ = led("to open the checkpoint directory", [&] {
                     directory_.open();
                     return std::string(directory_.read_only() ? "read-only" : "");
                 }) == "read-only";
}

CKPT_INLINE std::filesystem::path checkpoint_manager::save_impl(save_options options, bool async) {
    // One save at a time: two threads saving through one manager would take the same number.
    std::lock_guard serial(save_mutex_);
    wait_for_checkpoint();  // an earlier asynchronous save's error surfaces here
    catch_up();
    // The leader names the checkpoint; every rank saves under that name.
    checkpoint_record r;
    if (!coord_) {
        r = prepare(options);
    } else {
        const std::string named = led("to name the checkpoint", [&] {
            detail::manager_state one;
            one.records.push_back(prepare(options));
            return detail::encode_state(one);
        });
        detail::manager_state one;
        if (!detail::decode_state(named, directory(), one) || one.records.size() != 1)
            throw error("the manager's leader sent a malformed record", directory());  // not reached
        r = std::move(one.records.front());
    }
    {
        std::lock_guard lock(mutex_);
        clock_.latest_started = std::chrono::steady_clock::now();  // save_every counts from here
        started_name_ = r.name;
    }
    if (!async) {
        try {
            ck_.save_as(r.path, options);
        } catch (const io_error& e) {
            if (detail::is_disk_full(e)) throw explain_full_disk(e);
            throw;
        }
        led("to record the checkpoint", [&] {
            record_and_rotate(r);
            return std::string();
        });
        return r.path;
    }
    // The callback runs after the commit, on the background thread or in a later wait. On several
    // processes it runs on every rank and makes no collective call: the leader records there and
    // keeps an error for catch_up(), the others do nothing until then.
    std::function<void(const std::filesystem::path&)> then;
    if (!coord_)
        then = [this, r](const std::filesystem::path&) { record_and_rotate(r); };
    else if (leader())
        then = [this, r](const std::filesystem::path&) {
            try {
                record_and_rotate(r);
            } catch (...) {
                std::lock_guard lock(mutex_);
                record_failed_ = std::current_exception();
            }
        };
    ck_.save_as_async(r.path, options, std::move(then));
    if (coord_) behind_ = true;
    if (leader()) {
        std::lock_guard lock(mutex_);
        in_flight_ = r;  // started: save_if_due counts from it
    }
    return r.path;
}

CKPT_INLINE checkpoint_record checkpoint_manager::prepare(const save_options& options) {
    if (read_only_)
        throw io_error(
            "the checkpoint directory is read-only (it was opened for restoring only, without its lock); "
            "cannot save into it",
            directory(), std::make_error_code(std::errc::read_only_file_system));
    std::lock_guard lock(mutex_);
    return directory_.prepare(options);
}

CKPT_INLINE void checkpoint_manager::record_and_rotate(checkpoint_record r) {
    std::lock_guard lock(mutex_);
    detail::manager_hook(detail::manager_point::written);
    const auto path = r.path;
    if (directory_.record(std::move(r))) detail::manager_hook(detail::manager_point::recorded);
    directory_.rotate(path);
}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
