#pragma once
// ckpt::checkpoint: named references to the objects that make up a training state, saved to and
// restored from one checkpoint file.
//
//   ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("optimizer", opt), ckpt::track("step", step)};
//   auto path = ck.save("run/ckpt");        // run/ckpt-1, run/ckpt-2, ...
//   ck.restore(path).assert_consumed();

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/async.hpp>
#include <ckpt/coordination.hpp>
#include <ckpt/detail/mpi_manifest.hpp>
#include <ckpt/detail/restore_walk.hpp>
#include <ckpt/detail/save/save_walk.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/format/file_reader.hpp>
#include <ckpt/detail/format/writer.hpp>
#include <ckpt/metadata.hpp>
#include <ckpt/warning.hpp>

namespace ckpt {

/// How a restore treats the file and the objects. Whatever the mode, a restore that fails leaves
/// every tracked object as it was: every check (entries, dtypes, shapes, container sizes and keys,
/// every block's checksum, bool bytes, the decoding of every opaque value) happens before the first
/// object changes. Blocks are read once, into new storage that the objects then take by a swap, so
/// a restore needs memory for the tensors it replaces. From its second restore on, a checkpoint
/// keeps that replaced storage until its next save (or restore, or its end): the next restore
/// stages into it and touches no new memory, several times faster where fresh pages are slow to
/// fault in. A checkpoint that restores once gives it back at once.
///   strict (the default): every tracked object must be in the file, and non-empty containers must
///     have the file's size and keys (an empty one takes them).
///   partial: objects the file lacks are left as they are and listed in restore_status::missing();
///     containers restore the elements both have, keep the object's others and list them as missing.
///   in_place: tensor blocks are read straight into the objects once everything else checked out:
///     no extra memory, but a block whose checksum fails is then found after earlier objects changed.
///   verify_first: with in_place (`ckpt::in_place | ckpt::verify_first`), every block is checked
///     against its checksum before any object changes, at the cost of reading it twice. Alone it
///     changes nothing: the default already checks every block first.
///   single_threaded: every block is read on the calling thread. Without it, a staged restore of
///     16 MiB of tensors or more into the storage the checkpoint kept from its last restore (not a
///     first restore, which fills new memory) reads and checks its blocks on up to 4 threads (as
///     many as the machine has, at least 8 MiB each), which end before the restore returns; any
///     failure is still thrown on the calling thread, before any object changes, and is the one a
///     read in order would meet first.
/// Flags combine: `ck.restore(p, ckpt::partial | ckpt::in_place);`
///   convert: foreign files only (ckpt/foreign.hpp, `ckpt::convert`): float16, bfloat16, float32 and
///     float64 convert among themselves and integers widen, when the file's dtype is not the object's.
enum class restore_mode : unsigned {
    strict = 0,
    partial = 1,
    verify_first = 2,
    in_place = 4,
    single_threaded = 8,
    convert = 16
};
/// `ck.restore(p, ckpt::strict)`, the default: every tracked object must be in the file.
inline constexpr restore_mode strict = restore_mode::strict;
/// `ck.restore(p, ckpt::partial).missing()`: objects the file lacks are left as they are.
inline constexpr restore_mode partial = restore_mode::partial;
/// `ck.restore(p, ckpt::in_place | ckpt::verify_first)`: in place, but every checksum checked first.
inline constexpr restore_mode verify_first = restore_mode::verify_first;
/// `ck.restore(p, ckpt::in_place)`: tensor blocks read straight into the objects (see restore_mode).
inline constexpr restore_mode in_place = restore_mode::in_place;
/// `ck.restore(p, ckpt::single_threaded)`: no helper threads read blocks (see restore_mode).
inline constexpr restore_mode single_threaded = restore_mode::single_threaded;
/// Combines modes: `ckpt::partial | ckpt::in_place`
constexpr restore_mode operator|(restore_mode a, restore_mode b) noexcept {
    return static_cast<restore_mode>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}

namespace detail {
constexpr bool includes(restore_mode mode, restore_mode flag) noexcept {
    return (static_cast<unsigned>(mode) & static_cast<unsigned>(flag)) != 0;
}
}  // namespace detail

namespace detail {
/// A restore, whatever the checkpoint tracks: `walk(context, plan)` runs the check pass over the
/// tracked objects (and changes nothing), then the staged blocks are read, every problem thrown, and
/// only then the plan applied: the one step that changes the objects.
CKPT_INLINE void run_restore(restore_plan_core& plan, restore_mode mode, void (*walk)(void*, restore_plan_core&),
                             void* context);
}  // namespace detail

class name_map;  // ckpt/foreign.hpp
namespace detail {
class foreign_bridge;  // ckpt/foreign.hpp: reaches a checkpoint's walks for foreign files
}  // namespace detail

/// What a restore did. `ck.restore(p).assert_consumed();`
class restore_status {
public:
    restore_status() = default;
    /// Made by a restore: `auto status = ck.restore(p);`
    restore_status(std::filesystem::path file, ckpt::metadata meta, std::vector<std::string> missing,
                   std::vector<std::string> unused);

