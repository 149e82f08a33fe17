#pragma once
// The restore walker: the check pass over one tracked object, recursing through structures,
// sequences, maps and optional values down to the leaves of detail/restore/leaves.hpp.

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/kinds/classify.hpp>
#include <ckpt/detail/keys.hpp>
#include <ckpt/fields.hpp>
#include <ckpt/detail/restore/leaves.hpp>
#include <ckpt/detail/restore/plan.hpp>
#include <ckpt/detail/restore/steps.hpp>

namespace ckpt::detail {

/// The check pass over one tracked object: `restore_walker(plan, "model").visit(model);`
class restore_walker : private restore_leaves {
public:
    restore_walker(restore_plan_core& plan, std::string root) : restore_leaves(plan, std::move(root)) {}

    template <class T>
    void visit(T& obj) {
        require_checkpointable<T>();
        constexpr node kind = classify<T>();
        if constexpr (kind == node::structure) {
            walk_fields(*this, obj);
        } else {
            const entry_info* e = plan_.source.find(path_);
            if (!e) return missing();
            plan_.consumed[plan_.source.index_of(*e)] = 1;
            if constexpr (kind == node::sequence)
                sequence(obj, *e);
            else if constexpr (kind == node::mapping)
                mapping(obj, *e);
            else if constexpr (kind == node::nullable)
                nullable(obj, *e);
            else {
                // A damaged file must not get past with another exception type (std::bad_alloc from a
                // user's load function, std::length_error from a stream): it is a corrupt entry.
                try {
                    if constexpr (kind == node::tensor)
                        tensor(obj, *e);
                    else if constexpr (kind == node::sparse)
                        sparse(obj, *e);
                    else if constexpr (kind == node::text)
                        text(obj, *e);
                    else if constexpr (kind == node::serialized)
                        serialized(obj, *e);
                } catch (...) {
                    rethrow_as_corrupt(*e);
                }
            }
        }
    }

    /// A member of type M (see walk_fields).
    template <class M>
    static void visit_erased(restore_walker& walk, void* member) {
        walk.visit(*static_cast<M*>(member));
    }
    /// The members of a struct, in order: not a template, whatever the struct.
    void fields(const erased_field<restore_walker>* list, std::size_t n);

private:
    // Restores into an object nobody else sees yet (an element of a container being built).
    struct direct_scope {
        explicit direct_scope(bool& flag) : flag_(flag), was_(flag) { flag_ = true; }
        ~direct_scope() { flag_ = was_; }
        direct_scope(const direct_scope&) = delete;
        direct_scope& operator=(const direct_scope&) = delete;
        bool& flag_;
        bool was_;
    };

    template <class T>
    void child(std::string_view segment, T& member) {
        const auto size = path_.size();
        path_ += '/';
        path_ += segment;
        visit(member);
        path_.resize(size);
    }

    template <class T>
    void child_at(std::uint64_t index, T& member) {
        char digits[20];
        const auto end = std::to_chars(digits, digits + sizeof digits, index).ptr;
        child(std::string_view(digits, static_cast<std::size_t>(end - digits)), member);
    }

    template <class T>
    void sequence(T& obj, const entry_info& e) {
        using seq = sequence_of<T>;
        using E = typename seq::element;
        if (!kind_is(e, entry_kind::sequence, "a sequence")) return;
        const std::uint64_t n = e.shape[0];
        if constexpr (seq::fixed) {
            if (n != seq::size) return count_problem(n, seq::size, true);
            for (std::uint64_t i = 0; i < n; ++i) child_at(i, obj[i]);
        } else {
            static_assert(std::is_default_constructible_v<E>,
                          "ckpt: elements of a restored std::vector must be default-constructible");
            // Every element has an entry of its own, so a larger count cannot be honest; elements
            // without entries (empty structs) are bounded by what a save writes.
            if constexpr (makes_an_entry<E>()) {
                if (n > plan_.source.entries().size()) too_many_elements(e, false);
            } else if (n > max_entryless_bytes / sizeof(E)) {  // elements with no entries: the bound the writer keeps
                too_many_elements(e, true);
            }
            const std::uint64_t m = obj.size();
            if (m == 0 && n > 0) {
                // An empty container takes the file's size: built whole, then swapped in.
                if (direct_) {
                    obj.resize(static_cast<std::size_t>(n));
                    for (std::uint64_t i = 0; i < n; ++i) child_at(i, obj[i]);
                    return;
                }
                T fresh(static_cast<std::size_t>(n));
                {
                    direct_scope scope(direct_);
                    for (std::uint64_t i = 0; i < n; ++i) child_at(i, fresh[i]);
                }
                return stage(new swap_step<T>(obj, std::move(fresh)));
            }
            if (n != m && !plan_.partial) return count_problem(n, m, false);
            // Partial: what both have is restored, the object's extra elements are kept and listed.
            for (std::uint64_t i = 0; i < std::min(n, m); ++i) child_at(i, obj[i]);
            for (std::uint64_t i = n; i < m; ++i) missing_child(std::to_string(i));
        }
    }

