#pragma once
// Writes one checkpoint file: blocks stream out as they come (large ones straight from the
// caller's memory, small ones coalesced in a 1 MiB buffer), the index accumulates in memory,
// and finish() appends it, fills in the header and publishes the file atomically. A block longer
// than one chunk is hashed chunk by chunk (one pass, as a whole-block hash would be) and its chunk
// checksums go into its index record; the chunks of a large block are hashed on the threads of
// ckpt/threads.hpp.

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/entry_codec.hpp>
#include <ckpt/detail/format/layout.hpp>
#include <ckpt/detail/io/atomic_file.hpp>
#include <ckpt/detail/io/read_write.hpp>
#include <ckpt/detail/parallel/thread_pool.hpp>

namespace ckpt::detail {

/// Why the reader would refuse this entry (decode_entry_record, entry_codec.hpp), or "" when it
/// reads back. Every save checks each entry with it before the file gets its final name, so a save
/// either produces a file that restores or throws -- never a checkpoint that can never be read.
CKPT_INLINE std::string unreadable_entry(std::string_view path, entry_kind kind, dtype type, const shape& dims,
                                         std::size_t size);

/// Throws ckpt::error naming the entry when the reader would refuse it (see unreadable_entry);
/// `entries_before` counts the entries already in the file. Runs for every block, so the common
/// case is a few comparisons: the walker builds paths from validated track names, identifiers,
/// indices and escaped map keys, so their length is the only rule of is_valid_entry_path a path
/// can break (a long key), and the full scan runs only in debug builds and on the way to an error.
CKPT_INLINE void check_writable_entry(std::string_view path, entry_kind kind, dtype type, const shape& dims,
                                      std::size_t size, std::uint64_t entries_before,
                                      const std::filesystem::path& file);

/// The same for the metadata: each name, key and value is stored with a 32-bit length.
CKPT_INLINE void check_writable_metadata(const save_options& options, const std::filesystem::path& file);

/// The checksum file_writer::block stores for a block: the block's hash, or (format version 2) for
/// a block longer than one chunk the hash of its chunk hashes, which `sums` then holds (else it is
/// emptied). A sharded save hashes with it the replicas that other ranks write. The chunks of a
/// block of 16 MiB or more are hashed on up to `threads` threads (at least 4 MiB each).
CKPT_INLINE std::uint64_t block_checksum(const void* data, std::size_t size, std::uint64_t chunk_size,
                                         std::vector<std::uint64_t>& sums, std::size_t threads = max_threads());

class file_writer {
public:
    static constexpr std::size_t buffer_size = std::size_t{1} << 20;
    // Blocks this large skip the buffer: one copy less, and the kernel gets a big write.
    static constexpr std::size_t direct_threshold = std::size_t{256} << 10;

    /// `chunk_size`: a power of two in [min_chunk_size, max_chunk_size]; other than the default only in tests.
    explicit file_writer(const std::filesystem::path& final_path, std::uint64_t chunk_size = default_chunk_size);

    /// Appends one entry's block; `data` need only live for the duration of the call.
    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major,
               const void* data, std::size_t size);

    /// The same block written in pieces, for bytes that are not all in memory at once (importing a
    /// foreign file): begin_block with the block's description and length, block_bytes until
    /// exactly `size` bytes came, end_block. Holds one chunk in memory; the file is the same as
    /// block() with the whole bytes writes. `w.begin_block(...); w.block_bytes(p, n); w.end_block();`
    void begin_block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major,
                     std::size_t size);
    /// The next `n` bytes of the block begun.
    void block_bytes(const void* data, std::size_t n);
    /// Ends the block begun; throws ckpt::error unless exactly its length came.
    void end_block();

    /// Writes the index and header, fsyncs and renames into place (see atomic_file::commit for `replace`).
    void finish(const save_options& options, std::uint64_t save_counter, std::chrono::system_clock::time_point when,
                bool replace = true);

    /// Writes out what is buffered and asks the kernel to start writing the file's pages to disk
    /// without waiting (Linux: sync_file_range), so that work done before finish() overlaps the
    /// disk writes that finish()'s fsync would otherwise wait for alone. Only a hint: a failure of
    /// the request is ignored, as the fsync reports any error of the writes themselves.
    void start_writeback();

    /// Hashes every block on the calling thread only: an asynchronous save's background thread,
    /// which should not take the cores of the training it runs beside.
    void hash_on_one_thread() noexcept { hash_threads_ = 1; }
    std::size_t hash_threads() const noexcept { return hash_threads_; }

    const std::filesystem::path& final_path() const noexcept { return file_.final_path(); }
    /// The checksum the index records for the last block(): `w.block(...); manifest.sum = w.last_checksum();`
    std::uint64_t last_checksum() const noexcept { return last_checksum_; }

