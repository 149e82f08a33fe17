#pragma once
// What a checkpoint_manager keeps and when it saves. Retention policies compose: a checkpoint
// survives when any of them keeps it (and the latest always survives). Given none, a manager keeps
// everything: it never deletes unless told to.
//
//   ckpt::checkpoint_manager mgr{ck, "run", ckpt::keep_last(3), ckpt::keep_best(2, "val_loss", ckpt::minimize),
//                                ckpt::save_every_n_steps(100)};

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

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
};

/// Every checkpoint: `ckpt::keep_all()`
struct keep_all {};

/// One checkpoint per interval of wall time, kept for good (keep_checkpoint_every_n_hours):
/// `ckpt::keep_every(std::chrono::hours(2))`
struct keep_every {
    template <class Rep, class Period>
    /// `ckpt::keep_every(std::chrono::hours(2))`
    explicit keep_every(std::chrono::duration<Rep, Period> d) : interval(std::chrono::duration_cast<std::chrono::nanoseconds>(d)) {}
    /// The interval, in nanoseconds.
    std::chrono::nanoseconds interval;
};

/// Checkpoints whose step is a multiple of k: `ckpt::keep_every_n_steps(1000)`
struct keep_every_n_steps {
    /// `ckpt::keep_every_n_steps(1000)`
    explicit keep_every_n_steps(std::int64_t every) : k(every) {}
    /// How many (or every how many steps).
    std::int64_t k;
};

/// The k best by a metric given at save time: `ckpt::keep_best(2, "val_loss", ckpt::minimize)`
struct keep_best {
    /// `ckpt::keep_best(2, "val_loss", ckpt::minimize)`; `rule` says what to do with checkpoints saved without the metric.
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
};

/// save_if_due saves when at least n steps passed since the last save: `ckpt::save_every_n_steps(100)`
struct save_every_n_steps {
    /// `ckpt::save_every_n_steps(100)`
    explicit save_every_n_steps(std::int64_t every) : n(every) {}
    /// How many (or every how many steps).
    std::int64_t n;
};

/// save_if_due saves when at least this much wall time passed: `ckpt::save_every(std::chrono::minutes(30))`
struct save_every {
    template <class Rep, class Period>
    /// `ckpt::save_every(std::chrono::minutes(30))`
    explicit save_every(std::chrono::duration<Rep, Period> d) : interval(std::chrono::duration_cast<std::chrono::nanoseconds>(d)) {}
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

}  // namespace ckpt
