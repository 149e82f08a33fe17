#pragma once
// The records of a checkpoint's index, each encoded and decoded side by side (as cereal keeps a
// type's save and load together), so the writer and the reader cannot drift apart. An entry record:
//
//   path (u32 length + bytes), kind u8, dtype u8, flags u8 (1: column-major), rank u8,
//   rank x u64 dimensions, u64 offset, u64 length, u64 checksum,
//   [version 2, a block longer than one chunk: chunk_count x u64 chunk checksums; then the
//    checksum above is the hash of this table]
//
// After the entries, the metadata record: u32 count, (name, f64) metrics; u32 count, (key, value) strings.
// docs/format.md is the full description.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/dtype.hpp>
#include <ckpt/detail/format/layout.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt::detail {

/// The bytes of a tensor of `dims` elements of `type`, or nullopt when no tensor can have them (the
/// product of the dimensions or its bytes overflow 64 bits; dtype::bytes is no element type). The
/// one rule every reader of a shape from disk uses (the file's index, a sharded manifest's pieces
/// and global shapes, the tool's export), so a shape like [2^62] of float64 is refused everywhere
/// instead of wrapping to a small length somewhere.
/// `if (auto n = tensor_byte_length(dims, dtype::float32)) buffer.resize(*n);`
inline std::optional<std::uint64_t> tensor_byte_length(const shape& dims, dtype type) noexcept {
    bool fits = true;
    const std::uint64_t n = dims.elements(&fits);
    if (!fits || type == dtype::bytes || n > UINT64_MAX / dtype_size(type)) return std::nullopt;
    return n * dtype_size(type);
}

/// Whether an entry's kind, dtype and shape agree with its block length: the rule the writer checks
/// before a save (so no save produces a file that cannot be read) and the reader on every record.
CKPT_INLINE bool entry_shape_agrees(entry_kind kind, dtype type, const shape& dims, std::uint64_t length);

/// Appends one entry record; `chunk_sums` (count of them: chunk_count(length, chunk size)) follow
/// it when the block is chunked, and `checksum` is then their hash.
CKPT_INLINE void encode_entry_record(index_builder& out, std::string_view path, entry_kind kind, dtype type,
                                     const shape& dims, bool column_major, std::uint64_t offset, std::uint64_t length,
                                     std::uint64_t checksum, const std::uint64_t* chunk_sums = nullptr,
                                     std::size_t chunks = 0);

/// Reads one entry record and checks it: a valid path, known kind, dtype and flags, its block at
/// `expected_offset` and before `blocks_end` (the index), its chunk table (appended to `chunk_sums`
/// when the block is longer than `chunk_size`; 0 in version 1) matching its checksum, and a shape
/// that agrees with its length. Throws corrupt_error (through `in`) naming the entry. Decodes into
/// `e`, every field of it, so that one entry can take record after record.
CKPT_INLINE void decode_entry_record(index_parser& in, std::uint64_t expected_offset, std::uint64_t blocks_end,
                                     std::uint64_t chunk_size, std::vector<std::uint64_t>& chunk_sums, entry_info& e);

/// Appends the metadata record that ends the index.
CKPT_INLINE void encode_metadata_record(index_builder& out, const save_options& m);

/// Reads the metadata record into `m` (its metrics and strings); it must end the index.
CKPT_INLINE void decode_metadata_record(index_parser& in, ckpt::metadata& m);

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
#include <ckpt/detail/hash.hpp>  // XXH3, needed by the definitions only