    /// The file restored from: `ck.restore(p).file()`
    const std::filesystem::path& file() const noexcept { return file_; }
    /// The file's metadata (step, metrics, save counter): `ck.restore(p).metadata().step`
    const ckpt::metadata& metadata() const noexcept { return metadata_; }
    /// Tracked paths the file did not have (only a partial restore gets this far with any).
    const std::vector<std::string>& missing() const noexcept { return missing_; }
    /// Entries of the file that no tracked object took.
    const std::vector<std::string>& unused() const noexcept { return unused_; }

    /// Throws mismatch_error unless every entry of the file was restored and every tracked object found.
    const restore_status& assert_consumed() const;
    /// Throws mismatch_error unless every tracked object was found in the file (extra entries are fine).
    const restore_status& assert_existing_objects_matched() const;

private:
    static std::string list(const std::vector<std::string>& paths);

    std::filesystem::path file_;
    ckpt::metadata metadata_;
    std::vector<std::string> missing_, unused_;
};

/// A name bound to an object the checkpoint saves and restores. Made by ckpt::track.
template <class T>
struct tracked {
    /// The track name: the first part of the object's entry paths.
    std::string name;
    /// The tracked object; never null.
    T* object;
};

/// `ckpt::track("model", model)`: the object's entries are named "model/...".
template <class T>
tracked<std::remove_const_t<T>> track(std::string name, T& object) {
    static_assert(!std::is_const_v<T>,
                  "ckpt: a checkpoint needs a mutable object: it restores into what it tracks. "
                  "Track a non-const object (or a copy); to only read a file use ckpt::reader");
    detail::require_checkpointable<T>();
    if constexpr (std::is_const_v<T>)
        return {std::move(name), nullptr};  // unreachable: the assertion failed
    else
        return {std::move(name), &object};
}

namespace detail {
/// Track names must be valid entry paths, unique, and none a prefix of another.
CKPT_INLINE void check_track_names(const std::vector<std::string>& names);

/// Where a tracked object lies in memory: the bytes of the object itself (what a vector's elements
/// or a matrix's coefficients are allocated separately from).
struct tracked_extent {
    std::string name;
    std::uintptr_t begin;
    std::size_t size;
};
template <class Tracked>
tracked_extent extent_of(const Tracked& t) {
    return {t.name, reinterpret_cast<std::uintptr_t>(t.object), sizeof(*t.object)};
}

/// Warns (warning_kind::overlapping_objects) for each pair of tracked objects whose bytes overlap:
/// one object tracked twice, or an object and one of its members. Both are saved, each under its
/// name, and a restore writes the shared memory twice, so this is rarely meant, but it is not
/// wrong (a member tracked again to read it alone), hence a warning rather than an error.
CKPT_INLINE void warn_overlapping_objects(const std::vector<tracked_extent>& objects);
}  // namespace detail

/// What a checkpoint_manager (or other code that should not know the tracked types) needs.
/// Every save first waits for an asynchronous save still in flight and rethrows its error.
/// Saves, restores and waits on one checkpoint object may come from several threads: they take
/// turns (the tracked objects themselves must not change while a save copies them).
class any_checkpoint {
public:
    any_checkpoint() = default;
    any_checkpoint(const any_checkpoint&) = delete;
    any_checkpoint& operator=(const any_checkpoint&) = delete;
    virtual ~any_checkpoint() = default;

