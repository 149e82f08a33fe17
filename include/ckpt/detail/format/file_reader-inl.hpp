#pragma once
// The out-of-line definitions of file_reader.hpp (file_reader, peek_header), kept apart so that
// file_reader.hpp reads as the interface: inline in the header-only build, compiled once in
// ckpt::ckpt_compiled in the compiled mode (see ckpt/detail/config.hpp).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <ckpt/detail/format/file_reader.hpp>
#include <ckpt/detail/hash.hpp>  // XXH3, needed by the definitions only
#include <ckpt/detail/io/page_population.hpp>

namespace ckpt::detail {

CKPT_INLINE file_reader::file_reader(std::filesystem::path path)
    : path_(std::move(path)), fd_(open_for_reading(path_)) {
    size_ = file_size(fd_.get(), path_);
    if (size_ < header_size) {
        if (size_ >= 8) {
            char magic[8];
            pread_all(fd_.get(), magic, 8, 0, path_);
            check_file_magic(magic, path_);
        }
        throw corrupt_error("file is " + std::to_string(size_) + " bytes, shorter than a checkpoint header", path_);
    }
    char raw[header_size];
    pread_all(fd_.get(), raw, header_size, 0, path_);
    header_ = decode_header(raw, size_, path_);
    read_index();
}

CKPT_INLINE const entry_info* file_reader::find(std::string_view path) const { return lookup_.find(entries_, path); }

CKPT_INLINE void file_reader::read_block(const entry_info& entry, void* dest) {
    const entry_info& e = own(entry);
    auto out = static_cast<char*>(dest);
    if (is_chunked(e)) return read_chunks(e, 0, e.length, out, bounce_);
    if (is_small(e)) {
        const std::uint64_t padding = padding_after(e);
        const char* src = window(e.offset, e.length + padding);
        if (e.length) std::memcpy(out, src, static_cast<std::size_t>(e.length));
        check(e, hash64(src, static_cast<std::size_t>(e.length)), src + e.length, padding);
        return;
    }
    read_large(e, 0, e.length, out, bounce_);
}

CKPT_INLINE void file_reader::read_range(const entry_info& entry, std::uint64_t byte_offset, std::uint64_t byte_count,
                                         void* dest) {
    const entry_info& e = own(entry);
    if (!range_within(byte_offset, byte_count, e.length))
        throw error("byte range " + std::to_string(byte_offset) + " + " + std::to_string(byte_count) +
                        " is outside the block of " + std::to_string(e.length) + " bytes",
                    path_, e.path);
    if (byte_count == 0) return;
    auto out = static_cast<char*>(dest);
    if (is_chunked(e)) return read_chunks(e, byte_offset, byte_offset + byte_count, out, bounce_);
    if (is_small(e)) {
        const std::uint64_t padding = padding_after(e);
        const char* src = window(e.offset, e.length + padding);
        check(e, hash64(src, static_cast<std::size_t>(e.length)), src + e.length, padding);
        std::memcpy(out, src + byte_offset, to_size(byte_count));
        return;
    }
    read_large(e, byte_offset, byte_offset + byte_count, out, bounce_);
}

CKPT_INLINE std::pair<const std::uint64_t*, std::size_t> file_reader::chunk_checksums(const entry_info& entry) const {
    const entry_info& e = own(entry);
    const auto n = to_size(chunk_count(e.length, header_.chunk_size));
    if (n == 0) return {nullptr, 0};
    return {chunk_table(e), n};
}

CKPT_INLINE std::string file_reader::read_block(const entry_info& e) {
    std::string s(static_cast<std::size_t>(e.length), '\0');
    read_block(e, s.data());
    return s;
}

CKPT_INLINE void file_reader::read_part(const entry_info& e, std::uint64_t lo, std::uint64_t hi, char* dest,
                                        read_buffer& buffer) const {
    if (!owns(e)) throw error("the entry is not one of this file's", path_, e.path);
    if (is_chunked(e)) return read_chunks(e, lo, hi, dest ? dest + lo : nullptr, buffer);
    if (is_small(e)) {
        const std::uint64_t padding = padding_after(e);
        char* src = buffer.get(to_size(e.length + padding));
        pread_all(fd_.get(), src, to_size(e.length + padding), e.offset, path_);
        if (dest && e.length) std::memcpy(dest, src, to_size(e.length));
        return check(e, hash64(src, to_size(e.length)), src + e.length, padding);
    }
    read_large(e, 0, e.length, dest, buffer);
}

CKPT_INLINE const char* file_reader::read_span(std::uint64_t lo, std::uint64_t hi, read_buffer& buffer) const {
    if (lo > hi || hi > header_.index_offset) throw error("a read beyond the file's blocks", path_);
    char* bytes = buffer.get(to_size(hi - lo));
    pread_all(fd_.get(), bytes, to_size(hi - lo), lo, path_);
    return bytes;
}

CKPT_INLINE void file_reader::check_small(const entry_info& e, const char* bytes) const {
    check(e, hash64(bytes, to_size(e.length)), bytes + e.length, padding_after(e));
}

CKPT_INLINE void file_reader::verify_block(const entry_info& entry) {
    const entry_info& e = own(entry);
    if (is_chunked(e)) return read_chunks(e, 0, e.length, nullptr, bounce_);
    if (!is_small(e)) return read_large(e, 0, e.length, nullptr, bounce_);
    const std::uint64_t padding = padding_after(e);
    const char* src = window(e.offset, e.length + padding);
    check(e, hash64(src, static_cast<std::size_t>(e.length)), src + e.length, padding);
}

CKPT_INLINE bool file_reader::owns(const entry_info& e) const noexcept {
    const auto at = reinterpret_cast<std::uintptr_t>(&e), begin = reinterpret_cast<std::uintptr_t>(entries_.data());
    return at >= begin && at < begin + entries_.size() * sizeof(entry_info);
}

CKPT_INLINE const entry_info& file_reader::own(const entry_info& e) const {
    if (owns(e)) return e;
    const entry_info* found = find(e.path);
    if (!found || found->offset != e.offset || found->length != e.length || found->checksum != e.checksum)
        throw error("the entry is not one of this file's", path_, e.path);
    return *found;
}

CKPT_INLINE void file_reader::read_large(const entry_info& e, std::uint64_t lo, std::uint64_t hi, char* out,
                                         read_buffer& buffer) const {
    const std::uint64_t padding = padding_after(e);
    const bool direct =
        out && lo == 0 && hi == e.length && (reinterpret_cast<std::uintptr_t>(out) - e.offset) % 32 == 0;
    char pad[block_alignment];
    hasher h;
    const std::size_t piece = out ? chunk : verify_piece;
    for (std::uint64_t done = 0; done < e.length;) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(piece, e.length - done));
        char* into = direct ? out + done : buffer.get(piece);
        if (done + n < e.length)
            pread_all(fd_.get(), into, n, e.offset + done, path_);
        else
            pread_all_with_tail(fd_.get(), into, n, pad, static_cast<std::size_t>(padding), e.offset + done, path_);
        h.update(into, n);
        if (out && !direct) copy_overlap(into, done, done + n, lo, hi, out);
        done += n;
    }
    check(e, h.digest(), pad, padding);
}

