#pragma once
// What a checkpoint_manager records about each checkpoint it keeps (its state file holds one per
// line, see detail/manager/state_file.hpp); the retention policies of policy.hpp decide on these.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace ckpt {

/// One checkpoint a manager keeps, as its state file records it:
/// `for (auto& r : mgr.records()) r.metrics.at("val_loss");`
struct checkpoint_record {
    std::uint64_t number = 0;    ///< 1, 2, ... in order of saving, never reused
    std::string name;            ///< file name inside the directory
    std::filesystem::path path;  ///< directory / name
    /// The training step given at save time, if any.
    std::optional<std::int64_t> step;
    /// When the checkpoint was saved.
    std::chrono::system_clock::time_point wall_time;
    /// The metrics given at save time: `r.metrics.at("val_loss")`
    std::map<std::string, double> metrics;
    /// The strings given at save time.
    std::map<std::string, std::string> strings;
    bool preserved = false;  ///< kept for good by keep_every
};

}  // namespace ckpt
