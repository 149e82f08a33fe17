#pragma once
// ckpt::checkpoint: named references to the objects that make up a training state, saved to and
// restored from one checkpoint file.
//
//   ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("optimizer", opt), ckpt::track("step", step)};
//   auto path = ck.save("run/ckpt");        // run/ckpt-1, run/ckpt-2, ...
//   ck.restore(path).assert_consumed();

#include <chrono>
#include <functional>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <ckpt/async.hpp>
#include <ckpt/detail/mpi_manifest.hpp>
#include <ckpt/detail/restore_walk.hpp>
#include <ckpt/detail/save_walk.hpp>
#include <ckpt/error.hpp>
#include <ckpt/format/file_reader.hpp>
#include <ckpt/format/writer.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt {

/// strict (the default): every tracked object must be in the file. partial: objects the file
/// lacks are left as they are and listed in restore_status::missing(). verify_first, alone or with
/// partial (`ckpt::partial | ckpt::verify_first`): every block the restore takes is checked
/// against its checksum before any object changes, so even damaged bytes leave every object as it
/// was; it costs one more read of those blocks. Without it a damaged block is caught while it is
/// read into its object, after the objects before it were restored.
enum class restore_mode : unsigned { strict = 0, partial = 1, verify_first = 2 };
inline constexpr restore_mode strict = restore_mode::strict;
inline constexpr restore_mode partial = restore_mode::partial;
inline constexpr restore_mode verify_first = restore_mode::verify_first;
constexpr restore_mode operator|(restore_mode a, restore_mode b) noexcept {
    return static_cast<restore_mode>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}

namespace detail {
constexpr bool includes(restore_mode mode, restore_mode flag) noexcept {
    return (static_cast<unsigned>(mode) & static_cast<unsigned>(flag)) != 0;
}
}  // namespace detail

/// What a restore did. `ck.restore(p).assert_consumed();`
class restore_status {
public:
    restore_status() = default;
    restore_status(std::filesystem::path file, ckpt::metadata meta, std::vector<std::string> missing, std::vector<std::string> unused)
        : file_(std::move(file)), metadata_(std::move(meta)), missing_(std::move(missing)), unused_(std::move(unused)) {}

    const std::filesystem::path& file() const noexcept { return file_; }
    const ckpt::metadata& metadata() const noexcept { return metadata_; }
    /// Tracked paths the file did not have (only a partial restore gets this far with any).
    const std::vector<std::string>& missing() const noexcept { return missing_; }
    /// Entries of the file that no tracked object took.
    const std::vector<std::string>& unused() const noexcept { return unused_; }

    /// Throws mismatch_error unless every entry of the file was restored and every tracked object found.
    const restore_status& assert_consumed() const {
        if (!unused_.empty())
            throw mismatch_error(std::to_string(unused_.size()) + " entries of the checkpoint were not restored into any tracked object" +
                                 list(unused_), file_, unused_.front());
        return assert_existing_objects_matched();
    }
    /// Throws mismatch_error unless every tracked object was found in the file (extra entries are fine).
    const restore_status& assert_existing_objects_matched() const {
        if (!missing_.empty())
            throw mismatch_error(std::to_string(missing_.size()) + " tracked objects were not found in the checkpoint" + list(missing_),
                                 file_, missing_.front());
        return *this;
    }

private:
    static std::string list(const std::vector<std::string>& paths) {
        std::string s = ": ";
        for (std::size_t i = 0; i < paths.size() && i < 10; ++i) s += (i ? ", " : "") + paths[i];
        if (paths.size() > 10) s += ", ...";
        return s;
    }

    std::filesystem::path file_;
    ckpt::metadata metadata_;
    std::vector<std::string> missing_, unused_;
};

/// A name bound to an object the checkpoint saves and restores. Made by ckpt::track.
template <class T>
struct tracked {
    std::string name;
    T* object;
};

/// `ckpt::track("model", model)`: the object's entries are named "model/...".
template <class T>
tracked<T> track(std::string name, T& object) {
    detail::require_checkpointable<T>();
    return {std::move(name), &object};
}