namespace ckpt::detail {

CKPT_INLINE bool entry_shape_agrees(entry_kind kind, dtype type, const shape& dims, std::uint64_t length) {
    const bool bytes = type == dtype::bytes;
    switch (kind) {
        case entry_kind::tensor: {
            const auto n = tensor_byte_length(dims, type);
            return n && *n == length;
        }
        case entry_kind::sparse:
            return !bytes && dims.rank() == 2 && length >= 8;
        case entry_kind::serialized:
        case entry_kind::text:
            return bytes && dims.rank() == 1 && dims[0] == length;
        case entry_kind::sequence:
            return bytes && dims.rank() == 1 && length == 0;
        case entry_kind::mapping:
            return bytes && dims.rank() == 1 && dims[0] <= length / 4;
    }
    return false;
}

CKPT_INLINE void encode_entry_record(index_builder& out, std::string_view path, entry_kind kind, dtype type,
                                     const shape& dims, bool column_major, std::uint64_t offset, std::uint64_t length,
                                     std::uint64_t checksum, const std::uint64_t* chunk_sums, std::size_t chunks) {
    out.text(path);
    out.u8(static_cast<std::uint8_t>(kind));
    out.u8(static_cast<std::uint8_t>(type));
    out.u8(column_major ? 1 : 0);
    out.u8(static_cast<std::uint8_t>(dims.rank()));
    for (auto d : dims) out.u64(d);
    out.u64(offset);
    out.u64(length);
    out.u64(checksum);
    if (chunks) out.append(chunk_sums, chunks * sizeof(std::uint64_t));
}

CKPT_INLINE void decode_entry_record(index_parser& in, std::uint64_t expected_offset, std::uint64_t blocks_end,
                                     std::uint64_t chunk_size, std::vector<std::uint64_t>& chunk_sums, entry_info& e) {
    e.path.assign(in.text_view("entry path"));
    if (!is_valid_entry_path(e.path)) in.fail("invalid entry path '" + e.path + "'");
    const auto kind = in.u8(), type = in.u8(), flags = in.u8(), rank = in.u8();
    if (kind > static_cast<std::uint8_t>(entry_kind::mapping))
        in.fail("entry '" + e.path + "' has unknown kind " + std::to_string(kind));
    if (!is_valid_dtype(type)) in.fail("entry '" + e.path + "' has unknown dtype " + std::to_string(type));
    if (flags > 1) in.fail("entry '" + e.path + "' has unknown flags");
    if (rank > shape::max_rank) in.fail("entry '" + e.path + "' has rank " + std::to_string(rank));
    e.kind = static_cast<entry_kind>(kind);
    e.dtype = static_cast<ckpt::dtype>(type);
    e.column_major = flags == 1;
    e.shape = shape{};  // no dimension of an earlier record left beyond the rank
    for (unsigned r = 0; r < rank; ++r) e.shape.push_back(in.u64());
    e.offset = in.u64();
    e.length = in.u64();
    e.checksum = in.u64();
    if (e.offset != expected_offset || e.length > blocks_end - e.offset)
        in.fail("entry '" + e.path + "' block lies outside its place in the file");
    // A version 2 record of a block longer than one chunk ends with its chunk table: as many
    // checksums as the block's length and the file's chunk size give (so their bytes are bounded by
    // the file; checked against the index before anything is stored), whose hash is the block's checksum.
    if (const std::uint64_t count = chunk_count(e.length, chunk_size)) {
        if (count > in.remaining() / 8)
            in.fail("entry '" + e.path + "' has a block of " + std::to_string(e.length) + " bytes, whose table of " +
                    std::to_string(count) + " chunk checksums runs past the end of the index");
        const std::size_t first = chunk_sums.size();
        for (std::uint64_t i = 0; i < count; ++i) chunk_sums.push_back(in.u64());
        if (hash64(chunk_sums.data() + first, static_cast<std::size_t>(count) * 8) != e.checksum && checksums_enforced)
            in.fail("entry '" + e.path + "' checksum does not match its chunk table");
    }
    if (!entry_shape_agrees(e.kind, e.dtype, e.shape, e.length))
        in.fail("entry '" + e.path + "': " + entry_kind_name(e.kind) + " of " + dtype_name(e.dtype) + " " +
                e.shape.to_string() + " does not agree with its block length " + std::to_string(e.length));
}

CKPT_INLINE void encode_metadata_record(index_builder& out, const save_options& m) {
    out.u32(static_cast<std::uint32_t>(m.metrics.size()));
    for (const auto& [name, value] : m.metrics) {
        out.text(name);
        out.f64(value);
    }
    out.u32(static_cast<std::uint32_t>(m.strings.size()));
    for (const auto& [key, value] : m.strings) {
        out.text(key);
        out.text(value);
    }
}

CKPT_INLINE void decode_metadata_record(index_parser& in, ckpt::metadata& m) {
    for (auto n = in.u32(); n > 0; --n) {
        auto name = in.text("metric name");
        m.metrics[std::move(name)] = in.f64();
    }
    for (auto n = in.u32(); n > 0; --n) {
        auto key = in.text("metadata key");
        m.strings[std::move(key)] = in.text("metadata value");
    }
    if (in.remaining() != 0) in.fail(std::to_string(in.remaining()) + " unexpected bytes after the metadata");
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
