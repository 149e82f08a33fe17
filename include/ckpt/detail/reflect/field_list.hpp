#pragma once
// The field list of a reflected struct: what CKPT_FIELDS's ckpt_fields returns (one `field` per
// listed member, name and pointer to member), how it is found (by ADL on type_tag<T>), and which
// member types no list may name (diagnose_member). Boost.PFR reflects the aggregates without one.

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include <boost/pfr.hpp>

namespace ckpt::detail {

template <class T>
struct type_tag {
    using type = T;
};

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

template <class T>
inline constexpr bool dependent_false_v = false;

template <class T>
struct is_std_function : std::false_type {};
template <class S>
struct is_std_function<std::function<S>> : std::true_type {};
template <class T>
struct is_shared_pointer : std::false_type {};
template <class E>
struct is_shared_pointer<std::shared_ptr<E>> : std::true_type {};
template <class E>
struct is_shared_pointer<std::weak_ptr<E>> : std::true_type {};
template <class T, class = void>
struct has_call_operator : std::false_type {};
template <class T>
struct has_call_operator<T, std::void_t<decltype(&T::operator())>> : std::true_type {};

/// Member types that no annotation or specialization can make checkpointable: rejected where the
/// field is named (CKPT_FIELDS), so that the compiler's note names the struct and the field.
/// `Tag` is a local struct named after the field, e.g. `ckpt_field_cache`.
template <class Tag, class M>
constexpr void diagnose_member() {
    using U = std::remove_cv_t<M>;
    if constexpr (std::is_pointer_v<U> || std::is_member_pointer_v<U>)
        static_assert(
            dependent_false_v<Tag>,
            "ckpt: a raw pointer member cannot be checkpointed: a checkpoint holds values, not addresses. "
            "Own the object (by value, std::optional<T> or std::unique_ptr<T>), or leave the pointer out with "
            "CKPT_SKIP(field) in CKPT_FIELDS and set it again after a restore");
    else if constexpr (is_shared_pointer<U>::value)
        static_assert(
            dependent_false_v<Tag>,
            "ckpt: a std::shared_ptr/weak_ptr member cannot be checkpointed: shared ownership does not survive a "
            "restore. Hold the object by value, std::optional<T> or std::unique_ptr<T>, track the shared object "
            "once under its own name, or leave the member out with CKPT_SKIP(field)");
    else if constexpr (is_std_function<U>::value)
        static_assert(dependent_false_v<Tag>,
                      "ckpt: a std::function member cannot be checkpointed (code is not state): leave it out with "
                      "CKPT_SKIP(field) in CKPT_FIELDS and set it again after a restore");
    else if constexpr (std::is_reference_v<M>)
        static_assert(dependent_false_v<Tag>,
                      "ckpt: a reference member cannot be checkpointed: track the referenced object under its own name "
                      "and leave the reference out with CKPT_SKIP(field)");
}

/// One named member: `field<dense, Eigen::MatrixXf, tag>{"kernel", &dense::kernel}`. Skipped members
/// (CKPT_SKIP) are listed, so that the completeness check sees them, but never saved or restored.
template <class Owner, class Member, class Tag, bool Skipped>
struct field {
    const char* name;
    Member Owner::*pointer;
    using tag = Tag;
    static constexpr bool skipped = Skipped;
};
template <class Tag, class Owner, class Member>
constexpr auto make_field(const char* name, Member Owner::*pointer) noexcept {
    diagnose_member<Tag, Member>();
    return field<Owner, Member, Tag, false>{name, pointer};
}
template <class Tag, class Owner, class Member>
constexpr auto make_skipped_field(const char* name, Member Owner::*pointer) noexcept {
    return field<Owner, Member, Tag, true>{name, pointer};
}

/// What ckpt_fields returns: the fields of one struct. Not a std::tuple: its constructors'
/// constraints and recursive bases were the largest part of what an annotated struct cost to
/// compile; this holds each field in a base of its own, with no recursion and no constraints.
template <std::size_t I, class F>
struct field_slot {
    F field;
};
template <class Indices, class... F>
struct field_list_of;
template <std::size_t... I, class... F>
struct field_list_of<std::index_sequence<I...>, F...> : field_slot<I, F>... {
    static constexpr std::size_t size = sizeof...(F);
    constexpr explicit field_list_of(F... f) noexcept : field_slot<I, F>{f}... {}
    /// `fn(field0, field1, ...)`
    template <class Fn>
    constexpr void apply(Fn&& fn) const {
        fn(static_cast<const field_slot<I, F>&>(*this).field...);
    }
};
template <class... F>
constexpr auto make_field_list(F... f) noexcept {
    return field_list_of<std::index_sequence_for<F...>, F...>(f...);
}
template <std::size_t I, class F>
F field_at_(const field_slot<I, F>&);
/// The type of the I-th field of a field list: `field_at_t<decltype(field_list<T>()), 0>`.
template <class List, std::size_t I>
using field_at_t = decltype(field_at_<I>(std::declval<const List&>()));

// ckpt_fields is found by ADL: type_tag<T> makes T's namespace an associated one. This declaration
// only gives unqualified lookup something to find for types that have no annotation.
void ckpt_fields(...) = delete;

template <class T, class = void>
struct has_field_list : std::false_type {};
template <class T>
struct has_field_list<T, std::void_t<decltype(ckpt_fields(type_tag<T>{}))>> : std::true_type {};

template <class T>
constexpr auto field_list() {
    return ckpt_fields(type_tag<T>{});
}

template <class T>
inline constexpr bool is_pfr_reflectable_v =
    std::is_aggregate_v<T>&& std::is_class_v<T> && !std::is_polymorphic_v<T> && !std::is_union_v<T>;

// A struct whose members make up entries: annotated, or an aggregate that PFR can take apart.
template <class T>
inline constexpr bool is_reflected_v = has_field_list<T>::value || is_pfr_reflectable_v<T>;

}  // namespace ckpt::detail
