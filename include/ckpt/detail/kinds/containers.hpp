#pragma once
// The containers classify tells apart: sequences (std::vector, std::array, C arrays), mappings
// (std::map, std::unordered_map from string or integer keys) and the containers kept as one cereal
// value, with the rule for sizes a restore holds every container to (container_fits).

#include <array>
#include <cstddef>
#include <map>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ckpt::detail {

template <class T>
struct sequence_of {
    using element = void;
};
template <class E, class A>
struct sequence_of<std::vector<E, A>> {
    using element = E;
    static constexpr bool fixed = false;
};
template <class E, std::size_t N>
struct sequence_of<std::array<E, N>> {
    using element = E;
    static constexpr bool fixed = true;
    static constexpr std::size_t size = N;
};
template <class E, std::size_t N>
struct sequence_of<E[N]> {
    using element = E;
    static constexpr bool fixed = true;
    static constexpr std::size_t size = N;
};

template <class K>
inline constexpr bool is_map_key_v = std::is_same_v<K, std::string> ||
                                     (std::is_integral_v<K> && !std::is_same_v<K, bool>);
template <class T>
struct mapping_of {
    using element = void;
};
template <class K, class E, class C, class A>
struct mapping_of<std::map<K, E, C, A>> {
    using key = K;
    using element = std::conditional_t<is_map_key_v<K>, E, void>;
};
template <class K, class E, class H, class Q, class A>
struct mapping_of<std::unordered_map<K, E, H, Q, A>> {
    using key = K;
    using element = std::conditional_t<is_map_key_v<K>, E, void>;
};

// A container stored as one cereal value (std::vector<std::string>, std::map<std::string, float>,
// std::set<int>, ...): a restore holds it to the rule for sizes like every other container (an
// empty one takes the file's elements, a non-empty one must have the file's size and keys).
// Strings are values, not containers: a string takes the file's whatever its length.
template <class T>
struct is_basic_string : std::false_type {};
template <class C, class Tr, class A>
struct is_basic_string<std::basic_string<C, Tr, A>> : std::true_type {};
template <class T, class = void>
struct is_sized_container : std::false_type {};
template <class T>
struct is_sized_container<T, std::void_t<typename T::value_type, decltype(std::declval<const T&>().size()),
                                         decltype(std::declval<const T&>().begin())>>
    : std::bool_constant<!is_basic_string<T>::value> {};

template <class T, class = void>
struct has_key_type : std::false_type {};
template <class T>
struct has_key_type<T,
                    std::void_t<decltype(std::declval<const T&>().count(std::declval<const typename T::key_type&>()))>>
    : std::true_type {};

/// Whether a decoded container `saved` may replace `object` under the rule for sizes.
template <class T>
bool container_fits(const T& object, const T& saved) {
    if (object.size() == 0) return true;
    if (object.size() != saved.size()) return false;
    if constexpr (has_key_type<T>::value) {
        for (const auto& item : object) {
            if constexpr (std::is_same_v<typename T::value_type, typename T::key_type>) {
                if (saved.count(item) == 0) return false;
            } else {
                if (saved.count(item.first) == 0) return false;
            }
        }
    }
    return true;
}

}  // namespace ckpt::detail
