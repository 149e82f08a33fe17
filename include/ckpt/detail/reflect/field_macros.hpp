#pragma once
// The per-item macros of CKPT_FIELDS, applied to each listed item by CKPT_DETAIL_MAP: the item as a
// field (make_field), as an offset (the order check) and as a pointer to member (the access probe).

#include <cstddef>  // offsetof

#include <ckpt/detail/reflect/map_macro.hpp>

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