CKPT_INLINE void file_reader::read_chunks(const entry_info& e, std::uint64_t lo, std::uint64_t hi, char* out,
                                          read_buffer& buffer) const {
    const std::uint64_t size = header_.chunk_size;
    if (!out && size > verify_piece) return verify_chunks(e, lo, hi, buffer);
    const std::uint64_t group = std::max<std::uint64_t>(size, chunk);
    const std::uint64_t* sums = chunk_table(e);
    const std::uint64_t padding = padding_after(e);
    const bool in_step = out && (reinterpret_cast<std::uintptr_t>(out) - lo - e.offset) % 32 == 0;
    char pad[block_alignment];
    for (std::uint64_t begin = lo / size * size; begin < hi;) {
        const std::uint64_t end = std::min({begin + group, (hi - 1) / size * size + size, e.length});
        const auto n = to_size(end - begin);
        const bool direct = in_step && begin >= lo && end <= hi;
        char* into = direct ? out + (begin - lo) : buffer.get(static_cast<std::size_t>(std::min(group, e.length)));
        const bool last = end == e.length;
        if (!last)
            pread_all(fd_.get(), into, n, e.offset + begin, path_);
        else
            pread_all_with_tail(fd_.get(), into, n, pad, static_cast<std::size_t>(padding), e.offset + begin, path_);
        for (std::uint64_t at = begin; at < end; at += size)
            check_chunk(e, at / size, hash64(into + (at - begin), to_size(std::min(size, end - at))), sums[at / size]);
        if (last) check(e, e.checksum, pad, padding);
        if (out && !direct) copy_overlap(into, begin, end, lo, hi, out);
        begin = end;
    }
}