namespace detail {
/// Track names must be valid entry paths, unique, and none a prefix of another.
inline void check_track_names(const std::vector<std::string>& names) {
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (!is_valid_entry_path(names[i]))
            throw error("invalid track name '" + names[i] + "': use '/'-separated names with no empty, '.' or '..' parts");
        for (std::size_t j = 0; j < i; ++j) {
            const auto& a = names[i].size() < names[j].size() ? names[i] : names[j];
            const auto& b = names[i].size() < names[j].size() ? names[j] : names[i];
            if (a == b || (b.compare(0, a.size(), a) == 0 && b[a.size()] == '/'))
                throw error("track names '" + names[j] + "' and '" + names[i] + "' overlap: each name must be unique and not a prefix of another");
        }
    }
}
}  // namespace detail

/// What a checkpoint_manager (or other code that should not know the tracked types) needs.
/// Every save first waits for an asynchronous save still in flight and rethrows its error.
class any_checkpoint {
public:
    any_checkpoint() = default;
    any_checkpoint(const any_checkpoint&) = delete;
    any_checkpoint& operator=(const any_checkpoint&) = delete;
    virtual ~any_checkpoint() = default;

    /// Writes the tracked state to exactly `file` (atomically), leaving the save counter as it is.
    std::filesystem::path write(const std::filesystem::path& file, const save_options& options = {}) {
        wait_for_worker();
        do_write(file, options, save_counter_);
        return file;
    }
    /// Counts one more save and writes it to exactly `file`: what a manager uses for its own names.
    std::filesystem::path save_as(const std::filesystem::path& file, const save_options& options = {}) {
        wait_for_worker();
        do_write(file, options, save_counter_ + 1);
        ++save_counter_;
        return file;
    }
    /// Counts one more save and writes it to `<prefix>-<n>`, n the new save counter (moved past any
    /// file that already has that name, so an earlier run's checkpoint is never overwritten).
    /// `auto p = ck.save("run/ckpt");  // run/ckpt-1`
    std::filesystem::path save(const std::filesystem::path& prefix, const save_options& options = {}) {
        wait_for_worker();
        const std::uint64_t n = next_number(prefix);
        const auto file = numbered(prefix, n);
        do_write(file, options, n);
        save_counter_ = n;
        return file;
    }

    /// As save(), but returns once the state is copied; the file is written in the background.
    /// `ck.save_async("run/ckpt"); train_more(); ck.wait();`
    std::filesystem::path save_async(const std::filesystem::path& prefix, const save_options& options = {}) {
        wait_for_worker();
        const std::uint64_t n = next_number(prefix);
        const auto file = numbered(prefix, n);
        start_async(file, options, n, {});
        save_counter_ = n;
        return file;
    }
    /// As write(), in the background.
    std::filesystem::path write_async(const std::filesystem::path& file, const save_options& options = {}) {
        wait_for_worker();
        start_async(file, options, save_counter_, {});
        return file;
    }
    /// As save_as(), in the background; `then(file)` runs on the background thread once the file is
    /// durable (a manager records and rotates there). An exception from it surfaces like a write error.
    std::filesystem::path save_as_async(const std::filesystem::path& file, const save_options& options = {},
                                        std::function<void(const std::filesystem::path&)> then = {}) {
        wait_for_worker();
        start_async(file, options, save_counter_ + 1, std::move(then));
        ++save_counter_;
        return file;
    }
    /// Blocks until the asynchronous save in flight (if any) is durable; rethrows its error.
    void wait() { wait_for_worker(); }
    /// True while an asynchronous save is being written.
    bool save_in_progress() const { return worker_.busy(); }

    /// Restores every tracked object from `file`; see restore_mode. Checks the structure before it
    /// changes anything: a mismatch throws mismatch_error and leaves every object as it was.
    restore_status restore(const std::filesystem::path& file, restore_mode mode = restore_mode::strict) {
        wait_for_worker();
        return do_restore(file, mode);
    }

