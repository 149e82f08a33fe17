#pragma once
// Opens a checkpoint file and checks its structure before anything else trusts it: header,
// index checksum, and a layout in which every entry's block lies where the previous one ends
// (rounded up to 64), inside the file. Blocks are then read on demand, each checked against its
// checksum and its padding against zero. Nothing is allocated that the file size cannot justify.
// A version 2 block longer than one chunk is checked chunk by chunk, which lets read_range read and
// check only the chunks a byte range covers.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/byte_range.hpp>
#include <ckpt/detail/format/entry_codec.hpp>
#include <ckpt/detail/format/layout.hpp>
#include <ckpt/detail/format/path_index.hpp>
#include <ckpt/detail/format/read_buffer.hpp>
#include <ckpt/detail/io/descriptor.hpp>
#include <ckpt/detail/io/read_write.hpp>
#include <ckpt/detail/io/temp_names.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt::detail {

class file_reader {
public:
    explicit file_reader(std::filesystem::path path);

    const std::filesystem::path& path() const noexcept { return path_; }
    const std::vector<entry_info>& entries() const noexcept { return entries_; }
    const ckpt::metadata& metadata() const noexcept { return metadata_; }
    std::uint64_t size() const noexcept { return size_; }

    /// The entry at `path`, or nullptr.
    const entry_info* find(std::string_view path) const;
    std::size_t index_of(const entry_info& e) const noexcept { return static_cast<std::size_t>(&e - entries_.data()); }

    /// Reads an entry's block into `dest` (e.length bytes), checking checksum and padding.
    void read_block(const entry_info& entry, void* dest);

    /// Reads bytes [byte_offset, byte_offset + byte_count) of an entry's block into `dest`, checking
    /// every chunk the range covers (version 1 files, without chunk checksums: the whole block).
    /// On a checksum mismatch `dest` may hold some of the damaged bytes; the exception says so.
    void read_range(const entry_info& entry, std::uint64_t byte_offset, std::uint64_t byte_count, void* dest);

    /// The chunk size of this file (0 for version 1: no chunk checksums) and its format version.
    std::uint64_t chunk_size() const noexcept { return header_.chunk_size; }
    std::uint32_t format_version() const noexcept { return header_.version; }
    /// The chunk checksums of an entry's block: empty when the block is not longer than one chunk.
    std::pair<const std::uint64_t*, std::size_t> chunk_checksums(const entry_info& entry) const;

    /// The whole block as a string; for small entries (serialized, text, keys, sparse).
    std::string read_block(const entry_info& e);

    /// Scratch memory for read_part: one per thread that reads (ckpt/detail/format/read_buffer.hpp).
    using read_buffer = detail::read_buffer;

    /// As read_range(e, lo, hi - lo, dest + lo), into the whole block's memory `dest`, but safe to
    /// call from several threads at once: it changes nothing in the reader (positioned reads of the
    /// one descriptor, scratch memory from `buffer`). `e` must be one of entries() itself, and
    /// [lo, hi) either the whole block or, in a block checked chunk by chunk, whole chunks but the
    /// last; then only those chunks are checked (the padding with the last one). A parallel restore
    /// splits large blocks so (read_blocks in detail/restore/staged_reads.hpp). With `dest` nullptr
    /// the bytes are only checked, as verify_block checks them.
    void read_part(const entry_info& e, std::uint64_t lo, std::uint64_t hi, char* dest, read_buffer& buffer) const;
    /// The size a parallel read may split a block at (read_part): its chunks; 0 when it may not.
    std::uint64_t part_size(const entry_info& e) const noexcept { return is_chunked(e) ? header_.chunk_size : 0; }

    /// Small blocks that follow one another in the file are read as one run, with one pread, then
    /// checked one by one from memory (read_blocks): a pread per block of a few floats cost more
    /// than the rest of its restore. The bytes such a block of this file takes with its padding;
    /// 0 for any other block.
    std::uint64_t small_span(const entry_info& e) const noexcept {
        return owns(e) && !is_chunked(e) && is_small(e) ? e.length + padding_after(e) : 0;
    }
    /// The file's bytes [lo, hi) of blocks, read into `buffer`; safe from several threads, as read_part.
    const char* read_span(std::uint64_t lo, std::uint64_t hi, read_buffer& buffer) const;
    /// Checks the bytes (and the padding after them) of a block whose small_span is not 0, as read
    /// by read_span: what read_part checks.
    void check_small(const entry_info& e, const char* bytes) const;

    /// Reads and checks every block; throws corrupt_error naming the first bad entry.
    void verify() {
        for (const auto& e : entries_) verify_block(e);
    }

