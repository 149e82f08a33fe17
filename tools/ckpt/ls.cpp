// `ckpt ls DIR [--json]` and `ckpt inspect DIR` on a manager's directory: the listing.

#include "ls.hpp"

#include <ckpt/ckpt.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "stored.hpp"
#include "text.hpp"

namespace ckpt::tool {
namespace {

/// The checkpoints of a directory, oldest first, and whether a manager's state file listed them.
struct directory_listing {
    std::vector<checkpoint_record> records;
    bool managed = false;
};

directory_listing list_directory(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) throw ckpt::io_error("is not a directory", dir);
    directory_listing l;
    auto records = ckpt::read_manager_records(dir);
    l.managed = records.has_value();
    l.records = records ? std::move(*records) : ckpt::list_checkpoints(dir);
    return l;
}

/// The listing as one JSON document: metrics read back exactly (json_number), bytes null for a
/// checkpoint the state file lists but the disk lacks.
void write_listing_json(const std::filesystem::path& dir, const directory_listing& l, std::ostream& out) {
    out << "{\"directory\":" << json_string(dir.string()) << ",\"managed\":" << (l.managed ? "true" : "false")
        << ",\"checkpoints\":[";
    for (std::size_t i = 0; i < l.records.size(); ++i) {
        const auto& r = l.records[i];
        std::error_code ec;
        const auto size = checkpoint_size(r.path, ec);
        out << (i ? "," : "") << "{\"number\":" << r.number << ",\"name\":" << json_string(r.name)
            << ",\"path\":" << json_string(r.path.string())
            << ",\"step\":" << (r.step ? std::to_string(*r.step) : "null")
            << ",\"wall_time\":" << json_string(iso_time(r.wall_time))
            << ",\"bytes\":" << (ec ? "null" : std::to_string(size)) << ",\"metrics\":" << json_object(r.metrics)
            << ",\"strings\":" << json_object(r.strings) << ",\"preserved\":" << (r.preserved ? "true" : "false")
            << ",\"latest\":" << (i + 1 == l.records.size() ? "true" : "false") << "}";
    }
    out << "]}\n";
}

/// The listing as a table.
void write_listing_text(const std::filesystem::path& dir, const directory_listing& l, std::ostream& out) {
    const auto& records = l.records;
    if (records.empty()) {
        out << printable(dir.string()) << ": no checkpoints\n";
        return;
    }
    out << printable(dir.string()) << ": " << records.size() << " checkpoints"
        << (l.managed ? "" : " (no manager state: found by scanning)") << "\n";
    char line[256];
    std::snprintf(line, sizeof line, "  %-4s %-28s %10s  %-20s %12s  %s\n", "#", "name", "step", "saved (UTC)", "bytes",
                  "metrics");
    out << line;
    for (std::size_t i = 0; i < records.size(); ++i) {
        const auto& r = records[i];
        std::error_code ec;
        const auto size = checkpoint_size(r.path, ec);
        std::string metrics;
        for (const auto& [k, v] : r.metrics) {
            char m[96];
            std::snprintf(m, sizeof m, "%s%s=%g", metrics.empty() ? "" : " ", printable(k).c_str(), v);
            metrics += m;
        }
        if (r.preserved) metrics += metrics.empty() ? "[preserved]" : " [preserved]";
        if (i + 1 == records.size()) metrics += metrics.empty() ? "[latest]" : " [latest]";
        std::snprintf(line, sizeof line, "  %-4llu %-28s %10s  %-20s %12s  ", static_cast<unsigned long long>(r.number),
                      printable(r.name).c_str(), r.step ? std::to_string(*r.step).c_str() : "-",
                      iso_time(r.wall_time).c_str(), ec ? "missing" : std::to_string(size).c_str());
        out << line << metrics << "\n";  // metrics unbounded: not through the fixed-size line
    }
}

}  // namespace

/// `ckpt ls DIR [--json]`
int list(const std::filesystem::path& dir, bool json, std::ostream& out) {
    const auto l = list_directory(dir);
    if (json)
        write_listing_json(dir, l, out);
    else
        write_listing_text(dir, l, out);
    return 0;
}

/// `ckpt inspect DIR [--json]` on a manager's directory.
int inspect_directory(const std::filesystem::path& dir, bool json, std::ostream& out) {
    const auto l = list_directory(dir);
    if (l.records.empty()) throw ckpt::error("is a directory with no checkpoints (inspect takes a checkpoint)", dir);
    if (json) {
        write_listing_json(dir, l, out);
        return 0;
    }
    write_listing_text(dir, l, out);
    out << "a directory of checkpoints: inspect one with `ckpt inspect " << printable(l.records.back().path.string())
        << "`\n";
    return 0;
}

}  // namespace ckpt::tool
