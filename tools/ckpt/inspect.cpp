// `ckpt inspect`: one report for files and sharded checkpoints; the lines a sharded checkpoint adds
// (ranks, roles, pieces) are chosen where they appear.

#include "inspect.hpp"

#include <ckpt/ckpt.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <system_error>
#include <vector>

#include "ls.hpp"
#include "stored.hpp"
#include "text.hpp"

namespace ckpt::tool {
namespace {

std::string checksum_text(std::uint64_t checksum) {
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(checksum));
    return text;
}

/// Where a sharded entry's pieces are: "rank-0:[2,3]@[0,0] rank-1:..." (shards), "rank-0 rank-1"
/// (others); the first eight.
std::string pieces_text(const ckpt::sharded_entry& m) {
    std::string s;
    for (std::size_t i = 0; i < m.pieces.size() && i < 8; ++i) {
        const auto& p = m.pieces[i];
        s += (i ? " " : "") + std::string("rank-") + std::to_string(p.rank);
        if (m.role == ckpt::sharded_role::shard) s += ":" + p.extents.to_string() + "@" + p.offsets.to_string();
    }
    if (m.pieces.size() > 8) s += " ...";
    return s;
}

/// An entry of the JSON document, without its status.
std::string entry_json(const stored_checkpoint& c, std::size_t i) {
    if (!c.sharded()) {
        const auto& e = c.entry(i);
        return "{\"path\":" + json_string(e.path) + ",\"kind\":\"" + entry_kind_name(e.kind) + "\",\"dtype\":\"" +
               dtype_name(e.dtype) + "\",\"shape\":" + e.shape.to_string() +
               ",\"column_major\":" + (e.column_major ? "true" : "false") + ",\"offset\":" + std::to_string(e.offset) +
               ",\"bytes\":" + std::to_string(e.length) + ",\"checksum\":\"" + checksum_text(e.checksum) + "\"";
    }
    const auto& m = c.piece_entry(i);
    std::string out = "{\"path\":" + json_string(m.path) + ",\"role\":\"" + ckpt::sharded_role_name(m.role) +
                      "\",\"kind\":\"" + entry_kind_name(m.kind) + "\",\"dtype\":\"" + dtype_name(m.dtype) +
                      "\",\"shape\":" + m.dims.to_string() + ",\"pieces\":[";
    for (std::size_t k = 0; k < m.pieces.size(); ++k) {
        const auto& p = m.pieces[k];
        out += (k ? "," : "") + std::string("{\"file\":") + json_string("rank-" + std::to_string(p.rank)) +
               ",\"offsets\":" + p.offsets.to_string() + ",\"extents\":" + p.extents.to_string() +
               ",\"bytes\":" + std::to_string(p.bytes) + ",\"checksum\":\"" + checksum_text(p.checksum) + "\"}";
    }
    return out + "]";
}

/// An entry's line of the text report after its name: kind, dtype, shape, bytes, status (a sharded
/// entry's role first and its pieces last).
std::string entry_text(const stored_checkpoint& c, std::size_t i, const std::string& status) {
    if (!c.sharded()) {
        const auto& e = c.entry(i);
        char line[128];
        std::snprintf(line, sizeof line, "  %-10s %-10s %-18s %12llu  %s", entry_kind_name(e.kind), dtype_name(e.dtype),
                      e.shape.to_string().c_str(), static_cast<unsigned long long>(e.length), status.c_str());
        return line;
    }
    const auto& m = c.piece_entry(i);
    char line[160];
    std::snprintf(line, sizeof line, "  %-10s %-10s %-10s %-18s %12llu  %-4s ", ckpt::sharded_role_name(m.role),
                  entry_kind_name(m.kind), dtype_name(m.dtype), m.dims.to_string().c_str(),
                  static_cast<unsigned long long>(c.bytes(i)), status.c_str());
    return line + pieces_text(m);
}

}  // namespace

int inspect(const std::filesystem::path& path, bool json, std::ostream& out) {
    std::error_code ec;
    if (!ckpt::is_sharded_checkpoint(path) && std::filesystem::is_directory(path, ec))
        return inspect_directory(path, json, out);
    stored_checkpoint c(path);
    const auto& m = c.metadata();
    std::vector<std::string> status;
    bool all_ok = true;
    c.check("checking", [&](std::size_t, const char* problem) {
        status.push_back(problem ? "BAD" : "ok");
        all_ok = all_ok && !problem;
    });
    const std::uint64_t bytes = c.sharded() ? checkpoint_size(path, ec) : c.file().size();
    if (json) {
        if (c.sharded())
            out << "{\"directory\":" << json_string(path.string()) << ",\"sharded\":true,\"ranks\":" << c.ranks();
        else
            out << "{\"file\":" << json_string(path.string());
        out << ",\"size\":" << bytes << ",\"save_counter\":" << m.save_counter
            << ",\"wall_time\":" << json_string(iso_time(m.wall_time))
            << ",\"step\":" << (m.step ? std::to_string(*m.step) : "null") << ",\"metrics\":" << json_object(m.metrics)
            << ",\"strings\":" << json_object(m.strings) << ",\"entries\":[";
        for (std::size_t i = 0; i < c.size(); ++i)
            out << (i ? "," : "") << entry_json(c, i) << ",\"status\":\"" << status[i] << "\"}";
        out << "]}\n";
        return all_ok ? 0 : 1;
    }
    out << printable(path.string()) << ": ";
    if (c.sharded()) out << "sharded checkpoint of " << c.ranks() << " ranks, ";
    out << bytes << " bytes, " << c.size() << " entries\n";
    out << "  save counter " << m.save_counter << ", saved " << iso_time(m.wall_time);
    if (m.step) out << ", step " << *m.step;
    out << "\n";
    for (const auto& [k, v] : m.metrics) out << "  metric " << printable(k) << " = " << number(v) << "\n";
    for (const auto& [k, v] : m.strings) out << "  " << printable(k) << ": " << printable(v) << "\n";
    std::vector<std::string> names;
    std::size_t width = 4;
    for (std::size_t i = 0; i < c.size(); ++i) {
        names.push_back(printable(c.entry_path(i)));
        width = std::max(width, names.back().size());
    }
    for (std::size_t i = 0; i < c.size(); ++i)
        out << "  " << names[i] << std::string(width - names[i].size(), ' ') << entry_text(c, i, status[i]) << "\n";
    return all_ok ? 0 : 1;
}

}  // namespace ckpt::tool