    /// Writes the tracked state to exactly `file` (atomically), leaving the save counter as it is.
    /// `ck.write("export/final");`
    std::filesystem::path write(const std::filesystem::path& file, const save_options& options = {});
    /// Counts one more save and writes it to exactly `file`: what a manager uses for its own names.
    /// `ck.save_as("run/best");`
    std::filesystem::path save_as(const std::filesystem::path& file, const save_options& options = {});
    /// Counts one more save and writes it to `<prefix>-<n>`, n the new save counter (moved past any
    /// file that already has that name, so an earlier run's checkpoint is never overwritten).
    /// Temporary files of `<prefix>-<n>` that a crashed save left are removed.
    /// `auto p = ck.save("run/ckpt");  // run/ckpt-1`
    std::filesystem::path save(const std::filesystem::path& prefix, const save_options& options = {});

    /// As save(), but returns once the state is copied; the file is written in the background.
    /// `ck.save_async("run/ckpt"); train_more(); ck.wait();`
    std::filesystem::path save_async(const std::filesystem::path& prefix, const save_options& options = {});
    /// As write(), in the background. `ck.write_async("export/final"); ck.wait();`
    std::filesystem::path write_async(const std::filesystem::path& file, const save_options& options = {});
    /// As save_as(), in the background; `then(file)` runs on the background thread once the file is
    /// durable (a manager records and rotates there). An exception from it surfaces like a write error.
    /// `ck.save_as_async("run/best", {}, [](const auto& p) { log(p); });`
    std::filesystem::path save_as_async(const std::filesystem::path& file, const save_options& options = {},
                                        std::function<void(const std::filesystem::path&)> then = {}) {
        std::lock_guard lock(mutex_);
        wait_for_worker();
        start_async(file, options, save_counter_ + 1, std::move(then));
        ++save_counter_;
        return file;
    }
    /// Blocks until the asynchronous save in flight (if any) is durable; rethrows its error.
    /// `ck.wait();`
    void wait();
    /// True while an asynchronous save is being written (or, over MPI without MPI_THREAD_MULTIPLE,
    /// waits for its commit at the next save or wait()). `if (!ck.save_in_progress()) ...`
    bool save_in_progress() const { return worker_.busy() || commit_pending_; }

    /// Restores every tracked object from `file`; see restore_mode. Checks everything before it
    /// changes anything: any error (mismatch_error, corrupt_error, ...) leaves every object as it was.
    restore_status restore(const std::filesystem::path& file, restore_mode mode = restore_mode::strict);

    /// Restores from a safetensors file, an HF-sharded safetensors model, an npz or an npy file, the
    /// foreign names given by `names`. Needs `#include <ckpt/foreign.hpp>` (target ckpt::foreign).
    /// `ck.restore("model.safetensors", ckpt::strict, ckpt::name_map{});`
    template <class NameMap>
    restore_status restore(const std::filesystem::path& file, restore_mode mode, const NameMap& names) {
        return restore_foreign(*this, file, mode, names);  // found by ADL in ckpt/foreign.hpp
    }
    /// Writes the tracked tensors to a foreign file (`ckpt::as_safetensors`), named by `names`. Needs
    /// `#include <ckpt/foreign.hpp>`. `ck.write("model.safetensors", ckpt::as_safetensors, ckpt::name_map{});`
    template <class Format, class NameMap>
    std::filesystem::path write(const std::filesystem::path& file, Format format, const NameMap& names) {
        return write_foreign(*this, file, format, names);  // found by ADL in ckpt/foreign.hpp
    }

