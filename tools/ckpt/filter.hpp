#pragma once
// `--only P` and `--exclude P` of diff and export: which entries a command looks at.

#include <string>
#include <string_view>
#include <vector>

namespace ckpt::tool {

/// Entries chosen by path prefixes, a whole segment at a time: "model" selects "model" and
/// "model/w" but not "models". An entry is kept when it matches some --only (or there is none)
/// and no --exclude.
struct path_filter {
    std::vector<std::string> only, exclude;

    static bool under(std::string_view path, std::string prefix) {
        while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
        if (prefix.empty()) return true;
        return path.substr(0, prefix.size()) == prefix && (path.size() == prefix.size() || path[prefix.size()] == '/');
    }
    bool keeps(std::string_view path) const {
        bool kept = only.empty();
        for (const auto& p : only) kept = kept || under(path, p);
        for (const auto& p : exclude) kept = kept && !under(path, p);
        return kept;
    }
};

}  // namespace ckpt::tool