    /// Saves so far, including those of the run a restore came from.
    std::uint64_t save_counter() const noexcept { return save_counter_; }

protected:
    virtual void do_write(const std::filesystem::path& file, const save_options& options, std::uint64_t counter) = 0;
    virtual void do_snapshot(detail::snapshot& into) = 0;
    virtual restore_status do_restore(const std::filesystem::path& file, restore_mode mode) = 0;
    std::uint64_t save_counter_ = 0;

private:
    // A failed asynchronous save did not happen: its number is given out again.
    void wait_for_worker() {
        try {
            worker_.wait();
        } catch (...) {
            save_counter_ = counter_before_async_;
            throw;
        }
    }
    static std::filesystem::path numbered(const std::filesystem::path& prefix, std::uint64_t n) {
        auto file = prefix;
        file += "-" + std::to_string(n);
        return file;
    }
    std::uint64_t next_number(const std::filesystem::path& prefix) const {
        std::uint64_t n = save_counter_ + 1;
        std::error_code ec;
        while (std::filesystem::exists(numbered(prefix, n), ec)) ++n;
        return n;
    }
    void start_async(const std::filesystem::path& file, const save_options& options, std::uint64_t counter,
                     std::function<void(const std::filesystem::path&)> then) {
        counter_before_async_ = save_counter_;
        snapshot_.clear();
        do_snapshot(snapshot_);
        const auto when = std::chrono::system_clock::now();
        worker_.submit([this, file, options, counter, when, then = std::move(then)] {
            snapshot_.write(file, options, counter, when);
            if (then) then(file);
        });
    }

    std::uint64_t counter_before_async_ = 0;
    detail::snapshot snapshot_;
    detail::background_worker worker_;  // last: destroyed (and joined) before the snapshot it writes
};

/// The tracked objects of a training state. Holds references: the objects must outlive it.
template <class... Ts>
class checkpoint : public any_checkpoint {
public:
    explicit checkpoint(tracked<Ts>... objects) : objects_(std::move(objects)...) {
        detail::check_track_names(std::apply([](const auto&... t) { return std::vector<std::string>{t.name...}; }, objects_));
    }

private:
    void do_write(const std::filesystem::path& file, const save_options& options, std::uint64_t counter) override {
        detail::file_writer writer(file);
        std::apply([&](auto&... t) { (detail::save_walker<detail::file_writer>(writer, t.name).visit(*t.object), ...); }, objects_);
        writer.finish(options, counter, std::chrono::system_clock::now());
    }

    void do_snapshot(detail::snapshot& into) override {
        std::apply([&](auto&... t) { (detail::save_walker<detail::snapshot>(into, t.name).visit(*t.object), ...); }, objects_);
    }

    restore_status do_restore(const std::filesystem::path& file, restore_mode mode) override {
        // A sharded checkpoint (ckpt/mpi.hpp) restores in one process too: replicated entries, shards
        // as whole tensors, and per-rank entries when one rank saved it.
        if (detail::is_sharded_checkpoint(file)) {
            detail::sharded_reader reader(file);
            if (reader.world_size() == 1) reader.view_rank(0);
            return restore_from(reader, file, mode);
        }
        detail::file_reader reader(file);
        return restore_from(reader, file, mode);
    }

    template <class Source>
    restore_status restore_from(Source& reader, const std::filesystem::path& file, restore_mode mode) {
        detail::basic_restore_context<Source> ctx(reader, detail::includes(mode, restore_mode::partial));
        auto pass = [&] {
            std::apply([&](auto&... t) { (detail::basic_restore_walker<Source>(ctx, t.name).visit(*t.object), ...); }, objects_);
        };
        pass();
        if (!ctx.problems.empty()) {
            std::string what = ctx.problems.front().what;
            for (std::size_t i = 1; i < ctx.problems.size() && i < 20; ++i)
                what += "\n  and entry '" + ctx.problems[i].path + "': " + ctx.problems[i].what;
            if (ctx.problems.size() > 20) what += "\n  and " + std::to_string(ctx.problems.size() - 20) + " more";
            throw mismatch_error(what, file, ctx.problems.front().path);
        }
        if (detail::includes(mode, restore_mode::verify_first))
            for (const entry_info* e : ctx.plan)
                if (e) reader.verify_block(*e);
        ctx.apply = true;
        pass();
        std::vector<std::string> unused;
        for (std::size_t i = 0; i < ctx.consumed.size(); ++i)
            if (!ctx.consumed[i]) unused.push_back(reader.entries()[i].path);
        save_counter_ = reader.metadata().save_counter;
        return restore_status(file, reader.metadata(), std::move(ctx.missing), std::move(unused));
    }

    std::tuple<tracked<Ts>...> objects_;
};

template <class... Ts>
checkpoint(tracked<Ts>...) -> checkpoint<Ts...>;

}  // namespace ckpt
