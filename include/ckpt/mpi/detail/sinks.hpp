#pragma once
// The save_walker sinks of a sharded save: plan_sink (synchronous, by reference) and copy_sink
// (asynchronous, copied; under a memory budget only what the background thread still needs).

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
#include <ckpt/mpi/detail/rank_file.hpp>
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
/// a save allocates nothing). Under a memory budget copy_rest replaces reserve() and copy(). No
/// hashing: that happens on the background thread. Not
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
        ckpt::detail::reserve_copy_storage(bytes_, capacity_, tensor_bytes_, no_budget);
    }

    /// The memory kept from one save to the next: the tensors' copies and the encoded values.
    std::size_t memory() const noexcept { return capacity_ + values_.capacity(); }

    /// Copies the tensors, on the threads of ckpt/threads.hpp from 16 MiB on, and points every
    /// block at its copy. After reserve(): nothing left to fail.
    void copy() noexcept {
        point_at_values();
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            auto& b = blocks[i];
            if (b.kind != entry_kind::tensor) continue;
            ckpt::detail::add_copy(parts_, b.data, bytes_.get() + at_[i], ckpt::detail::to_size(b.size));
            b.data = bytes_.get() + at_[i];
        }
        run_copies(tensor_bytes_);
    }

    /// Points the other blocks (encoded values) at their bytes, which the walk has stopped adding to.
    void point_at_values() noexcept {
        for (std::size_t i = 0; i < blocks.size(); ++i)
            if (blocks[i].kind != entry_kind::tensor) blocks[i].data = values_.data() + at_[i];
    }

    /// Under a memory budget, instead of reserve() and copy(), after the exchange and write_ahead:
    /// copies only the tensors the background thread still needs (those of `part` from `from` on,
    /// and the tail of the tensor write_ahead began, which begun_tail() then gives) into storage
    /// of at most `budget` bytes, kept for the next save. The other tensor blocks are done or not
    /// this rank's to write or hash, and point nowhere. Throws bad_alloc before anything is copied.
    void copy_rest(const rank_part& part, const resume_point& from, std::size_t budget) {
        namespace cd = ckpt::detail;
        const planned_block* begun = from.begun ? &blocks[part.order[from.next - 1]] : nullptr;
        const std::size_t begun_rest = begun ? cd::to_size(begun->size) - from.begun_bytes : 0;
        std::size_t needed = begun_rest, count = cd::copy_parts(begun_rest);
        for (std::size_t k = from.next; k < part.order.size(); ++k) {
            const planned_block& b = blocks[part.order[k]];
            if (b.kind != entry_kind::tensor) continue;
            needed += cd::to_size(b.size);
            count += cd::copy_parts(cd::to_size(b.size));
        }
        parts_.clear();
        parts_.reserve(count);
        cd::reserve_copy_storage(bytes_, capacity_, needed, budget);
        if (begun)
            cd::add_copy(parts_, static_cast<const char*>(begun->data) + from.begun_bytes, bytes_.get(), begun_rest);
        std::vector<const void*> copies(blocks.size());
        std::size_t at = begun_rest;
        for (std::size_t k = from.next; k < part.order.size(); ++k) {
            const std::size_t i = part.order[k];
            if (blocks[i].kind != entry_kind::tensor) continue;
            cd::add_copy(parts_, blocks[i].data, bytes_.get() + at, cd::to_size(blocks[i].size));
            copies[i] = bytes_.get() + at;
            at += cd::to_size(blocks[i].size);
        }
        run_copies(needed);
        for (std::size_t i = 0; i < blocks.size(); ++i)
            if (blocks[i].kind == entry_kind::tensor) blocks[i].data = copies[i];
    }
    /// The copy of the tail of the tensor write_ahead began (see copy_rest).
    const char* begun_tail() const noexcept { return bytes_.get(); }

private:
    static constexpr std::size_t no_budget = static_cast<std::size_t>(-1);

    void run_copies(std::size_t bytes) noexcept {
        try {
            ckpt::detail::parallel_copy(parts_, bytes);
        } catch (...) {  // the pool could not take the job: copied here instead
            for (const auto& p : parts_) std::memcpy(p.to, p.from, p.length);
        }
    }

    std::filesystem::path file_;
    std::vector<std::size_t> at_;
    std::string values_;
    std::unique_ptr<char[]> bytes_;
    std::size_t capacity_ = 0, tensor_bytes_ = 0;
    std::vector<ckpt::detail::copy_part> parts_;
};

}  // namespace ckpt::mpi::detail
