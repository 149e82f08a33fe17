#pragma once
// Row- and column-major element order: converting a tensor block between the two.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <ckpt/detail/config.hpp>
#include <ckpt/dtype.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt::detail {

/// Converts between row- and column-major element order of the same logical shape.
CKPT_INLINE void reorder(const char* src, char* dst, const shape& s, std::size_t elem, bool src_column_major);

/// True when a tensor's memory holds its elements in another order than the file.
inline bool needs_reorder(const entry_info& e, std::size_t rank, bool column_major) noexcept {
    return rank >= 2 && e.column_major != column_major;
}

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void reorder(const char* src, char* dst, const shape& s, std::size_t elem, bool src_column_major) {
    const std::size_t rank = s.rank();
    std::uint64_t row_major[shape::max_rank], column_major[shape::max_rank];
    for (std::uint64_t i = rank, stride = 1; i-- > 0; stride *= s[i]) row_major[i] = stride;
    for (std::uint64_t i = 0, stride = 1; i < rank; stride *= s[i], ++i) column_major[i] = stride;
    const std::uint64_t* src_stride = src_column_major ? column_major : row_major;
    const std::uint64_t* dst_stride = src_column_major ? row_major : column_major;
    std::uint64_t index[shape::max_rank] = {};
    std::uint64_t src_off = 0, dst_off = 0;
    for (std::uint64_t k = 0, n = s.elements(); k < n; ++k) {
        std::memcpy(dst + dst_off * elem, src + src_off * elem, elem);
        for (std::size_t i = rank; i-- > 0;) {
            if (++index[i] < s[i]) {
                src_off += src_stride[i];
                dst_off += dst_stride[i];
                break;
            }
            src_off -= src_stride[i] * (s[i] - 1);
            dst_off -= dst_stride[i] * (s[i] - 1);
            index[i] = 0;
        }
    }
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
