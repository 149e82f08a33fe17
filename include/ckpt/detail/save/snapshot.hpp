#pragma once
// The second sink of a save walk (save_walk.hpp), beside detail/format/writer.hpp's file_writer: an
// asynchronous save (async.hpp) takes a snapshot on the caller's thread -- tensor bytes copied and
// opaque leaves encoded into buffers reused from one save to the next -- and the background thread
// writes it to a file later. The walk only notes where each tensor's bytes are (the objects' own
// storage, which stays put while the caller is in the save); finish() then copies them all at once,
// on the threads of ckpt/threads.hpp, into one buffer sized once.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/writer.hpp>
#include <ckpt/detail/parallel/thread_pool.hpp>

namespace ckpt::detail {

/// The tracked state at one moment, owned: what a save walk produced, ready to be written later.
/// A sink for save_walker, like file_writer.
class snapshot {
public:
    /// Empties the snapshot for a save to `file` (named in errors).
    void clear(const std::filesystem::path& file);

    /// A tensor's bytes are copied by finish(): `data` must stay valid and unchanged until then.
    /// Other blocks (scratch memory of the walk) are copied now.
    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major,
               const void* data, std::size_t size);

    /// Copies the tensors' bytes: from 16 MiB on, on up to ckpt::max_threads() threads (at least
    /// 4 MiB each), large tensors split between them.
    void finish();

    /// Writes the snapshot as a checkpoint file; runs on the background thread.
    void write(const std::filesystem::path& file, const save_options& options, std::uint64_t counter,
               std::chrono::system_clock::time_point when) const;

    std::size_t bytes() const noexcept { return tensor_bytes_ + other_bytes_.size(); }

private:
    struct record {
        std::size_t path_offset, path_length;
        entry_kind kind;
        dtype type;
        bool column_major;
        shape dims;
        bool tensor;  // bytes in tensor_bytes_ (else in other_bytes_)
        std::size_t offset, length;
    };
    struct copy {
        const char* from;
        std::size_t offset, length;
    };

    // Grows without zero-filling and without keeping the old bytes (new char[] leaves them
    // uninitialised: every byte is copied into before it is read); once grown, later saves of the
    // same state allocate nothing.
    void reserve(std::size_t needed);

    std::filesystem::path file_;
    std::vector<record> records_;
    std::string paths_;
    std::string other_bytes_;
    std::vector<copy> copies_;  // the tensors finish() copies into tensor_bytes_
    std::size_t tensor_bytes_ = 0;
    std::unique_ptr<char[]> bytes_;
    std::size_t capacity_ = 0;
};

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void snapshot::clear(const std::filesystem::path& file) {
    file_ = file;
    records_.clear();
    paths_.clear();
    other_bytes_.clear();
    copies_.clear();
    tensor_bytes_ = 0;
}

CKPT_INLINE void snapshot::block(std::string_view path, entry_kind kind, dtype type, const shape& dims,
                                 bool column_major, const void* data, std::size_t size) {
    // Refused here, on the caller's thread, before a file is created.
    check_writable_entry(path, kind, type, dims, size, records_.size(), file_);
    const bool tensor = kind == entry_kind::tensor;
    records_.push_back({paths_.size(), path.size(), kind, type, column_major, dims, tensor,
                        tensor ? tensor_bytes_ : other_bytes_.size(), size});
    paths_.append(path);
    if (!tensor) {
        other_bytes_.append(static_cast<const char*>(data), size);
    } else if (size) {
        copies_.push_back({static_cast<const char*>(data), tensor_bytes_, size});
        tensor_bytes_ += size;
    }
}

CKPT_INLINE void snapshot::finish() {
    reserve(tensor_bytes_);
    constexpr std::size_t parallel_min_bytes = std::size_t{16} << 20, per_thread = std::size_t{4} << 20,
                          part_bytes = std::size_t{4} << 20;
    const std::size_t threads =
        tensor_bytes_ < parallel_min_bytes ? 1 : std::min(max_threads(), tensor_bytes_ / per_thread);
    if (threads <= 1) {
        for (const copy& c : copies_) std::memcpy(bytes_.get() + c.offset, c.from, c.length);
    } else {
        // Parts of at most part_bytes; small tensors go whole.
        std::vector<copy> parts;
        parts.reserve(copies_.size());
        for (const copy& c : copies_)
            for (std::size_t at = 0; at < c.length; at += part_bytes)
                parts.push_back({c.from + at, c.offset + at, std::min(part_bytes, c.length - at)});
        parallel_for(parts.size(), threads, [&](std::size_t i) {
            std::memcpy(bytes_.get() + parts[i].offset, parts[i].from, parts[i].length);
        });
    }
    copies_.clear();
}

CKPT_INLINE void snapshot::write(const std::filesystem::path& file, const save_options& options, std::uint64_t counter,
                                 std::chrono::system_clock::time_point when) const {
    file_writer writer(file);
    writer.hash_on_one_thread();
    for (const auto& r : records_)
        writer.block(std::string_view(paths_).substr(r.path_offset, r.path_length), r.kind, r.type, r.dims,
                     r.column_major, (r.tensor ? bytes_.get() : other_bytes_.data()) + r.offset, r.length);
    writer.finish(options, counter, when);
}

CKPT_INLINE void snapshot::reserve(std::size_t needed) {
    if (needed <= capacity_) return;
    // Freed before the larger one is allocated (nothing in it is kept), and forgotten first, so
    // that a bad_alloc leaves no capacity without bytes for the next save to write into.
    capacity_ = 0;
    bytes_.reset();
    bytes_.reset(new char[needed]);
    capacity_ = needed;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
