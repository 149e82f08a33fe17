#pragma once
// The file names of a checkpoint's own saves: `<prefix>-<n>`, the next free number, and the
// temporaries a crashed save left under those names. Without a manager nothing else cleans up
// after a crashed save: the temporaries of our own names that no live writer holds (see
// remove_stale_temporaries) go before the next save.

#include <cstdint>
#include <filesystem>
#include <string>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/io/temp_names.hpp>

namespace ckpt::detail {

/// `<prefix>-<n>`: `numbered("run/ckpt", 3)` is run/ckpt-3.
CKPT_INLINE std::filesystem::path numbered(const std::filesystem::path& prefix, std::uint64_t n);
/// The first number after `taken` under which `prefix` has no file yet.
CKPT_INLINE std::uint64_t next_number_after(const std::filesystem::path& prefix, std::uint64_t taken);
/// Removes the stale temporaries of a save to exactly `file`.
CKPT_INLINE void remove_stale_temporaries_of(const std::filesystem::path& file);
/// Removes the stale temporaries of saves to `<prefix>-<n>`, whatever n.
CKPT_INLINE void remove_stale_temporaries_of_prefix(const std::filesystem::path& prefix);

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE std::filesystem::path numbered(const std::filesystem::path& prefix, std::uint64_t n) {
    auto file = prefix;
    file += "-" + std::to_string(n);
    return file;
}

CKPT_INLINE std::uint64_t next_number_after(const std::filesystem::path& prefix, std::uint64_t taken) {
    std::uint64_t n = taken + 1;
    std::error_code ec;
    while (std::filesystem::exists(numbered(prefix, n), ec)) ++n;
    return n;
}

CKPT_INLINE void remove_stale_temporaries_of(const std::filesystem::path& file) {
    const std::string head = file.filename().string() + detail::temp_marker;
    detail::remove_stale_temporaries(file.parent_path(),
                                     [&](const std::string& name) { return name.compare(0, head.size(), head) == 0; });
}

CKPT_INLINE void remove_stale_temporaries_of_prefix(const std::filesystem::path& prefix) {
    const std::string head = prefix.filename().string() + "-";
    detail::remove_stale_temporaries(prefix.parent_path(), [&](const std::string& name) {
        const auto marker = name.find(detail::temp_marker);
        return name.compare(0, head.size(), head) == 0 && marker > head.size() &&
               name.find_first_not_of("0123456789", head.size()) == marker;
    });
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
