#pragma once
// The checks of a CKPT_FIELDS list against the struct it names: every field, in declaration order,
// at compile time where Boost.PFR and offsetof can tell, else once per type at run time by address
// (check_field_addresses). Each failure is a static_assert whose note names the struct and field.

#include <any>
#include <array>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include <boost/pfr.hpp>

#include <ckpt/detail/reflect/field_list.hpp>
#include <ckpt/error.hpp>

namespace ckpt::detail {

template <class T, class Field>
using member_type_t =
    std::remove_cv_t<std::remove_reference_t<decltype(std::declval<T&>().*(std::declval<Field>().pointer))>>;

template <class T, std::size_t... I>
constexpr bool field_types_match(std::index_sequence<I...>) {
    using list = decltype(field_list<T>());
    return (std::is_same_v<member_type_t<T, field_at_t<list, I>>, boost::pfr::tuple_element_t<I, T>> && ...);
}

// Named templates so that the compiler's note shows the numbers, listed then declared:
// "fields_listed_of_declared<dense, 3, 4>" (3 of 4 fields). `value` is not inherited: g++'s note
// would name integral_constant instead.
template <class T, std::size_t Listed, std::size_t Declared>
struct fields_listed_of_declared {
    static constexpr bool value = Listed == Declared;
};
template <class T, bool InDeclarationOrder>
struct field_order_matches : std::bool_constant<InDeclarationOrder> {};

template <class M>
struct is_std_array_of_classes : std::false_type {};
template <class E, std::size_t N>
struct is_std_array_of_classes<std::array<E, N>> : std::is_class<E> {};
template <class M>
struct is_template_wrapper : std::false_type {};
template <class E>
struct is_template_wrapper<std::optional<E>> : std::true_type {};
template <class... E>
struct is_template_wrapper<std::variant<E...>> : std::true_type {};
template <>
struct is_template_wrapper<std::any> : std::true_type {};
template <class S>
struct is_template_wrapper<std::function<S>> : std::true_type {};

/// Members Boost.PFR cannot count: C arrays (it counts their elements); std::array of structs, on
/// which g++ 12 crashes inside PFR; wrappers with converting constructors (std::optional of an
/// Eigen type makes PFR's probe ambiguous, deep inside Eigen); members that cannot be copied or
/// moved (a mutex). Structs listing one of them skip the PFR checks: only the declaration order is
/// checked for them, by offsets.
template <class M>
inline constexpr bool pfr_cannot_count_v = std::is_array_v<M> || is_std_array_of_classes<M>::value ||
                                           is_template_wrapper<M>::value || !std::is_move_constructible_v<M>;

template <class T, std::size_t... I>
constexpr bool lists_member_pfr_cannot_count(std::index_sequence<I...>) {
    using list = decltype(field_list<T>());
    return (pfr_cannot_count_v<member_type_t<T, field_at_t<list, I>>> || ...);
}

template <class T>
constexpr bool pfr_can_check() {
    if constexpr (!is_pfr_reflectable_v<T>)
        return false;
    else
        return !lists_member_pfr_cannot_count<T>(std::make_index_sequence<decltype(field_list<T>())::size>{});
}

/// Compile-time check run by CKPT_FIELDS: for an aggregate, the list must name every field, in
/// declaration order. Non-aggregates (classes with constructors, private members) are trusted, and
/// so are structs with members Boost.PFR cannot take apart (see pfr_cannot_count_v).
template <class T>
constexpr bool check_field_list() {
    static_assert(has_field_list<T>::value,
                  "ckpt: CKPT_FIELDS(Type, ...) must be written in the namespace that declares Type (ckpt finds it by "
                  "argument-dependent lookup), right after the type; for a class nested in another class, write "
                  "CKPT_FIELDS_INTRUSIVE(Type, ...) inside it instead");
    if constexpr (has_field_list<T>::value) {
        if constexpr (pfr_can_check<T>()) {
            constexpr std::size_t listed = decltype(field_list<T>())::size;
            constexpr std::size_t declared = boost::pfr::tuple_size_v<T>;
            static_assert(fields_listed_of_declared<T, listed, declared>::value,
                          "ckpt: CKPT_FIELDS must name every field of the struct, in declaration order; "
                          "this list has a different number of fields than the struct declares (the note "
                          "fields_listed_of_declared<Type, listed, declared> gives both counts). Leave a field "
                          "out of the checkpoint with CKPT_SKIP(field) in the list");
            if constexpr (listed == declared) {
                static_assert(field_order_matches<T, field_types_match<T>(std::make_index_sequence<listed>{})>::value,
                              "ckpt: CKPT_FIELDS must name the fields in declaration order; the types of the "
                              "listed fields differ from the declared ones at some position");
            }
        }
    }
    return true;
}

/// What CKPT_FIELDS's probe is called with: the list's members as pointers to members of T. The
/// probe is a generic lambda whose return type names them all, so a member the namespace scope
/// cannot name (private, protected, or not there) makes it not invocable instead of an error.
template <class... Members>
constexpr bool names_members(Members...) noexcept {
    return true;
}
template <class T, class Probe>
constexpr bool members_accessible(Probe) noexcept {
    return std::is_invocable_v<Probe, T*>;
}

/// Index of the first offset not above the one before it; the number of offsets when all ascend.
template <class... Offsets>
constexpr std::size_t first_out_of_order(Offsets... offsets) {
    const std::size_t list[] = {static_cast<std::size_t>(offsets)...};
    for (std::size_t i = 1; i < sizeof...(Offsets); ++i)
        if (list[i] <= list[i - 1]) return i;
    return sizeof...(Offsets);
}
template <class List, std::size_t I, bool = (I < List::size)>
struct field_tag_at {
    using type = void;
};
template <class List, std::size_t I>
struct field_tag_at<List, I, true> {
    using type = typename field_at_t<List, I>::tag;
};

// The note names the struct and the first field listed too early, as a local struct named after
// it: "listed_in_declaration_order<adam_state, ckpt_fields(...)::ckpt_field_lr, false>".
template <class T, class FirstOutOfOrder, bool Ok>
struct listed_in_declaration_order {
    static constexpr bool value = Ok;  // not inherited: the note would name integral_constant instead
};

template <class T, std::size_t FirstOutOfOrder>
constexpr bool check_field_order() {
    if constexpr (has_field_list<T>::value) {
        using list = decltype(field_list<T>());
        static_assert(listed_in_declaration_order<T, typename field_tag_at<list, FirstOutOfOrder>::type,
                                                  (!is_pfr_reflectable_v<T> || FirstOutOfOrder == list::size)>::value,
                      "ckpt: CKPT_FIELDS must list the fields in declaration order; the note names the struct and "
                      "the first field listed after one that the struct declares later");
    }
    return true;
}

/// What CKPT_FIELDS's ckpt_fields_checked returns: its list's order was checked at compile time, by
/// offsets (see check_field_order), so check_field_addresses has nothing left to do for it.
struct order_checked_at_compile_time {};

// Found by ADL, like ckpt_fields; this declaration only gives unqualified lookup something to find.
void ckpt_fields_checked(...) = delete;

template <class T, class = void>
struct order_checked : std::false_type {};
template <class T>
struct order_checked<T, std::void_t<decltype(ckpt_fields_checked(type_tag<T>{}))>>
    : std::is_same<decltype(ckpt_fields_checked(type_tag<T>{})), order_checked_at_compile_time> {};

/// Fields of the same type listed in swapped order cannot be told apart by type: the offsets
/// compared at compile time (CKPT_FIELDS) catch them for aggregates. For CKPT_FIELDS_INTRUSIVE on an
/// aggregate this compares addresses once per type at run time instead (inside the class the
/// offsets are not known yet). One pass of Boost.PFR collects the declared addresses: a pass per
/// listed field cost a Boost.PFR instantiation each, in every translation unit.
template <class T>
void check_field_addresses(const T& object) {
    if constexpr (has_field_list<T>::value && pfr_can_check<T>() && !order_checked<T>::value) {
        constexpr auto list = field_list<T>();
        const void* declared[boost::pfr::tuple_size_v<T> + 1] = {};
        boost::pfr::for_each_field(object, [&](const auto& member, std::size_t index) { declared[index] = &member; });
        list.apply([&](const auto&... f) {
            std::size_t i = 0;
            auto check_one = [&](const char* name, const void* listed) {
                if (listed != declared[i])
                    throw error(std::string("CKPT_FIELDS lists '") + name + "' as field " + std::to_string(i) +
                                " but the struct declares it elsewhere: list the fields in declaration order");
                ++i;
            };
            (check_one(f.name, &(object.*(f.pointer))), ...);
        });
    }
}

}  // namespace ckpt::detail
