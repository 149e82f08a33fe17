// `ckpt diff`: the logical entries of both checkpoints (ckpt::reader, files and sharded alike),
// then, for sharded checkpoints, their per-rank entries.

#include "diff.hpp"

#include <ckpt/ckpt.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "text.hpp"
#include "values.hpp"

namespace ckpt::tool {
namespace {

/// How many differing elements of a tensor diff shows.
constexpr std::size_t shown_elements = 3;

/// The logical entries of `a` and `b` compared (see diff.hpp); 1 when they differ.
int diff_entries(ckpt::reader& a, ckpt::reader& b, const std::filesystem::path& a_path,
                 const std::filesystem::path& b_path, const diff_options& opt, std::ostream& out) {
    std::vector<std::string> text, json;  // one line per difference
    std::size_t compared = 0;
    auto report = [&](char sign, const std::string& path, const char* change, const std::string& detail,
                      const std::string& json_detail) {
        text.push_back(std::string(1, sign) + " " + printable(path) + detail);
        json.push_back("{\"path\":" + json_string(path) + ",\"change\":\"" + change + "\"" + json_detail + "}");
    };
    for (const auto& e : a.entries())
        if (opt.filter.keeps(e.path) && !b.find(e.path))
            report('-', e.path, "removed", " (" + ckpt::describe(e) + ")", ",\"a\":" + json_string(ckpt::describe(e)));
    for (const auto& e : b.entries())
        if (opt.filter.keeps(e.path) && !a.find(e.path))
            report('+', e.path, "added", " (" + ckpt::describe(e) + ")", ",\"b\":" + json_string(ckpt::describe(e)));
    for (const auto& ea : a.entries()) {
        const auto* eb = b.find(ea.path);
        if (!eb || !opt.filter.keeps(ea.path)) continue;
        ++compared;
        const std::string da = ckpt::describe(ea), db = ckpt::describe(*eb);
        // The shape of a serialized or text entry is its byte count: a longer string is a changed value.
        const bool sized_by_bytes = ea.kind == entry_kind::serialized || ea.kind == entry_kind::text;
        if (ea.kind != eb->kind || ea.dtype != eb->dtype || (ea.shape != eb->shape && !sized_by_bytes)) {
            report('~', ea.path, "type", ": " + da + " -> " + db,
                   ",\"a\":" + json_string(da) + ",\"b\":" + json_string(db));
            continue;
        }
        const std::string ba = a.read_bytes(ea);
        std::string bb = b.read_bytes(*eb);
        if (ea.kind != entry_kind::tensor) {
            if (ba == bb) continue;
            if (ea.kind == entry_kind::serialized || ea.kind == entry_kind::text) {
                const std::string va = bytes_summary(ea, ba), vb = bytes_summary(*eb, bb);
                // "625 numbers, checksum A -> checksum B" rather than the description twice.
                const auto hash_at = va.find("checksum ");
                const bool same_but_hash = hash_at != std::string::npos && va.compare(0, hash_at, vb, 0, hash_at) == 0;
                report('~', ea.path, "contents", ": " + va + " -> " + (same_but_hash ? vb.substr(hash_at) : vb),
                       ",\"a_value\":" + json_string(va) + ",\"b_value\":" + json_string(vb));
            } else {
                report('~', ea.path, "contents", std::string(": ") + entry_kind_name(ea.kind) + " contents differ", "");
            }
            continue;
        }
        const std::size_t size = dtype_size(ea.dtype);
        if (ea.column_major != eb->column_major && ea.shape.rank() > 1) {  // B's elements in A's order
            std::string reordered(bb.size(), '\0');
            ckpt::convert_element_order(bb.data(), reordered.data(), eb->shape, size, eb->column_major);
            bb.swap(reordered);
        }
        if (ba == bb) continue;
        const bool exact_only = opt.atol == 0 && opt.rtol == 0 && !is_floating(ea.dtype);
        double max_abs = 0, max_rel = 0;
        std::uint64_t changed = 0;
        std::vector<std::size_t> first;  // byte offsets of the first few differing elements
        for (std::size_t i = 0; i < ba.size(); i += size) {
            if (std::memcmp(ba.data() + i, bb.data() + i, size) == 0) continue;
            if (exact_only) {  // distinct integers differ; doubles could round 64-bit ones together
                if (++changed <= shown_elements) first.push_back(i);
                continue;
            }
            const auto x = element_at(ba.data() + i, ea.dtype), y = element_at(bb.data() + i, ea.dtype);
            const double d = std::abs(x - y);
            if (d <= opt.atol + opt.rtol * std::abs(y)) continue;  // false for NaN
            if (++changed <= shown_elements) first.push_back(i);
            max_abs = std::max(max_abs, std::isnan(d) ? INFINITY : d);
            const double scale = std::max(std::abs(x), std::abs(y));
            if (scale > 0) max_rel = std::max(max_rel, d / scale);
        }
        if (changed == 0) continue;
        const std::uint64_t n = ba.size() / size;
        std::string detail,
            json_detail = ",\"elements\":" + std::to_string(n) + ",\"differing\":" + std::to_string(changed);
        if (n == 1) {  // a scalar: its two values say it all
            detail = ": " + element_text(ba.data(), ea.dtype) + " -> " + element_text(bb.data(), ea.dtype);
        } else {
            detail = ": " + std::to_string(changed) + " of " + std::to_string(n) + " elements differ";
            if (!exact_only) detail += ", max abs diff " + number(max_abs) + ", max rel diff " + number(max_rel);
            detail += "; first at";
        }
        if (!exact_only)
            json_detail += ",\"max_abs_diff\":" + json_number(max_abs) + ",\"max_rel_diff\":" + json_number(max_rel);
        json_detail += ",\"first_differences\":[";  // values as strings: int64 exactly, floats shortest
        for (std::size_t k = 0; k < first.size(); ++k) {
            const std::string index = element_index(first[k] / size, ea.shape, ea.column_major);
            const std::string va = element_text(ba.data() + first[k], ea.dtype),
                              vb = element_text(bb.data() + first[k], ea.dtype);
            if (n > 1) detail += std::string(k ? "," : "") + " " + index + " " + va + " -> " + vb;
            json_detail += std::string(k ? "," : "") + "{\"index\":" + (index.empty() ? "[]" : index) +
                           ",\"a\":" + json_string(va) + ",\"b\":" + json_string(vb) + "}";
        }
        json_detail += "]";
        if (n > 1 && changed > first.size()) detail += ", ...";
        report('~', ea.path, "values", detail, json_detail);
    }
    if (opt.json) {
        out << "{\"a\":" << json_string(a_path.string()) << ",\"b\":" << json_string(b_path.string())
            << ",\"atol\":" << json_number(opt.atol) << ",\"rtol\":" << json_number(opt.rtol)
            << ",\"compared\":" << compared << ",\"equal\":" << (text.empty() ? "true" : "false")
            << ",\"differences\":[";
        for (std::size_t i = 0; i < json.size(); ++i) out << (i ? "," : "") << json[i];
        out << "]}\n";
    } else {
        for (const auto& line : text) out << line << "\n";
        if (text.empty() && opt.atol == 0 && opt.rtol == 0)
            out << "identical: " << compared << " entries\n";
        else if (text.empty())
            out << "equal within atol " << number(opt.atol) << ", rtol " << number(opt.rtol) << ": " << compared
                << " entries\n";
    }
    return text.empty() ? 0 : 1;
}

/// The per-rank entries of two sharded checkpoints, rank by rank, by their checksums (text output
/// only); 1 when they differ. Checkpoints of different rank counts are not compared entry by entry.
int diff_per_rank(const ckpt::reader& ra, const ckpt::reader& rb, const std::filesystem::path& a,
                  const std::filesystem::path& b, const diff_options& opt, std::ostream& out) {
    if (ra.ranks() != rb.ranks()) {
        out << "~ ranks: " << ra.ranks() << " -> " << rb.ranks() << " (per-rank entries not compared)\n";
        return 1;
    }
    if (!ra.sharded() || !rb.sharded()) return 0;
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
    return per_rank ? 1 : 0;
}

}  // namespace

int diff(const std::filesystem::path& a_path, const std::filesystem::path& b_path, const diff_options& opt,
         std::ostream& out) {
    ckpt::reader a(a_path), b(b_path);
    const int differences = diff_entries(a, b, a_path, b_path, opt, out);
    // JSON output is the logical entries' document alone: per-rank entries are compared in text only.
    if (opt.json || (!a.sharded() && !b.sharded())) return differences;
    return diff_per_rank(a, b, a_path, b_path, opt, out) || differences ? 1 : 0;
}

}  // namespace ckpt::tool
