#pragma once
// Tensor storage one restore keeps for the next (see detail/restore/plan.hpp for why).

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>

namespace ckpt::detail {

/// Tensor storage kept from one restore for the next (see the top of detail/restore/plan.hpp). Slot i holds
/// what the i-th staged tensor of the last restore swapped out of its object; a restore that
/// visits the same objects in the same order finds the storage of the same shape in the same slot.
/// Holds at most as much memory as the tensors the last restore replaced.
class spare_storage {
public:
    struct item {
        virtual ~item() = default;
        const void* type = nullptr;  // a tag per value type: no RTTI needed
    };
    template <class T>
    struct box final : item {
        box() { type = &tag<T>; }
        T value{};
    };

    /// The tag of value type T: `item::type` of a box<T>.
    template <class T>
    static constexpr const void* tag_of() noexcept {
        return &tag<T>;
    }
    /// The spare in `slot` if it holds a value of the type tagged `type` (tag_of<T>()), else
    /// nullptr. A spare of another type is freed now, before the caller allocates in its place, so
    /// memory stays bounded (so must the caller free one of another shape).
    std::unique_ptr<item> take(std::size_t slot, const void* type);
    /// Replaces the spares by those of the restore that just ended.
    void replace(std::vector<std::unique_ptr<item>> items) noexcept { items_ = std::move(items); }
    /// Frees every spare.
    void clear() noexcept { items_.clear(); }

private:
    // Not const: distinct writable variables are never merged by a linker, so their addresses differ.
    template <class T>
    static inline char tag = 0;
    std::vector<std::unique_ptr<item>> items_;
};

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE std::unique_ptr<spare_storage::item> spare_storage::take(std::size_t slot, const void* type) {
    if (slot >= items_.size() || !items_[slot]) return nullptr;
    if (items_[slot]->type == type) return std::move(items_[slot]);
    items_[slot].reset();
    return nullptr;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