CKPT_INLINE void file_reader::verify_chunks(const entry_info& e, std::uint64_t lo, std::uint64_t hi,
                                            read_buffer& buffer) const {
    const std::uint64_t size = header_.chunk_size;
    const std::uint64_t* sums = chunk_table(e);
    const std::uint64_t padding = padding_after(e);
    char* into = buffer.get(verify_piece);
    char pad[block_alignment];
    for (std::uint64_t begin = lo / size * size; begin < hi; begin += size) {
        const std::uint64_t end = std::min(begin + size, e.length);
        hasher h;
        for (std::uint64_t at = begin; at < end; at += verify_piece) {
            const auto n = to_size(std::min<std::uint64_t>(verify_piece, end - at));
            if (at + n < e.length)
                pread_all(fd_.get(), into, n, e.offset + at, path_);
            else
                pread_all_with_tail(fd_.get(), into, n, pad, to_size(padding), e.offset + at, path_);
            h.update(into, n);
        }
        check_chunk(e, begin / size, h.digest(), sums[begin / size]);
        if (end == e.length) check(e, e.checksum, pad, padding);
    }
}

CKPT_INLINE void file_reader::copy_overlap(const char* from, std::uint64_t begin, std::uint64_t end, std::uint64_t lo,
                                           std::uint64_t hi, char* out) {
    const std::uint64_t a = std::max(begin, lo), b = std::min(end, hi);
    if (a < b) std::memcpy(out + (a - lo), from + (a - begin), to_size(b - a));
}

CKPT_INLINE void file_reader::check_chunk(const entry_info& e, std::uint64_t k, std::uint64_t digest,
                                          std::uint64_t expected) const {
    if (digest == expected || !checksums_enforced) return;
    const std::uint64_t size = header_.chunk_size;
    throw corrupt_error("checksum mismatch in chunk " + std::to_string(k) + " (bytes " + std::to_string(k * size) +
                            " to " + std::to_string(std::min(k * size + size, e.length)) + " of " +
                            std::to_string(e.length) + "): the block's bytes are damaged",
                        path_, e.path);
}

CKPT_INLINE void file_reader::check(const entry_info& e, std::uint64_t digest, const char* pad,
                                    std::uint64_t padding) const {
    if (digest != e.checksum && checksums_enforced)
        throw corrupt_error("checksum mismatch: the block's bytes are damaged", path_, e.path);
    for (std::uint64_t i = 0; i < padding; ++i)
        if (pad[i] != 0) throw corrupt_error("padding after the block is not zero", path_, e.path);
}

CKPT_INLINE const char* file_reader::window(std::uint64_t offset, std::uint64_t length) {
    if (offset < window_offset_ || offset + length > window_offset_ + window_.size()) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(window_size, header_.index_offset - offset));
        window_.resize(n);
        pread_all(fd_.get(), window_.data(), n, offset, path_);
        window_offset_ = offset;
    }
    return window_.data() + (offset - window_offset_);
}

