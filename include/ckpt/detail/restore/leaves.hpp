#pragma once
// The leaves of the restore walk: tensors, sparse matrices, engine and distribution text and
// serialized values, each checked and staged; with the problem reporting and step staging that the
// containers of detail/restore/walker.hpp use too.

#include <cstddef>
#include <cstdint>
#include <locale>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/kinds/archive.hpp>
#include <ckpt/detail/kinds/classify.hpp>
#include <ckpt/detail/suggest.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/io/page_population.hpp>
#include <ckpt/detail/restore/distribution_bounds.hpp>
#include <ckpt/detail/restore/plan.hpp>
#include <ckpt/detail/restore/source.hpp>
#include <ckpt/detail/restore/spare_storage.hpp>
#include <ckpt/detail/restore/steps.hpp>
#include <ckpt/detail/restore/tensor_ops.hpp>
#include <ckpt/detail/restore/tensor_read.hpp>

namespace ckpt::detail {

/// The part of the check pass that needs no recursion: the leaf types and the bookkeeping of a
/// walk (its plan, the path it is at, whether it restores into an object nobody sees yet). The
/// recursive part is restore_walker, which derives from this.
class restore_leaves {
protected:
    restore_leaves(restore_plan_core& plan, std::string root) : plan_(plan), path_(std::move(root)) {}

    void missing();
    // Rethrows the exception being handled: a ckpt::error as it is, std::bad_alloc and other
    // std::exceptions as a corrupt_error of entry `e`, anything else as it is. Not in each visit:
    // those handlers were code in every leaf type's walk.
    [[noreturn]] void rethrow_as_corrupt(const entry_info& e) const;
    void missing_child(std::string_view segment) { plan_.missing.push_back(path_ + '/' + std::string(segment)); }
    void problem(std::string what) { plan_.problems.push_back({path_, std::move(what)}); }
    bool kind_is(const entry_info& e, entry_kind k, const std::string& object);
    // Smaller staged tensors are not worth a spare: their pages are few, and often shared.
    static constexpr std::uint64_t spare_min_bytes = 4096;

    // Once a mismatch is known the restore will throw: blocks are no longer worth reading.
    bool reading() const noexcept { return plan_.problems.empty(); }

    // Takes a step made by `new`. Not a template, and no std::unique_ptr per step type: those were
    // instantiated for every container and tensor type.
    void stage(plan_step* step) {
        std::unique_ptr<plan_step> owned(step);
        plan_.steps.push_back(std::move(owned));
    }
    // A sequence's element count against the object's, as a problem (see sequence()).
    void count_problem(std::uint64_t in_file, std::uint64_t in_object, bool fixed);
    // A map's keys against the object's, as a problem (see mapping()).
    void keys_problem(std::size_t in_file, std::size_t in_object, const std::vector<std::string>& only_file,
                      const std::vector<std::string>& only_object);
    // A sequence that claims more elements than the file can hold.
    [[noreturn]] void too_many_elements(const entry_info& e, bool entryless) const;

    [[noreturn]] void out_of_memory(const entry_info& e) const;

    // Reads a staged tensor block now, or collects it for read_staged (restore_plan_core::read_threads).
    void read_staged_tensor(const entry_info& e, void* obj, const tensor_ops& ops);
    // Checks the block of a landing now, or collects it for read_staged to check.
    void verify_block_later(const entry_info& e);
    // Storage just allocated for `e` and filled next: advised (advise_fresh_buffer) and, when it is
    // read after the walk, its pages populated with the others' by read_staged. A box's bytes count
    // as fresh, so that a first restore reads them on one thread (parallel_read_threads); a new
    // container element's do not: into a cleared std::vector of matrices, two threads measured
    // faster both in a new process (16 x 16 MiB: 0.21-0.37 s against 0.33-0.43 s) and again and
    // again in one, where the allocator hands back memory it had mapped (4096 x 64 KiB: 35 ms
    // against 54 ms).
    void fresh_storage(void* data, const entry_info& e);

    // A tensor leaf of any type, described by `ops`: checked, then read directly, landed in place
    // by the plan (a landing) or staged. False when the type cannot be staged in a box: the caller stages it.
    bool tensor_leaf(void* obj, const tensor_ops& ops, const entry_info& e);

