#pragma once
// Values as `ckpt diff` compares and shows them: a tensor element as a number (element_at) and as
// text, exactly (integers in full, floating-point numbers in the shortest text that reads back), its
// logical index, and a one-line summary of a non-tensor entry's bytes: a string's text, a short
// random engine or distribution's text, a long one's (an engine's thousands of numbers) by its
// length and its block's checksum from the file (XXH3-64, equal for equal contents), small other
// bytes in hex.

#include <ckpt/ckpt.hpp>

#include <charconv>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "text.hpp"

namespace ckpt::tool {

/// The shortest text that reads back as exactly `v` as a float: `float_text(0.1f) == "0.1"`
inline std::string float_text(float v) {
    if (std::isnan(v) || std::isinf(v)) return number(v);
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

/// One element of a tensor block as text, exactly: `element_text(p, ckpt::dtype::int64) == "-3"`
inline std::string element_text(const char* p, ckpt::dtype t) {
    auto get = [p](auto v) {
        std::memcpy(&v, p, sizeof v);
        return v;
    };
    switch (t) {
        case dtype::boolean:
            return get(std::uint8_t{}) ? "true" : "false";
        case dtype::int8:
            return std::to_string(get(std::int8_t{}));
        case dtype::int16:
            return std::to_string(get(std::int16_t{}));
        case dtype::int32:
            return std::to_string(get(std::int32_t{}));
        case dtype::int64:
            return std::to_string(get(std::int64_t{}));
        case dtype::uint8:
        case dtype::bytes:
            return std::to_string(get(std::uint8_t{}));
        case dtype::uint16:
            return std::to_string(get(std::uint16_t{}));
        case dtype::uint32:
            return std::to_string(get(std::uint32_t{}));
        case dtype::uint64:
            return std::to_string(get(std::uint64_t{}));
        case dtype::float16:
            return float_text(static_cast<float>(get(Eigen::half{})));
        case dtype::bfloat16:
            return float_text(static_cast<float>(get(Eigen::bfloat16{})));
        case dtype::float32:
            return float_text(get(float{}));
        case dtype::float64:
            return number(get(double{}));
        case dtype::complex64: {
            const auto c = get(std::complex<float>{});
            return "(" + float_text(c.real()) + "," + float_text(c.imag()) + ")";
        }
        case dtype::complex128: {
            const auto c = get(std::complex<double>{});
            return "(" + number(c.real()) + "," + number(c.imag()) + ")";
        }
    }
    return "?";
}

/// The logical index of the element at position `i` of a block in its stored order:
/// `element_index(5, ckpt::shape{2, 3}, false) == "[1,2]"`; "" for a scalar.
inline std::string element_index(std::uint64_t i, const ckpt::shape& s, bool column_major) {
    if (s.rank() == 0) return "";
    std::uint64_t index[ckpt::shape::max_rank] = {};
    const bool first_fastest = column_major && s.rank() > 1;
    for (std::size_t k = 0; k < s.rank(); ++k) {
        const std::size_t d = first_fastest ? k : s.rank() - 1 - k;
        index[d] = s[d] ? i % s[d] : 0;
        i = s[d] ? i / s[d] : 0;
    }
    std::string out = "[";
    for (std::size_t d = 0; d < s.rank(); ++d) out += (d ? "," : "") + std::to_string(index[d]);
    return out + "]";
}

/// Bytes longer than this are summarized, not shown.
inline constexpr std::size_t shown_bytes = 64;

/// A string in cereal's binary encoding, as ckpt writes a std::string: a u64 length, then exactly
/// that many bytes. Other serialized values can look the same; the summary says "string" only then.
inline bool looks_like_string(std::string_view b, std::string_view& text) {
    std::uint64_t n = 0;
    if (b.size() < sizeof n) return false;
    std::memcpy(&n, b.data(), sizeof n);
    if (n != b.size() - sizeof n) return false;
    text = b.substr(sizeof n);
    return true;
}

/// What `ckpt diff` shows of a non-tensor entry's bytes `b`: `"abc"` for a string, the text of a
/// short random engine or distribution, "random engine state: 625 numbers, checksum 1a2b..." for a
/// long one, small other bytes in hex, else a length and checksum (the entry's, from the file).
inline std::string bytes_summary(const ckpt::entry_info& e, std::string_view b) {
    const auto kind = e.kind;
    char hash[40];
    std::snprintf(hash, sizeof hash, "checksum %016llx", static_cast<unsigned long long>(e.checksum));
    std::string_view text;
    if (kind == entry_kind::serialized && looks_like_string(b, text)) {
        if (text.size() <= shown_bytes) return "\"" + printable(text) + "\"";
        return "a string of " + std::to_string(text.size()) + " bytes, " + hash;
    }
    if (kind == entry_kind::text) {
        if (b.size() <= shown_bytes) return "'" + printable(b) + "'";
        std::size_t numbers = 0;
        for (std::size_t i = 0; i < b.size(); ++i)
            if (b[i] != ' ' && (i == 0 || b[i - 1] == ' ')) ++numbers;
        return "random engine state: " + std::to_string(numbers) + " numbers, " + hash;
    }
    if (b.size() <= 32) {
        std::string hex = "bytes ";
        for (const char c : b) {
            char x[4];
            std::snprintf(x, sizeof x, "%02x", static_cast<unsigned char>(c));
            hex += x;
        }
        return b.empty() ? "no bytes" : hex;
    }
    return std::to_string(b.size()) + " bytes, " + hash;
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

}  // namespace ckpt::tool