CKPT_INLINE void file_reader::read_index() {
    const auto& h = header_;
    // Not zero-filled: pread_all fills every byte or throws (5.5 MB for 100k tiny tensors, where
    // clearing it first cost as much as reading it).
    const auto length = static_cast<std::size_t>(h.index_length);  // index_length <= file size: checked
    const std::unique_ptr<char[]> bytes(new char[length]);
    // This buffer and the entries' are a large index's largest allocations (5.5 and 14 MB for 100k
    // tensors), whose pages a process's first open faulted in one by one: its first restore of
    // 100k tiny tensors took 0.11 s and 7,700 faults, against 0.013 s for a repeated one. Advised
    // as fresh (2 MiB pages; this one, filled next, mapped in one call; see advise_fresh_buffer):
    // 0.063-0.070 s and 4,100 faults (a repeated restore about 2% slower: the call walks pages
    // that are mapped already).
    advise_fresh_buffer(bytes.get(), length);
    pread_all(fd_.get(), bytes.get(), length, h.index_offset, path_);
    if (hash64(bytes.get(), length) != h.index_checksum && checksums_enforced)
        throw corrupt_error("index checksum mismatch", path_);

    index_parser in(std::string_view(bytes.get(), length), path_);
    // The smallest record is 33 bytes: a count larger than the index can hold is a lie.
    if (h.entry_count > length / 33 || h.entry_count >= UINT32_MAX)
        in.fail("entry count " + std::to_string(h.entry_count) + " cannot fit in the index");
    entries_.reserve(static_cast<std::size_t>(h.entry_count));
    // Not mapped at once: the count is the file's word until the records are decoded.
    advise_fresh_buffer(entries_.data(), entries_.capacity() * sizeof(entry_info), false);
    std::uint64_t expected_offset = header_size;
    // Decoded into one local entry and copied: emplace_back() would value-initialize the vector's
    // element, zero-filling all its 144 bytes first (a rep stos that cost 20% of opening 100k
    // entries), and a new local per entry, constructed, moved and destroyed, made it 8% slower.
    entry_info e;
    for (std::uint64_t i = 0; i < h.entry_count; ++i) {
        const std::size_t first_sum = chunk_sums_.size();
        decode_entry_record(in, expected_offset, h.index_offset, h.chunk_size, chunk_sums_, e);
        expected_offset = align_up(e.offset + e.length);
        entries_.push_back(e);
        if (chunk_sums_.size() != first_sum) chunk_tables_.emplace_back(entries_.size() - 1, first_sum);
    }
    if (expected_offset != h.index_offset) in.fail("blocks do not end where the index begins");
    lookup_.build(entries_, in);

    metadata_.save_counter = h.save_counter;
    metadata_.wall_time = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(h.wall_time_ns)));
    if (h.step != no_step) metadata_.step = h.step;
    decode_metadata_record(in, metadata_);
}

CKPT_INLINE const std::uint64_t* file_reader::chunk_table(const entry_info& e) const noexcept {
    const auto i = index_of(e);
    const auto at = std::lower_bound(chunk_tables_.begin(), chunk_tables_.end(), std::make_pair(i, std::uint64_t{0}));
    return chunk_sums_.data() + at->second;
}

CKPT_INLINE std::optional<file_header> peek_header(const std::filesystem::path& path) noexcept {
    try {
        if (is_temp_name(path)) return std::nullopt;
        file_descriptor fd = open_for_reading(path);
        char raw[header_size];
        const auto size = file_size(fd.get(), path);
        if (size < header_size) return std::nullopt;
        pread_all(fd.get(), raw, header_size, 0, path);
        return decode_header(raw, size, path);
    } catch (...) {
        return std::nullopt;
    }
}

}  // namespace ckpt::detail
