#pragma once
// Small filesystem helpers the manager tests share.

#include <filesystem>
#include <string>
#include <vector>

namespace ckpt_test {

/// An empty directory path for a test: whatever an earlier run left there is removed.
inline std::filesystem::path fresh(const std::string& dir) {
    std::filesystem::remove_all(dir);
    return dir;
}

/// The file names of `paths`, in their order: what a manager's checkpoints() lists, readably.
inline std::vector<std::string> names(const std::vector<std::filesystem::path>& paths) {
    std::vector<std::string> out;
    for (const auto& p : paths) out.push_back(p.filename().string());
    return out;
}

}  // namespace ckpt_test
