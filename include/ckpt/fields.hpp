#pragma once
// Reflection: which members of a user type make up its checkpointed state, and under which names.
//
// Two sources, in this order of preference:
//   1. CKPT_FIELDS(Type, a, b, ...) at namespace scope (or CKPT_FIELDS_INTRUSIVE inside a class with
//      private members) names the fields. It generates `ckpt_fields(ckpt::detail::type_tag<Type>)`,
//      found by argument-dependent lookup from the user's namespace.
//   2. Any other aggregate is reflected by Boost.PFR, its fields named by position: "0", "1", ...

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include <boost/pfr.hpp>

#include <ckpt/detail/map_macro.hpp>
#include <ckpt/error.hpp>

namespace ckpt::detail {

template <class T> struct type_tag { using type = T; };

// Positional names "0".."255", built once: PFR gives the index, entry paths want text.
struct positional_name_table {
    char text[256][4]{};
    constexpr positional_name_table() {
        for (int i = 0; i < 256; ++i) {
            int len = 0;
            if (i >= 100) text[i][len++] = static_cast<char>('0' + i / 100);
            if (i >= 10) text[i][len++] = static_cast<char>('0' + i / 10 % 10);
            text[i][len++] = static_cast<char>('0' + i % 10);
        }
    }
    constexpr const char* operator[](std::size_t i) const { return text[i]; }
};
inline constexpr positional_name_table positional_names{};

/// One named member: `field<dense, Eigen::MatrixXf>{"kernel", &dense::kernel}`.
template <class Owner, class Member>
struct field {
    const char* name;
    Member Owner::*pointer;
};
template <class Owner, class Member>
constexpr field<Owner, Member> make_field(const char* name, Member Owner::*pointer) noexcept {
    return {name, pointer};
}

// ckpt_fields is found by ADL: type_tag<T> makes T's namespace an associated one. This declaration
// only gives unqualified lookup something to find for types that have no annotation.
void ckpt_fields(...) = delete;

template <class T, class = void> struct has_field_list : std::false_type {};
template <class T>
struct has_field_list<T, std::void_t<decltype(ckpt_fields(type_tag<T>{}))>> : std::true_type {};

template <class T>
constexpr auto field_list() { return ckpt_fields(type_tag<T>{}); }

template <class T>
inline constexpr bool is_pfr_reflectable_v =
    std::is_aggregate_v<T> && std::is_class_v<T> && !std::is_polymorphic_v<T> && !std::is_union_v<T>;

// A struct whose members make up entries: annotated, or an aggregate that PFR can take apart.
template <class T>
inline constexpr bool is_reflected_v = has_field_list<T>::value || is_pfr_reflectable_v<T>;

template <class T, std::size_t... I>
constexpr bool field_types_match(std::index_sequence<I...>) {
    using list = decltype(field_list<T>());
    return (std::is_same_v<
                std::remove_cv_t<std::remove_reference_t<decltype(std::declval<T&>().*(std::get<I>(std::declval<list>()).pointer))>>,
                boost::pfr::tuple_element_t<I, T>> && ...);
}

// Named templates so that the compiler's note shows the numbers: "field_count_matches<dense, 1, 2>".
template <class T, std::size_t Listed, std::size_t Declared>
struct field_count_matches : std::bool_constant<Listed == Declared> {};
template <class T, bool InDeclarationOrder>
struct field_order_matches : std::bool_constant<InDeclarationOrder> {};

template <class M> struct is_std_array_of_classes : std::false_type {};
template <class E, std::size_t N> struct is_std_array_of_classes<std::array<E, N>> : std::is_class<E> {};

// Members Boost.PFR cannot count: C arrays (it counts their elements), and std::array of structs,
// on which g++ 12 crashes inside PFR's field counting. Structs listing them skip the PFR checks.
template <class T, std::size_t... I>
constexpr bool lists_c_array(std::index_sequence<I...>) {
    using list = decltype(field_list<T>());
    return ((std::is_array_v<std::remove_reference_t<decltype(std::declval<T&>().*(std::get<I>(std::declval<list>()).pointer))>> ||
             is_std_array_of_classes<std::remove_cv_t<std::remove_reference_t<decltype(std::declval<T&>().*(std::get<I>(std::declval<list>()).pointer))>>>::value) ||
            ...);
}

/// Compile-time check run by CKPT_FIELDS: for an aggregate, the list must name every field, in
/// declaration order. Non-aggregates (classes with constructors, private members) are trusted, and
/// so are structs with members Boost.PFR cannot take apart (see lists_c_array).
template <class T>
constexpr bool check_field_list() {
    constexpr std::size_t count = std::tuple_size_v<decltype(field_list<T>())>;
    if constexpr (is_pfr_reflectable_v<T> && !lists_c_array<T>(std::make_index_sequence<count>{})) {
        constexpr std::size_t listed = std::tuple_size_v<decltype(field_list<T>())>;
        constexpr std::size_t declared = boost::pfr::tuple_size_v<T>;
        static_assert(field_count_matches<T, listed, declared>::value,
                      "ckpt: CKPT_FIELDS must name every field of the struct, in declaration order; "
                      "this list has a different number of fields than the struct declares");
        if constexpr (listed == declared) {
            static_assert(field_order_matches<T, field_types_match<T>(std::make_index_sequence<listed>{})>::value,
                          "ckpt: CKPT_FIELDS must name the fields in declaration order; the types of the "
                          "listed fields differ from the declared ones at some position");
        }
    }
    return true;
}

/// Fields of the same type listed in swapped order cannot be told apart by type at compile time;
/// this compares addresses once per type at run time instead.
template <class T>
void check_field_addresses(const T& object) {
    if constexpr (has_field_list<T>::value && is_pfr_reflectable_v<T> &&
                  !lists_c_array<T>(std::make_index_sequence<std::tuple_size_v<decltype(field_list<T>())>>{})) {
        constexpr auto list = field_list<T>();
        std::apply([&](const auto&... f) {
            std::size_t i = 0;
            auto check_one = [&](const auto& one) {
                const void* listed = &(object.*(one.pointer));
                const void* declared = nullptr;
                boost::pfr::for_each_field(object, [&](auto& member, std::size_t index) {
                    if (index == i) declared = &member;
                });
                if (listed != declared)
                    throw error(std::string("CKPT_FIELDS lists '") + one.name + "' as field " + std::to_string(i) +
                                " but the struct declares it elsewhere: list the fields in declaration order");
                ++i;
            };
            (check_one(f), ...);
        }, list);
    }
}

/// Calls `visit(name, member)` for every checkpointed member of `object`, in order.
template <class T, class Visit>
void for_each_field(T& object, Visit&& visit) {
    using plain = std::remove_const_t<T>;
    if constexpr (has_field_list<plain>::value) {
        static const bool addresses_checked = (check_field_addresses<plain>(object), true);
        (void)addresses_checked;
        constexpr auto list = field_list<plain>();
        std::apply([&](const auto&... f) { (visit(std::string_view(f.name), object.*(f.pointer)), ...); }, list);
    } else {
        static_assert(is_pfr_reflectable_v<plain>,
                      "ckpt: this type is neither annotated nor an aggregate; add CKPT_FIELDS(Type, fields...) "
                      "after it, or CKPT_FIELDS_INTRUSIVE(Type, fields...) inside it");
        boost::pfr::for_each_field(object, [&](auto& member, std::size_t index) {
            visit(std::string_view(positional_names[index]), member);
        });
    }
}


}  // namespace ckpt::detail