    /// Saves so far, including those of the run a restore came from.
    std::uint64_t save_counter() const noexcept { return save_counter_; }

    /// The processes that save this checkpoint together (ckpt/coordination.hpp), or null for a
    /// checkpoint of one process. `if (auto* c = ck.coordination()) leader = c->rank() == 0;`
    virtual coordinator* coordination() noexcept { return nullptr; }

protected:
    /// Implemented by checkpoint<Ts...>: writes the tracked objects to `file`.
    virtual void do_write(const std::filesystem::path& file, const save_options& options, std::uint64_t counter) = 0;
    /// Implemented by checkpoint<Ts...>: copies the tracked state for an asynchronous save.
    virtual void do_snapshot(detail::snapshot& into) = 0;
    /// Implemented by checkpoint<Ts...>: restores the tracked objects from `file`.
    virtual restore_status do_restore(const std::filesystem::path& file, restore_mode mode) = 0;
    /// For foreign files (ckpt/foreign.hpp): the save walk of every tracked object into `sink`.
    /// Checkpoints that do not override it (ckpt::mpi::checkpoint) refuse foreign files.
    virtual void do_save_walk(detail::block_sink& sink);
    /// For foreign files: a restore from any `source`; refused as do_save_walk is.
    virtual restore_status do_restore_source(detail::restore_source& source, const std::filesystem::path& file,
                                             restore_mode mode);
    friend class detail::foreign_bridge;

    /// The halves of an asynchronous save. `write` runs on the background thread. `commit`, when
    /// set, runs on the caller's thread at the next save, wait(), restore or settle_async(), after
    /// `write` ended whatever its outcome (ckpt::mpi::checkpoint commits there when MPI forbids its
    /// background thread MPI calls); the save is done, and `then` runs, after the last half.
    /// `collective`: the halves must run on every process, so when the background thread cannot
    /// start, `write` runs on the caller's thread instead of the save failing here alone.
    struct async_save {
        std::function<void()> write;   ///< on the background thread
        std::function<void()> commit;  ///< on the caller's thread, later; may be empty
        bool collective = false;       ///< every process must run both halves
    };
    /// Takes on the caller's thread what an asynchronous save needs; by default a snapshot
    /// (do_snapshot) that `write` writes as one file. `return {[this] { ... }, {}};`
    virtual async_save do_start_async(const std::filesystem::path& file, const save_options& options,
                                      std::uint64_t counter, std::chrono::system_clock::time_point when);
    /// For the destructor of a derived checkpoint whose asynchronous saves use its own members: ends
    /// the save in flight, its commit too when `commit` (else the commit is dropped: returns true
    /// when one was). Destructors do not throw: an error goes to the warning handler.
    /// `~my_checkpoint() { settle_async(true); }`
    bool settle_async(bool commit) noexcept;
    /// Saves so far; see save_counter().
    std::atomic<std::uint64_t> save_counter_{0};
    /// Set while save() writes: do_write must not replace a file of the same name (it throws
    /// io_error with code EEXIST, and save() takes the next number).
    bool publish_new_only_ = false;

private:
    // A failed asynchronous save did not happen: its number is given out again. One whose file was
    // written (a manager could not record it) did happen, and keeps its number.
    void wait_for_worker();
    static std::filesystem::path numbered(const std::filesystem::path& prefix, std::uint64_t n);
    std::uint64_t next_number(const std::filesystem::path& prefix) const {
        return next_number_after(prefix, save_counter_);
    }
    static std::uint64_t next_number_after(const std::filesystem::path& prefix, std::uint64_t taken);
    // Without a manager nothing else cleans up after a crashed save: the temporaries of our own
    // names that no live writer holds (see remove_stale_temporaries) go before the next save.
    static void remove_stale_temporaries_of(const std::filesystem::path& file);
    static void remove_stale_temporaries_of_prefix(const std::filesystem::path& prefix);
    void start_async(const std::filesystem::path& file, const save_options& options, std::uint64_t counter,
                     std::function<void(const std::filesystem::path&)> then);

