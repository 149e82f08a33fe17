#pragma once
// A checkpoint_manager's state file ("ckpt-state"): its codec, how it is read and written. The file is text,
// one record per line, with %-escaped fields, and ends with the XXH3-64 of everything before it, so a
// damaged file is recognised (and the directory rescanned, see scan.hpp) instead of trusted.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint_record.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/io/atomic_file.hpp>
#include <ckpt/detail/io/descriptor.hpp>
#include <ckpt/detail/io/read_write.hpp>
#include <ckpt/detail/io/temp_names.hpp>
#include <ckpt/detail/io/directory_lock.hpp>

namespace ckpt::detail {

inline constexpr const char* manager_state_name = "ckpt-state";

inline std::int64_t to_ns(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
CKPT_INLINE std::chrono::system_clock::time_point from_ns(std::int64_t ns);

/// Names from a state file become paths: only plain file names of this directory are accepted.
CKPT_INLINE bool is_plain_file_name(const std::string& name);

CKPT_INLINE std::string escape_field(const std::string& s);
CKPT_INLINE bool unescape_field(const std::string& s, std::string& out);

struct manager_state {
    std::uint64_t next_number = 1;
    std::optional<std::int64_t> preserve_anchor_ns;
    std::vector<checkpoint_record> records;  // oldest first
    std::vector<std::string> deleting;       // dropped by the policies, files perhaps not yet removed
};

CKPT_INLINE std::string format_double(double v);

CKPT_INLINE std::string encode_state(const manager_state& s);

/// Parses a state file; false for anything damaged or unsafe (then the directory is rescanned).
CKPT_INLINE bool decode_state(const std::string& text, const std::filesystem::path& dir, manager_state& s);

CKPT_INLINE std::optional<manager_state> read_state_file(const std::filesystem::path& dir);

/// Replaces the state file of `dir` with `s`, atomically.
CKPT_INLINE void write_state_file(const std::filesystem::path& dir, const manager_state& s);

/// Whether `s` records a checkpoint of this name.
inline bool lists(const manager_state& s, const std::string& name) {
    return std::any_of(s.records.begin(), s.records.end(), [&](const auto& x) { return x.name == name; });
}

/// Drops the record of this name from `s`, if any.
inline void unlist(manager_state& s, const std::string& name) {
    s.records.erase(std::remove_if(s.records.begin(), s.records.end(), [&](const auto& x) { return x.name == name; }),
                    s.records.end());
}

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
#include <ckpt/detail/hash.hpp>  // XXH3, needed by the definitions only

namespace ckpt::detail {

CKPT_INLINE std::chrono::system_clock::time_point from_ns(std::int64_t ns) {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns)));
}

CKPT_INLINE bool is_plain_file_name(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\0') == std::string::npos && name != manager_state_name && name != manager_lock_name &&
           name.find(temp_marker) == std::string::npos;
}

CKPT_INLINE std::string escape_field(const std::string& s) {
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c <= ' ' || c == '%' || c == '=' || c >= 0x7f) {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out.empty() ? "%" : out;
}

CKPT_INLINE bool unescape_field(const std::string& s, std::string& out) {
    out.clear();
    if (s == "%") return true;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return false;
        unsigned v = 0;
        if (std::sscanf(s.substr(i + 1, 2).c_str(), "%2X", &v) != 1) return false;
        out += static_cast<char>(v);
        i += 2;
    }
    return true;
}

