#pragma once
// Text as every command of the `ckpt` tool writes it: names and strings escaped for terminals
// (printable) and for JSON (json_string), numbers that read back exactly (number, json_number),
// times in ISO 8601 (iso_time).

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>
#include <string_view>

namespace ckpt::tool {

inline std::string iso_time(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/// Length of the well-formed UTF-8 sequence starting at s[i] (overlong forms, surrogates and code
/// points above U+10FFFF are not well-formed), or 0.
inline std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned c = byte(i);
    if (c < 0x80) return 1;
    std::size_t n;
    unsigned lo = 0x80, hi = 0xbf;  // the allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else
        return 0;
    if (i + n > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if ((byte(i + k) & 0xc0) != 0x80) return 0;
    return n;
}

/// True for the C1 control characters U+0080..U+009F (encoded C2 80..C2 9F): some terminals obey them.
inline bool is_c1_control(std::string_view s, std::size_t i) noexcept {
    return static_cast<unsigned char>(s[i]) == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xa0;
}

/// The code point of the well-formed UTF-8 sequence of `n` bytes at s[i].
inline char32_t code_point(std::string_view s, std::size_t i, std::size_t n) noexcept {
    const auto byte = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k])); };
    if (n == 1) return byte(0);
    char32_t c = byte(0) & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
    for (std::size_t k = 1; k < n; ++k) c = (c << 6) | (byte(k) & 0x3f);
    return c;
}

/// True for the invisible characters that reorder or break the text around them: the bidirectional
/// controls (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069; a U+202E in a name makes
/// "evil\u202eexe.txt" print as "eviltxt.exe"), the line and paragraph separators and the BOM.
inline bool is_format_control(char32_t c) noexcept {
    return c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) ||
           c == 0x2028 || c == 0x2029 || c == 0xfeff;
}

/// The escape of a format control: `\u202e`.
inline std::string unicode_escape(char32_t c) {
    char b[12];
    std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(c));
    return b;
}

/// Text that is safe to print on a terminal: control characters (C0, DEL, C1), invalid UTF-8 and
/// the backslash become \xNN escapes, and bidirectional and other format controls \uNNNN escapes,
/// so a name cannot move the cursor, change colours or reorder what is printed around it, and
/// two different names never print the same. `printable("a\x1b[2J") == "a\\x1b[2J"`
inline std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence(s, i);
        const auto c = static_cast<unsigned char>(s[i]);
        if (n > 1 && is_format_control(code_point(s, i, n))) {
            out += unicode_escape(code_point(s, i, n));
            i += n;
        } else if (n == 0 || c < 0x20 || c == 0x7f || c == '\\' || is_c1_control(s, i)) {
            const std::size_t bytes = n ? n : 1;
            for (std::size_t k = 0; k < bytes; ++k) {
                char b[8];
                std::snprintf(b, sizeof b, "\\x%02x", static_cast<unsigned char>(s[i + k]));
                out += b;
            }
            i += bytes;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

/// `s` as UTF-8 whatever its bytes: a byte that is not part of well-formed UTF-8 becomes the code
/// point of the same value (U+0080 to U+00FF), as json_string writes it. `as_utf8("\xff") == "\xc3\xbf"`
inline std::string as_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence(s, i);
        if (n) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            const auto c = static_cast<unsigned char>(s[i++]);
            out += static_cast<char>(0xc0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3f));
        }
    }
    return out;
}

/// A JSON string literal. Valid JSON whatever the bytes: a byte that is not part of well-formed
/// UTF-8 is written as the code point of the same value (\u00NN), the only lossy case.
inline std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        const std::size_t n = utf8_sequence(s, i);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (n == 0 || c < 0x20 || c == 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            out += b;
        } else if (n > 1 && is_format_control(code_point(s, i, n))) {  // the same code point, shown escaped
            out += unicode_escape(code_point(s, i, n));
            i += n;
            continue;
        } else {
            out.append(s.substr(i, n));
            i += n;
            continue;
        }
        ++i;
    }
    return out + "\"";
}

/// The shortest decimal text that reads back as exactly `v` (std::to_chars); "nan", "inf", "-inf"
/// for the values that have no decimal form. `number(3e-7) == "3e-07"`
inline std::string number(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

/// A number in JSON: JSON has no NaN or infinity, so those are the strings "nan", "inf", "-inf"
/// (Python: float(x) reads both forms back).
inline std::string json_number(double v) { return std::isfinite(v) ? number(v) : "\"" + number(v) + "\""; }

/// A JSON object of metrics, each read back exactly: `{"loss":0.25,"acc":"nan"}`
inline std::string json_object(const std::map<std::string, double>& values) {
    std::string out = "{";
    for (const auto& [k, v] : values) out += (out.size() > 1 ? "," : "") + json_string(k) + ":" + json_number(v);
    return out + "}";
}

/// A JSON object of strings: `{"git":"1a2b3c"}`
inline std::string json_object(const std::map<std::string, std::string>& values) {
    std::string out = "{";
    for (const auto& [k, v] : values) out += (out.size() > 1 ? "," : "") + json_string(k) + ":" + json_string(v);
    return out + "}";
}

}  // namespace ckpt::tool
