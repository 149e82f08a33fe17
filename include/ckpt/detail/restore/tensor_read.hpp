#pragma once
// Reading one tensor entry into memory of the object's layout: reordered when the orders differ,
// the bytes of bools checked.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <type_traits>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/bool_bytes.hpp>
#include <ckpt/leaf.hpp>
#include <ckpt/detail/restore/reorder.hpp>
#include <ckpt/detail/restore/source.hpp>

namespace ckpt::detail {

/// Reads a tensor entry into `dest`, memory of the entry's shape laid out as `rank` and
/// `column_major` say; `bools` checks every byte is 0 or 1. Not a template: what differs between
/// tensor types is only this description of their memory. With a `buffer`, reads through
/// restore_source::read_part, which other threads may call at the same time (read_staged).
CKPT_INLINE void read_tensor_bytes(restore_source& file, const entry_info& e, void* memory, std::size_t rank,
                                   bool column_major, std::size_t element_size, bool bools,
                                   file_reader::read_buffer* buffer = nullptr);

/// Copies the checked bytes `src` of a tensor entry into `memory`, laid out as read_tensor_bytes
/// says (reordered when the orders differ, bools checked): a block read as part of a run.
CKPT_INLINE void land_tensor_bytes(const char* src, const entry_info& e, void* memory, std::size_t rank,
                                   bool column_major, std::size_t element_size, bool bools,
                                   const std::filesystem::path& file);

/// Reads a tensor entry into `obj`, which already has the entry's shape.
template <class T>
void read_tensor(restore_source& file, const entry_info& e, T& obj) {
    using traits = tensor_traits<T>;
    using element = typename traits::element;
    read_tensor_bytes(file, e, static_cast<void*>(traits::data(obj)), traits::rank, traits::column_major,
                      sizeof(element), std::is_same_v<element, bool>);
}

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void read_tensor_bytes(restore_source& file, const entry_info& e, void* memory, std::size_t rank,
                                   bool column_major, std::size_t element_size, bool bools,
                                   file_reader::read_buffer* buffer) {
    auto* dest = static_cast<char*>(memory);
    auto read = [&](char* into) {
        if (buffer)
            file.read_part(e, 0, e.length, into, *buffer);
        else
            file.read_block(e, into);
    };
    if (!needs_reorder(e, rank, column_major)) {
        read(dest);
        if (bools) check_bool_bytes(dest, e.length, file.path(), e.path);
        return;
    }
    std::unique_ptr<char[]> staging(new char[static_cast<std::size_t>(e.length)]);
    read(staging.get());
    land_tensor_bytes(staging.get(), e, dest, rank, column_major, element_size, bools, file.path());
}

CKPT_INLINE void land_tensor_bytes(const char* src, const entry_info& e, void* memory, std::size_t rank,
                                   bool column_major, std::size_t element_size, bool bools,
                                   const std::filesystem::path& file) {
    auto* dest = static_cast<char*>(memory);
    if (needs_reorder(e, rank, column_major))
        reorder(src, dest, e.shape, element_size, e.column_major);
    else if (e.length)
        std::memcpy(dest, src, static_cast<std::size_t>(e.length));
    if (bools) check_bool_bytes(dest, e.length, file, e.path);
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
