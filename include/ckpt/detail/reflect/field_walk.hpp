#pragma once
// The field walk shared by the save and restore walks: a struct's checkpointed members, named (by
// CKPT_FIELDS or by position under Boost.PFR), each with the walk's function for its type.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include <boost/pfr.hpp>

#include <ckpt/detail/reflect/field_checks.hpp>
#include <ckpt/detail/reflect/field_list.hpp>

namespace ckpt::detail {

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
