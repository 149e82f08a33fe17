#pragma once
// The bool-byte rule: a bool is saved as one byte, 0 or 1. Any other byte read into a bool is
// undefined behaviour, and a checksum cannot tell us intent (a file written by other code may hold
// it with a valid checksum), so every bool byte read is checked.

#include <cstdint>
#include <filesystem>
#include <string>

#include <ckpt/detail/config.hpp>
#include <ckpt/error.hpp>

namespace ckpt::detail {

/// True for the bytes a bool may be saved as. `if (!valid_bool_byte(byte)) ...`
constexpr bool valid_bool_byte(unsigned char byte) noexcept { return byte <= 1; }

/// Throws corrupt_error naming `file` and `entry` unless each of the `n` bytes at `bytes` is 0 or 1.
/// `check_bool_bytes(data, e.length, path, e.path);`
CKPT_INLINE void check_bool_bytes(const void* bytes, std::uint64_t n, const std::filesystem::path& file,
                                  const std::string& entry);

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void check_bool_bytes(const void* bytes, std::uint64_t n, const std::filesystem::path& file,
                                  const std::string& entry) {
    const auto* b = static_cast<const unsigned char*>(bytes);
    for (std::uint64_t i = 0; i < n; ++i)
        if (!valid_bool_byte(b[i]))
            throw corrupt_error("bool tensor holds a byte that is neither 0 nor 1", file, entry);
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
