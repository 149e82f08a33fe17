#pragma once
// Reflection: which members of a user type make up its checkpointed state, and under which names.
//
// Two sources, in this order of preference:
//   1. CKPT_FIELDS(Type, a, b, ...) at namespace scope (or CKPT_FIELDS_INTRUSIVE inside a class with
//      private members) names the fields. It generates `ckpt_fields(ckpt::detail::type_tag<Type>)`,
//      found by argument-dependent lookup from the user's namespace.
//   2. Any other aggregate is reflected by Boost.PFR, its fields named by position: "0", "1", ...

#include <any>
#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include <boost/pfr.hpp>

#include <ckpt/detail/map_macro.hpp>
#include <ckpt/error.hpp>

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

/// A checkpointed member as a walk meets it: its name, its address, and the walk's function for
/// its type. That function is shared by every struct with a member of the type, so a struct costs
/// a walk one small array built in place rather than a function (and a lambda) per field and walk.
template <class Walk>
struct erased_field {
    std::string_view name;
    void* member;                        // of a const object in a save walk: only read, through `visit`
    void (*visit)(Walk&, void* member);  // null for a skipped field
};

// The walk's function for members of type M: `Walk::visit_erased<M>`; none for a skipped field, whose
// type need not be checkpointable (a std::function, a mutex).
template <class Walk, class M, bool Skipped>
struct field_visitor {
    static constexpr void (*value)(Walk&, void*) = &Walk::template visit_erased<M>;
};
template <class Walk, class M>
struct field_visitor<Walk, M, true> {
    static constexpr void (*value)(Walk&, void*) = nullptr;
};

inline void* erased_address(const void* member) noexcept { return const_cast<void*>(member); }

/// The loop behind both walks' `fields()`: each member through its walk function, under its name
/// appended to the walk's `path` (skipped members, with no function, are passed over).
template <class Walk>
void walk_erased_fields(Walk& walk, std::string& path, const erased_field<Walk>* list, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        if (!list[i].visit) continue;
        const auto size = path.size();
        path += '/';
        path += list[i].name;
        list[i].visit(walk, list[i].member);
        path.resize(size);
    }
}

// Fills an erased_field per member from Boost.PFR; a class, not a lambda, so that its call operator
// is instantiated once per walk and member type rather than once per struct too.
template <class Walk>
struct pfr_field_collector {
    erased_field<Walk>* out;
    template <class M>
    void operator()(M& member, std::size_t index) const {
        out[index] = {std::string_view(positional_names[index]), erased_address(std::addressof(member)),
                      field_visitor<Walk, M, false>::value};
    }
};

/// Calls `walk.fields(list, n)` with the checkpointed members of `object`, in order (skipped ones
/// with a null `visit`).
template <class Walk, class T>
void walk_fields(Walk& walk, T& object) {
    using plain = std::remove_const_t<T>;
    if constexpr (has_field_list<plain>::value) {
        if constexpr (!order_checked<plain>::value) {
            static const bool addresses_checked = (check_field_addresses<plain>(object), true);
            (void)addresses_checked;
        }
        constexpr auto list = field_list<plain>();
        list.apply([&](const auto&... f) {
            const erased_field<Walk> fields[] = {
                {std::string_view(f.name), erased_address(std::addressof(object.*(f.pointer))),
                 field_visitor<Walk, std::remove_reference_t<decltype(object.*(f.pointer))>,
                               std::decay_t<decltype(f)>::skipped>::value}...,
                {}};
            walk.fields(fields, sizeof...(f));
        });
    } else {
        static_assert(is_pfr_reflectable_v<plain>,
                      "ckpt: this type is neither annotated nor an aggregate; add CKPT_FIELDS(Type, fields...) "
                      "after it, or CKPT_FIELDS_INTRUSIVE(Type, fields...) inside it");
        constexpr std::size_t n = boost::pfr::tuple_size_v<plain>;
        erased_field<Walk> fields[n + 1] = {};
        boost::pfr::for_each_field(object, pfr_field_collector<Walk>{fields});
        walk.fields(fields, n);
    }
}

}  // namespace ckpt::detail

