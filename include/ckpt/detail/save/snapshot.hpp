#pragma once
// The second sink of a save walk (save_walk.hpp), beside detail/format/writer.hpp's file_writer: an
// asynchronous save (async.hpp) takes a snapshot on the caller's thread -- tensor bytes copied and
// opaque leaves encoded into a buffer reused from one save to the next -- and the background thread
// writes it to a file later.

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

namespace ckpt::detail {

/// The tracked state at one moment, owned: what a save walk produced, ready to be written later.
/// A sink for save_walker, like file_writer.
class snapshot {
public:
    /// Empties the snapshot for a save to `file` (named in errors).
    void clear(const std::filesystem::path& file);

    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major,
               const void* data, std::size_t size);

    /// Writes the snapshot as a checkpoint file; runs on the background thread.
    void write(const std::filesystem::path& file, const save_options& options, std::uint64_t counter,
               std::chrono::system_clock::time_point when) const;

    std::size_t bytes() const noexcept { return size_; }

private:
    struct record {
        std::size_t path_offset, path_length;
        entry_kind kind;
        dtype type;
        bool column_major;
        shape dims;
        std::size_t offset, length;
    };

    // Grows without zero-filling (new char[] leaves bytes uninitialised: every byte is copied
    // into before it is read); once grown, later saves of the same state allocate nothing.
    void reserve(std::size_t needed);

    std::filesystem::path file_;
    std::vector<record> records_;
    std::string paths_;
    std::unique_ptr<char[]> bytes_;
    std::size_t capacity_ = 0, size_ = 0;
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
    size_ = 0;
}

CKPT_INLINE void snapshot::block(std::string_view path, entry_kind kind, dtype type, const shape& dims,
                                 bool column_major, const void* data, std::size_t size) {
    // Refused here, on the caller's thread, before a file is created.
    check_writable_entry(path, kind, type, dims, size, records_.size(), file_);
    records_.push_back({paths_.size(), path.size(), kind, type, column_major, dims, size_, size});
    paths_.append(path);
    reserve(size_ + size);
    if (size) std::memcpy(bytes_.get() + size_, data, size);
    size_ += size;
}

CKPT_INLINE void snapshot::write(const std::filesystem::path& file, const save_options& options, std::uint64_t counter,
                                 std::chrono::system_clock::time_point when) const {
    file_writer writer(file);
    for (const auto& r : records_)
        writer.block(std::string_view(paths_).substr(r.path_offset, r.path_length), r.kind, r.type, r.dims,
                     r.column_major, bytes_.get() + r.offset, r.length);
    writer.finish(options, counter, when);
}

CKPT_INLINE void snapshot::reserve(std::size_t needed) {
    if (needed <= capacity_) return;
    const std::size_t capacity = std::max(needed, capacity_ + capacity_ / 2);
    std::unique_ptr<char[]> grown(new char[capacity]);
    if (size_) std::memcpy(grown.get(), bytes_.get(), size_);
    bytes_ = std::move(grown);
    capacity_ = capacity;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
