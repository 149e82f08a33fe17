#pragma once
// Decides, at compile time, how a type is checkpointed. In this order:
//   tensor      tensor_traits<T> exists (scalars, std::vector/array of elements, Eigen dense, Tensor)
//   sparse      Eigen::SparseMatrix
//   text        standard random engines and distributions: their full state via operator<< / >>
//   structure   annotated with CKPT_FIELDS
//   sequence    std::vector / std::array / C array of structural elements  -> path/0, path/1, ...
//   mapping     std::map / std::unordered_map from string or integer keys to structural elements
//   nullable    std::optional of a structural value, std::unique_ptr of any checkpointable value:
//               stored as a sequence of 0 or 1 elements (path, then the value under path/0)
//   serialized  anything cereal can serialize (strings, optional, variant, user serialize functions)
//   structure   any other aggregate, fields named by position

#include <array>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <ckpt/detail/kinds/archive.hpp>
#include <ckpt/eigen.hpp>
#include <ckpt/fields.hpp>
#include <ckpt/detail/kinds/containers.hpp>
#include <ckpt/detail/kinds/text.hpp>
#include <ckpt/leaf.hpp>

namespace ckpt {

namespace detail {

enum class node { tensor, sparse, text, structure, sequence, mapping, nullable, serialized, unsupported };

template <class T>
constexpr node classify();

// Containers are expanded into one entry per element when the elements are themselves structural;
// containers of plain scalars (std::vector<bool>, std::map<int, float>) stay one cereal entry.
template <class E>
constexpr bool is_structural() {
    if constexpr (std::is_void_v<E> || is_element_v<E>)
        return false;
    else {
        constexpr node n = classify<E>();
        return n != node::serialized && n != node::unsupported;
    }
}

// Present or absent values. std::optional of plain scalars and strings stays one cereal entry (as
// files before nullable entries have them); unique_ptr has no cereal form here, so always nullable.
template <class T>
struct nullable_of {
    using element = void;
    static constexpr bool always = false;
};
template <class E>
struct nullable_of<std::optional<E>> {
    using element = E;
    static constexpr bool always = false;
    static void emplace(std::optional<E>& o) { o.emplace(); }
};
template <class E>
struct nullable_of<std::unique_ptr<E>> {
    using element = std::conditional_t<std::is_array_v<E>, void, E>;
    static constexpr bool always = true;
    static void emplace(std::unique_ptr<E>& p) { p = std::make_unique<E>(); }
};

// The element type of a container or wrapper, or void.
template <class U>
using contained_t =
    std::conditional_t<!std::is_void_v<typename sequence_of<U>::element>, typename sequence_of<U>::element,
                       std::conditional_t<!std::is_void_v<typename mapping_of<U>::element>,
                                          typename mapping_of<U>::element, typename nullable_of<U>::element>>;
template <class E>
constexpr bool is_unsupported_element() {
    if constexpr (std::is_void_v<E>)
        return false;
    else
        return classify<E>() == node::unsupported;
}
template <class U>
constexpr bool is_nullable() {
    using E = typename nullable_of<U>::element;
    if constexpr (std::is_void_v<E>)
        return false;
    else if constexpr (nullable_of<U>::always)
        return classify<E>() != node::unsupported;
    else
        return is_structural<E>();
}

// A std::variant is stored as one cereal value, so every alternative needs a cereal form; one that
// has none (a CKPT_FIELDS struct, an Eigen matrix) would fail deep inside cereal's variant code.
template <class T>
struct is_variant_without_cereal_form : std::false_type {};
template <class... E>
struct is_variant_without_cereal_form<std::variant<E...>> : std::bool_constant<!(is_cereal_serializable_v<E> && ...)> {
};

// A pointer that owns an object of a class with virtual functions may point to any derived class:
// which one is not known at compile time, and a restore could not create it.
template <class T>
struct is_polymorphic_pointer : std::false_type {};
template <class E, class D>
struct is_polymorphic_pointer<std::unique_ptr<E, D>>
    : std::bool_constant<std::is_polymorphic_v<E> && !std::is_final_v<E>> {};

template <class U>
constexpr bool is_pointer_like() {
    return std::is_pointer_v<U> || std::is_member_pointer_v<U> || is_shared_pointer<U>::value ||
           (!std::is_void_v<typename nullable_of<U>::element> && nullable_of<U>::always);
}

template <class T>
constexpr node classify() {
    using U = std::remove_cv_t<T>;
    if constexpr (is_tensor_v<U>)
        return node::tensor;
    else if constexpr (is_sparse_v<U>)
        return node::sparse;
    else if constexpr (is_text_serialized<U>::value)
        return node::text;
    else if constexpr (is_polymorphic_pointer<U>::value || is_variant_without_cereal_form<U>::value)
        return node::unsupported;
    else if constexpr (has_field_list<U>::value)
        return node::structure;
    else if constexpr (is_structural<typename sequence_of<U>::element>())
        return node::sequence;
    else if constexpr (is_structural<typename mapping_of<U>::element>())
        return node::mapping;
    else if constexpr (is_nullable<U>())
        return node::nullable;
    // A container of something unsupported: cereal's templates would accept the container and fail
    // deep inside; report the element instead.
    else if constexpr (is_unsupported_element<contained_t<U>>())
        return node::unsupported;
    else if constexpr (is_pointer_like<U>())
        return node::unsupported;
    else if constexpr (is_cereal_serializable_v<U>)
        return node::serialized;
    else if constexpr (is_pfr_reflectable_v<U>)
        return node::structure;
    else
        return node::unsupported;
}

template <class T>
constexpr bool makes_an_entry();
template <class T, std::size_t... I>
constexpr bool some_field_makes_an_entry(std::index_sequence<I...>) {
    if constexpr (has_field_list<T>::value) {
        using list = decltype(field_list<T>());
        return (makes_an_entry<std::remove_cv_t<std::remove_reference_t<
                    decltype(std::declval<T&>().*(std::declval<field_at_t<list, I>>().pointer))>>>() ||
                ...);
    } else {
        return (makes_an_entry<boost::pfr::tuple_element_t<I, T>>() || ...);
    }
}

/// Whether every value of T makes at least one entry. All but structs do (a container has an
/// entry of its own); a struct with no fields, or only such structs, makes none. A restore bounds
/// a vector's size by the file's entry count, which says nothing about such elements: they are
/// bounded by max_entryless_bytes instead, on both sides.
template <class T>
constexpr bool makes_an_entry() {
    using U = std::remove_cv_t<T>;
    if constexpr (classify<U>() != node::structure)
        return true;
    else if constexpr (has_field_list<U>::value)
        return some_field_makes_an_entry<U>(std::make_index_sequence<decltype(field_list<U>())::size>{});
    else
        return some_field_makes_an_entry<U>(std::make_index_sequence<boost::pfr::tuple_size_v<U>>{});
}
inline constexpr std::uint64_t max_entryless_bytes = std::uint64_t{1} << 24;

/// Fails to compile, with a message that says what to do about this type, unless T can be
/// checkpointed. The compiler's "required from" notes name T and the path of types leading to it.
template <class T>
constexpr void require_checkpointable() {
    using U = std::remove_cv_t<T>;
    if constexpr (classify<U>() == node::unsupported) {
        if constexpr (!is_polymorphic_pointer<U>::value && !std::is_void_v<contained_t<U>> &&
                      is_unsupported_element<contained_t<U>>()) {
            require_checkpointable<contained_t<U>>();  // the element is the problem: say so for it
        } else if constexpr (is_polymorphic_pointer<U>::value) {
            static_assert(dependent_false_v<T>,
                          "ckpt: a polymorphic class cannot be checkpointed through a pointer to its base: which "
                          "derived class an object is cannot be reflected at compile time, nor created by a restore. "
                          "Hold the objects by their concrete type (a std::vector<Derived> per derived type, a "
                          "struct of layers), or track each one under its own name by its concrete type: "
                          "ckpt::track(\"layer0\", static_cast<Derived&>(*layers[0]))");
        } else if constexpr (std::is_polymorphic_v<U>) {
            static_assert(dependent_false_v<T>,
                          "ckpt: a class with virtual functions cannot be reflected without an annotation (it is "
                          "not an aggregate): name its state with CKPT_FIELDS_INTRUSIVE(Type, fields...) inside "
                          "the class. An object seen through a reference to its base must be tracked by its "
                          "concrete type instead: which derived class it is cannot be reflected at compile time");
        } else if constexpr (is_variant_without_cereal_form<U>::value) {
            static_assert(dependent_false_v<T>,
                          "ckpt: a std::variant is stored as one cereal value, and an alternative of this one has "
                          "no cereal form (a CKPT_FIELDS struct, an Eigen matrix). Hold one std::optional per "
                          "alternative instead (std::optional<sgd> sgd_state; std::optional<adam> adam_state;, "
                          "only the active one engaged), or give each alternative a cereal serialize function");
        } else if constexpr (std::is_pointer_v<U> || std::is_member_pointer_v<U>) {
            static_assert(
                dependent_false_v<T>,
                "ckpt: a raw pointer cannot be checkpointed: a checkpoint holds values, not addresses. Own "
                "the object (by value, std::optional<T> or std::unique_ptr<T>), or leave the pointer out with "
                "CKPT_SKIP(field) in CKPT_FIELDS and set it again after a restore");
        } else if constexpr (is_shared_pointer<U>::value) {
            static_assert(
                dependent_false_v<T>,
                "ckpt: a std::shared_ptr/weak_ptr cannot be checkpointed: shared ownership does not survive a "
                "restore. Hold the object by value, std::optional<T> or std::unique_ptr<T>, or track the "
                "shared object once under its own name and leave the pointer out with CKPT_SKIP(field)");
        } else if constexpr (!std::is_void_v<typename nullable_of<U>::element> && nullable_of<U>::always) {
            static_assert(dependent_false_v<T>,
                          "ckpt: a std::unique_ptr with a custom deleter or of an array cannot be "
                          "checkpointed: use std::unique_ptr<T> of one object, or std::vector<T>");
        } else if constexpr (is_std_function<U>::value || has_call_operator<U>::value) {
            static_assert(dependent_false_v<T>,
                          "ckpt: a function object (std::function, lambda) cannot be checkpointed, code is not state: "
                          "leave it out with CKPT_SKIP(field) in CKPT_FIELDS and set it again after a restore");
        } else {
            static_assert(dependent_false_v<T>,
                          "ckpt: this type cannot be checkpointed: it is not a tensor, an annotated or aggregate "
                          "struct, a container or optional of those, or cereal-serializable. Name its state with "
                          "CKPT_FIELDS(Type, fields...) in Type's namespace (or CKPT_FIELDS_INTRUSIVE inside it), give "
                          "it a cereal serialize function, or specialize ckpt::tensor_traits; if it holds no training "
                          "state (a mutex, a thread, a handle), leave the field out with CKPT_SKIP(field)");
        }
    }
}

}  // namespace detail
}  // namespace ckpt
