#pragma once
// The tool on sharded checkpoints (directories written by ckpt::mpi::checkpoint: rank-<r> files
// and a manifest). ckpt::reader already reads one as its logical entries (replicated entries and
// shards as whole tensors), so `export` assembles global tensors unchanged; this file adds what is
// particular to them: the pieces and per-rank entries in `inspect`, the manifest against every
// piece in `verify`, per-rank entries in `diff`, and sizes in `ls`.

#include <ckpt/ckpt.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "common.hpp"
#include "inspect.hpp"

namespace ckpt::tool {

/// `if (ckpt::tool::is_sharded(path)) ...`
inline bool is_sharded(const std::filesystem::path& p) { return ckpt::is_sharded_checkpoint(p); }

/// Bytes of a checkpoint: the file, or every file of a sharded checkpoint's directory.
inline std::uintmax_t checkpoint_size(const std::filesystem::path& p, std::error_code& ec) {
    if (!is_sharded(p)) return std::filesystem::file_size(p, ec);
    std::uintmax_t total = 0;
    for (const auto& e : std::filesystem::directory_iterator(p, ec))
        if (e.is_regular_file(ec)) total += e.file_size(ec);
    return total;
}

/// Reads and checks every piece of every logical entry, in chunks, under one progress bar (the
/// tool's shared pass, over pieces); after each entry, `each(index, problem)` with problem nullptr
/// or the corrupt_error's message.
inline void check_pieces(ckpt::sharded_layout& r, const std::string& label,
                         const std::function<void(std::size_t, const char*)>& each) {
    const auto& entries = r.entries();
    std::uint64_t total = 0;
    for (const auto& m : entries)
        for (const auto& p : m.pieces) total += p.bytes;
    progress bar(label, total);
    for (std::size_t i = 0; i < entries.size(); ++i) {
        std::string problem;
        try {
            r.verify(entries[i]);
        } catch (const ckpt::corrupt_error& e) {
            problem = e.what();
        }
        for (const auto& p : entries[i].pieces) bar.advance(p.bytes);
        each(i, problem.empty() ? nullptr : problem.c_str());
    }
}

inline std::string pieces_text(const ckpt::sharded_entry& m) {
    std::string s;
    for (std::size_t i = 0; i < m.pieces.size() && i < 8; ++i) {
        const auto& p = m.pieces[i];
        s += (i ? " " : "") + std::string("rank-") + std::to_string(p.rank);
        if (m.role == ckpt::sharded_role::shard) s += ":" + p.extents.to_string() + "@" + p.offsets.to_string();
    }
    if (m.pieces.size() > 8) s += " ...";
    return s;
}

/// `ckpt inspect DIR [--json]` for a sharded checkpoint: metadata, then every logical entry with
/// its role and pieces, each piece checked against its checksum.
inline int inspect_sharded(const std::filesystem::path& dir, bool json, std::ostream& out) {
    ckpt::sharded_layout r(dir);
    const auto& md = r.metadata();
    const auto& entries = r.entries();
    std::vector<std::string> status;
    bool all_ok = true;
    check_pieces(r, "checking", [&](std::size_t, const char* problem) {
        status.push_back(problem ? "BAD" : "ok");
        all_ok = all_ok && !problem;
    });
    std::error_code ec;
    const auto bytes = checkpoint_size(dir, ec);
    if (json) {
        out << "{\"directory\":" << json_string(dir.string()) << ",\"sharded\":true,\"ranks\":" << r.ranks()
            << ",\"size\":" << bytes << ",\"save_counter\":" << md.save_counter
            << ",\"wall_time\":" << json_string(iso_time(md.wall_time))
            << ",\"step\":" << (md.step ? std::to_string(*md.step) : "null") << ",\"metrics\":{";
        bool first = true;
        for (const auto& [k, v] : md.metrics) {
            out << (first ? "" : ",") << json_string(k) << ":" << json_number(v);
            first = false;
        }
        out << "},\"strings\":{";
        first = true;
        for (const auto& [k, v] : md.strings) {
            out << (first ? "" : ",") << json_string(k) << ":" << json_string(v);
            first = false;
        }
        out << "},\"entries\":[";
        for (std::size_t i = 0; i < entries.size(); ++i) {
            const auto& m = entries[i];
            out << (i ? "," : "") << "{\"path\":" << json_string(m.path) << ",\"role\":\""
                << ckpt::sharded_role_name(m.role) << "\",\"kind\":\"" << entry_kind_name(m.kind) << "\",\"dtype\":\""
                << dtype_name(m.dtype) << "\",\"shape\":" << m.dims.to_string() << ",\"pieces\":[";
            for (std::size_t k = 0; k < m.pieces.size(); ++k) {
                const auto& p = m.pieces[k];
                char checksum[17];
                std::snprintf(checksum, sizeof checksum, "%016llx", static_cast<unsigned long long>(p.checksum));
                out << (k ? "," : "") << "{\"file\":" << json_string("rank-" + std::to_string(p.rank))
                    << ",\"offsets\":" << p.offsets.to_string() << ",\"extents\":" << p.extents.to_string()
                    << ",\"bytes\":" << p.bytes << ",\"checksum\":\"" << checksum << "\"}";
            }
            out << "],\"status\":\"" << status[i] << "\"}";
        }
        out << "]}\n";
        return all_ok ? 0 : 1;
    }
    out << printable(dir.string()) << ": sharded checkpoint of " << r.ranks() << " ranks, " << bytes << " bytes, "
        << entries.size() << " entries\n";
    out << "  save counter " << md.save_counter << ", saved " << iso_time(md.wall_time);
    if (md.step) out << ", step " << *md.step;
    out << "\n";
    for (const auto& [k, v] : md.metrics) out << "  metric " << printable(k) << " = " << number(v) << "\n";
    for (const auto& [k, v] : md.strings) out << "  " << printable(k) << ": " << printable(v) << "\n";
    std::vector<std::string> names;
    std::size_t width = 4;
    for (const auto& m : entries) {
        names.push_back(printable(m.path));
        width = std::max(width, names.back().size());
    }
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& m = entries[i];
        std::uint64_t length = 0;
        for (const auto& p : m.pieces) length += p.bytes;
        char line[160];
        std::snprintf(line, sizeof line, "  %-10s %-10s %-10s %-18s %12llu  %-4s ", ckpt::sharded_role_name(m.role),
                      entry_kind_name(m.kind), dtype_name(m.dtype), m.dims.to_string().c_str(),
                      static_cast<unsigned long long>(length), status[i].c_str());
        out << "  " << names[i] << std::string(width - names[i].size(), ' ') << line << pieces_text(m) << "\n";
    }
    return all_ok ? 0 : 1;
}

