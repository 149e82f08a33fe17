#pragma once
// Restore page population: hints that map a fresh buffer's pages at once (and huge), before a
// restore fills it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include <ckpt/detail/config.hpp>

namespace ckpt::detail {

/// Hints for a buffer just allocated and about to be filled whole, such as a restore's staged
/// tensor. Why: a first restore fills every staged byte into pages nobody touched, and on our VMs a
/// fault costs 2.5-30 us, more than the read (benchmarks/results/restore_modes.md). Two hints:
/// - from 4 MiB, transparent huge pages, where the system gives them only on request
///   (/sys/kernel/mm/transparent_hugepage/enabled = madvise), so that its first touch costs a fault
///   per 2 MiB rather than per 4 KiB (filling 85 MiB fell from 490 to 20 ms; a first restore of
///   16 x 16 MiB took half the time). Only the 2 MiB-aligned interior, so no page outside the
///   buffer changes its advice. Buffers of 32 MiB and more are always mapped on their own by
///   glibc, so the hint ends with them; a smaller one may come from the heap, where the hint
///   outlives it and only makes later heap use of those pages huge too.
/// - then the pages of its page-aligned interior are mapped at once (MADV_POPULATE_WRITE, Linux
///   5.14), one system call instead of a fault per page: the first restore of a process measured
///   4x faster for 16 x 16 MiB and 1.5x for 4096 x 64 KiB (2026-12-04). It costs no memory that the
///   fill would not: every byte of the buffer is written next. Pages already mapped stay as they
///   are, but the call itself costs about 5 us here even then (a restore without spares, into
///   memory the allocator had mapped already), which 4096 blocks of 64 KiB turned into 20-35 ms: so
///   a buffer is populated alone only from 1 MiB (`populate`; a restore that reads its blocks after
///   the walk collects the smaller ones and populates them together, populate_pages).
/// Linux only; a refusal (an older kernel, no huge pages) is ignored: these are only hints.
CKPT_INLINE void advise_fresh_buffer(void* data, std::size_t size, bool populate = true) noexcept;

/// The whole pages inside [data, data + size), as addresses [first, second).
CKPT_INLINE std::pair<std::uintptr_t, std::uintptr_t> page_interior(const void* data, std::size_t size) noexcept;

/// Maps the pages of fresh buffers about to be filled (page_interior of each; see
/// advise_fresh_buffer) in as few calls as there are runs of neighbouring buffers: buffers the
/// allocator placed one after another are merged across the at most one page between their
/// interiors (which holds the allocator's header, mapped already). Sorts `ranges`.
CKPT_INLINE void populate_pages(std::vector<std::pair<std::uintptr_t, std::uintptr_t>>& ranges) noexcept;

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void advise_fresh_buffer(void* data, std::size_t size, bool populate) noexcept {
#if defined(__linux__)
    const auto at = reinterpret_cast<std::uintptr_t>(data);
#if defined(MADV_HUGEPAGE)
    constexpr std::uintptr_t huge = std::uintptr_t{2} << 20;
    if (size >= (std::size_t{4} << 20)) {
        const std::uintptr_t begin = (at + huge - 1) & ~(huge - 1), end = (at + size) & ~(huge - 1);
        if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
    }
#endif
#if defined(MADV_POPULATE_WRITE)
    static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const std::uintptr_t begin = (at + page - 1) & ~(page - 1), end = (at + size) & ~(page - 1);
    if (populate && size >= (std::size_t{1} << 20) && end > begin)
        (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
#endif
    (void)at;
#endif
    (void)data;
    (void)size;
    (void)populate;
}

CKPT_INLINE std::pair<std::uintptr_t, std::uintptr_t> page_interior(const void* data, std::size_t size) noexcept {
    static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto at = reinterpret_cast<std::uintptr_t>(data);
    return {(at + page - 1) & ~(page - 1), (at + size) & ~(page - 1)};
}

CKPT_INLINE void populate_pages(std::vector<std::pair<std::uintptr_t, std::uintptr_t>>& ranges) noexcept {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 0; i < ranges.size();) {
        std::uintptr_t begin = ranges[i].first, end = ranges[i].second;
        for (++i; i < ranges.size() && ranges[i].first <= end + page; ++i) end = std::max(end, ranges[i].second);
        if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
    }
#else
    (void)ranges;
#endif
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
