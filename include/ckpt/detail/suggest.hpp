#pragma once
// "Did you mean": for a tracked path the file lacks, the nearest path it does contain. The path is
// taken apart at its '/': the longest prefix the file has is kept, and the next part is replaced by
// the closest name the file has at that level (edit distance), so a misspelt track name
// ("modle/hidden/kernel") is answered with "model/hidden/kernel". Only run to build an error message.

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt::detail {

/// Levenshtein distance, one row of memory.
CKPT_INLINE std::size_t edit_distance(std::string_view a, std::string_view b);

/// " (did you mean 'model/hidden/kernel'?)", or "" when nothing in the file is close enough.
CKPT_INLINE std::string suggest_path(std::string_view missing, const std::vector<entry_info>& entries);

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0u : 1u)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

CKPT_INLINE std::string suggest_path(std::string_view missing, const std::vector<entry_info>& entries) {
    // The longest prefix of whole parts that some entry path has.
    auto has_prefix = [&](std::string_view prefix) {
        for (const auto& e : entries)
            if (std::string_view(e.path).substr(0, prefix.size()) == prefix &&
                (e.path.size() == prefix.size() || e.path[prefix.size()] == '/'))
                return true;
        return false;
    };
    std::size_t kept = 0;  // length of the prefix the file has, without its trailing '/'
    for (std::size_t slash = missing.find('/'); slash != std::string_view::npos; slash = missing.find('/', slash + 1)) {
        if (!has_prefix(missing.substr(0, slash))) break;
        kept = slash;
    }
    const std::size_t start = kept == 0 ? 0 : kept + 1;
    const std::size_t end = std::min(missing.find('/', start), missing.size());
    const std::string_view wrong = missing.substr(start, end - start);
    // The names the file has at that level, under the kept prefix.
    std::string best;
    std::size_t best_distance = wrong.size() / 2 + 1;  // closer than half the name, or not worth saying
    for (const auto& e : entries) {
        std::string_view path(e.path);
        if (start != 0 && (path.substr(0, start) != missing.substr(0, start))) continue;
        path.remove_prefix(start);
        const std::string_view name = path.substr(0, path.find('/'));
        if (name == wrong) continue;
        const std::size_t d = edit_distance(wrong, name);
        if (d < best_distance || (d == best_distance && !best.empty() && name < best)) {
            best_distance = d;
            best = std::string(name);
        }
    }
    if (best.empty()) return {};
    std::string suggestion(missing.substr(0, start));
    suggestion += best;
    suggestion += missing.substr(end);
    return " (did you mean '" + suggestion + "'?)";
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