    template <class T>
    void mapping(T& obj, const entry_info& e) {
        using key_type = typename T::key_type;
        if (!kind_is(e, entry_kind::mapping, "a map")) return;
        std::vector<std::string> texts;
        if (!decode_keys(plan_.source.read_block(e), e.shape[0], texts))
            throw corrupt_error("map key list does not agree with its element count", plan_.source.path(), e.path);
        std::vector<key_type> keys(texts.size());
        for (std::size_t i = 0; i < texts.size(); ++i)
            if (!parse_key(texts[i], keys[i]))
                return problem("checkpoint has map key '" + texts[i] + "', which is not a key of this map's type");
        if (obj.empty() && !keys.empty()) {
            // An empty map takes the file's keys: built whole, then swapped in.
            if (direct_) {
                for (std::size_t i = 0; i < keys.size(); ++i) child(key_segment(texts[i]), obj[keys[i]]);
                return;
            }
            T fresh;
            {
                direct_scope scope(direct_);
                for (std::size_t i = 0; i < keys.size(); ++i) child(key_segment(texts[i]), fresh[keys[i]]);
            }
            return stage(new swap_step<T>(obj, std::move(fresh)));
        }
        std::vector<std::size_t> common;  // indices into keys
        std::vector<std::string> only_file, only_object;
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (obj.find(keys[i]) != obj.end())
                common.push_back(i);
            else
                only_file.push_back(texts[i]);
        }
        if (common.size() != obj.size()) {
            std::vector<key_type> sorted = keys;
            std::sort(sorted.begin(), sorted.end());
            for (const auto& item : obj)
                if (!std::binary_search(sorted.begin(), sorted.end(), item.first))
                    only_object.push_back(key_text(item.first));
            std::sort(only_object.begin(), only_object.end());
        }
        if ((!only_file.empty() || !only_object.empty()) && !plan_.partial)
            return keys_problem(keys.size(), obj.size(), only_file, only_object);
        for (const std::size_t i : common) child(key_segment(texts[i]), obj.find(keys[i])->second);
        for (const auto& k : only_object) missing_child(key_segment(k));
    }

    // An empty optional in the file resets the object; a present one is restored into the object's
    // value, or into a new value that the plan moves in (the object stays as it was until then).
    template <class T>
    void nullable(T& obj, const entry_info& e) {
        using E = typename nullable_of<T>::element;
        static_assert(std::is_default_constructible_v<E>,
                      "ckpt: the value of a restored std::optional or std::unique_ptr must be default-constructible");
        if (!kind_is(e, entry_kind::sequence, "an optional value")) return;
        const std::uint64_t n = e.shape[0];
        if (n > 1)
            return problem("checkpoint has a sequence of " + std::to_string(n) +
                           " elements, object is an optional value");
        if (direct_) {
            if (n == 0) return obj.reset();
            if (!obj) nullable_of<T>::emplace(obj);
            return child_at(0, *obj);
        }
        if (n == 0) {
            if (obj) stage(new reset_step<T>(obj));
            return;
        }
        if (obj) return child_at(0, *obj);
        auto fresh = std::make_unique<E>();
        {
            direct_scope scope(direct_);
            child_at(0, *fresh);
        }
        stage(new emplace_step<T, E>(obj, std::move(fresh)));
    }
};
/// The walk does not depend on the source: kept for the callers that name one.
template <class Source>
using basic_restore_walker = restore_walker;

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void restore_walker::fields(const erased_field<restore_walker>* list, std::size_t n) {
    walk_erased_fields(*this, path_, list, n);
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
