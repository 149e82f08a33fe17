#pragma once
// This rank's file of a sharded save: which blocks of the plan it writes and which it only hashes
// (rank_part), and the writing, in one go (write_blocks) or, under an asynchronous save's memory
// budget, in two: write_ahead on the caller's thread from the objects' memory, then write_blocks
// from where it stopped, on the background thread, from the copies of the rest.

#include <algorithm>
#include <cstdint>
#include <vector>

#include <ckpt/detail/format/writer.hpp>
#include <ckpt/mpi/detail/save_plan.hpp>
#include <ckpt/mpi/track.hpp>

namespace ckpt::mpi::detail {

/// What this rank does with the blocks of a save, in the order it does it: first the blocks it
/// writes to its file (its shards and per-rank blocks, and the replicated blocks `owner` gives it),
/// in file order; then those it only hashes, for the commit's comparison of replicas (the
/// replicated blocks other ranks write, unless divergence::off, and shards with no elements).
/// The blocks in neither list (replicated blocks others write, under divergence::off) it needs
/// only the descriptions of.
struct rank_part {
    std::vector<std::size_t> order;  // indices into the plan's blocks
    std::size_t written = 0;         // order[0, written) are written, the rest hashed
};

inline rank_part rank_part_of(const std::vector<planned_block>& blocks, const std::vector<std::uint32_t>& owner,
                              std::uint32_t me, divergence policy) {
    rank_part part;
    std::vector<std::size_t> hashed;
    std::size_t replicated = 0;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        const planned_block& b = blocks[i];
        bool writes = true;
        if (b.role == entry_role::replicated) writes = owner[replicated++] == me;
        if (b.role == entry_role::shard && b.dims.elements() == 0) writes = false;
        if (writes)
            part.order.push_back(i);
        else if (b.role != entry_role::replicated || policy != divergence::off)
            hashed.push_back(i);
    }
    part.written = part.order.size();
    part.order.insert(part.order.end(), hashed.begin(), hashed.end());
    return part;
}

/// The bytes of the tensors among the blocks of `part`: what an asynchronous save copies.
inline std::size_t tensor_bytes(const std::vector<planned_block>& blocks, const rank_part& part) {
    std::size_t n = 0;
    for (const std::size_t i : part.order)
        if (blocks[i].kind == entry_kind::tensor) n += ckpt::detail::to_size(blocks[i].size);
    return n;
}

/// Where write_blocks goes on after write_ahead: at part.order[next], after the rest of the block
/// write_ahead began (`begun`: part.order[next - 1], of which `begun_bytes` were written).
struct resume_point {
    std::size_t next = 0;
    bool begun = false;
    std::size_t begun_bytes = 0;
};

/// Writes the blocks of `part` from `from` on and sets the checksum of every block it handles: a
/// written block's from the writer, which hashes it while writing (once: the bytes the file holds);
/// the blocks only hashed after the kernel was asked to start writing this rank's blocks back, so
/// that their hashing overlaps the disk writes the fsync would otherwise wait for. The objects do
/// not change meanwhile: a synchronous save blocks its caller, an asynchronous one writes from its
/// own copy.
inline void write_blocks(ckpt::detail::file_writer& writer, std::vector<planned_block>& blocks, const rank_part& part,
                         std::size_t from = 0) {
    for (std::size_t k = from; k < part.written; ++k) {
        planned_block& b = blocks[part.order[k]];
        writer.block(b.path, b.kind, b.type, b.dims, b.column_major, b.bytes(), ckpt::detail::to_size(b.size));
        b.checksum = writer.last_checksum();
    }
    const std::size_t first_hashed = std::max(from, part.written);
    if (first_hashed < part.order.size()) writer.start_writeback();
    std::vector<std::uint64_t> sums;
    for (std::size_t k = first_hashed; k < part.order.size(); ++k) {
        planned_block& b = blocks[part.order[k]];
        b.checksum = ckpt::detail::block_checksum(b.bytes(), ckpt::detail::to_size(b.size),
                                                  ckpt::detail::default_chunk_size, sums, writer.hash_threads());
    }
}

/// Under an asynchronous save's memory budget, on the caller's thread: writes (or hashes) the
/// blocks of `part` from the objects' memory until `ahead` bytes of tensors are done, a tensor
/// across that line begun and written up to it. The caller then copies only what comes after
/// (every block from the returned point on, and the tail of the one begun), at most the budget.
inline resume_point write_ahead(ckpt::detail::file_writer& writer, std::vector<planned_block>& blocks,
                                const rank_part& part, std::size_t ahead) {
    resume_point at;
    std::vector<std::uint64_t> sums;
    std::size_t done = 0;  // tensor bytes written or hashed
    for (; at.next < part.order.size() && done < ahead; ++at.next) {
        planned_block& b = blocks[part.order[at.next]];
        const std::size_t size = ckpt::detail::to_size(b.size);
        const std::size_t tensor_bytes = b.kind == entry_kind::tensor ? size : 0;
        if (at.next >= part.written) {  // hashed whole, even across the line: nothing of it is copied
            if (at.next == part.written) writer.start_writeback();
            b.checksum = ckpt::detail::block_checksum(b.bytes(), size, ckpt::detail::default_chunk_size, sums,
                                                      writer.hash_threads());
        } else if (done + tensor_bytes > ahead) {
            at.begun = true;
            at.begun_bytes = ahead - done;
            writer.begin_block(b.path, b.kind, b.type, b.dims, b.column_major, size);
            writer.block_bytes(b.bytes(), at.begun_bytes);
            ++at.next;
            break;
        } else {
            writer.block(b.path, b.kind, b.type, b.dims, b.column_major, b.bytes(), size);
            b.checksum = writer.last_checksum();
        }
        done += tensor_bytes;
    }
    return at;
}

/// After write_ahead began a tensor (`at.begun`): its rest, from `tail`, and its checksum.
inline void finish_begun_block(ckpt::detail::file_writer& writer, std::vector<planned_block>& blocks,
                               const rank_part& part, const resume_point& at, const char* tail) {
    planned_block& b = blocks[part.order[at.next - 1]];
    writer.block_bytes(tail, ckpt::detail::to_size(b.size) - at.begun_bytes);
    writer.end_block();
    b.checksum = writer.last_checksum();
}

}  // namespace ckpt::mpi::detail
