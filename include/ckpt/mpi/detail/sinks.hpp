#pragma once
// The save_walker sinks of a sharded save (plan_sink: synchronous, by reference; copy_sink:
// asynchronous, copied), and write_blocks, which writes this rank's part of a plan.

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/detail/hash.hpp>
#include <ckpt/detail/format/layout.hpp>
#include <ckpt/detail/format/writer.hpp>
#include <ckpt/detail/parallel/thread_pool.hpp>
#include <ckpt/mpi/detail/save_plan.hpp>
#include <ckpt/mpi/track.hpp>

namespace ckpt::mpi::detail {

/// A planned block's description as a walk hands it to a sink (where its bytes are is each sink's).
inline planned_block described_block(entry_role role, std::string_view path, entry_kind kind, dtype type,
                                     const shape& dims, bool column_major, std::size_t size) {
    planned_block b;
    b.path = std::string(path);
    b.role = role;
    b.kind = kind;
    b.type = type;
    b.dims = dims;
    b.column_major = column_major;
    b.size = size;
    return b;
}

/// A save_walker sink that keeps what a save needs: descriptions and the bytes (tensor blocks by
/// reference, encoded values by copy). No hashing: write_blocks hashes each block once, after the
/// ranks have agreed which rank writes which replicated block.
struct plan_sink {
    entry_role role = entry_role::replicated;
    std::vector<planned_block> blocks;

    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major,
               const void* data, std::size_t size) {
        planned_block b = described_block(role, path, kind, type, dims, column_major, size);
        if (kind == entry_kind::tensor) {
            b.data = data;
        } else {
            b.owned.assign(static_cast<const char*>(size ? data : ""), size);
            b.uses_owned = true;
        }
        blocks.push_back(std::move(b));
    }
};

/// The save_walker sink of an asynchronous save. The walk records descriptions and copies encoded
/// values (their bytes live only during the call); tensors are copied by copy(), after the ranks'
/// exchange, from the objects' own memory, which does not change in between: so no rank waits in
/// the exchange for another's copy. Both buffers are reused from one save to the next (once grown,
/// a save allocates nothing). No hashing: that happens on the background thread. Not
/// ckpt::detail::snapshot, which also defers its tensor copies but keeps no role, global shape or
/// offsets.
class copy_sink {
public:
    entry_role role = entry_role::replicated;
    std::vector<planned_block> blocks;

    void clear(const std::filesystem::path& file) {
        file_ = file;
        blocks.clear();
        at_.clear();
        values_.clear();
        tensor_bytes_ = 0;
    }

    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major,
               const void* data, std::size_t size) {
        // Refused here, on the caller's thread, before anything is written.
        ckpt::detail::check_writable_entry(path, kind, type, dims, size, blocks.size(), file_);
        planned_block b = described_block(role, path, kind, type, dims, column_major, size);
        if (kind == entry_kind::tensor) {
            b.data = data;  // until copy()
            at_.push_back(tensor_bytes_);
            tensor_bytes_ += size;
        } else {
            at_.push_back(values_.size());
            values_.append(static_cast<const char*>(size ? data : ""), size);
        }
        blocks.push_back(std::move(b));
    }

    /// Room for the tensors' copies, taken before the exchange (so a failure is exchanged too).
    void reserve() {
        std::size_t parts = 0;
        for (const auto& b : blocks)
            if (b.kind == entry_kind::tensor) parts += ckpt::detail::copy_parts(ckpt::detail::to_size(b.size));
        parts_.clear();
        parts_.reserve(parts);  // copy() adds no more
        if (tensor_bytes_ <= capacity_) return;
        bytes_.reset();                         // nothing in it is kept: free first
        bytes_.reset(new char[tensor_bytes_]);  // not zero-filled: every byte is copied into
        capacity_ = tensor_bytes_;
    }

    /// The memory kept from one save to the next: the tensors' copies and the encoded values.
    std::size_t memory() const noexcept { return capacity_ + values_.capacity(); }

    /// Copies the tensors, on the threads of ckpt/threads.hpp from 16 MiB on, and points every
    /// block at its copy. After reserve(): nothing left to fail.
    void copy() noexcept {
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            auto& b = blocks[i];
            if (b.kind == entry_kind::tensor) {
                ckpt::detail::add_copy(parts_, b.data, bytes_.get() + at_[i], ckpt::detail::to_size(b.size));
                b.data = bytes_.get() + at_[i];
            } else {
                b.data = values_.data() + at_[i];
            }
        }
        try {
            ckpt::detail::parallel_copy(parts_, tensor_bytes_);
        } catch (...) {  // the pool could not take the job: copied here instead
            for (const auto& p : parts_) std::memcpy(p.to, p.from, p.length);
        }
    }

private:
    std::filesystem::path file_;
    std::vector<std::size_t> at_;
    std::string values_;
    std::unique_ptr<char[]> bytes_;
    std::size_t capacity_ = 0, tensor_bytes_ = 0;
    std::vector<ckpt::detail::copy_part> parts_;
};

/// Writes this rank's blocks of a save (its shards and per-rank blocks, and the replicated blocks
/// `owner` gives it) and sets the checksum of every block: a written block's from the writer, which
/// hashes it while writing (once: the bytes the file holds); the replicated blocks other ranks write
/// are hashed only for the comparison of replicas, so not under divergence::off, and only after the
/// kernel was asked to start writing this rank's blocks back, so that their hashing overlaps the
/// disk writes the fsync would otherwise wait for. The objects do not change meanwhile: a
/// synchronous save blocks its caller, an asynchronous one writes from its own copy.
inline void write_blocks(ckpt::detail::file_writer& writer, std::vector<planned_block>& blocks,
                         const std::vector<std::uint32_t>& owner, std::uint32_t me, divergence policy) {
    std::vector<planned_block*> others;
    std::size_t replicated = 0;
    for (auto& b : blocks) {
        bool writes = true;
        if (b.role == entry_role::replicated) writes = owner[replicated++] == me;
        if (b.role == entry_role::shard && b.dims.elements() == 0) writes = false;
        if (writes) {
            writer.block(b.path, b.kind, b.type, b.dims, b.column_major, b.bytes(), ckpt::detail::to_size(b.size));
            b.checksum = writer.last_checksum();
        } else if (b.role != entry_role::replicated || policy != divergence::off) {
            others.push_back(&b);
        }
    }
    if (!others.empty()) writer.start_writeback();
    std::vector<std::uint64_t> sums;
    for (auto* b : others)
        b->checksum = ckpt::detail::block_checksum(b->bytes(), ckpt::detail::to_size(b->size),
                                                   ckpt::detail::default_chunk_size, sums, writer.hash_threads());
}

}  // namespace ckpt::mpi::detail
