#pragma once
// The parallel reader: the staged tensor blocks a walk collected, read after it on several threads.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/bool_bytes.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/io/page_population.hpp>
#include <ckpt/detail/restore/plan.hpp>
#include <ckpt/detail/restore/reorder.hpp>
#include <ckpt/detail/restore/tensor_read.hpp>

namespace ckpt::detail {

/// How many threads a restore reads staged blocks with (see read_staged): the machine's, at most 4
/// (a restore should not take a whole node; 2 already halve the time on our machines).
CKPT_INLINE std::size_t restore_read_threads() noexcept;

/// Reads the blocks the walk collected in plan.staged_reads, checked as read_block checks them, on
/// up to plan.read_threads threads (`one_thread`: on this one) when there are enough bytes to be
/// worth it: from 16 MiB, at least 8 MiB per thread, and only when at most an eighth of them go to
/// new memory (otherwise: a process's first restore). Why: into storage a previous restore left
/// (spares) two threads measured 1.2-1.85x faster than one where a core was free; into new memory
/// they measured no faster (0.98x-0.995x, first restores with the pages populated; without that,
/// 0.64x-1.18x), so one thread keeps the first restore on the path measured longest
/// (benchmarks/results/restore_modes.md). Large blocks checked chunk by chunk are split
/// into parts of whole chunks, so that one large tensor is read by several threads too.
/// Throws what reading the blocks one by one in order throws: the error of the first damaged block
/// (of its first damaged chunk) in the walk's order, whichever thread found it, on this thread, once
/// every helper thread has ended. Changes no tracked object: the blocks go to staging memory.
/// A thread that cannot start is no error: this thread reads its share.
CKPT_INLINE void read_staged(restore_plan_core& plan, bool one_thread = false);

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE std::size_t restore_read_threads() noexcept {
    // Asked once: glibc reads /sys for it.
    static const std::size_t threads = [] {
        const unsigned n = std::thread::hardware_concurrency();  // 0 when unknown
        return n == 0 ? std::size_t{1} : std::min<std::size_t>(n, 4);
    }();
    return threads;
}

CKPT_INLINE void read_staged(restore_plan_core& plan, bool one_thread) {
    struct part {
        std::size_t read;
        std::uint64_t lo, hi;
    };
    restore_source& file = plan.source;
    const std::vector<restore_plan_core::staged_read> reads = std::move(plan.staged_reads);
    plan.staged_reads.clear();
    const std::uint64_t bytes = plan.staged_bytes, fresh = plan.fresh_bytes;
    plan.staged_bytes = plan.fresh_bytes = 0;
    populate_pages(plan.fresh_pages);  // on this thread: faults on several measured slower
    plan.fresh_pages.clear();
    if (reads.empty()) return;
    constexpr std::uint64_t parallel_min_bytes = std::uint64_t{16} << 20, per_thread = std::uint64_t{8} << 20,
                            part_bytes = std::uint64_t{4} << 20;
    std::size_t threads = 1;
    if (!one_thread && plan.read_threads > 1 && bytes >= parallel_min_bytes && fresh <= bytes / 8)
        threads = static_cast<std::size_t>(std::min<std::uint64_t>(plan.read_threads, bytes / per_thread));
    std::vector<part> parts;
    parts.reserve(reads.size());
    for (std::size_t i = 0; i < reads.size(); ++i) {
        const entry_info& e = *reads[i].entry;
        const std::uint64_t unit = file.part_size(e);
        if (threads == 1 || unit == 0 || needs_reorder(e, reads[i].rank, reads[i].column_major)) {
            parts.push_back({i, 0, e.length});
            continue;
        }
        const std::uint64_t step = (part_bytes + unit - 1) / unit * unit;
        for (std::uint64_t lo = 0; lo < e.length; lo += step) parts.push_back({i, lo, std::min(lo + step, e.length)});
    }

    auto read_one = [&](const part& p, file_reader::read_buffer& buffer) {
        const restore_plan_core::staged_read& r = reads[p.read];
        const entry_info& e = *r.entry;
        // As in restore_walker::visit: a failure of another type is the entry's.
        try {
            if (p.lo == 0 && p.hi == e.length) {
                read_tensor_bytes(file, e, r.memory, r.rank, r.column_major, r.element_size, r.bools, &buffer);
            } else {
                char* dest = static_cast<char*>(r.memory);
                file.read_part(e, p.lo, p.hi, dest, buffer);
                if (r.bools) check_bool_bytes(dest + p.lo, p.hi - p.lo, file.path(), e.path);
            }
        } catch (const error&) {
            throw;
        } catch (const std::bad_alloc&) {
            throw corrupt_error("decoding the saved value asked for more memory than there is", file.path(), e.path);
        } catch (const std::exception& x) {
            throw corrupt_error(std::string("decoding the saved value failed: ") + x.what(), file.path(), e.path);
        }
    };
    // Parts are taken in order; after a failure only the parts before it are still read, so the
    // first failing part in order is always found.
    std::atomic<std::size_t> next{0}, failed{parts.size()};
    std::mutex mutex;
    std::exception_ptr failure;
    auto work = [&]() noexcept {
        std::unique_ptr<file_reader::read_buffer> buffer;
        for (;;) {
            const std::size_t i = next.fetch_add(1);
            if (i >= parts.size() || i > failed.load()) return;
            try {
                if (!buffer) buffer = std::make_unique<file_reader::read_buffer>();
                read_one(parts[i], *buffer);
            } catch (...) {
                const std::lock_guard<std::mutex> lock(mutex);
                if (i < failed.load()) {
                    failed.store(i);
                    failure = std::current_exception();
                }
            }
        }
    };
    std::vector<std::thread> helpers;
    try {
        helpers.reserve(threads - 1);
        while (helpers.size() + 1 < threads) helpers.emplace_back(work);
    } catch (...) {  // fewer helpers: this thread reads more
    }
    work();
    for (auto& t : helpers) t.join();
    if (failure) std::rethrow_exception(failure);
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
