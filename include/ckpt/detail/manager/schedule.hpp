#pragma once
// When a checkpoint_manager saves: its save intervals (save_every_n_steps, save_every of
// policy.hpp) and the clocks save_every measures with.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint_record.hpp>
#include <ckpt/coordination.hpp>
#include <ckpt/policy.hpp>

namespace ckpt::detail {

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

/// save_if_due's decision on several processes, in one combine: bit 63 the leader's "this step
/// is saved already" (`saved`), bit 62 the leader's "due by the intervals" (`due`), bit 61 any
/// rank's `force`, and one bit per signal any rank's guard received (signals 1 to 56; bit 56 for
/// any above, which a second combine, only then, tells apart). `saved` and `due` are false on the
/// other ranks. Returns whether to save and the lowest signal.
CKPT_INLINE std::pair<bool, int> agree_due(coordinator& coord, bool saved, bool due, bool force, int signal);

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

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

CKPT_INLINE std::pair<bool, int> agree_due(coordinator& coord, bool saved, bool due, bool force, int signal) {
    constexpr std::uint64_t saved_bit = 1ull << 63, due_bit = 1ull << 62, force_bit = 1ull << 61, high_bit = 1ull << 56;
    constexpr int low_signals = 56;
    std::uint64_t mine = force ? force_bit : 0;
    if (signal > 0) mine |= signal <= low_signals ? 1ull << (signal - 1) : high_bit;
    if (saved) mine |= saved_bit;
    if (due) mine |= due_bit;
    const std::uint64_t all = coord.combine(mine);
    int agreed = 0;
    for (int s = 1; s <= low_signals && !agreed; ++s)
        if (all & (1ull << (s - 1))) agreed = s;
    if (!agreed && (all & high_bit)) {
        const std::uint64_t high = coord.combine(signal > low_signals ? 1ull << (signal - low_signals - 1) : 0);
        for (int b = 0; b < 64 && !agreed; ++b)
            if (high & (1ull << b)) agreed = low_signals + 1 + b;
    }
    const bool agreed_due = !(all & saved_bit) && ((all & (due_bit | force_bit)) || agreed != 0);
    return {agreed_due, agreed};
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