    std::mutex mutex_;  // one save, restore or wait at a time
    std::uint64_t counter_before_async_ = 0;
    std::atomic<bool> async_written_{false};
    std::function<void()> commit_;  // the caller's-thread half of the save in flight (see async_save)
    std::atomic<bool> commit_pending_{false};
    detail::snapshot snapshot_;
    detail::background_worker worker_;  // last: destroyed (and joined) before the snapshot it writes
};

/// The tracked objects of a training state. Holds references: the objects must outlive it.
template <class... Ts>
class checkpoint : public any_checkpoint {
public:
    /// Tracks the given objects: `ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("step", step)};` Throws
    /// ckpt::error for invalid or overlapping names.
    explicit checkpoint(tracked<Ts>... objects) : objects_(std::move(objects)...) {
        detail::check_track_names(
            std::apply([](const auto&... t) { return std::vector<std::string>{t.name...}; }, objects_));
        detail::warn_overlapping_objects(std::apply(
            [](const auto&... t) { return std::vector<detail::tracked_extent>{detail::extent_of(t)...}; }, objects_));
    }

private:
    void do_write(const std::filesystem::path& file, const save_options& options, std::uint64_t counter) override {
        spares_.clear();  // a run that saves is training, not restoring again: give the memory back
        detail::file_writer writer(file);
        std::apply(
            [&](auto&... t) { (detail::save_walker<detail::file_writer>(writer, t.name).visit(*t.object), ...); },
            objects_);
        writer.finish(options, counter, std::chrono::system_clock::now(), !publish_new_only_);
    }

    void do_snapshot(detail::snapshot& into) override {
        spares_.clear();
        std::apply([&](auto&... t) { (detail::save_walker<detail::snapshot>(into, t.name).visit(*t.object), ...); },
                   objects_);
    }

    restore_status do_restore(const std::filesystem::path& file, restore_mode mode) override {
        // A sharded checkpoint (ckpt/mpi.hpp) restores in one process too: replicated entries, shards
        // as whole tensors, and per-rank entries when one rank saved it.
        if (detail::is_sharded_checkpoint(file)) {
            detail::sharded_reader reader(file);
            if (reader.world_size() == 1) reader.view_rank(0);
            detail::restore_source_of<detail::sharded_reader> source(reader);
            return restore_from(source, reader.metadata(), file, mode);
        }
        detail::file_reader reader(file);
        detail::restore_source_of<detail::file_reader> source(reader);
        return restore_from(source, reader.metadata(), file, mode);
    }

    void do_save_walk(detail::block_sink& sink) override {
        std::apply([&](auto&... t) { (detail::save_walk(sink, t.name).visit(*t.object), ...); }, objects_);
    }

    restore_status do_restore_source(detail::restore_source& source, const std::filesystem::path& file,
                                     restore_mode mode) override {
        const std::uint64_t counter = save_counter_;  // a foreign file has none: ours stays
        auto status = restore_from(source, ckpt::metadata{}, file, mode);
        save_counter_ = counter;
        return status;
    }

    // Not a template over the source: one restore per tracked state, whatever the file.
    restore_status restore_from(detail::restore_source& source, const ckpt::metadata& meta,
                                const std::filesystem::path& file, restore_mode mode) {
        // Spares from the second restore on: a checkpoint that restores once (a resume, a server loading its
        // model) gives the replaced storage back at once; one that restores again will likely go on
        // (evaluating checkpoints in turn, rolling back) and then keeps it for the next restore.
        detail::restore_plan_core plan(source, detail::includes(mode, restore_mode::partial),
                                       detail::includes(mode, restore_mode::in_place), restored_ ? &spares_ : nullptr);
        detail::run_restore(
            plan, mode, [](void* self, detail::restore_plan_core& p) { static_cast<checkpoint*>(self)->walk(p); },
            this);
        restored_ = true;
        save_counter_ = meta.save_counter;
        return restore_status(file, meta, std::move(plan.missing), plan.unused());
    }

