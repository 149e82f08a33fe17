#pragma once
// The text storage kind: types whose whole state round-trips through `os << value` and
// `is >> value`, stored as that text (the standard random engines and distributions).
// ckpt::is_text_serialized is the customization point.

#include <cstddef>
#include <random>
#include <type_traits>
#include <utility>

namespace ckpt {

/// Customization point: specialize as true_type for a type whose whole state round-trips through
/// `os << value` and `is >> value` (the standard engines and distributions already are).
template <class T, class = void>
struct is_text_serialized : std::false_type {};

template <class U, U a, U c, U m>
struct is_text_serialized<std::linear_congruential_engine<U, a, c, m>> : std::true_type {};
template <class U, std::size_t w, std::size_t n, std::size_t m, std::size_t r, U a, std::size_t u, U d, std::size_t s,
          U b, std::size_t t, U c, std::size_t l, U f>
struct is_text_serialized<std::mersenne_twister_engine<U, w, n, m, r, a, u, d, s, b, t, c, l, f>> : std::true_type {};
template <class U, std::size_t w, std::size_t s, std::size_t r>
struct is_text_serialized<std::subtract_with_carry_engine<U, w, s, r>> : std::true_type {};
template <class E, std::size_t p, std::size_t r>
struct is_text_serialized<std::discard_block_engine<E, p, r>> : std::true_type {};
template <class E, std::size_t w, class U>
struct is_text_serialized<std::independent_bits_engine<E, w, U>> : std::true_type {};
template <class E, std::size_t k>
struct is_text_serialized<std::shuffle_order_engine<E, k>> : std::true_type {};
// Distributions carry state too (normal_distribution caches its second value).
template <class T>
struct is_text_serialized<T, std::void_t<typename T::param_type, typename T::result_type,
                                         decltype(std::declval<T&>().reset()), decltype(std::declval<T&>().param())>>
    : std::true_type {};

}  // namespace ckpt
