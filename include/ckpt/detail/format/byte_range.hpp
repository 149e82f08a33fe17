#pragma once
// The read-range bounds rule: which byte ranges of a block a read may ask for. One rule for a
// file's blocks (detail/format/file_reader.hpp) and a sharded checkpoint's logical entries and pieces
// (detail/format/sharded_reader.hpp); each caller words and types its own error.

#include <cstdint>

namespace ckpt::detail {

/// True when [offset, offset + count) lies within a block of `length` bytes. Written without the
/// sum offset + count, which a range taken from a damaged file or a caller could overflow.
/// `if (!range_within(offset, count, e.length)) throw error(...);`
constexpr bool range_within(std::uint64_t offset, std::uint64_t count, std::uint64_t length) noexcept {
    return offset <= length && count <= length - offset;
}

}  // namespace ckpt::detail
