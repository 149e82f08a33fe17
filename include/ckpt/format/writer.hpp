#pragma once
// Writes one checkpoint file: blocks stream out as they come (large ones straight from the
// caller's memory, small ones coalesced in a 1 MiB buffer), the index accumulates in memory,
// and finish() appends it, fills in the header and publishes the file atomically. A block longer
// than one chunk is hashed chunk by chunk (one pass, as a whole-block hash would be) and its chunk
// checksums go into its index record.

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include <ckpt/detail/hash.hpp>
#include <ckpt/format/layout.hpp>
#include <ckpt/io/file.hpp>

namespace ckpt::detail {

class file_writer {
public:
    static constexpr std::size_t buffer_size = std::size_t{1} << 20;
    // Blocks this large skip the buffer: one copy less, and the kernel gets a big write.
    static constexpr std::size_t direct_threshold = std::size_t{256} << 10;

    /// `chunk_size`: a power of two in [min_chunk_size, max_chunk_size]; other than the default only in tests.
    explicit file_writer(const std::filesystem::path& final_path, std::uint64_t chunk_size = default_chunk_size)
        : file_(final_path), chunk_size_(chunk_size) {
        if (!is_valid_chunk_size(chunk_size)) throw error("invalid chunk size " + std::to_string(chunk_size), final_path);
        buffer_.reserve(buffer_size);
        buffer_.resize(header_size, '\0');  // the header is written last, over these zeros
        position_ = header_size;
    }

    /// Appends one entry's block; `data` need only live for the duration of the call.
    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major,
               const void* data, std::size_t size) {
        pad_to_alignment();
        index_.text(path);
        index_.u8(static_cast<std::uint8_t>(kind));
        index_.u8(static_cast<std::uint8_t>(type));
        index_.u8(column_major ? 1 : 0);
        index_.u8(static_cast<std::uint8_t>(dims.rank()));
        for (auto d : dims) index_.u64(d);
        index_.u64(position_);
        index_.u64(size);
        const std::uint64_t chunks = chunk_count(size, chunk_size_);
        if (chunks == 0) {
            index_.u64(hash64(size ? data : "", size));
        } else {
            // Chunked: one hash per chunk, and the block's checksum is the hash of that table, which
            // follows the record. The block is then written in one piece, as before version 2 (a
            // write per chunk between the hashes was no faster here).
            sums_.resize(static_cast<std::size_t>(chunks));
            const auto bytes = static_cast<const char*>(data);
            for (std::uint64_t c = 0; c < chunks; ++c) {
                const std::uint64_t at = c * chunk_size_;
                sums_[static_cast<std::size_t>(c)] = hash64(bytes + at, static_cast<std::size_t>(std::min(chunk_size_, size - at)));
            }
            index_.u64(hash64(sums_.data(), sums_.size() * sizeof(std::uint64_t)));
            index_.append(sums_.data(), sums_.size() * sizeof(std::uint64_t));
        }
        ++entries_;
        append(data, size);
    }

    /// Writes the index and header, fsyncs and renames into place.
    void finish(const save_options& options, std::uint64_t save_counter, std::chrono::system_clock::time_point when) {
        pad_to_alignment();
        file_header h;
        h.index_offset = position_;
        index_.metadata(options);
        const std::string& index = index_.bytes();
        append(index.data(), index.size());
        flush();
        h.index_length = index.size();
        h.index_checksum = hash64(index.data(), index.size());
        h.file_size = position_;
        h.entry_count = entries_;
        h.save_counter = save_counter;
        h.wall_time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
        h.step = options.step ? *options.step : no_step;
        h.chunk_size = chunk_size_;
        char header[header_size];
        encode_header(h, header);
        pwrite_all(file_.fd(), header, header_size, 0, file_.temp_path());
        file_.commit();
    }

    const std::filesystem::path& final_path() const noexcept { return file_.final_path(); }

private:
    void pad_to_alignment() {
        static constexpr char zeros[block_alignment] = {};
        const auto padding = align_up(position_) - position_;
        if (padding) append(zeros, static_cast<std::size_t>(padding));
    }
    void append(const void* data, std::size_t size) {
        if (size >= direct_threshold) {
            flush();
            write_all(file_.fd(), data, size, file_.temp_path());
        } else {
            if (buffer_.size() + size > buffer_size) flush();
            buffer_.insert(buffer_.end(), static_cast<const char*>(data), static_cast<const char*>(data) + size);
        }
        position_ += size;
    }
    void flush() {
        if (!buffer_.empty()) write_all(file_.fd(), buffer_.data(), buffer_.size(), file_.temp_path());
        buffer_.clear();
    }

    atomic_file file_;
    std::uint64_t chunk_size_;
    std::vector<std::uint64_t> sums_;
    std::vector<char> buffer_;
    std::uint64_t position_ = 0;
    std::uint64_t entries_ = 0;
    index_builder index_;
};

}  // namespace ckpt::detail