CKPT_INLINE std::string format_double(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

CKPT_INLINE std::string encode_state(const manager_state& s) {
    std::ostringstream out;
    out << "ckpt-manager-state 1\n";
    out << "next_number " << s.next_number << "\n";
    if (s.preserve_anchor_ns) out << "preserve_anchor_ns " << *s.preserve_anchor_ns << "\n";
    for (const auto& r : s.records) {
        out << "checkpoint " << r.number << " " << escape_field(r.name) << " "
            << (r.step ? std::to_string(*r.step) : "-") << " " << to_ns(r.wall_time) << " " << (r.preserved ? 1 : 0)
            << " " << r.metrics.size();
        for (const auto& [k, v] : r.metrics) out << " " << escape_field(k) << "=" << format_double(v);
        out << " " << r.strings.size();
        for (const auto& [k, v] : r.strings) out << " " << escape_field(k) << "=" << escape_field(v);
        out << "\n";
    }
    for (const auto& name : s.deleting) out << "deleting " << escape_field(name) << "\n";
    std::string text = out.str();
    char sum[32];
    std::snprintf(sum, sizeof sum, "end %016llx\n", static_cast<unsigned long long>(hash64(text.data(), text.size())));
    return text + sum;
}

CKPT_INLINE bool decode_state(const std::string& text, const std::filesystem::path& dir, manager_state& s) {
    const auto end = text.rfind("end ");
    if (end == std::string::npos || (end > 0 && text[end - 1] != '\n')) return false;
    unsigned long long sum = 0;
    if (std::sscanf(text.c_str() + end, "end %16llx", &sum) != 1 || sum != hash64(text.data(), end)) return false;
    std::istringstream in(text.substr(0, end));
    std::string line, word;
    if (!std::getline(in, line) || line != "ckpt-manager-state 1") return false;
    s = {};
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        fields >> word;
        if (word == "next_number") {
            if (!(fields >> s.next_number)) return false;
        } else if (word == "preserve_anchor_ns") {
            std::int64_t v;
            if (!(fields >> v)) return false;
            s.preserve_anchor_ns = v;
        } else if (word == "checkpoint") {
            checkpoint_record r;
            std::string name, step;
            std::int64_t ns = 0;
            int preserved = 0;
            std::size_t n = 0;
            if (!(fields >> r.number >> name >> step >> ns >> preserved >> n) || !unescape_field(name, r.name) ||
                !is_plain_file_name(r.name))
                return false;
            if (step != "-") {
                try {
                    r.step = std::stoll(step);
                } catch (...) {
                    return false;
                }
            }
            r.wall_time = from_ns(ns);
            r.preserved = preserved == 1;
            for (std::size_t i = 0; i < n; ++i) {
                if (!(fields >> word)) return false;
                const auto eq = word.find('=');
                std::string key;
                if (eq == std::string::npos || !unescape_field(word.substr(0, eq), key)) return false;
                try {
                    r.metrics[key] = std::stod(word.substr(eq + 1));
                } catch (...) {
                    return false;
                }
            }
            if (!(fields >> n)) return false;
            for (std::size_t i = 0; i < n; ++i) {
                std::string key, value;
                if (!(fields >> word)) return false;
                const auto eq = word.find('=');
                if (eq == std::string::npos || !unescape_field(word.substr(0, eq), key) ||
                    !unescape_field(word.substr(eq + 1), value))
                    return false;
                r.strings[key] = value;
            }
            r.path = dir / r.name;
            s.records.push_back(std::move(r));
        } else if (word == "deleting") {
            std::string name, raw;
            if (!(fields >> raw) || !unescape_field(raw, name) || !is_plain_file_name(name)) return false;
            s.deleting.push_back(name);
        } else {
            return false;
        }
    }
    return true;
}

CKPT_INLINE std::optional<manager_state> read_state_file(const std::filesystem::path& dir) {
    std::error_code ec;
    const auto file = dir / manager_state_name;
    if (!std::filesystem::is_regular_file(file, ec)) return std::nullopt;
    try {
        file_descriptor fd = open_for_reading(file);
        const auto size = file_size(fd.get(), file);
        if (size > (64u << 20)) return std::nullopt;
        std::string text(static_cast<std::size_t>(size), '\0');
        pread_all(fd.get(), text.data(), text.size(), 0, file);
        manager_state s;
        if (!decode_state(text, dir, s)) return std::nullopt;
        return s;
    } catch (const error&) {
        return std::nullopt;
    }
}

CKPT_INLINE void write_state_file(const std::filesystem::path& dir, const manager_state& s) {
    const std::string text = encode_state(s);
    atomic_file file(dir / manager_state_name);
    write_all(file.fd(), text.data(), text.size(), file.temp_path());
    file.commit();
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
