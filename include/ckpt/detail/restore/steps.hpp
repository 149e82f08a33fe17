#pragma once
// The steps of a restore plan: each moves or swaps one staged value into one tracked object. (A
// tensor read into its object in place is a landing of the plan, not a step: plan.hpp.)

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/restore/plan.hpp>
#include <ckpt/detail/restore/tensor_ops.hpp>

namespace ckpt::detail {

// Steps. Moving an Eigen dynamic object, a std::vector or a std::string swaps pointers.
template <class T>
struct move_step final : plan_step {
    explicit move_step(T& t) : target(t), value() {}  // a fresh value, filled before the step runs
    move_step(T& t, T&& v) : target(t), value(std::move(v)) {}
    void apply() override { target = std::move(value); }
    T& target;
    T value;
};
template <class T>
struct swap_step final : plan_step {
    swap_step(T& t, T&& v) : target(t), value(std::move(v)) {}
    void apply() override { target.swap(value); }
    T& target;
    T value;
};
// A tensor staged in a box of its own: apply() swaps it with the object (pointers, for dynamic
// storage) and leaves the object's previous storage in the plan's slot, as a spare for the next
// restore. Swapping, not move-assigning: a std::vector's move assignment would free that storage.
struct boxed_step final : plan_step {
    using slots = std::vector<std::unique_ptr<spare_storage::item>>;
    boxed_step(void* t, const tensor_ops& o, std::unique_ptr<spare_storage::item> b, slots& out_slots, std::size_t i)
        : target(t), ops(o), box(std::move(b)), out(out_slots), slot(i) {}
    void apply() override;
    void* target;
    const tensor_ops& ops;
    std::unique_ptr<spare_storage::item> box;
    slots& out;
    std::size_t slot;
};
// A small tensor staged in a box that the plan frees: apply() moves it into the object.
struct staged_step final : plan_step {
    staged_step(void* t, const tensor_ops& o, std::unique_ptr<spare_storage::item> b)
        : target(t), ops(o), box(std::move(b)) {}
    void apply() override { ops.move_assign(target, ops.value(*box)); }
    void* target;
    const tensor_ops& ops;
    std::unique_ptr<spare_storage::item> box;
};
template <class T>
struct array_step final : plan_step {  // C arrays: not assignable, copied element by element
    explicit array_step(T& t) : target(t) {}
    void apply() override { std::copy(std::begin(value), std::end(value), std::begin(target)); }
    T& target;
    T value{};
};
template <class T>
struct reset_step final : plan_step {  // an optional value the file says is empty
    explicit reset_step(T& t) : target(t) {}
    void apply() override { target.reset(); }
    T& target;
};
template <class T, class E>
struct emplace_step final : plan_step {  // an empty optional or unique_ptr takes a value built aside
    emplace_step(T& t, std::unique_ptr<E> v) : target(t), value(std::move(v)) {}
    void apply() override {
        if constexpr (std::is_same_v<T, std::unique_ptr<E>>)
            target = std::move(value);
        else
            target.emplace(std::move(*value));
    }
    T& target;
    std::unique_ptr<E> value;
};
}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void boxed_step::apply() {
    ops.swap(target, ops.value(*box));
    out[slot] = std::move(box);
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
