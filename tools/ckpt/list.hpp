#pragma once
// `ckpt ls DIR`: the checkpoints a manager keeps, from its state file (read without its lock, so a
// running training can be looked at), or, without one, every checkpoint file found there.

#include <ckpt/ckpt.hpp>

#include <cstdio>
#include <filesystem>
#include <ostream>

#include "common.hpp"
#include "sharded.hpp"

namespace ckpt::tool {

inline int list(const std::filesystem::path& dir, std::ostream& out) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) throw ckpt::io_error("is not a directory", dir);
    auto records = ckpt::read_manager_records(dir);
    const bool managed = records.has_value();
    if (!records) records = ckpt::list_checkpoints(dir);
    if (records->empty()) {
        out << dir.string() << ": no checkpoints\n";
        return 0;
    }
    out << dir.string() << ": " << records->size() << " checkpoints"
        << (managed ? "" : " (no manager state: found by scanning)") << "\n";
    char line[256];
    std::snprintf(line, sizeof line, "  %-4s %-28s %10s  %-20s %12s  %s\n", "#", "name", "step", "saved (UTC)", "bytes",
                  "metrics");
    out << line;
    for (std::size_t i = 0; i < records->size(); ++i) {
        const auto& r = (*records)[i];
        const auto size = checkpoint_size(r.path, ec);
        std::string metrics;
        for (const auto& [k, v] : r.metrics) {
            char m[96];
            std::snprintf(m, sizeof m, "%s%s=%g", metrics.empty() ? "" : " ", printable(k).c_str(), v);
            metrics += m;
        }
        if (r.preserved) metrics += metrics.empty() ? "[preserved]" : " [preserved]";
        if (i + 1 == records->size()) metrics += metrics.empty() ? "[latest]" : " [latest]";
        std::snprintf(line, sizeof line, "  %-4llu %-28s %10s  %-20s %12s  %s\n",
                      static_cast<unsigned long long>(r.number), printable(r.name).c_str(),
                      r.step ? std::to_string(*r.step).c_str() : "-", iso_time(r.wall_time).c_str(),
                      ec ? "missing" : std::to_string(size).c_str(), metrics.c_str());
        out << line;
    }
    return 0;
}

}  // namespace ckpt::tool
