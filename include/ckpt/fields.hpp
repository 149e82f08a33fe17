#pragma once
// Reflection: which members of a user type make up its checkpointed state, and under which names.
//
// Two sources, in this order of preference:
//   1. CKPT_FIELDS(Type, a, b, ...) at namespace scope (or CKPT_FIELDS_INTRUSIVE inside a class with
//      private members) names the fields. It generates `ckpt_fields(ckpt::detail::type_tag<Type>)`,
//      found by argument-dependent lookup from the user's namespace.
//   2. Any other aggregate is reflected by Boost.PFR, its fields named by position: "0", "1", ...
//
// The public part is the three macros below; what they expand to lives in ckpt/detail/reflect/
// (field_list, field_checks, field_walk, field_macros, map_macro).

#include <cstddef>
#include <type_traits>

#include <ckpt/detail/reflect/field_checks.hpp>
#include <ckpt/detail/reflect/field_list.hpp>
#include <ckpt/detail/reflect/field_macros.hpp>
#include <ckpt/detail/reflect/field_walk.hpp>
#include <ckpt/error.hpp>

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
