#pragma once
// The staged tensor blocks a walk collected, read after it on several threads (read_blocks).

#include <cstdint>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/io/page_population.hpp>
#include <ckpt/detail/restore/block_reads.hpp>
#include <ckpt/detail/restore/plan.hpp>

namespace ckpt::detail {

/// Reads the blocks the walk collected in plan.staged_reads, checked as read_block checks them (a
/// read whose memory is nullptr only checks its block: the verification of a block that the plan
/// lands in place later), on up to plan.read_threads threads (`one_thread`: on this one) when there
/// are enough bytes to be worth it (parallel_read_threads). Changes no tracked object: the blocks go
/// to staging memory, or nowhere.
/// Throws what reading the blocks one by one in order throws: the error of the first damaged block
/// (of its first damaged chunk) in the walk's order, whichever thread found it, on this thread, once
/// every other thread has finished its part. (A read that fails, as of a truncated file, fails for
/// a whole run of small blocks at once: its message may name another byte of the file.)
CKPT_INLINE void read_staged(restore_plan_core& plan, bool one_thread = false);

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void read_staged(restore_plan_core& plan, bool one_thread) {
    const std::vector<restore_plan_core::staged_read> reads = std::move(plan.staged_reads);
    plan.staged_reads.clear();
    const std::uint64_t bytes = plan.staged_bytes, fresh = plan.fresh_bytes;
    plan.staged_bytes = plan.fresh_bytes = 0;
    populate_pages(plan.fresh_pages);  // on this thread: faults on several measured slower
    plan.fresh_pages.clear();
    if (reads.empty()) return;
    read_blocks(plan.source, reads, one_thread ? 1 : parallel_read_threads(bytes, fresh, plan.read_threads));
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
