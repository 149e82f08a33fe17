#pragma once
// How a checkpoint_manager rotates. Its retention policies (policy.hpp) combine: a checkpoint is
// kept when any policy keeps it; the latest always, and one keep_every preserved always (perhaps
// under an earlier manager of the directory). With no policy, everything is kept. And how what
// they drop is deleted.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint_record.hpp>
#include <ckpt/detail/io/durable_directories.hpp>
#include <ckpt/detail/io/temp_names.hpp>
#include <ckpt/warning.hpp>

#include <unistd.h>

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

    /// Which records (oldest first) are kept once `next` is recorded (it replaces one of its
    /// name, which counts as kept here), for ckpt::rotate_before_save. `anchor_ns` is the state's
    /// keep_every anchor, taken by copy: keep_every's own decision comes at the record.
    std::vector<bool> kept_before(const std::vector<checkpoint_record>& rs, const checkpoint_record& next,
                                  std::optional<std::int64_t> anchor_ns) const;

private:
    std::vector<std::function<void(const std::vector<checkpoint_record>&, std::vector<bool>&)>> mark_;
    std::vector<std::function<void(checkpoint_record&, std::optional<std::int64_t>&)>> on_saved_;
};

/// A checkpoint file, or a sharded checkpoint's directory. The directory is first renamed to a
/// temporary name, so that a crash in the middle leaves no half-deleted checkpoint under its own
/// name: the leftover is a stale temporary directory, which the next manager to open removes.
CKPT_INLINE void remove_checkpoint(const std::filesystem::path& path, std::error_code& ec);

/// Deletes the checkpoints `names` of `dir`; returns those that could not be (each reported as a
/// ckpt::warning), still the manager's to delete at the next open.
CKPT_INLINE std::vector<std::string> remove_checkpoints(const std::filesystem::path& dir,
                                                        const std::vector<std::string>& names);

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

CKPT_INLINE std::vector<bool> retention_set::kept_before(const std::vector<checkpoint_record>& rs,
                                                         const checkpoint_record& next,
                                                         std::optional<std::int64_t> anchor_ns) const {
    std::vector<checkpoint_record> after;
    for (const auto& x : rs)
        if (x.name != next.name) after.push_back(x);
    checkpoint_record n = next;
    on_saved(n, anchor_ns);
    after.push_back(std::move(n));
    const auto kept_after = kept(after);
    std::vector<bool> keep;
    std::size_t j = 0;
    for (const auto& x : rs) keep.push_back(x.name == next.name || kept_after[j++]);
    return keep;
}

CKPT_INLINE void remove_checkpoint(const std::filesystem::path& path, std::error_code& ec) {
    ec.clear();
    if (!std::filesystem::is_directory(std::filesystem::symlink_status(path, ec))) {
        ec.clear();
        std::filesystem::remove(path, ec);
        return;
    }
    static std::atomic<unsigned> counter{0};
    auto doomed = path;
    doomed += std::string(temp_marker) + "deleting." + std::to_string(::getpid()) + "." + process_token() + "." +
              std::to_string(counter++);
    std::filesystem::rename(path, doomed, ec);
    if (ec) return;
    fsync_directory(path.parent_path());
    std::filesystem::remove_all(doomed, ec);
}

CKPT_INLINE std::vector<std::string> remove_checkpoints(const std::filesystem::path& dir,
                                                        const std::vector<std::string>& names) {
    std::vector<std::string> remaining;
    for (const auto& name : names) {
        std::error_code ec;
        remove_checkpoint(dir / name, ec);
        if (ec) {
            remaining.push_back(name);  // still ours: the next open tries again
            warn(warning_kind::cannot_delete, "cannot delete " + (dir / name).string() + ": " + ec.message());
        }
    }
    return remaining;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
