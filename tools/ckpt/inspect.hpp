#pragma once
// The read-only commands of the `ckpt` tool: inspect, verify, diff. Each returns the process exit
// status and writes its report to `out`; problems with the input throw ckpt::error.

#include <ckpt/ckpt.hpp>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "common.hpp"
#include "values.hpp"

namespace ckpt::tool {

/// `ckpt inspect FILE [--json]`: metadata and every entry, each with its checksum checked. Text
/// output escapes names and strings (printable); JSON numbers read back exactly (json_number).
inline int inspect(const std::filesystem::path& file, bool json, std::ostream& out) {
    ckpt::reader r(file);
    const auto& m = r.metadata();
    std::vector<std::string> status;
    bool all_ok = true;
    check_entries(r, "checking", [&](const entry_info&, const char* problem) {
        status.push_back(problem ? "BAD" : "ok");
        all_ok = all_ok && !problem;
    });
    if (json) {
        out << "{\"file\":" << json_string(file.string()) << ",\"size\":" << r.size()
            << ",\"save_counter\":" << m.save_counter << ",\"wall_time\":" << json_string(iso_time(m.wall_time))
            << ",\"step\":" << (m.step ? std::to_string(*m.step) : "null") << ",\"metrics\":{";
        bool first = true;
        for (const auto& [k, v] : m.metrics) {
            out << (first ? "" : ",") << json_string(k) << ":" << json_number(v);
            first = false;
        }
        out << "},\"strings\":{";
        first = true;
        for (const auto& [k, v] : m.strings) {
            out << (first ? "" : ",") << json_string(k) << ":" << json_string(v);
            first = false;
        }
        out << "},\"entries\":[";
        for (std::size_t i = 0; i < r.entries().size(); ++i) {
            const auto& e = r.entries()[i];
            char checksum[17];
            std::snprintf(checksum, sizeof checksum, "%016llx", static_cast<unsigned long long>(e.checksum));
            out << (i ? "," : "") << "{\"path\":" << json_string(e.path) << ",\"kind\":\"" << entry_kind_name(e.kind)
                << "\",\"dtype\":\"" << dtype_name(e.dtype) << "\",\"shape\":" << e.shape.to_string()
                << ",\"column_major\":" << (e.column_major ? "true" : "false") << ",\"offset\":" << e.offset
                << ",\"bytes\":" << e.length << ",\"checksum\":\"" << checksum << "\",\"status\":\"" << status[i]
                << "\"}";
        }
        out << "]}\n";
    } else {
        out << printable(file.string()) << ": " << r.size() << " bytes, " << r.entries().size() << " entries\n";
        out << "  save counter " << m.save_counter << ", saved " << iso_time(m.wall_time);
        if (m.step) out << ", step " << *m.step;
        out << "\n";
        for (const auto& [k, v] : m.metrics) out << "  metric " << printable(k) << " = " << number(v) << "\n";
        for (const auto& [k, v] : m.strings) out << "  " << printable(k) << ": " << printable(v) << "\n";
        std::vector<std::string> names;
        std::size_t width = 4;
        for (const auto& e : r.entries()) {
            names.push_back(printable(e.path));
            width = std::max(width, names.back().size());
        }
        for (std::size_t i = 0; i < r.entries().size(); ++i) {
            const auto& e = r.entries()[i];
            char line[128];
            std::snprintf(line, sizeof line, "  %-10s %-10s %-18s %12llu  %s", entry_kind_name(e.kind),
                          dtype_name(e.dtype), e.shape.to_string().c_str(), static_cast<unsigned long long>(e.length),
                          status[i].c_str());
            out << "  " << names[i] << std::string(width - names[i].size(), ' ') << line << "\n";
        }
    }
    return all_ok ? 0 : 1;
}

/// Checkpoint files in a directory: every regular file but temporaries and the manager's own files
/// that does not fail to look like a checkpoint by its magic bytes.
inline std::vector<std::filesystem::path> checkpoint_files(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (ckpt::is_checkpoint_file(e.path())) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

/// `ckpt verify FILE|DIR`: every checksum and structure; for each file, the damaged entries, then
/// its verdict (ok, or BAD with a count). Every line is flushed as it is written, so that with
/// `err` and `out` the same stream (as the tool has it) each verdict follows its details.
inline int verify(const std::filesystem::path& target, std::ostream& out, std::ostream& err) {
    std::error_code ec;
    if (!std::filesystem::exists(target, ec)) throw ckpt::io_error("no such file or directory", target);
    const bool is_dir = std::filesystem::is_directory(target, ec);
    const auto files = is_dir ? checkpoint_files(target) : std::vector<std::filesystem::path>{target};
    if (is_dir && files.empty()) throw ckpt::error("no checkpoint files in the directory", target);
    int bad = 0;
    for (const auto& f : files) {
        try {
            ckpt::reader r(f);
            std::size_t damaged = 0;
            check_entries(r, "verifying " + f.filename().string(), [&](const entry_info&, const char* problem) {
                if (problem) err << printable(problem) << std::endl;
                damaged += problem ? 1 : 0;
            });
            if (damaged) {
                ++bad;
                err << printable(f.string()) << ": BAD (" << damaged << " of " << r.entries().size()
                    << " entries damaged)" << std::endl;
            } else {
                out << printable(f.string()) << ": ok (" << r.entries().size() << " entries)" << std::endl;
            }
        } catch (const ckpt::error& e) {
            err << printable(e.what()) << std::endl;  // names the file: the verdict itself
            ++bad;
        }
    }
    return bad ? 1 : 0;
}

/// One element of a tensor block as a complex number, whatever its dtype.
inline std::complex<double> element_at(const char* p, ckpt::dtype t) {
    auto get = [p](auto v) {
        std::memcpy(&v, p, sizeof v);
        return v;
    };
    switch (t) {
        case dtype::boolean:
            return get(std::uint8_t{}) ? 1.0 : 0.0;
        case dtype::int8:
            return get(std::int8_t{});
        case dtype::int16:
            return get(std::int16_t{});
        case dtype::int32:
            return get(std::int32_t{});
        case dtype::int64:
            return static_cast<double>(get(std::int64_t{}));
        case dtype::uint8:
            return get(std::uint8_t{});
        case dtype::uint16:
            return get(std::uint16_t{});
        case dtype::uint32:
            return get(std::uint32_t{});
        case dtype::uint64:
            return static_cast<double>(get(std::uint64_t{}));
        case dtype::float16:
            return static_cast<double>(static_cast<float>(get(Eigen::half{})));
        case dtype::bfloat16:
            return static_cast<double>(static_cast<float>(get(Eigen::bfloat16{})));
        case dtype::float32:
            return get(float{});
        case dtype::float64:
            return get(double{});
        case dtype::complex64:
            return std::complex<double>(get(std::complex<float>{}));
        case dtype::complex128:
            return get(std::complex<double>{});
        case dtype::bytes:
            return static_cast<unsigned char>(*p);
    }
    return 0.0;
}

inline bool is_floating(ckpt::dtype t) noexcept {
    return t == dtype::float16 || t == dtype::bfloat16 || t == dtype::float32 || t == dtype::float64 ||
           t == dtype::complex64 || t == dtype::complex128;
}

/// How many differing elements of a tensor diff shows.
inline constexpr std::size_t shown_elements = 3;

struct diff_options {
    double atol = 0, rtol = 0;  // elements a, b are equal when |a - b| <= atol + rtol * |b| (numpy.isclose)
    bool json = false;
    path_filter filter;
};

/// `ckpt diff A B`: added, removed, changed entries; 0 only when every entry the filter keeps is
/// equal. Tensors are compared by value in logical order, so the same matrix saved column-major
/// and row-major is equal; other entries byte for byte. What changed is shown: a scalar's two
/// values, a tensor's first few differing elements with their indices, a string's two texts, a
/// random engine's state by its length and checksum (bytes_summary).
inline int diff(const std::filesystem::path& a_path, const std::filesystem::path& b_path, const diff_options& opt,
                std::ostream& out) {
    ckpt::reader a(a_path), b(b_path);
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

}  // namespace ckpt::tool
