#pragma once
// Map keys in entry paths. A key becomes one path segment: '%', '/' and NUL are percent-escaped,
// and "", "." and ".." get spellings of their own, so any key makes a valid, unique segment. The
// raw keys are also stored in the map's own entry, so reading never needs to unescape.

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/layout.hpp>

namespace ckpt::detail {

CKPT_INLINE std::string key_segment(std::string_view key);

template <class K>
std::string key_text(const K& key) {
    if constexpr (std::is_same_v<K, std::string>)
        return key;
    else
        return std::to_string(key);
}

/// Parses a key back to K; false when the text is not a K (a hostile or mismatched file).
template <class K>
bool parse_key(const std::string& text, K& out) {
    if constexpr (std::is_same_v<K, std::string>) {
        out = text;
        return true;
    } else {
        const auto* end = text.data() + text.size();
        auto [p, ec] = std::from_chars(text.data(), end, out);
        return ec == std::errc() && p == end && !text.empty();
    }
}

/// A mapping entry's block: for each key, u32 length then its bytes.
CKPT_INLINE void encode_keys(const std::vector<std::string>& keys, std::string& out);

/// Splits a key block; false when lengths do not add up or the count is not `expected`.
CKPT_INLINE bool decode_keys(std::string_view block, std::uint64_t expected, std::vector<std::string>& keys);

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE std::string key_segment(std::string_view key) {
    if (key.empty()) return "%";
    if (key == ".") return "%2E";
    if (key == "..") return "%2E%2E";
    std::string s;
    s.reserve(key.size());
    for (char c : key) {
        if (c == '%')
            s += "%25";
        else if (c == '/')
            s += "%2F";
        else if (c == '\0')
            s += "%00";
        else
            s += c;
    }
    return s;
}

CKPT_INLINE void encode_keys(const std::vector<std::string>& keys, std::string& out) {
    out.clear();
    for (const auto& k : keys) {
        const auto n = static_cast<std::uint32_t>(k.size());
        out.append(reinterpret_cast<const char*>(&n), 4);
        out += k;
    }
}

CKPT_INLINE bool decode_keys(std::string_view block, std::uint64_t expected, std::vector<std::string>& keys) {
    keys.clear();
    while (!block.empty()) {
        if (block.size() < 4 || keys.size() == expected) return false;
        const auto n = get<std::uint32_t>(block.data());
        block.remove_prefix(4);
        if (n > block.size()) return false;
        keys.emplace_back(block.substr(0, n));
        block.remove_prefix(n);
    }
    return keys.size() == expected;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