/// `ckpt verify` of a sharded checkpoint: the manifest, every piece against it, every rank file whole.
inline int verify_sharded(const std::filesystem::path& dir, std::ostream& out, std::ostream& err) {
    try {
        ckpt::sharded_layout r(dir);
        std::size_t damaged = 0;
        check_pieces(r, "verifying " + dir.filename().string(), [&](std::size_t, const char* problem) {
            if (problem) err << printable(problem) << std::endl;
            damaged += problem ? 1 : 0;
        });
        if (damaged) {
            err << printable(dir.string()) << ": BAD (sharded, " << damaged << " of " << r.entries().size()
                << " entries damaged)" << std::endl;
            return 1;
        }
        r.verify_files();  // the rank files whole and the manifest file: what no piece covers
        out << printable(dir.string()) << ": ok (sharded, " << r.ranks() << " ranks, " << r.entries().size()
            << " entries)" << std::endl;
        return 0;
    } catch (const ckpt::error& e) {
        err << printable(e.what()) << std::endl;
        return 1;
    }
}

/// `ckpt verify PATH`: a file, a sharded checkpoint, or a directory of either.
inline int verify_any(const std::filesystem::path& target, std::ostream& out, std::ostream& err) {
    std::error_code ec;
    if (is_sharded(target)) return verify_sharded(target, out, err);
    if (!std::filesystem::is_directory(target, ec)) return verify(target, out, err);
    std::vector<std::filesystem::path> sharded;
    for (const auto& e : std::filesystem::directory_iterator(target))
        if (is_sharded(e.path())) sharded.push_back(e.path());
    std::sort(sharded.begin(), sharded.end());
    if (sharded.empty()) return verify(target, out, err);
    int bad = checkpoint_files(target).empty() ? 0 : verify(target, out, err);
    for (const auto& d : sharded) bad |= verify_sharded(d, out, err);
    return bad ? 1 : 0;
}

/// `ckpt diff A B` when either is sharded: the logical entries as for files, then (text output) the
/// per-rank entries rank by rank, by their checksums.
inline int diff_any(const std::filesystem::path& a, const std::filesystem::path& b, const diff_options& opt,
                    std::ostream& out) {
    int differences = diff(a, b, opt, out);
    // JSON output is diff's document alone: per-rank entries are compared in the text output only.
    if (opt.json || (!is_sharded(a) && !is_sharded(b))) return differences;
    const ckpt::reader ra(a), rb(b);
    if (ra.ranks() != rb.ranks()) {
        out << "~ ranks: " << ra.ranks() << " -> " << rb.ranks() << " (per-rank entries not compared)\n";
        return 1;
    }
    if (!is_sharded(a) || !is_sharded(b)) return differences;
    const ckpt::sharded_layout ma(a), mb(b);
    using key = std::pair<std::uint32_t, std::string>;
    std::map<key, const ckpt::sharded_entry*> left, right;
    for (const auto& m : ma.entries())
        if (m.role == ckpt::sharded_role::per_rank && opt.filter.keeps(m.path)) left[{m.pieces[0].rank, m.path}] = &m;
    for (const auto& m : mb.entries())
        if (m.role == ckpt::sharded_role::per_rank && opt.filter.keeps(m.path)) right[{m.pieces[0].rank, m.path}] = &m;
    int per_rank = 0;
    for (const auto& [k, m] : left) {
        auto it = right.find(k);
        const std::string name = "[rank " + std::to_string(k.first) + "] " + printable(k.second);
        if (it == right.end())
            out << "- " << name << "\n";
        else if (m->kind != it->second->kind || m->dtype != it->second->dtype || m->dims != it->second->dims ||
                 m->pieces[0].checksum != it->second->pieces[0].checksum)
            out << "~ " << name << ": contents differ\n";
        else
            continue;
        ++per_rank;
    }
    for (const auto& [k, m] : right)
        if (!left.count(k)) {
            out << "+ [rank " << k.first << "] " << printable(k.second) << "\n";
            ++per_rank;
        }
    if (per_rank == 0) out << "identical per-rank entries: " << left.size() << "\n";
    return differences || per_rank ? 1 : 0;
}

}  // namespace ckpt::tool
