#pragma once
// Bounds on the saved state of std distributions whose state has a variable length, checked
// before their operator>> reserves what the text claims.

#include <charconv>
#include <cstdint>
#include <random>
#include <string_view>
#include <system_error>
#include <type_traits>

#include <ckpt/detail/config.hpp>

namespace ckpt::detail {

// The std distributions whose state has a variable length: their text starts with a count that
// libstdc++'s operator>> reserves before it reads a value.
template <class T>
struct is_variable_distribution : std::false_type {};
template <class I>
struct is_variable_distribution<std::discrete_distribution<I>> : std::true_type {};
template <class R>
struct is_variable_distribution<std::piecewise_constant_distribution<R>> : std::true_type {};
template <class R>
struct is_variable_distribution<std::piecewise_linear_distribution<R>> : std::true_type {};

/// True when the first number of `text` is at most the count of numbers after it: each value
/// the count announces takes at least one number of text.
CKPT_INLINE bool count_fits_text(std::string_view text);

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE bool count_fits_text(std::string_view text) {
    auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
    std::size_t i = 0;
    while (i < text.size() && is_space(text[i])) ++i;
    std::uint64_t count = 0;
    const auto [p, ec] = std::from_chars(text.data() + i, text.data() + text.size(), count);
    if (ec != std::errc()) return false;
    std::uint64_t tokens = 0;
    bool in_token = false;
    for (const char* c = p; c != text.data() + text.size(); ++c) {
        if (is_space(*c))
            in_token = false;
        else if (!in_token) {
            in_token = true;
            ++tokens;
        }
    }
    return count <= tokens;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