    // The check pass over every tracked object: builds the plan, changes nothing.
    void walk(detail::restore_plan_core& plan) {
        std::apply([&](auto&... t) { (detail::restore_walker(plan, t.name).visit(*t.object), ...); }, objects_);
    }

    std::tuple<tracked<Ts>...> objects_;
    // The tensor storage the last restore swapped out, for the next restore to stage into (see
    // detail/restore_walk.hpp): kept from the second restore on, until the next save, restore or the
    // end of the checkpoint.
    detail::spare_storage spares_;
    bool restored_ = false;
};

/// Deduces the tracked types: `ckpt::checkpoint ck{ckpt::track("w", w), ckpt::track("step", step)};`
template <class... Ts>
checkpoint(tracked<Ts>...) -> checkpoint<Ts...>;

}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt {

namespace detail {
CKPT_INLINE void run_restore(restore_plan_core& plan, restore_mode mode, void (*walk)(void*, restore_plan_core&),
                             void* context) {
    // Large staged blocks are read after the walk, on several threads (read_staged).
    if (plan.source.reads_in_parallel() && !includes(mode, restore_mode::single_threaded))
        plan.read_threads = restore_read_threads();
    try {
        walk(context, plan);
    } catch (...) {
        // The blocks the walk collected come before its failure: a damaged one among them is
        // what a restore reading in order meets first, so its error wins.
        read_staged(plan, true);
        throw;
    }
    read_staged(plan);
    plan.throw_if_problems();
    if (plan.in_place && includes(mode, restore_mode::verify_first)) plan.verify_deferred();
    plan.apply();
}
}  // namespace detail

CKPT_INLINE restore_status::restore_status(std::filesystem::path file, ckpt::metadata meta,
                                           std::vector<std::string> missing, std::vector<std::string> unused)
    : file_(std::move(file)), metadata_(std::move(meta)), missing_(std::move(missing)), unused_(std::move(unused)) {}

CKPT_INLINE const restore_status& restore_status::assert_consumed() const {
    if (!unused_.empty())
        throw mismatch_error(std::to_string(unused_.size()) +
                                 " entries of the checkpoint were not restored into any tracked object" + list(unused_),
                             file_, unused_.front());
    return assert_existing_objects_matched();
}

CKPT_INLINE const restore_status& restore_status::assert_existing_objects_matched() const {
    if (!missing_.empty())
        throw mismatch_error(
            std::to_string(missing_.size()) + " tracked objects were not found in the checkpoint" + list(missing_),
            file_, missing_.front());
    return *this;
}

CKPT_INLINE std::string restore_status::list(const std::vector<std::string>& paths) {
    std::string s = ": ";
    for (std::size_t i = 0; i < paths.size() && i < 10; ++i) s += (i ? ", " : "") + paths[i];
    if (paths.size() > 10) s += ", ...";
    return s;
}

CKPT_INLINE std::filesystem::path any_checkpoint::write(const std::filesystem::path& file,
                                                        const save_options& options) {
    std::lock_guard lock(mutex_);
    wait_for_worker();
    remove_stale_temporaries_of(file);
    do_write(file, options, save_counter_);
    return file;
}

CKPT_INLINE std::filesystem::path any_checkpoint::save_as(const std::filesystem::path& file,
                                                          const save_options& options) {
    std::lock_guard lock(mutex_);
    wait_for_worker();
    do_write(file, options, save_counter_ + 1);
    ++save_counter_;
    return file;
}

CKPT_INLINE std::filesystem::path any_checkpoint::save(const std::filesystem::path& prefix,
                                                       const save_options& options) {
    std::lock_guard lock(mutex_);
    wait_for_worker();
    remove_stale_temporaries_of_prefix(prefix);
    // Another process saving under the same prefix may take the number between our look and
    // our rename: the file is published only under a name still free, else under the next.
    for (std::uint64_t n = next_number(prefix), attempt = 0;; n = next_number_after(prefix, n), ++attempt) {
        const auto file = numbered(prefix, n);
        try {
            publish_new_only_ = true;
            do_write(file, options, n);
            publish_new_only_ = false;
        } catch (const io_error& e) {
            publish_new_only_ = false;
            if (e.code() != std::errc::file_exists || attempt >= 100) throw;
            continue;
        } catch (...) {
            publish_new_only_ = false;
            throw;
        }
        save_counter_ = n;
        return file;
    }
}

CKPT_INLINE std::filesystem::path any_checkpoint::save_async(const std::filesystem::path& prefix,
                                                             const save_options& options) {
    std::lock_guard lock(mutex_);
    wait_for_worker();
    remove_stale_temporaries_of_prefix(prefix);
    const std::uint64_t n = next_number(prefix);
    const auto file = numbered(prefix, n);
    start_async(file, options, n, {});
    save_counter_ = n;
    return file;
}

CKPT_INLINE std::filesystem::path any_checkpoint::write_async(const std::filesystem::path& file,
                                                              const save_options& options) {
    std::lock_guard lock(mutex_);
    wait_for_worker();
    remove_stale_temporaries_of(file);
    start_async(file, options, save_counter_, {});
    return file;
}

CKPT_INLINE void any_checkpoint::wait() {
    std::lock_guard lock(mutex_);
    wait_for_worker();
}

CKPT_INLINE restore_status any_checkpoint::restore(const std::filesystem::path& file, restore_mode mode) {
    std::lock_guard lock(mutex_);
    wait_for_worker();
    return do_restore(file, mode);
}

CKPT_INLINE void any_checkpoint::do_save_walk(detail::block_sink&) {
    throw error("this checkpoint cannot be written to a foreign file (safetensors): only ckpt::checkpoint can");
}

CKPT_INLINE restore_status any_checkpoint::do_restore_source(detail::restore_source&, const std::filesystem::path& file,
                                                             restore_mode) {
    throw error("this checkpoint cannot restore from a foreign file: only ckpt::checkpoint can", file);
}

CKPT_INLINE any_checkpoint::async_save any_checkpoint::do_start_async(const std::filesystem::path& file,
                                                                      const save_options& options,
                                                                      std::uint64_t counter,
                                                                      std::chrono::system_clock::time_point when) {
    snapshot_.clear(file);
    do_snapshot(snapshot_);
    return {[this, file, options, counter, when] { snapshot_.write(file, options, counter, when); }, {}, false};
}

CKPT_INLINE bool any_checkpoint::settle_async(bool commit) noexcept {
    std::lock_guard lock(mutex_);
    bool dropped = false;
    try {
        if (!commit && commit_pending_) {
            try {
                worker_.wait();
            } catch (...) {}
            commit_ = nullptr;
            commit_pending_ = false;
            dropped = true;
        }
        wait_for_worker();
    } catch (const std::exception& e) {
        detail::warn(
            warning_kind::async_save_failed,
            std::string("an asynchronous save failed and no later save or wait() collected the error: ") + e.what());
    } catch (...) {
        detail::warn(warning_kind::async_save_failed, "an asynchronous save failed with an unknown exception");
    }
    return dropped;
}

CKPT_INLINE void any_checkpoint::wait_for_worker() {
    try {
        std::exception_ptr failed;
        try {
            worker_.wait();
        } catch (...) {
            failed = std::current_exception();
        }
        if (commit_pending_) {
            commit_pending_ = false;
            std::exchange(commit_, nullptr)();  // collective: runs whatever the background half did
        }
        if (failed) std::rethrow_exception(failed);
    } catch (...) {
        if (!async_written_) save_counter_ = counter_before_async_;
        throw;
    }
}

CKPT_INLINE std::filesystem::path any_checkpoint::numbered(const std::filesystem::path& prefix, std::uint64_t n) {
    auto file = prefix;
    file += "-" + std::to_string(n);
    return file;
}

CKPT_INLINE std::uint64_t any_checkpoint::next_number_after(const std::filesystem::path& prefix, std::uint64_t taken) {
    std::uint64_t n = taken + 1;
    std::error_code ec;
    while (std::filesystem::exists(numbered(prefix, n), ec)) ++n;
    return n;
}

CKPT_INLINE void any_checkpoint::remove_stale_temporaries_of(const std::filesystem::path& file) {
    const std::string head = file.filename().string() + detail::temp_marker;
    detail::remove_stale_temporaries(file.parent_path(),
                                     [&](const std::string& name) { return name.compare(0, head.size(), head) == 0; });
}

CKPT_INLINE void any_checkpoint::remove_stale_temporaries_of_prefix(const std::filesystem::path& prefix) {
    const std::string head = prefix.filename().string() + "-";
    detail::remove_stale_temporaries(prefix.parent_path(), [&](const std::string& name) {
        const auto marker = name.find(detail::temp_marker);
        return name.compare(0, head.size(), head) == 0 && marker > head.size() &&
               name.find_first_not_of("0123456789", head.size()) == marker;
    });
}

CKPT_INLINE void any_checkpoint::start_async(const std::filesystem::path& file, const save_options& options,
                                             std::uint64_t counter,
                                             std::function<void(const std::filesystem::path&)> then) {
    detail::check_writable_metadata(options, file);
    async_save parts = do_start_async(file, options, counter, std::chrono::system_clock::now());
    async_written_ = false;
    auto done = [this, file, then = std::move(then)] {
        async_written_ = true;
        if (then) then(file);
    };
    std::function<void()> job = std::move(parts.write);
    if (parts.commit)
        commit_ = [commit = std::move(parts.commit), done] {
            commit();
            done();
        };
    else
        job = [write = std::move(job), done] {
            write();
            done();
        };
    counter_before_async_ = save_counter_;
    commit_pending_ = static_cast<bool>(commit_);
    try {
        worker_.submit(job, file);  // a copy: `job` runs here if the thread cannot start
    } catch (...) {
        if (!parts.collective) {
            commit_ = nullptr;
            commit_pending_ = false;
            throw;
        }
        job();  // the other processes go on with theirs: this one must take part too
    }
}

}  // namespace ckpt
namespace ckpt::detail {

CKPT_INLINE void check_track_names(const std::vector<std::string>& names) {
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (!is_valid_entry_path(names[i]))
            throw error("invalid track name '" + names[i] +
                        "': use '/'-separated names with no empty, '.' or '..' parts");
        for (std::size_t j = 0; j < i; ++j) {
            const auto& a = names[i].size() < names[j].size() ? names[i] : names[j];
            const auto& b = names[i].size() < names[j].size() ? names[j] : names[i];
            if (a == b || (b.compare(0, a.size(), a) == 0 && b[a.size()] == '/'))
                throw error("track names '" + names[j] + "' and '" + names[i] +
                            "' overlap: each name must be unique and not a prefix of another");
        }
    }
}

CKPT_INLINE void warn_overlapping_objects(const std::vector<tracked_extent>& objects) {
    for (std::size_t i = 0; i < objects.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
            const auto& a = objects[j];
            const auto& b = objects[i];
            if (a.begin >= b.begin + b.size || b.begin >= a.begin + a.size) continue;
            const std::string how = a.begin == b.begin && a.size == b.size ? "are the same object"
                                    : a.size >= b.size ? "overlap ('" + b.name + "' is a part of '" + a.name + "')"
                                                       : "overlap ('" + a.name + "' is a part of '" + b.name + "')";
            warn(warning_kind::overlapping_objects,
                 "tracked objects '" + a.name + "' and '" + b.name + "' " + how +
                     ": the checkpoint saves those bytes under both names and a restore writes them twice; "
                     "track each object once");
        }
    }
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
