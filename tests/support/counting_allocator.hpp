#pragma once
// An allocator that counts the bytes a container holds through it: what a restore allocates, keeps
// and frees, whichever thread allocates (read the counts while no restore runs).

#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace ckpt_test {

struct heap_count {
    static inline std::size_t live = 0, peak = 0, allocations = 0;
    static inline std::mutex guard;
    /// Counts from now: no allocation yet, the peak at what is live.
    static void reset() {
        std::lock_guard<std::mutex> lock(guard);
        peak = live, allocations = 0;
    }
};

template <class T>
struct counting_allocator {
    using value_type = T;
    counting_allocator() = default;
    template <class U>
    counting_allocator(const counting_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        {
            std::lock_guard<std::mutex> lock(heap_count::guard);
            heap_count::live += n * sizeof(T);
            heap_count::peak = std::max(heap_count::peak, heap_count::live);
            ++heap_count::allocations;
        }
        return std::allocator<T>().allocate(n);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        {
            std::lock_guard<std::mutex> lock(heap_count::guard);
            heap_count::live -= n * sizeof(T);
        }
        std::allocator<T>().deallocate(p, n);
    }
    template <class U>
    bool operator==(const counting_allocator<U>&) const noexcept {
        return true;
    }
    template <class U>
    bool operator!=(const counting_allocator<U>&) const noexcept {
        return false;
    }
};

/// A vector of floats whose bytes heap_count counts.
using counted_vector = std::vector<float, counting_allocator<float>>;

}  // namespace ckpt_test
