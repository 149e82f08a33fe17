#pragma once
// Tensor type erasure: what a restore needs of a tensor type, as one table of data and plain
// functions per type, so that the checks, reads and staging are compiled once for all types.

#include <cstddef>
#include <type_traits>
#include <utility>

#include <ckpt/detail/config.hpp>
#include <ckpt/dtype.hpp>
#include <ckpt/leaf.hpp>
#include <ckpt/detail/restore/spare_storage.hpp>
#include <ckpt/detail/restore/tensor_read.hpp>

namespace ckpt::detail {

/// What a restore needs of a tensor type, as data and plain functions: one small table per type
/// (tensor_ops_of<T>::ops), while the checks, reads and staging of every tensor type are compiled
/// once (restore_leaves::tensor_leaf and the steps below). A template per type for all of that
/// cost more to compile than the rest of a restore.
struct tensor_ops {
    dtype type;
    std::size_t rank;
    bool column_major;
    std::size_t element_size;
    bool bools;                          // elements are bool: every byte read is checked
    const void* tag;                     // spare_storage::tag_of<T>()
    shape (*shape_of)(const void* obj);  // tensor_traits<T>::shape_of
    bool (*accepts)(const void* obj, const shape& s);
    void (*resize)(void* obj, const shape& s);
    void* (*data)(void* obj);
    // Staging in a spare_storage::box<T>; null for types that are not default-constructible and movable.
    spare_storage::item* (*new_box)();
    void* (*value)(spare_storage::item& box);     // the T in a box
    void (*swap)(void* obj, void* value);         // swap(obj, value)
    void (*move_assign)(void* obj, void* value);  // obj = std::move(value)
};

template <class T>
struct tensor_ops_of {
    using traits = tensor_traits<T>;
    using element = typename traits::element;
    static constexpr bool boxed = !std::is_array_v<T> && std::is_default_constructible_v<T> &&
                                  std::is_move_constructible_v<T> && std::is_move_assignable_v<T>;

    static shape shape_of(const void* obj) { return traits::shape_of(*static_cast<const T*>(obj)); }
    static bool accepts(const void* obj, const shape& s) { return traits::accepts(*static_cast<const T*>(obj), s); }
    static void resize(void* obj, const shape& s) { traits::resize(*static_cast<T*>(obj), s); }
    static void* data(void* obj) { return static_cast<void*>(traits::data(*static_cast<T*>(obj))); }
    static spare_storage::item* new_box() { return new spare_storage::box<T>(); }
    static void* value(spare_storage::item& b) { return &static_cast<spare_storage::box<T>&>(b).value; }
    static void swap(void* a, void* b) {
        using std::swap;
        swap(*static_cast<T*>(a), *static_cast<T*>(b));
    }
    static void move_assign(void* a, void* b) { *static_cast<T*>(a) = std::move(*static_cast<T*>(b)); }

    static constexpr tensor_ops make() {
        tensor_ops o{dtype_of<element>(),
                     traits::rank,
                     traits::column_major,
                     sizeof(element),
                     std::is_same_v<element, bool>,
                     spare_storage::tag_of<T>(),
                     &shape_of,
                     &accepts,
                     &resize,
                     &data,
                     nullptr,
                     nullptr,
                     nullptr,
                     nullptr};
        if constexpr (boxed) {
            o.new_box = &new_box;
            o.value = &value;
            o.swap = &swap;
            o.move_assign = &move_assign;
        }
        return o;
    }
    static constexpr tensor_ops ops = make();
};

/// Reads a tensor entry into the object `obj` that `ops` describes, which has the entry's shape.
inline void read_tensor(restore_source& file, const entry_info& e, void* obj, const tensor_ops& ops) {
    read_tensor_bytes(file, e, ops.data(obj), ops.rank, ops.column_major, ops.element_size, ops.bools);
}

}  // namespace ckpt::detail