// A list item is a field name, or `(name)` made by CKPT_SKIP(name): told apart by a probe that
// only a parenthesized item turns into two arguments.
#define CKPT_DETAIL_SECOND(a, b, ...) b
#define CKPT_DETAIL_PAREN_PROBE(...) ~, 1
#define CKPT_DETAIL_IS_PAREN(x) CKPT_DETAIL_IS_PAREN_(CKPT_DETAIL_PAREN_PROBE x, 0, ~)
#define CKPT_DETAIL_IS_PAREN_(...) CKPT_DETAIL_SECOND(__VA_ARGS__)
#define CKPT_DETAIL_ID(x) x
#define CKPT_DETAIL_STR(x) #x
#define CKPT_DETAIL_FIELD(Type, x) CKPT_DETAIL_CAT(CKPT_DETAIL_FIELD_, CKPT_DETAIL_IS_PAREN(x))(Type, x)
#define CKPT_DETAIL_FIELD_0(Type, name) ::ckpt::detail::make_field<struct ckpt_field_##name>(#name, &Type::name)
#define CKPT_DETAIL_FIELD_1(Type, x) CKPT_DETAIL_SKIPPED_(Type, CKPT_DETAIL_ID x)
#define CKPT_DETAIL_SKIPPED_(Type, name) CKPT_DETAIL_SKIPPED(Type, name)
#define CKPT_DETAIL_SKIPPED(Type, name) ::ckpt::detail::make_skipped_field<struct ckpt_field_##name>(#name, &Type::name)
#define CKPT_DETAIL_OFFSET(Type, x) CKPT_DETAIL_CAT(CKPT_DETAIL_OFFSET_, CKPT_DETAIL_IS_PAREN(x))(Type, x)
#define CKPT_DETAIL_OFFSET_0(Type, name) offsetof(Type, name)
#define CKPT_DETAIL_OFFSET_1(Type, x) offsetof(Type, CKPT_DETAIL_ID x)
#define CKPT_DETAIL_MEMBER(Type, x) CKPT_DETAIL_CAT(CKPT_DETAIL_MEMBER_, CKPT_DETAIL_IS_PAREN(x))(Type, x)
#define CKPT_DETAIL_MEMBER_0(Type, name) &Type::name
#define CKPT_DETAIL_MEMBER_1(Type, x) &Type::CKPT_DETAIL_ID x

/// Leaves a field out of the checkpoint while naming it, so that the completeness check of
/// CKPT_FIELDS still holds: `CKPT_FIELDS(model, weights, CKPT_SKIP(cache), CKPT_SKIP(on_step))`.
/// A skipped field is neither saved nor changed by a restore (a cache, a std::function, a mutex).
#define CKPT_SKIP(name) (name)

/// Names the checkpointed fields of a struct, at namespace scope after its definition, in the
/// struct's own namespace: `struct dense { Eigen::MatrixXf kernel; Eigen::VectorXf bias; };`
/// `CKPT_FIELDS(dense, kernel, bias)`. For an aggregate, leaving out a field or changing the
/// order is a compile error (offsetof on a class that is not standard-layout is conditionally
/// supported; g++ and clang++ support it for classes without virtual bases, which aggregates are).
#define CKPT_FIELDS(Type, ...)                                                                                     \
    [[maybe_unused]] constexpr auto ckpt_fields(::ckpt::detail::type_tag<Type>) noexcept {                         \
        static_assert(::ckpt::detail::members_accessible<Type>(                                                    \
                          [](auto* p) -> decltype(::ckpt::detail::names_members(CKPT_DETAIL_MAP(                   \
                                          CKPT_DETAIL_MEMBER, std::remove_pointer_t<decltype(p)>, __VA_ARGS__))) { \
                              return true;                                                                         \
                          }),                                                                                      \
                      "ckpt: CKPT_FIELDS at namespace scope cannot name private or protected members (nor "        \
                      "members the class does not have): for a class with private members, write "                 \
                      "CKPT_FIELDS_INTRUSIVE(Type, fields...) inside the class instead");                          \
        return ::ckpt::detail::make_field_list(CKPT_DETAIL_MAP(CKPT_DETAIL_FIELD, Type, __VA_ARGS__));             \
    }                                                                                                              \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Winvalid-offsetof\"")                        \
        [[maybe_unused]] constexpr ::ckpt::detail::order_checked_at_compile_time                                   \
        ckpt_fields_checked(::ckpt::detail::type_tag<Type>) noexcept {                                             \
        static_assert(::ckpt::detail::check_field_list<Type>());                                                   \
        static_assert(::ckpt::detail::check_field_order<Type, ::ckpt::detail::first_out_of_order(CKPT_DETAIL_MAP(  \
                                                                  CKPT_DETAIL_OFFSET, Type, __VA_ARGS__))>());     \
        return {};                                                                                                 \
    }                                                                                                              \
    _Pragma("GCC diagnostic pop")

/// The same inside a class, for classes with private members:
/// `class layer { Eigen::MatrixXf w_; public: CKPT_FIELDS_INTRUSIVE(layer, w_) };`
#define CKPT_FIELDS_INTRUSIVE(Type, ...)                                                               \
    friend constexpr auto ckpt_fields(::ckpt::detail::type_tag<Type>) noexcept {                       \
        return ::ckpt::detail::make_field_list(CKPT_DETAIL_MAP(CKPT_DETAIL_FIELD, Type, __VA_ARGS__)); \
    }                                                                                                  \
    friend constexpr bool ckpt_fields_checked(::ckpt::detail::type_tag<Type>) noexcept {               \
        static_assert(::ckpt::detail::check_field_list<Type>());                                       \
        return true;                                                                                   \
    }