    template <class T>
    void tensor(T& obj, const entry_info& e) {
        if (tensor_leaf(&obj, tensor_ops_of<T>::ops, e)) return;
        using traits = tensor_traits<T>;
        if constexpr (std::is_array_v<T>) {
            auto step = std::make_unique<array_step<T>>(obj);
            read_tensor(plan_.source, e, step->value);
            stage(step.release());
        } else {
            // A tensor type that cannot be made empty and resized: stage a copy of the object.
            static_assert(
                std::is_copy_constructible_v<T> && std::is_move_assignable_v<T>,
                "ckpt: a restored tensor type must be default-constructible or copyable, and move-assignable");
            T copy = obj;
            if (traits::shape_of(copy) != e.shape) traits::resize(copy, e.shape);
            read_tensor(plan_.source, e, copy);
            stage(new move_step<T>(obj, std::move(copy)));
        }
    }

    template <class T>
    void sparse(T& obj, const entry_info& e) {
        using S = typename T::Scalar;
        const std::string object = std::string("sparse ") + dtype_name(dtype_of<S>()) + " [" +
                                   std::to_string(obj.rows()) + "," + std::to_string(obj.cols()) + "]";
        const bool empty = obj.rows() == 0 && obj.cols() == 0;
        if (e.kind != entry_kind::sparse || e.dtype != dtype_of<S>() ||
            (!empty && (e.shape[0] != static_cast<std::uint64_t>(obj.rows()) ||
                        e.shape[1] != static_cast<std::uint64_t>(obj.cols()))))
            return problem("checkpoint has " + describe(e) + ", object has " + object);
        if (e.column_major == static_cast<bool>(T::IsRowMajor))
            return problem(std::string("checkpoint has a ") + (e.column_major ? "column" : "row") +
                           "-major sparse matrix, object is " + (e.column_major ? "row" : "column") + "-major");
        if (!reading()) return;
        T staged;
        const std::string why = decode_sparse(plan_.source.read_block(e), e.shape[0], e.shape[1], &staged);
        if (!why.empty()) throw corrupt_error(why, plan_.source.path(), e.path);
        commit_swap(obj, std::move(staged));
    }

    template <class T>
    void commit_move(T& obj, T&& value) {
        if (direct_)
            obj = std::move(value);
        else
            stage(new move_step<T>(obj, std::move(value)));
    }
    template <class T>
    void commit_swap(T& obj, T&& value) {
        if (direct_)
            obj.swap(value);
        else
            stage(new swap_step<T>(obj, std::move(value)));
    }

    // The value an opaque entry is decoded into: a copy of the object, so a load function that
    // keeps some of the object's state sees it; a fresh value for move-only types.
    template <class T>
    static T staged_value(const T& obj) {
        if constexpr (std::is_copy_constructible_v<T>)
            return obj;
        else {
            static_assert(std::is_default_constructible_v<T>,
                          "ckpt: a move-only restored type must be default-constructible, to be decoded before the "
                          "restore changes anything");
            return T{};
        }
    }

    template <class T>
    void text(T& obj, const entry_info& e) {
        if (!kind_is(e, entry_kind::text, "a random engine or distribution")) return;
        const std::string bytes = plan_.source.read_block(e);
        if constexpr (is_variable_distribution<T>::value) {
            // Checked before operator>>, which would reserve whatever count the text claims.
            if (!count_fits_text(bytes))
                throw corrupt_error("the distribution's state announces more values than its text holds",
                                    plan_.source.path(), e.path);
        }
        T value = staged_value(obj);
        std::istringstream is(bytes);
        is.imbue(std::locale::classic());
        is >> value;
        if (is.fail() || !(is >> std::ws).eof())
            return problem("the saved state does not parse as this engine or distribution type");
        commit_move(obj, std::move(value));
    }

