#pragma once
// The bytes of a checkpoint file (docs/format.md is the full description):
//
//   [0, 128)        header: magic, version, byte order, sizes, index location, checksums
//   [128, ...)      entry blocks in index order, each starting at a multiple of 64, zero padding between
//   [index_offset)  index: one record per entry, then metadata; ends the file
//
// Every byte is covered: the header by its own checksum, the index by the header's, each block by
// its entry's, and padding must be zero. Since version 2 a block longer than one chunk (the header's
// chunk_size, 1 MiB as written today) also has one checksum per chunk in its index record, so that
// a read of a byte range checks only the chunks it covers; its whole-block checksum is then the
// hash of that table (no second pass over the bytes). Version 1 files are still read.

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/error.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt::detail {

inline constexpr char file_magic[8] = {'\x89', 'C', 'K', 'P', 'T', '\r', '\n', '\x1a'};
inline constexpr std::uint32_t format_version = 2;  // written; versions 1 and 2 are read
inline constexpr std::uint32_t oldest_format_version = 1;
inline constexpr std::uint32_t byte_order_mark = 0x01020304;
inline constexpr std::uint64_t header_size = 128;
inline constexpr std::uint64_t block_alignment = 64;
inline constexpr std::int64_t no_step = INT64_MIN;
inline constexpr std::size_t max_path_length = 4096;
// Chunked checksums (version 2): the writer's chunk size, and what a reader accepts from a header
// (a power of two; tiny ones only make tables large, never reads unsafe: tests use them).
inline constexpr std::uint64_t default_chunk_size = std::uint64_t{1} << 20;
inline constexpr std::uint64_t min_chunk_size = 64;
inline constexpr std::uint64_t max_chunk_size = std::uint64_t{1} << 30;

constexpr std::uint64_t align_up(std::uint64_t x) noexcept {
    return (x + block_alignment - 1) & ~(block_alignment - 1);
}

/// How many chunk checksums a block of `length` bytes carries: none unless it is longer than one
/// chunk (and none in version 1, whose chunk size is 0).
constexpr std::uint64_t chunk_count(std::uint64_t length, std::uint64_t chunk_size) noexcept {
    return chunk_size == 0 || length <= chunk_size ? 0 : (length - 1) / chunk_size + 1;
}
constexpr bool is_valid_chunk_size(std::uint64_t c) noexcept {
    return c >= min_chunk_size && c <= max_chunk_size && (c & (c - 1)) == 0;
}

struct file_header {
    std::uint64_t file_size = 0;
    std::uint64_t index_offset = 0;
    std::uint64_t index_length = 0;
    std::uint64_t index_checksum = 0;
    std::uint64_t entry_count = 0;
    std::uint64_t save_counter = 0;
    std::int64_t wall_time_ns = 0;
    std::int64_t step = no_step;
    std::uint64_t chunk_size = default_chunk_size;  // 0 in version 1: no chunk checksums
    std::uint32_t version = format_version;         // as read; what encode_header writes (only 2 by writers)
};

/// Whether the first 8 bytes of a file are a checkpoint's magic; the one place it is checked.
inline bool is_file_magic(const char* first8) noexcept { return std::memcmp(first8, file_magic, 8) == 0; }
inline void check_file_magic(const char* first8, const std::filesystem::path& file) {
    if (!is_file_magic(first8)) throw format_error("not a ckpt checkpoint (wrong magic bytes)", file);
}

template <class T>
void put(char* at, T value) noexcept {
    std::memcpy(at, &value, sizeof(T));
}
template <class T>
T get(const char* at) noexcept {
    T v;
    std::memcpy(&v, at, sizeof(T));
    return v;
}

CKPT_INLINE void encode_header(const file_header& h, char (&out)[header_size]) noexcept;

/// Checks what can be checked from the header alone; `actual_size` is the file's size on disk.
CKPT_INLINE file_header decode_header(const char (&in)[header_size], std::uint64_t actual_size,
                                      const std::filesystem::path& file);

/// Appends the fields of an index in order (the records: entry_codec.hpp); the matching reader is index_parser.
class index_builder {
public:
    void u8(std::uint8_t v) { bytes_.push_back(static_cast<char>(v)); }
    void u32(std::uint32_t v) { append(&v, 4); }
    void u64(std::uint64_t v) { append(&v, 8); }
    void f64(double v) { append(&v, 8); }
    void text(std::string_view s);
    void append(const void* p, std::size_t n) { bytes_.append(static_cast<const char*>(p), n); }

    const std::string& bytes() const noexcept { return bytes_; }
    void clear() noexcept { bytes_.clear(); }

private:
    std::string bytes_;
};

/// Reads an index, checking every length against the bytes that remain.
class index_parser {
public:
    index_parser(std::string_view bytes, const std::filesystem::path& file) : in_(bytes), file_(file) {}

    std::uint8_t u8() { return take<std::uint8_t>(); }
    std::uint32_t u32() { return take<std::uint32_t>(); }
    std::uint64_t u64() { return take<std::uint64_t>(); }
    double f64() { return take<double>(); }
    std::string text(const char* what) { return std::string(text_view(what)); }
    /// A length-prefixed text, as a view of the index's bytes.
    std::string_view text_view(const char* what);
    std::size_t remaining() const noexcept { return in_.size(); }
    [[noreturn]] void fail(const std::string& what) const { throw corrupt_error("index: " + what, file_); }

private:
    template <class T>
    T take() {
        if (in_.size() < sizeof(T)) ends_early();
        T v = get<T>(in_.data());
        in_.remove_prefix(sizeof(T));
        return v;
    }
    // Out of line, so that take (once per field of 100k records) stays small enough to inline.
    [[noreturn, gnu::noinline]] void ends_early() const { fail("ends in the middle of a record"); }
    std::string_view in_;
    const std::filesystem::path& file_;
};

/// Entry paths are '/'-separated segments, none empty, "." or "..", with no NUL: they name entries
/// and may become file names in exports, so they can never point anywhere else.
CKPT_INLINE bool is_valid_entry_path(std::string_view p) noexcept;

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
#include <ckpt/detail/hash.hpp>  // XXH3, needed by the definitions only

namespace ckpt::detail {

CKPT_INLINE void encode_header(const file_header& h, char (&out)[header_size]) noexcept {
    std::memset(out, 0, header_size);
    std::memcpy(out, file_magic, 8);
    put<std::uint32_t>(out + 8, h.version);  // a version 1 header re-encoded stays version 1
    put<std::uint32_t>(out + 12, byte_order_mark);
    put(out + 16, h.file_size);
    put(out + 24, h.index_offset);
    put(out + 32, h.index_length);
    put(out + 40, h.index_checksum);
    put(out + 48, h.entry_count);
    put(out + 56, h.save_counter);
    put(out + 64, h.wall_time_ns);
    put(out + 72, h.step);
    if (h.version >= 2) put(out + 80, h.chunk_size);
    put(out + 120, hash64(out, 120));
}

CKPT_INLINE file_header decode_header(const char (&in)[header_size], std::uint64_t actual_size,
                                      const std::filesystem::path& file) {
    check_file_magic(in, file);
    if (get<std::uint64_t>(in + 120) != hash64(in, 120) && checksums_enforced)
        throw corrupt_error("header checksum mismatch", file);
    const auto version = get<std::uint32_t>(in + 8);
    if (version < oldest_format_version || version > format_version)
        throw format_error("format version " + std::to_string(version) +
                               " is not supported (this build reads versions " + std::to_string(oldest_format_version) +
                               " to " + std::to_string(format_version) + ")",
                           file);
    if (get<std::uint32_t>(in + 12) != byte_order_mark)
        throw format_error("written on a machine of the other byte order", file);
    file_header h;
    h.version = version;
    h.chunk_size = version >= 2 ? get<std::uint64_t>(in + 80) : 0;
    if (version >= 2 && !is_valid_chunk_size(h.chunk_size))
        throw corrupt_error("chunk size " + std::to_string(h.chunk_size) + " is not a power of two between " +
                                std::to_string(min_chunk_size) + " and " + std::to_string(max_chunk_size),
                            file);
    for (int i = version >= 2 ? 88 : 80; i < 120; ++i)
        if (in[i] != 0) throw corrupt_error("reserved header bytes are not zero", file);
    h.file_size = get<std::uint64_t>(in + 16);
    h.index_offset = get<std::uint64_t>(in + 24);
    h.index_length = get<std::uint64_t>(in + 32);
    h.index_checksum = get<std::uint64_t>(in + 40);
    h.entry_count = get<std::uint64_t>(in + 48);
    h.save_counter = get<std::uint64_t>(in + 56);
    h.wall_time_ns = get<std::int64_t>(in + 64);
    h.step = get<std::int64_t>(in + 72);
    if (h.file_size != actual_size)
        throw corrupt_error("file is " + std::to_string(actual_size) + " bytes, its header says " +
                                std::to_string(h.file_size) + " (truncated or appended to)",
                            file);
    if (h.index_offset < header_size || h.index_offset % block_alignment != 0 || h.index_offset > h.file_size ||
        h.index_length != h.file_size - h.index_offset)
        throw corrupt_error("index location is outside the file", file);
    return h;
}

CKPT_INLINE void index_builder::text(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    append(s.data(), s.size());
}

CKPT_INLINE std::string_view index_parser::text_view(const char* what) {
    const auto n = u32();
    if (n > in_.size()) fail(std::string(what) + " length runs past the end of the index");
    const auto s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
}

CKPT_INLINE bool is_valid_entry_path(std::string_view p) noexcept {
    if (p.empty() || p.size() > max_path_length) return false;
    // One pass over the characters, no substrings: a file's index holds up to millions of paths.
    auto segment_ok = [](const char* s, std::size_t n) {
        return n != 0 && !(s[0] == '.' && (n == 1 || (n == 2 && s[1] == '.')));
    };
    const char* const s = p.data();
    std::size_t start = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        if (s[i] == '\0') return false;
        if (s[i] == '/') {
            if (!segment_ok(s + start, i - start)) return false;
            start = i + 1;
        }
    }
    return segment_ok(s + start, p.size() - start);
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
