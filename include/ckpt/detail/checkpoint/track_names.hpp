#pragma once
// The checks a checkpoint runs on what it is given to track: the names (valid, unique, none a
// prefix of another) and the objects' memory (a warning for objects that overlap).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/layout.hpp>
#include <ckpt/error.hpp>
#include <ckpt/warning.hpp>

namespace ckpt::detail {

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

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
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
