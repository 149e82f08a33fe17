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
/// 24 bytes: a restore of many small tensors holds one or two per tensor.
struct block_read {
    const entry_info* entry;  // one of the source's entries()
    void* memory;             // the tensor's elements
    std::uint32_t element_size;
    std::uint16_t rank;
    bool column_major;
    bool bools;
};

/// Reads `reads` into their memory (nullptr: checks only) as read_staged does, on up to `threads`
/// threads, the calling one included; `file` must reads_in_parallel() when threads > 1. Large
/// blocks checked chunk by chunk are split into parts of whole chunks, so that one large tensor is
/// read by several threads too; each thread hashes the bytes it lands while they are in its cache.
/// Small blocks that follow one another in the file are read as runs of up to 1 MiB, one read each.
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
    // A part is bytes [lo, hi) of one block (run == 0), or a run: the `run` small blocks from
    // reads[read] on, which lie one after another in the file's bytes [lo, hi).
    struct part {
        std::size_t read;
        std::uint64_t lo, hi;
        std::size_t run;
    };
    const bool parallel = file.reads_in_parallel();
    if (!parallel) threads = 1;
    constexpr std::uint64_t part_bytes = std::uint64_t{4} << 20, run_bytes = std::uint64_t{1} << 20;
    std::vector<part> parts;  // not reserved: 100k small blocks make a few runs
    for (std::size_t i = 0; i < reads.size(); ++i) {
        const block_read& r = reads[i];
        const entry_info& e = *r.entry;
        if (const std::uint64_t span = parallel ? file.small_span(e) : 0; span != 0) {
            part* last = parts.empty() ? nullptr : &parts.back();
            if (last && last->run != 0 && last->read + last->run == i && last->hi == e.offset &&
                last->hi - last->lo + span <= run_bytes) {
                last->hi += span;
                ++last->run;
            } else {
                parts.push_back({i, e.offset, e.offset + span, 1});
            }
            continue;
        }
        const std::uint64_t unit = file.part_size(e);
        if (threads == 1 || unit == 0 || (r.memory && needs_reorder(e, r.rank, r.column_major))) {
            parts.push_back({i, 0, e.length, 0});
            continue;
        }
        const std::uint64_t step = (part_bytes + unit - 1) / unit * unit;
        for (std::uint64_t lo = 0; lo < e.length; lo += step)
            parts.push_back({i, lo, std::min(lo + step, e.length), 0});
    }

    // As in restore_walker::visit: a failure of another type is the entry's.
    auto as_entry_error = [&](const entry_info& e) {
        try {
            throw;
        } catch (const error&) {
            throw;
        } catch (const std::bad_alloc&) {
            throw corrupt_error("decoding the saved value asked for more memory than there is", file.path(), e.path);
        } catch (const std::exception& x) {
            throw corrupt_error(std::string("decoding the saved value failed: ") + x.what(), file.path(), e.path);
        }
    };
    auto read_block_part = [&](const block_read& r, std::uint64_t lo, std::uint64_t hi,
                               file_reader::read_buffer* buffer) {
        const entry_info& e = *r.entry;
        try {
            char* dest = static_cast<char*>(r.memory);
            if (!dest) {
                if (buffer)
                    file.read_part(e, lo, hi, nullptr, *buffer);
                else
                    file.verify_block(e);
            } else if (lo == 0 && hi == e.length) {
                read_tensor_bytes(file, e, dest, r.rank, r.column_major, r.element_size, r.bools, buffer);
            } else {
                file.read_part(e, lo, hi, dest, *buffer);
                if (r.bools) check_bool_bytes(dest + lo, hi - lo, file.path(), e.path);
            }
        } catch (...) {
            as_entry_error(e);
        }
    };
    auto read_run = [&](const part& p, file_reader::read_buffer& buffer) {
        const char* bytes = nullptr;
        try {
            bytes = file.read_span(p.lo, p.hi, buffer);
        } catch (...) {
            as_entry_error(*reads[p.read].entry);
        }
        for (std::size_t k = 0; k < p.run; ++k) {
            const block_read& r = reads[p.read + k];
            const entry_info& e = *r.entry;
            try {
                const char* src = bytes + (e.offset - p.lo);
                file.check_small(e, src);
                if (r.memory)
                    land_tensor_bytes(src, e, r.memory, r.rank, r.column_major, r.element_size, r.bools, file.path());
            } catch (...) {
                as_entry_error(e);
            }
        }
    };
    auto read_one = [&](const part& p, file_reader::read_buffer* buffer) {
        if (p.run != 0) return read_run(p, *buffer);
        read_block_part(reads[p.read], p.lo, p.hi, buffer);
    };
    if (!parallel) {
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
