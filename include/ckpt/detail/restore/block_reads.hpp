#pragma once
// The parallel reader: tensor blocks read into their tensors' memory (or only checked) on the
// pool's threads, in parts of whole chunks, with the error a read in order would meet first.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/bool_bytes.hpp>
#include <ckpt/detail/parallel/thread_pool.hpp>
#include <ckpt/detail/restore/reorder.hpp>
#include <ckpt/detail/restore/source.hpp>
#include <ckpt/detail/restore/tensor_read.hpp>
#include <ckpt/error.hpp>

namespace ckpt::detail {

/// A tensor block to read into memory laid out as the tensor object's (nullptr: to check only).
struct block_read {
    const entry_info* entry;  // one of the source's entries()
    void* memory;             // the tensor's elements
    std::size_t rank;
    bool column_major;
    std::size_t element_size;
    bool bools;
};

/// Reads `reads` into their memory (nullptr: checks only) as read_staged does, on up to `threads`
/// threads, the calling one included; `file` must reads_in_parallel() when threads > 1. Large
/// blocks checked chunk by chunk are split into parts of whole chunks, so that one large tensor is
/// read by several threads too; each thread hashes the bytes it lands while they are in its cache.
CKPT_INLINE void read_blocks(restore_source& file, const std::vector<block_read>& reads, std::size_t threads);

/// How many threads reading `bytes` is worth, `fresh` of them into new memory, with at most
/// `limit`: from 16 MiB, at least 8 MiB per thread, and only when at most an eighth of the bytes
/// go to new memory (otherwise: a process's first restore, read on one thread). Why: into memory
/// already faulted in (the objects' own, or spares), two threads measured 1.2-1.85x faster than one
/// where a core was free; into new memory they measured no faster (0.98x-0.995x, first restores
/// with the pages populated; without that, 0.64x-1.18x), so one thread keeps the first restore on
/// the path measured longest (benchmarks/results/restore_modes.md).
CKPT_INLINE std::size_t parallel_read_threads(std::uint64_t bytes, std::uint64_t fresh, std::size_t limit) noexcept;

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE std::size_t parallel_read_threads(std::uint64_t bytes, std::uint64_t fresh, std::size_t limit) noexcept {
    constexpr std::uint64_t parallel_min_bytes = std::uint64_t{16} << 20, per_thread = std::uint64_t{8} << 20;
    if (limit <= 1 || bytes < parallel_min_bytes || fresh > bytes / 8) return 1;
    return static_cast<std::size_t>(std::min<std::uint64_t>(limit, bytes / per_thread));
}

CKPT_INLINE void read_blocks(restore_source& file, const std::vector<block_read>& reads, std::size_t threads) {
    struct part {
        std::size_t read;
        std::uint64_t lo, hi;
    };
    if (!file.reads_in_parallel()) threads = 1;
    constexpr std::uint64_t part_bytes = std::uint64_t{4} << 20;
    std::vector<part> parts;
    parts.reserve(reads.size());
    for (std::size_t i = 0; i < reads.size(); ++i) {
        const block_read& r = reads[i];
        const entry_info& e = *r.entry;
        const std::uint64_t unit = file.part_size(e);
        if (threads == 1 || unit == 0 || (r.memory && needs_reorder(e, r.rank, r.column_major))) {
            parts.push_back({i, 0, e.length});
            continue;
        }
        const std::uint64_t step = (part_bytes + unit - 1) / unit * unit;
        for (std::uint64_t lo = 0; lo < e.length; lo += step) parts.push_back({i, lo, std::min(lo + step, e.length)});
    }

    auto read_one = [&](const part& p, file_reader::read_buffer* buffer) {
        const block_read& r = reads[p.read];
        const entry_info& e = *r.entry;
        // As in restore_walker::visit: a failure of another type is the entry's.
        try {
            char* dest = static_cast<char*>(r.memory);
            if (!dest) {
                if (buffer)
                    file.read_part(e, p.lo, p.hi, nullptr, *buffer);
                else
                    file.verify_block(e);
            } else if (p.lo == 0 && p.hi == e.length) {
                read_tensor_bytes(file, e, dest, r.rank, r.column_major, r.element_size, r.bools, buffer);
            } else {
                file.read_part(e, p.lo, p.hi, dest, *buffer);
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
    if (!file.reads_in_parallel()) {
        for (const part& p : parts) read_one(p, nullptr);
        return;
    }
    parallel_for(parts.size(), threads, [&](std::size_t i) {
        // One scratch buffer per thread, kept for its next restore: a few MiB at most.
        thread_local file_reader::read_buffer buffer;
        read_one(parts[i], &buffer);
    });
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
