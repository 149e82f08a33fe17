#pragma once
// How a checkpoint_manager rotates. Its retention policies (policy.hpp) combine: a checkpoint is
// kept when any policy keeps it; the latest always, and one keep_every preserved always (perhaps
// under an earlier manager of the directory). With no policy, everything is kept.

#include <cstdint>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint_record.hpp>

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

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
