#pragma once
// ckpt::checkpoint: named references to the objects that make up a training state, saved to and
// restored from one checkpoint file.
//
//   ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("optimizer", opt), ckpt::track("step", step)};
//   auto path = ck.save("run/ckpt");        // run/ckpt-1, run/ckpt-2, ...
//   ck.restore(path).assert_consumed();

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <ckpt/any_checkpoint.hpp>
#include <ckpt/detail/checkpoint/file_source.hpp>
#include <ckpt/detail/checkpoint/run_restore.hpp>
#include <ckpt/detail/checkpoint/track_names.hpp>
#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/writer.hpp>
#include <ckpt/detail/restore/staged_reads.hpp>
#include <ckpt/detail/restore/walker.hpp>
#include <ckpt/detail/save/save_walk.hpp>
#include <ckpt/metadata.hpp>
#include <ckpt/restore_mode.hpp>
#include <ckpt/restore_status.hpp>

namespace ckpt {

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
        return detail::restore_from_file(file, [&](detail::restore_source& source, const ckpt::metadata& meta) {
            return restore_from(source, meta, file, mode);
        });
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
    // detail/restore/spare_storage.hpp): kept from the second restore on, until the next save, restore or the
    // end of the checkpoint.
    detail::spare_storage spares_;
    bool restored_ = false;
};

/// Deduces the tracked types: `ckpt::checkpoint ck{ckpt::track("w", w), ckpt::track("step", step)};`
template <class... Ts>
checkpoint(tracked<Ts>...) -> checkpoint<Ts...>;

}  // namespace ckpt
