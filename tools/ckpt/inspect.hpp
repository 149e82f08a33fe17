#pragma once
// The read-only commands of the `ckpt` tool: inspect, verify, diff. Each returns the process exit
// status and writes its report to `out`; problems with the input throw ckpt::error.

#include <ckpt/ckpt.hpp>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include <unistd.h>

namespace ckpt::tool {

/// A one-line progress bar on stderr, only when stderr is a terminal.
class progress {
public:
    progress(std::string label, std::uint64_t total) : label_(std::move(label)), total_(total), active_(::isatty(2) && total > (64u << 20)) {}
    ~progress() {
        if (active_) std::fprintf(stderr, "\r%*s\r", 60, "");
    }
    void advance(std::uint64_t n) {
        done_ += n;
        if (!active_) return;
        const int width = 30, filled = total_ ? static_cast<int>(width * done_ / total_) : width;
        std::fprintf(stderr, "\r%s [%.*s%*s] %3d%%", label_.c_str(), filled, "##############################", width - filled, "",
                     total_ ? static_cast<int>(100 * done_ / total_) : 100);
        std::fflush(stderr);
    }

private:
    std::string label_;
    std::uint64_t total_, done_ = 0;
    bool active_;
};

inline std::string iso_time(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

inline std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

inline std::string shape_json(const ckpt::shape& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.rank(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
    return out + "]";
}

/// `ckpt inspect FILE [--json]`: metadata and every entry, each with its checksum checked.
inline int inspect(const std::filesystem::path& file, bool json, std::ostream& out) {
    ckpt::reader r(file);
    const auto& m = r.metadata();
    std::vector<std::string> status;
    std::uint64_t total = 0;
    for (const auto& e : r.entries()) total += e.length;
    progress bar("checking", total);
    bool all_ok = true;
    for (const auto& e : r.entries()) {
        try {
            r.verify(e);
            status.push_back("ok");
        } catch (const ckpt::corrupt_error&) {
            status.push_back("BAD");
            all_ok = false;
        }
        bar.advance(e.length);
    }
    if (json) {
        out << "{\"file\":" << json_string(file.string()) << ",\"size\":" << r.size() << ",\"save_counter\":" << m.save_counter
            << ",\"wall_time\":" << json_string(iso_time(m.wall_time)) << ",\"step\":" << (m.step ? std::to_string(*m.step) : "null")
            << ",\"metrics\":{";
        bool first = true;
        for (const auto& [k, v] : m.metrics) {
            out << (first ? "" : ",") << json_string(k) << ":" << (std::isfinite(v) ? std::to_string(v) : "null");
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
            out << (i ? "," : "") << "{\"path\":" << json_string(e.path) << ",\"kind\":\"" << entry_kind_name(e.kind) << "\",\"dtype\":\""
                << dtype_name(e.dtype) << "\",\"shape\":" << shape_json(e.shape) << ",\"column_major\":" << (e.column_major ? "true" : "false")
                << ",\"offset\":" << e.offset << ",\"bytes\":" << e.length << ",\"checksum\":\"" << checksum << "\",\"status\":\"" << status[i]
                << "\"}";
        }
        out << "]}\n";
    } else {
        out << file.string() << ": " << r.size() << " bytes, " << r.entries().size() << " entries\n";
        out << "  save counter " << m.save_counter << ", saved " << iso_time(m.wall_time);
        if (m.step) out << ", step " << *m.step;
        out << "\n";
        for (const auto& [k, v] : m.metrics) out << "  metric " << k << " = " << v << "\n";
        for (const auto& [k, v] : m.strings) out << "  " << k << ": " << v << "\n";
        std::size_t width = 4;
        for (const auto& e : r.entries()) width = std::max(width, e.path.size());
        for (std::size_t i = 0; i < r.entries().size(); ++i) {
            const auto& e = r.entries()[i];
            char line[128];
            std::snprintf(line, sizeof line, "  %-10s %-10s %-18s %12llu  %s", entry_kind_name(e.kind), dtype_name(e.dtype),
                          e.shape.to_string().c_str(), static_cast<unsigned long long>(e.length), status[i].c_str());
            out << "  " << e.path << std::string(width - e.path.size(), ' ') << line << "\n";
        }
    }
    return all_ok ? 0 : 1;
}

/// Checkpoint files in a directory: every regular file but temporaries and the manager's own files
/// that does not fail to look like a checkpoint by its magic bytes.
inline std::vector<std::filesystem::path> checkpoint_files(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (!e.is_regular_file() || ckpt::detail::is_temp_name(e.path())) continue;
        char magic[8] = {};
        if (std::FILE* f = std::fopen(e.path().c_str(), "rb")) {
            const auto n = std::fread(magic, 1, 8, f);
            std::fclose(f);
            if (n == 8 && std::equal(magic, magic + 8, ckpt::detail::file_magic)) files.push_back(e.path());
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

/// `ckpt verify FILE|DIR`: every checksum and structure; one line per bad file.
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
            std::uint64_t total = 0;
            for (const auto& e : r.entries()) total += e.length;
            progress bar("verifying " + f.filename().string(), total);
            for (const auto& e : r.entries()) {
                r.verify(e);
                bar.advance(e.length);
            }
            out << f.string() << ": ok (" << r.entries().size() << " entries)\n";
        } catch (const ckpt::error& e) {
            err << e.what() << "\n";
            ++bad;
        }
    }
    return bad ? 1 : 0;
}

/// One element of a tensor block as a complex number, whatever its dtype.
inline std::complex<double> element_at(const char* p, ckpt::dtype t) {
    auto get = [p](auto v) { std::memcpy(&v, p, sizeof v); return v; };
    switch (t) {
        case dtype::boolean: return get(std::uint8_t{}) ? 1.0 : 0.0;
        case dtype::int8: return get(std::int8_t{});
        case dtype::int16: return get(std::int16_t{});
        case dtype::int32: return get(std::int32_t{});
        case dtype::int64: return static_cast<double>(get(std::int64_t{}));
        case dtype::uint8: return get(std::uint8_t{});
        case dtype::uint16: return get(std::uint16_t{});
        case dtype::uint32: return get(std::uint32_t{});
        case dtype::uint64: return static_cast<double>(get(std::uint64_t{}));
        case dtype::float16: return static_cast<double>(static_cast<float>(get(Eigen::half{})));
        case dtype::bfloat16: return static_cast<double>(static_cast<float>(get(Eigen::bfloat16{})));
        case dtype::float32: return get(float{});
        case dtype::float64: return get(double{});
        case dtype::complex64: return std::complex<double>(get(std::complex<float>{}));
        case dtype::complex128: return get(std::complex<double>{});
        case dtype::bytes: return static_cast<unsigned char>(*p);
    }
    return 0.0;
}

/// `ckpt diff A B`: added, removed, changed entries; 0 only when every entry is identical.
inline int diff(const std::filesystem::path& a_path, const std::filesystem::path& b_path, std::ostream& out) {
    ckpt::reader a(a_path), b(b_path);
    int differences = 0;
    for (const auto& e : a.entries())
        if (!b.find(e.path)) {
            out << "- " << e.path << " (" << ckpt::detail::describe(e) << ")\n";
            ++differences;
        }
    for (const auto& e : b.entries())
        if (!a.find(e.path)) {
            out << "+ " << e.path << " (" << ckpt::detail::describe(e) << ")\n";
            ++differences;
        }
    for (const auto& ea : a.entries()) {
        const auto* eb = b.find(ea.path);
        if (!eb) continue;
        if (ea.kind != eb->kind || ea.dtype != eb->dtype || ea.shape != eb->shape) {
            out << "~ " << ea.path << ": " << ckpt::detail::describe(ea) << " -> " << ckpt::detail::describe(*eb) << "\n";
            ++differences;
            continue;
        }
        const std::string ba = a.read_bytes(ea), bb = b.read_bytes(*eb);
        if (ea.kind == entry_kind::tensor && ea.column_major == eb->column_major) {
            if (ba == bb) continue;
            const std::size_t size = dtype_size(ea.dtype);
            double max_abs = 0, max_rel = 0;
            std::uint64_t changed = 0;
            for (std::size_t i = 0; i < ba.size(); i += size) {
                if (std::memcmp(ba.data() + i, bb.data() + i, size) == 0) continue;
                ++changed;
                const auto x = element_at(ba.data() + i, ea.dtype), y = element_at(bb.data() + i, ea.dtype);
                const double d = std::abs(x - y);
                max_abs = std::max(max_abs, std::isnan(d) ? INFINITY : d);
                const double scale = std::max(std::abs(x), std::abs(y));
                if (scale > 0) max_rel = std::max(max_rel, d / scale);
            }
            out << "~ " << ea.path << ": " << changed << " of " << ba.size() / size << " elements differ, max abs diff " << max_abs
                << ", max rel diff " << max_rel << "\n";
            ++differences;
        } else if (ba != bb || ea.column_major != eb->column_major) {
            out << "~ " << ea.path << ": " << entry_kind_name(ea.kind) << " contents differ\n";
            ++differences;
        }
    }
    if (differences == 0) out << "identical: " << a.entries().size() << " entries\n";
    return differences ? 1 : 0;
}

}  // namespace ckpt::tool
