#pragma once
// What a checkpoint_manager keeps and when it saves. Retention policies compose: a checkpoint
// survives when any of them keeps it (and the latest always survives). Given none, a manager keeps
// everything: it never deletes unless told to.
//
// Each retention policy is one self-contained type that decides what it keeps, in the style of
// Orbax's preservation policies: a member `void mark_kept(const std::vector<checkpoint_record>& rs,
// std::vector<bool>& keep) const` sets keep[i] for the records (oldest first) it keeps and never
// clears one. Adding a policy is adding such a type here (detail/retention.hpp combines them).
//
//   ckpt::checkpoint_manager mgr{ck, "run", ckpt::keep_last(3), ckpt::keep_best(2, "val_loss", ckpt::minimize),
//                                ckpt::save_every_n_steps(100)};

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint_record.hpp>
#include <ckpt/error.hpp>

namespace ckpt {

/// Whether lower or higher values of a metric are better: `ckpt::keep_best(2, "val_loss", ckpt::minimize)`
enum class direction { minimize, maximize };
/// Lower is better (a loss).
inline constexpr direction minimize = direction::minimize;
/// Higher is better (an accuracy).
inline constexpr direction maximize = direction::maximize;

/// What keep_best does with checkpoints saved without its metric.
enum class if_metric_missing { drop, keep };

/// The n most recent checkpoints (TensorFlow's max_to_keep): `ckpt::keep_last(3)`
struct keep_last {
    /// `ckpt::keep_last(3)`
    explicit keep_last(std::size_t count) : n(count) {}
    /// How many (or every how many steps).
    std::size_t n;
    /// Keeps the n newest: `p.mark_kept(records, keep)`
    void mark_kept(const std::vector<checkpoint_record>& rs, std::vector<bool>& keep) const;
};

/// Every checkpoint: `ckpt::keep_all()`
struct keep_all {
    /// Keeps them all: `p.mark_kept(records, keep)`
    void mark_kept(const std::vector<checkpoint_record>&, std::vector<bool>& keep) const {
        keep.assign(keep.size(), true);
    }
};

/// One checkpoint per interval of wall time, kept for good (keep_checkpoint_every_n_hours):
/// `ckpt::keep_every(std::chrono::hours(2))`
struct keep_every {
    template <class Rep, class Period>
    /// `ckpt::keep_every(std::chrono::hours(2))`
    explicit keep_every(std::chrono::duration<Rep, Period> d)
        : interval(std::chrono::duration_cast<std::chrono::nanoseconds>(d)) {}
    /// The interval, in nanoseconds.
    std::chrono::nanoseconds interval;
    /// Keeps the checkpoints preserved when they were saved: `p.mark_kept(records, keep)`
    void mark_kept(const std::vector<checkpoint_record>& rs, std::vector<bool>& keep) const;
    /// Called as `r` is recorded: preserves it for good when an interval passed since the last
    /// preserved one (`anchor_ns`, kept in the state file; the first save starts the clock).
    void on_saved(checkpoint_record& r, std::optional<std::int64_t>& anchor_ns) const;
};

/// Checkpoints whose step is a multiple of k: `ckpt::keep_every_n_steps(1000)`
struct keep_every_n_steps {
    /// `ckpt::keep_every_n_steps(1000)`
    explicit keep_every_n_steps(std::int64_t every) : k(every) {}
    /// How many (or every how many steps).
    std::int64_t k;
    /// Refuses a step count that is not positive (when the manager is built).
    void check() const {
        if (k <= 0) throw error("keep_every_n_steps needs a positive step count");
    }
    /// Keeps those whose step is a multiple of k: `p.mark_kept(records, keep)`
    void mark_kept(const std::vector<checkpoint_record>& rs, std::vector<bool>& keep) const;
};

/// The k best by a metric given at save time: `ckpt::keep_best(2, "val_loss", ckpt::minimize)`
struct keep_best {
    /// `ckpt::keep_best(2, "val_loss", ckpt::minimize)`; `rule` says what to do with checkpoints saved without the
    /// metric.
    keep_best(std::size_t count, std::string metric_name, direction d, if_metric_missing rule = if_metric_missing::drop)
        : k(count), metric(std::move(metric_name)), better(d), missing(rule) {}
    /// How many (or every how many steps).
    std::size_t k;
    /// The metric's name, as given in save_options::metrics.
    std::string metric;
    /// Whether lower (minimize) or higher (maximize) is better.
    direction better;
    /// What to do with checkpoints saved without the metric.
    if_metric_missing missing;
    /// Keeps the k best (among equals the newer one), and those without the metric when `missing`
    /// says keep: `p.mark_kept(records, keep)`
    void mark_kept(const std::vector<checkpoint_record>& rs, std::vector<bool>& keep) const;
};

/// save_if_due saves when at least n steps passed since the last save: `ckpt::save_every_n_steps(100)`
struct save_every_n_steps {
    /// `ckpt::save_every_n_steps(100)`
    explicit save_every_n_steps(std::int64_t every) : n(every) {}
    /// How many (or every how many steps).
    std::int64_t n;
    /// Refuses a step count that is not positive (when the manager is built).
    void check() const {
        if (n <= 0) throw error("save_every_n_steps needs a positive step count");
    }
};

/// save_if_due saves when at least this much time passed since the latest checkpoint:
/// `ckpt::save_every(std::chrono::minutes(30))`. Time since a save of this process is measured on a
/// monotonic clock (a clock correction does not stop or hurry the saves); since a checkpoint of an
/// earlier run it is the wall time since that save, but never less than the time since this
/// manager was opened, so a run whose clock was ahead (a resume on a skewed node) still saves.
struct save_every {
    template <class Rep, class Period>
    /// `ckpt::save_every(std::chrono::minutes(30))`
    explicit save_every(std::chrono::duration<Rep, Period> d)
        : interval(std::chrono::duration_cast<std::chrono::nanoseconds>(d)) {}
    /// The interval, in nanoseconds.
    std::chrono::nanoseconds interval;
};

/// File names `<prefix>-<n>` (default "ckpt"): `ckpt::prefix("model")`
struct prefix {
    /// `ckpt::prefix("model")`
    explicit prefix(std::string p) : value(std::move(p)) {}
    /// The text as given.
    std::string value;
};

/// File names from a template in the style of Keras and Lightning, filled from the step (as
/// {step} or {epoch}) and the metrics: `ckpt::name_template("epoch_{epoch:03d}-val_loss_{val_loss:.3f}")`
struct name_template {
    /// `ckpt::name_template("epoch_{epoch:03d}")`
    explicit name_template(std::string t) : value(std::move(t)) {}
    /// The text as given.
    std::string value;
};

/// save_if_due writes, records and rotates in the background:
/// `ckpt::checkpoint_manager mgr{ck, "run", ckpt::asynchronous};`
struct asynchronous_t {};
/// The option value: `ckpt::checkpoint_manager mgr{ck, "run", ckpt::asynchronous};`
inline constexpr asynchronous_t asynchronous{};

/// Applies the retention policies before each save, as if the new checkpoint were already saved,
/// so that a disk with room for exactly the checkpoints the policies keep does not fill up:
/// `ckpt::checkpoint_manager mgr{ck, "run", ckpt::keep_last(2), ckpt::rotate_before_save};`
/// The risk is yours: from the deletion until the new checkpoint is complete, the directory keeps
/// one checkpoint fewer than the policies say, and if that save fails (a crash, a full disk
/// still) it stays so; with `keep_last(1)` that leaves no checkpoint at all in between. Without
/// this option a manager deletes only after a save succeeded.
struct rotate_before_save_t {};
/// The option value: `ckpt::checkpoint_manager mgr{ck, "run", ckpt::keep_last(2), ckpt::rotate_before_save};`
inline constexpr rotate_before_save_t rotate_before_save{};

}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt {

CKPT_INLINE void keep_last::mark_kept(const std::vector<checkpoint_record>& rs, std::vector<bool>& keep) const {
    for (std::size_t i = 0; i < rs.size(); ++i)
        if (i + n >= rs.size()) keep[i] = true;
}

CKPT_INLINE void keep_every::mark_kept(const std::vector<checkpoint_record>& rs, std::vector<bool>& keep) const {
    for (std::size_t i = 0; i < rs.size(); ++i)
        if (rs[i].preserved) keep[i] = true;
}

CKPT_INLINE void keep_every::on_saved(checkpoint_record& r, std::optional<std::int64_t>& anchor_ns) const {
    using std::chrono::nanoseconds;
    const std::int64_t t = std::chrono::duration_cast<nanoseconds>(r.wall_time.time_since_epoch()).count();
    if (!anchor_ns) {
        anchor_ns = t;
    } else if (t - *anchor_ns >= interval.count()) {
        r.preserved = true;
        anchor_ns = t;
    }
}

CKPT_INLINE void keep_every_n_steps::mark_kept(const std::vector<checkpoint_record>& rs,
                                               std::vector<bool>& keep) const {
    for (std::size_t i = 0; i < rs.size(); ++i)
        if (rs[i].step && *rs[i].step % k == 0) keep[i] = true;
}

CKPT_INLINE void keep_best::mark_kept(const std::vector<checkpoint_record>& rs, std::vector<bool>& keep) const {
    std::vector<std::size_t> with;
    for (std::size_t i = 0; i < rs.size(); ++i) {
        const auto m = rs[i].metrics.find(metric);
        if (m != rs[i].metrics.end() && m->second == m->second)
            with.push_back(i);  // present, not NaN
        else if (missing == if_metric_missing::keep)
            keep[i] = true;
    }
    std::stable_sort(with.begin(), with.end(), [&](std::size_t a, std::size_t b) {
        const double x = rs[a].metrics.at(metric), y = rs[b].metrics.at(metric);
        if (x != y) return better == direction::minimize ? x < y : x > y;
        return a > b;
    });
    for (std::size_t j = 0; j < with.size() && j < k; ++j) keep[with[j]] = true;
}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