#define CKPT_DETAIL_FIELD(Type, name) ::ckpt::detail::make_field(#name, &Type::name)

/// Names the checkpointed fields of a struct, at namespace scope after its definition, in the
/// struct's own namespace: `struct dense { Eigen::MatrixXf kernel; Eigen::VectorXf bias; };`
/// `CKPT_FIELDS(dense, kernel, bias)`. For an aggregate, leaving out a field or changing the
/// order is a compile error.
#define CKPT_FIELDS(Type, ...)                                                                   \
    [[maybe_unused]] constexpr auto ckpt_fields(::ckpt::detail::type_tag<Type>) noexcept {       \
        return ::std::make_tuple(CKPT_DETAIL_MAP(CKPT_DETAIL_FIELD, Type, __VA_ARGS__));         \
    }                                                                                            \
    [[maybe_unused]] constexpr bool ckpt_fields_checked(::ckpt::detail::type_tag<Type>) noexcept { \
        static_assert(::ckpt::detail::check_field_list<Type>());                                 \
        return true;                                                                             \
    }

/// The same inside a class, for classes with private members:
/// `class layer { Eigen::MatrixXf w_; public: CKPT_FIELDS_INTRUSIVE(layer, w_) };`
#define CKPT_FIELDS_INTRUSIVE(Type, ...)                                                          \
    friend constexpr auto ckpt_fields(::ckpt::detail::type_tag<Type>) noexcept {                  \
        return ::std::make_tuple(CKPT_DETAIL_MAP(CKPT_DETAIL_FIELD, Type, __VA_ARGS__));          \
    }                                                                                             \
    friend constexpr bool ckpt_fields_checked(::ckpt::detail::type_tag<Type>) noexcept {          \
        static_assert(::ckpt::detail::check_field_list<Type>());                                  \
        return true;                                                                              \
    }