    template <class T>
    void serialized(T& obj, const entry_info& e) {
        if (!kind_is(e, entry_kind::serialized, "a serialized value")) return;
        const std::string bytes = plan_.source.read_block(e);
        T value = staged_value(obj);
        std::string why;
        try {
            opaque_input_archive ar(bytes);
            ar(value);
            if (ar.remaining() != 0)
                why = std::to_string(ar.remaining()) +
                      " bytes left over after reading the value: it was saved as another type";
        } catch (const opaque_load_error& u) {
            why = "the saved bytes do not hold a value of this type (" + u.what + ")";
        } catch (const cereal::Exception& x) {
            why = std::string("the saved bytes do not hold a value of this type (") + x.what() + ")";
        }
        if (!why.empty()) return problem(why);
        if constexpr (is_sized_container<T>::value) {
            if (!container_fits(obj, value))
                return problem("checkpoint has " + std::to_string(value.size()) + " elements, object holds " +
                               std::to_string(obj.size()) + (value.size() == obj.size() ? " with other keys" : "") +
                               " (a non-empty container must match the file; clear it to take the file's)");
        }
        commit_move(obj, std::move(value));
    }

    restore_plan_core& plan_;
    std::string path_;
    bool direct_ = false;
};

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void restore_leaves::rethrow_as_corrupt(const entry_info& e) const {
    try {
        throw;
    } catch (const error&) {
        throw;
    } catch (const std::bad_alloc&) {
        throw corrupt_error("decoding the saved value asked for more memory than there is", plan_.source.path(),
                            e.path);
    } catch (const std::exception& x) {
        throw corrupt_error(std::string("decoding the saved value failed: ") + x.what(), plan_.source.path(), e.path);
    }
}

CKPT_INLINE void restore_leaves::count_problem(std::uint64_t in_file, std::uint64_t in_object, bool fixed) {
    std::string what =
        "checkpoint has " + std::to_string(in_file) + " elements, object holds " + std::to_string(in_object);
    if (!fixed)
        what +=
            " (a non-empty container must match the file; clear it to take the file's size, or restore with "
            "ckpt::partial)";
    problem(std::move(what));
}

CKPT_INLINE void restore_leaves::keys_problem(std::size_t in_file, std::size_t in_object,
                                              const std::vector<std::string>& only_file,
                                              const std::vector<std::string>& only_object) {
    auto list = [](const std::vector<std::string>& ks) {
        std::string s;
        for (std::size_t i = 0; i < ks.size() && i < 10; ++i) s += (i ? ", '" : "'") + ks[i] + "'";
        if (ks.size() > 10) s += ", ...";
        return s;
    };
    std::string what =
        "checkpoint has " + std::to_string(in_file) + " elements, object holds " + std::to_string(in_object);
    if (!only_file.empty()) what += "; keys only in the checkpoint: " + list(only_file);
    if (!only_object.empty()) what += "; keys only in the object: " + list(only_object);
    problem(what +
            " (a non-empty map must match the file; clear it to take the file's keys, or restore with ckpt::partial)");
}

CKPT_INLINE void restore_leaves::too_many_elements(const entry_info& e, bool entryless) const {
    const std::uint64_t n = e.shape[0];
    if (entryless)
        throw corrupt_error(
            "sequence claims " + std::to_string(n) + " elements of a struct with no fields, more than a save writes",
            plan_.source.path(), e.path);
    throw corrupt_error("sequence claims " + std::to_string(n) + " elements, more than the file has entries",
                        plan_.source.path(), e.path);
}

CKPT_INLINE void restore_leaves::missing() {
    if (plan_.partial) return plan_.missing.push_back(path_);
    // Suggestions cost a pass over the index each: only for the problems an error message shows.
    problem("not found in the checkpoint" +
            (plan_.problems.size() < 20 ? suggest_path(path_, plan_.source.entries()) : std::string()));
}

CKPT_INLINE bool restore_leaves::kind_is(const entry_info& e, entry_kind k, const std::string& object) {
    if (e.kind == k) return true;
    problem("checkpoint has " + describe(e) + ", object is " + object);
    return false;
}

CKPT_INLINE void restore_leaves::out_of_memory(const entry_info& e) const {
    throw error(
        "not enough memory to stage " + std::to_string(e.length) + " bytes for the restore (ckpt::in_place needs none)",
        plan_.source.path(), e.path);
}

CKPT_INLINE void restore_leaves::verify_block_later(const entry_info& e) {
    if (plan_.read_threads == 0) return plan_.source.verify_block(e);
    plan_.staged_reads.push_back({&e, nullptr, 1, 0, false, false});
    plan_.staged_bytes += e.length;
}

CKPT_INLINE void restore_leaves::fresh_storage(void* data, const entry_info& e) {
    advise_fresh_buffer(data, to_size(e.length), plan_.read_threads == 0);
    if (plan_.read_threads == 0) return;
    plan_.fresh_pages.push_back(page_interior(data, to_size(e.length)));
    if (!direct_) plan_.fresh_bytes += e.length;
}

CKPT_INLINE void restore_leaves::read_staged_tensor(const entry_info& e, void* obj, const tensor_ops& ops) {
    if (plan_.read_threads == 0) return read_tensor(plan_.source, e, obj, ops);
    plan_.staged_reads.push_back({&e, ops.data(obj), static_cast<std::uint32_t>(ops.element_size),
                                  static_cast<std::uint16_t>(ops.rank), ops.column_major, ops.bools});
    plan_.staged_bytes += e.length;
}

CKPT_INLINE bool restore_leaves::tensor_leaf(void* obj, const tensor_ops& ops, const entry_info& e) {
    if (e.kind != entry_kind::tensor || e.dtype != ops.type || e.shape.rank() != ops.rank ||
        !ops.accepts(obj, e.shape)) {
        problem("checkpoint has " + describe(e) + ", object has " + dtype_name(ops.type) + " " +
                ops.shape_of(obj).to_string());
        return true;
    }
    if (!reading()) return true;
    if (direct_) {
        // An element of a container being built, which nobody sees before the plan swaps the
        // container in: read with the staged blocks after the walk (the element stays where it is,
        // as the plan moves the container whole), into storage advised as fresh when it is new.
        if (ops.shape_of(obj) != e.shape) {
            try {
                ops.resize(obj, e.shape);
            } catch (const std::bad_alloc&) {
                out_of_memory(e);
            }
            if (e.length >= spare_min_bytes) fresh_storage(ops.data(obj), e);
        }
        read_staged_tensor(e, obj, ops);
        return true;
    }
    if (!ops.bools && (plan_.in_place || (plan_.lands_sized_in_place && ops.shape_of(obj) == e.shape))) {
        plan_.landings.push_back({&e, obj, &ops});
        if (plan_.verifies_landings) verify_block_later(e);
        return true;
    }
    if (!ops.new_box) return false;
    // A block of a page or more is staged in a box that reuses the storage a previous restore
    // swapped out of this object, when it has the shape (see spare_storage).
    if (e.length >= spare_min_bytes) {
        const std::size_t slot = plan_.boxed;
        std::unique_ptr<spare_storage::item> box = plan_.spares ? plan_.spares->take(slot, ops.tag) : nullptr;
        if (box && ops.shape_of(ops.value(*box)) != e.shape) box.reset();  // freed before we allocate
        try {
            if (!box) {
                box.reset(ops.new_box());
                if (ops.shape_of(ops.value(*box)) != e.shape) {
                    ops.resize(ops.value(*box), e.shape);
                    fresh_storage(ops.data(ops.value(*box)), e);
                }
            }
        } catch (const std::bad_alloc&) {
            out_of_memory(e);
        }
        if (ops.shape_of(ops.value(*box)) == e.shape) {
            // Staged before it is read: the plan owns the box by then, so a read collected for
            // later (read_staged) never outlives the memory it goes to.
            void* value = ops.value(*box);
            ++plan_.boxed;
            stage(new boxed_step(obj, ops, std::move(box), plan_.swapped_out, slot));
            read_staged_tensor(e, value, ops);
            return true;
        }
    }
    std::unique_ptr<spare_storage::item> value;
    try {
        value.reset(ops.new_box());
        if (ops.shape_of(ops.value(*value)) != e.shape) ops.resize(ops.value(*value), e.shape);
    } catch (const std::bad_alloc&) {
        out_of_memory(e);
    }
    if (ops.shape_of(ops.value(*value)) == e.shape) {
        read_tensor(plan_.source, e, ops.value(*value), ops);
        stage(new staged_step(obj, ops, std::move(value)));
        return true;
    }
    return false;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
