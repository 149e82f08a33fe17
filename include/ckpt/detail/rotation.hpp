#pragma once
// How a checkpoint_manager rotates and when it saves. Its retention policies (policy.hpp) combine:
// a checkpoint is kept when any policy keeps it; the latest always, and one keep_every preserved
// always (perhaps under an earlier manager of the directory). With no policy, everything is kept.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint_record.hpp>
#include <ckpt/policy.hpp>

namespace ckpt::detail {

template <class P, class = void>
struct is_retention_policy : std::false_type {};
template <class P>
struct is_retention_policy<
    P, std::void_t<decltype(std::declval<const P&>().mark_kept(std::declval<const std::vector<checkpoint_record>&>(),
                                                               std::declval<std::vector<bool>&>()))>> : std::true_type {
};

template <class P, class = void>
struct has_check : std::false_type {};
template <class P>
struct has_check<P, std::void_t<decltype(std::declval<const P&>().check())>> : std::true_type {};

template <class P, class = void>
struct has_on_saved : std::false_type {};
template <class P>
struct has_on_saved<P, std::void_t<decltype(std::declval<const P&>().on_saved(
                           std::declval<checkpoint_record&>(), std::declval<std::optional<std::int64_t>&>()))>>
    : std::true_type {};

/// The retention policies a manager was given, combined.
class retention_set {
public:
    template <class Policy>
    void add(Policy p) {
        if constexpr (has_check<Policy>::value) p.check();
        if constexpr (has_on_saved<Policy>::value)
            on_saved_.push_back(
                [p](checkpoint_record& r, std::optional<std::int64_t>& anchor) { p.on_saved(r, anchor); });
        mark_.push_back([p = std::move(p)](const std::vector<checkpoint_record>& rs, std::vector<bool>& keep) {
            p.mark_kept(rs, keep);
        });
    }

    /// Lets the policies note a checkpoint as it is recorded (keep_every preserves some).
    void on_saved(checkpoint_record& r, std::optional<std::int64_t>& anchor_ns) const {
        for (const auto& f : on_saved_) f(r, anchor_ns);
    }

    /// Which records (oldest first) are kept.
    std::vector<bool> kept(const std::vector<checkpoint_record>& rs) const;

private:
    std::vector<std::function<void(const std::vector<checkpoint_record>&, std::vector<bool>&)>> mark_;
    std::vector<std::function<void(checkpoint_record&, std::optional<std::int64_t>&)>> on_saved_;
};

/// What save_every measures time with: when the manager was opened, and when this process started
/// the latest checkpoint, if it did (both on the monotonic clock).
struct schedule_clock {
    std::chrono::steady_clock::time_point opened = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> latest_started;
};

/// When save_if_due saves (save_every_n_steps, save_every). Intervals count from the latest
/// checkpoint, or from step 0 and the manager's creation.
struct save_schedule {
    std::optional<std::int64_t> every_steps;
    std::optional<std::chrono::nanoseconds> every_time;

    void set(const save_every_n_steps& p);
    void set(const save_every& p) { every_time = p.interval; }

    bool is_due(std::int64_t step, bool force, const checkpoint_record* last, const schedule_clock& clock) const;
};

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE std::vector<bool> retention_set::kept(const std::vector<checkpoint_record>& rs) const {
    std::vector<bool> keep(rs.size(), mark_.empty());
    for (const auto& mark : mark_) mark(rs, keep);
    for (std::size_t i = 0; i < rs.size(); ++i)
        if (rs[i].preserved) keep[i] = true;
    if (!rs.empty()) keep.back() = true;
    return keep;
}

CKPT_INLINE void save_schedule::set(const save_every_n_steps& p) {
    p.check();
    every_steps = p.n;
}

CKPT_INLINE bool save_schedule::is_due(std::int64_t step, bool force, const checkpoint_record* last,
                                       const schedule_clock& clock) const {
    if (last && last->step && *last->step == step) return false;
    if (force || (!every_steps && !every_time)) return true;
    const std::int64_t last_step = last ? last->step.value_or(INT64_MIN / 2) : 0;
    if (every_steps && step - last_step >= *every_steps) return true;
    if (!every_time) return false;
    // A save of this process: the monotonic clock, immune to clock corrections. A checkpoint of an
    // earlier run: its wall time is all there is, but a clock that was ahead then makes that
    // negative, so the time this manager has been open counts as a lower bound.
    const auto now = std::chrono::steady_clock::now();
    std::chrono::nanoseconds elapsed = now - clock.opened;
    if (last && clock.latest_started)
        elapsed = now - *clock.latest_started;
    else if (last)
        elapsed = std::max<std::chrono::nanoseconds>(elapsed, std::chrono::system_clock::now() - last->wall_time);
    return elapsed >= *every_time;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
