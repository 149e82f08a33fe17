#pragma once
// The one restore sequence of every checkpoint, whatever it tracks: check pass, staged reads,
// every problem thrown, then the one step that changes the objects.

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/restore/staged_reads.hpp>
#include <ckpt/detail/restore/walker.hpp>
#include <ckpt/restore_mode.hpp>

namespace ckpt::detail {

/// A restore, whatever the checkpoint tracks: `walk(context, plan)` runs the check pass over the
/// tracked objects (and changes nothing), then the staged blocks are read and the blocks to land in
/// place verified, every problem thrown, and only then the plan applied: the one step that changes
/// the objects.
CKPT_INLINE void run_restore(restore_plan_core& plan, restore_mode mode, void (*walk)(void*, restore_plan_core&),
                             void* context);

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void run_restore(restore_plan_core& plan, restore_mode mode, void (*walk)(void*, restore_plan_core&),
                             void* context) {
    // Large staged blocks are read after the walk, on several threads (read_staged).
    if (plan.source.reads_in_parallel() && !includes(mode, restore_mode::single_threaded))
        plan.read_threads = max_threads();
    // The default lands tensors of the right size in place, verified first (detail/restore/plan.hpp).
    plan.lands_sized_in_place = !plan.in_place && plan.source.reads_in_parallel();
    plan.verifies_landings = plan.lands_sized_in_place || (plan.in_place && includes(mode, restore_mode::verify_first));
    try {
        walk(context, plan);
    } catch (...) {
        // The blocks the walk collected come before its failure: a damaged one among them is
        // what a restore reading in order meets first, so its error wins.
        read_staged(plan, true);
        throw;
    }
    read_staged(plan);
    plan.throw_if_problems();
    plan.apply();
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