private:
    void pad_to_alignment();
    void append(const void* data, std::size_t size);
    void flush();

    struct pending_block {
        std::string path;
        entry_kind kind = entry_kind::tensor;
        dtype type = dtype::bytes;
        shape dims;
        bool column_major = false;
        std::uint64_t size = 0, position = 0, received = 0;
        bool open = false;
        std::vector<char> chunk;  // bytes not yet hashed and written
    };
    void flush_pending_chunk();

    atomic_file file_;
    pending_block pending_;
    std::uint64_t chunk_size_;
    std::vector<std::uint64_t> sums_;
    std::vector<char> buffer_;
    std::uint64_t position_ = 0;
    std::uint64_t entries_ = 0;
    std::uint64_t last_checksum_ = 0;
    std::size_t hash_threads_ = max_threads();
    index_builder index_;
};

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
#include <ckpt/detail/hash.hpp>  // XXH3, needed by the definitions only

namespace ckpt::detail {

CKPT_INLINE std::string unreadable_entry(std::string_view path, entry_kind kind, dtype type, const shape& dims,
                                         std::size_t size) {
    if (path.size() > max_path_length)
        return "the entry path is " + std::to_string(path.size()) + " bytes, longer than the format's limit of " +
               std::to_string(max_path_length) + " (a long map key or track name?)";
    if (!is_valid_entry_path(path))
        return "the entry path is empty, has an empty, '.' or '..' segment, or holds a NUL byte";
    if (dims.rank() > shape::max_rank) return "rank " + std::to_string(dims.rank()) + " is above the format's limit";
    const bool ok = entry_shape_agrees(kind, type, dims, size);
    if (!ok)
        return std::string(entry_kind_name(kind)) + " of " + dtype_name(type) + " " + dims.to_string() +
               " does not agree with its block length " + std::to_string(size) +
               " (the product of the dimensions overflows?)";
    return {};
}

CKPT_INLINE void check_writable_entry(std::string_view path, entry_kind kind, dtype type, const shape& dims,
                                      std::size_t size, std::uint64_t entries_before,
                                      const std::filesystem::path& file) {
    bool ok = !path.empty() && path.size() <= max_path_length && dims.rank() <= shape::max_rank &&
              entries_before + 1 < UINT32_MAX;
    if (ok) {
        switch (kind) {
            case entry_kind::tensor: {
                // As shape::elements and the reader: any overflow on the way refuses, even when a
                // later dimension is 0. No divisions: this runs per block.
                std::uint64_t n = 1;
                bool overflow = false;
                for (const auto d : dims) overflow |= __builtin_mul_overflow(n, d, &n);
                std::uint64_t bytes = 0;
                overflow |= __builtin_mul_overflow(n, std::uint64_t{dtype_size(type)}, &bytes);
                ok = type != dtype::bytes && !overflow && bytes == size;
                break;
            }
            default:
                ok = false;
                break;  // the rarer kinds take the full check below
        }
    }
#ifndef NDEBUG
    ok = ok && is_valid_entry_path(path);
#endif
    if (ok) return;
    std::string why = unreadable_entry(path, kind, type, dims, size);
    if (why.empty() && entries_before + 1 >= UINT32_MAX)
        why = "more than " + std::to_string(UINT32_MAX - 1) + " entries in one checkpoint";
    if (!why.empty())
        throw error("cannot save: " + why + "; nothing was written", file, std::string(path.substr(0, 200)));
}

CKPT_INLINE void check_writable_metadata(const save_options& options, const std::filesystem::path& file) {
    auto fits = [](const std::string& s) { return s.size() < UINT32_MAX; };
    bool ok = options.metrics.size() < UINT32_MAX && options.strings.size() < UINT32_MAX;
    for (const auto& m : options.metrics) ok = ok && fits(m.first);
    for (const auto& [k, v] : options.strings) ok = ok && fits(k) && fits(v);
    if (!ok) throw error("cannot save: a metric or metadata string is 4 GiB or longer; nothing was written", file);
}

CKPT_INLINE file_writer::file_writer(const std::filesystem::path& final_path, std::uint64_t chunk_size)
    : file_(final_path), chunk_size_(chunk_size) {
    if (!is_valid_chunk_size(chunk_size)) throw error("invalid chunk size " + std::to_string(chunk_size), final_path);
    buffer_.reserve(buffer_size);
    buffer_.resize(header_size, '\0');  // the header is written last, over these zeros
    position_ = header_size;
}

CKPT_INLINE std::uint64_t block_checksum(const void* data, std::size_t size, std::uint64_t chunk_size,
                                         std::vector<std::uint64_t>& sums, std::size_t threads) {
    const std::uint64_t chunks = chunk_count(size, chunk_size);
    sums.resize(to_size(chunks));
    if (chunks == 0) return hash64(size ? data : "", size);
    // Chunked: one hash per chunk, and the block's checksum is the hash of that table.
    const auto bytes = static_cast<const char*>(data);
    const auto hash_chunk = [&](std::size_t c) {
        const std::uint64_t at = std::uint64_t{c} * chunk_size;
        sums[c] = hash64(bytes + at, to_size(std::min<std::uint64_t>(chunk_size, size - at)));
    };
    parallel_for(sums.size(), threads_for_bytes(size, threads), hash_chunk);
    return hash64(sums.data(), sums.size() * sizeof(std::uint64_t));
}

CKPT_INLINE void file_writer::block(std::string_view path, entry_kind kind, dtype type, const shape& dims,
                                    bool column_major, const void* data, std::size_t size) {
    check_writable_entry(path, kind, type, dims, size, entries_, file_.final_path());
    pad_to_alignment();
    last_checksum_ = block_checksum(data, size, chunk_size_, sums_, hash_threads_);
    if (sums_.empty()) {
        encode_entry_record(index_, path, kind, type, dims, column_major, position_, size, last_checksum_);
    } else {
        // Chunked: the table of chunk hashes follows the record. The block is then written in one
        // piece, as before version 2 (a write per chunk between the hashes was no faster here).
        encode_entry_record(index_, path, kind, type, dims, column_major, position_, size, last_checksum_, sums_.data(),
                            sums_.size());
    }
    ++entries_;
    append(data, size);
}

CKPT_INLINE void file_writer::begin_block(std::string_view path, entry_kind kind, dtype type, const shape& dims,
                                          bool column_major, std::size_t size) {
    if (pending_.open) throw error("begin_block: the previous block was not ended", file_.final_path());
    check_writable_entry(path, kind, type, dims, size, entries_, file_.final_path());
    pad_to_alignment();
    pending_.path.assign(path);
    pending_.kind = kind;
    pending_.type = type;
    pending_.dims = dims;
    pending_.column_major = column_major;
    pending_.size = size;
    pending_.position = position_;
    pending_.received = 0;
    pending_.open = true;
    pending_.chunk.clear();
    pending_.chunk.reserve(to_size(std::min<std::uint64_t>(size, chunk_size_)));
    sums_.clear();
}

CKPT_INLINE void file_writer::block_bytes(const void* data, std::size_t n) {
    if (!pending_.open || n > pending_.size - pending_.received)
        throw error("block_bytes: more bytes than the block begun has", file_.final_path(), pending_.path);
    const char* bytes = static_cast<const char*>(data);
    pending_.received += n;
    while (n > 0) {
        if (pending_.chunk.empty() && pending_.size > chunk_size_ && n >= chunk_size_) {
            // Whole chunks are hashed and written from the caller's memory, without the copy: an
            // asynchronous save writes a tensor's head this way (ckpt/detail/save/snapshot.hpp).
            const std::size_t chunks = n / to_size(chunk_size_), length = chunks * to_size(chunk_size_);
            const std::size_t first = sums_.size();
            sums_.resize(first + chunks);
            parallel_for(chunks, threads_for_bytes(length, hash_threads_), [&](std::size_t c) {
                sums_[first + c] = hash64(bytes + c * to_size(chunk_size_), to_size(chunk_size_));
            });
            append(bytes, length);
            bytes += length;
            n -= length;
            continue;
        }
        const std::size_t room = to_size(chunk_size_) - pending_.chunk.size();
        const std::size_t take = std::min(room, n);
        pending_.chunk.insert(pending_.chunk.end(), bytes, bytes + take);
        bytes += take;
        n -= take;
        // A block of one chunk or less has one hash of the whole: kept until end_block.
        if (pending_.chunk.size() == chunk_size_ && pending_.size > chunk_size_) flush_pending_chunk();
    }
}

CKPT_INLINE void file_writer::flush_pending_chunk() {
    sums_.push_back(hash64(pending_.chunk.data(), pending_.chunk.size()));
    append(pending_.chunk.data(), pending_.chunk.size());
    pending_.chunk.clear();
}

CKPT_INLINE void file_writer::end_block() {
    if (!pending_.open || pending_.received != pending_.size)
        throw error("end_block: the block got " + std::to_string(pending_.received) + " of its " +
                        std::to_string(pending_.size) + " bytes",
                    file_.final_path(), pending_.path);
    pending_.open = false;
    if (chunk_count(pending_.size, chunk_size_) == 0) {
        last_checksum_ = hash64(pending_.size ? pending_.chunk.data() : "", pending_.chunk.size());
        encode_entry_record(index_, pending_.path, pending_.kind, pending_.type, pending_.dims, pending_.column_major,
                            pending_.position, pending_.size, last_checksum_);
        append(pending_.chunk.data(), pending_.chunk.size());
        pending_.chunk.clear();
    } else {
        if (!pending_.chunk.empty()) flush_pending_chunk();
        last_checksum_ = hash64(sums_.data(), sums_.size() * sizeof(std::uint64_t));
        encode_entry_record(index_, pending_.path, pending_.kind, pending_.type, pending_.dims, pending_.column_major,
                            pending_.position, pending_.size, last_checksum_, sums_.data(), sums_.size());
    }
    ++entries_;
}

CKPT_INLINE void file_writer::finish(const save_options& options, std::uint64_t save_counter,
                                     std::chrono::system_clock::time_point when, bool replace) {
    check_writable_metadata(options, file_.final_path());
    pad_to_alignment();
    file_header h;
    h.index_offset = position_;
    encode_metadata_record(index_, options);
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
    file_.commit(replace);
}

CKPT_INLINE void file_writer::start_writeback() {
    flush();
#if defined(__linux__)
    (void)::sync_file_range(file_.fd(), 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
}

CKPT_INLINE void file_writer::pad_to_alignment() {
    static constexpr char zeros[block_alignment] = {};
    const auto padding = align_up(position_) - position_;
    if (padding) append(zeros, static_cast<std::size_t>(padding));
}

CKPT_INLINE void file_writer::append(const void* data, std::size_t size) {
    if (size >= direct_threshold) {
        flush();
        write_all(file_.fd(), data, size, file_.temp_path());
    } else {
        if (buffer_.size() + size > buffer_size) flush();
        buffer_.insert(buffer_.end(), static_cast<const char*>(data), static_cast<const char*>(data) + size);
    }
    position_ += size;
}

CKPT_INLINE void file_writer::flush() {
    if (!buffer_.empty()) write_all(file_.fd(), buffer_.data(), buffer_.size(), file_.temp_path());
    buffer_.clear();
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
