#pragma once
// The geometry of blocks in a global tensor: whether they tile it exactly (the one rule a sharded
// save, before it writes, and a sharded manifest's decoder, before it trusts the pieces, both
// apply), and the strides of a box.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/dtype.hpp>

namespace ckpt::detail {

CKPT_INLINE bool boxes_overlap(const shape& a_lo, const shape& a_ext, const shape& b_lo, const shape& b_ext) noexcept;

/// Why the blocks of a global tensor do not tile it exactly, or "" when they do. `owners[i]` is
/// the rank of block i; blocks with no elements are ignored. Each block in the bounds, no two
/// overlapping, and their elements adding up to the whole: a sweep along the dimension with the
/// most distinct offsets (sorted, then each block compared only with the blocks whose range along
/// it is still open), so a split by rows or by columns costs n log n, a grid of a x b blocks
/// a * b * min(a, b); a layout that needs more than max_tiling_comparisons is refused rather than
/// checked for minutes (a manifest is data: 160k pieces once took `ckpt verify` 53 s).
inline constexpr std::uint64_t max_tiling_comparisons = std::uint64_t{1} << 28;
CKPT_INLINE std::string tiling_problem(const shape& global, const std::vector<shape>& lo, const std::vector<shape>& ext,
                                       const std::vector<std::uint32_t>& owners,
                                       std::uint64_t max_comparisons = max_tiling_comparisons);

// Element strides of a box in row- or column-major order.
CKPT_INLINE void box_strides(const shape& ext, bool column_major, std::uint64_t* out);

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE bool boxes_overlap(const shape& a_lo, const shape& a_ext, const shape& b_lo, const shape& b_ext) noexcept {
    for (std::size_t i = 0; i < a_lo.rank(); ++i)
        if (a_lo[i] + a_ext[i] <= b_lo[i] || b_lo[i] + b_ext[i] <= a_lo[i]) return false;
    return true;
}

CKPT_INLINE std::string tiling_problem(const shape& global, const std::vector<shape>& lo, const std::vector<shape>& ext,
                                       const std::vector<std::uint32_t>& owners, std::uint64_t max_comparisons) {
    bool fits = true;
    const std::uint64_t total = global.elements(&fits);
    if (!fits) return "global shape " + global.to_string() + " has too many elements";
    const std::size_t rank = global.rank();
    std::uint64_t covered = 0;    // saturating: blocks that hold more than the whole overlap, found below
    std::vector<std::size_t> in;  // the blocks with elements
    for (std::size_t i = 0; i < lo.size(); ++i) {
        if (lo[i].rank() != rank || ext[i].rank() != rank)
            return "rank " + std::to_string(owners[i]) + "'s block " + ext[i].to_string() + " at " + lo[i].to_string() +
                   " has another rank than the global shape " + global.to_string();
        for (std::size_t d = 0; d < rank; ++d)
            if (lo[i][d] > global[d] || ext[i][d] > global[d] - lo[i][d])
                return "rank " + std::to_string(owners[i]) + "'s block " + ext[i].to_string() + " at offsets " +
                       lo[i].to_string() + " lies outside the global shape " + global.to_string();
        const std::uint64_t n = ext[i].elements();  // in the bounds: no overflow
        if (n == 0) continue;
        in.push_back(i);
        covered += std::min(n, total - covered);
    }
    // The sweep dimension: the one along which the blocks start at the most distinct offsets.
    std::size_t sweep = 0, most = 0;
    std::vector<std::uint64_t> starts(in.size());
    for (std::size_t d = 0; d < rank; ++d) {
        for (std::size_t k = 0; k < in.size(); ++k) starts[k] = lo[in[k]][d];
        std::sort(starts.begin(), starts.end());
        const auto distinct = static_cast<std::size_t>(std::unique(starts.begin(), starts.end()) - starts.begin());
        if (distinct > most) most = distinct, sweep = d;
    }
    std::sort(in.begin(), in.end(), [&](std::size_t a, std::size_t b) {
        return lo[a][sweep] != lo[b][sweep] ? lo[a][sweep] < lo[b][sweep] : a < b;
    });
    std::vector<std::size_t> open;  // blocks whose range along `sweep` reaches past the current start
    std::uint64_t comparisons = 0;
    for (const std::size_t i : in) {
        const std::uint64_t at = lo[i][sweep];
        open.erase(
            std::remove_if(open.begin(), open.end(), [&](std::size_t j) { return lo[j][sweep] + ext[j][sweep] <= at; }),
            open.end());
        comparisons += open.size();
        if (comparisons > max_comparisons)
            return "checking that its " + std::to_string(lo.size()) + " blocks do not overlap would take more than " +
                   std::to_string(max_comparisons) + " comparisons (refused as corrupt)";
        for (const std::size_t j : open)
            if (boxes_overlap(lo[i], ext[i], lo[j], ext[j])) {
                const std::size_t a = std::min(i, j), b = std::max(i, j);
                return "the blocks of ranks " + std::to_string(owners[a]) + " and " + std::to_string(owners[b]) +
                       " overlap (rank " + std::to_string(owners[a]) + " holds " + ext[a].to_string() + " at " +
                       lo[a].to_string() + ", rank " + std::to_string(owners[b]) + " " + ext[b].to_string() + " at " +
                       lo[b].to_string() + ")";
            }
        open.push_back(i);
    }
    if (covered != total) {
        std::string who;
        for (std::size_t i = 0; i < lo.size() && i < 16; ++i)
            if (ext[i].elements() != 0)
                who += (who.empty() ? "" : ", ") + std::string("rank ") + std::to_string(owners[i]) + " " +
                       ext[i].to_string() + " at " + lo[i].to_string();
        return "the blocks leave a gap: they cover " + std::to_string(covered) + " of the " + std::to_string(total) +
               " elements of " + global.to_string() + " (" + (who.empty() ? "no rank holds any" : who) + ")";
    }
    return {};
}

CKPT_INLINE void box_strides(const shape& ext, bool column_major, std::uint64_t* out) {
    const std::size_t r = ext.rank();
    if (column_major)
        for (std::uint64_t i = 0, s = 1; i < r; s *= ext[i], ++i) out[i] = s;
    else
        for (std::uint64_t i = r, s = 1; i-- > 0; s *= ext[i]) out[i] = s;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