    /// Reads and checks one entry's block (checksum and padding) without keeping its bytes.
    void verify_block(const entry_info& entry);

private:
    // Below this size a block is copied out of the read-ahead window; above it, a direct read into
    // the destination is cheaper than the second copy (measured: the two cost the same near 8 KiB).
    static constexpr std::uint64_t small_block = 16 << 10;
    static constexpr std::size_t chunk = 1 << 20;
    static constexpr std::size_t window_size = 1 << 20;
    // Bytes that are only checked are read in pieces that stay in a core's L2 cache while they are
    // hashed: 1.3-1.4x faster than 1 MiB pieces, which spill (measured on our 2-core VM: 256 MiB
    // checked on 2 threads in 14-15 ms against 19-25 ms).
    static constexpr std::size_t verify_piece = 256 << 10;

    static std::uint64_t padding_after(const entry_info& e) noexcept {
        return align_up(e.offset + e.length) - (e.offset + e.length);
    }
    static bool is_small(const entry_info& e) noexcept { return e.length + padding_after(e) <= small_block; }
    bool is_chunked(const entry_info& e) const noexcept { return chunk_count(e.length, header_.chunk_size) != 0; }

    bool owns(const entry_info& e) const noexcept;
    // The entry of this file that `e` is or equals: callers may pass copies, but the chunk tables
    // are found through the entry's position in entries_.
    const entry_info& own(const entry_info& e) const;

    // Reads a large block chunk by chunk, hashing each chunk while it is still in cache. The
    // kernel's page-cache copy can be much slower when source and destination differ in alignment
    // mod 32 (up to 2x in an isolated test on our machines; glibc puts large allocations such as
    // Eigen's 16 bytes past a page), so a destination out of step with the file gets the bytes
    // through an aligned buffer and memcpy, which realigns. With no destination (verify) the bytes
    // are only checked. Bytes [lo, hi) of the block go to `out` (all of them for a whole read): the
    // whole block is still read, as its one checksum covers only all of it.
    void read_large(const entry_info& e, std::uint64_t lo, std::uint64_t hi, char* out, read_buffer& buffer) const;

    // Reads the chunks of a chunked block that overlap bytes [lo, hi), in groups of about 1 MiB,
    // each chunk checked against its checksum from the index; the padding when the last chunk is
    // read. A group entirely inside the range whose destination is in step with the file (see
    // read_large) is read straight into `out`.
    void read_chunks(const entry_info& e, std::uint64_t lo, std::uint64_t hi, char* out, read_buffer& buffer) const;
    // read_chunks with no destination, for chunks longer than verify_piece: each chunk read in
    // pieces of verify_piece into one buffer and hashed as they come.
    void verify_chunks(const entry_info& e, std::uint64_t lo, std::uint64_t hi, read_buffer& buffer) const;

    // `from` holds block bytes [begin, end); copies their overlap with [lo, hi) to `out` (byte lo).
    static void copy_overlap(const char* from, std::uint64_t begin, std::uint64_t end, std::uint64_t lo,
                             std::uint64_t hi, char* out);

    void check(const entry_info& e, std::uint64_t digest, const char* pad, std::uint64_t padding) const;
    // Chunk k of a chunked block: its digest against the checksum its chunk table holds.
    void check_chunk(const entry_info& e, std::uint64_t k, std::uint64_t digest, std::uint64_t expected) const;

    // Serves small reads from a 1 MiB read-ahead window, so many tiny entries cost few syscalls.
    const char* window(std::uint64_t offset, std::uint64_t length);

    void read_index();

    // The chunk checksums of a chunked entry of this file (found by its position in entries_).
    const std::uint64_t* chunk_table(const entry_info& e) const noexcept;

    std::filesystem::path path_;
    file_descriptor fd_;
    std::uint64_t size_ = 0;
    file_header header_;
    std::vector<entry_info> entries_;
    path_index lookup_;
    ckpt::metadata metadata_;
    std::vector<char> window_;
    std::uint64_t window_offset_ = 0;
    read_buffer bounce_;
    std::vector<std::uint64_t> chunk_sums_;  // version 2: the chunk tables of all entries, in order
    std::vector<std::pair<std::size_t, std::uint64_t>> chunk_tables_;  // (entry index, start in chunk_sums_), ascending
};

/// The header of a checkpoint file, or nothing when `path` is not a readable, sound checkpoint
/// header. Cheap (one 128-byte read): used to scan directories.
CKPT_INLINE std::optional<file_header> peek_header(const std::filesystem::path& path) noexcept;

}  // namespace ckpt::detail

// Out-of-line definitions (file_reader-inl.hpp): inline in the header-only build, compiled once in
// ckpt::ckpt_compiled in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
#include <ckpt/detail/format/file_reader-inl.hpp>
#endif
