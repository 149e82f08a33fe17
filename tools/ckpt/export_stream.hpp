#pragma once
// What both export formats share: the tensors chosen (export_item), the output file written at
// offsets under a temporary name and renamed into place (output), and the checkpoint's blocks read
// in chunks, every byte checked before it is written (block_source). Both formats stream: each
// tensor goes from the checkpoint to the output in chunks, so memory stays near a few MiB whatever
// the tensors' sizes.

#include <ckpt/ckpt.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace ckpt::tool {

/// One tensor to export: its entry and the name it gets in the output.
struct export_item {
    const entry_info* entry;
    std::string name;
};

/// `put_le<std::uint32_t>(out, v)`: `v` appended little-endian, as ZIP and safetensors store numbers.
template <class T>
void put_le(std::string& out, T v) {
    for (std::size_t i = 0; i < sizeof(T); ++i)
        out += static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
}

/// Writes through a ckpt::atomic_output at a running offset, by pwrite, so that a region can be reserved
/// and filled out of order (transposed tensors) or patched later (an npz member's CRC).
class output {
public:
    explicit output(const std::filesystem::path& path) : file_(path) {}
    void write(std::string_view bytes) {
        write_at(offset_, bytes.data(), bytes.size());
        offset_ += bytes.size();
    }
    void write_at(std::uint64_t at, const void* data, std::size_t n) { file_.write_at(at, data, n); }
    /// Reserves `n` bytes at the current offset for write_at.
    std::uint64_t reserve(std::uint64_t n) { return std::exchange(offset_, offset_ + n); }
    std::uint64_t offset() const { return offset_; }
    void commit() { file_.commit(); }

private:
    ckpt::atomic_output file_;
    std::uint64_t offset_ = 0;
};

/// Reads tensor blocks of the checkpoint in chunks: a file's through a stream of its own, a
/// sharded checkpoint's through the reader, which assembles them from the ranks' pieces.
class block_source {
public:
    static constexpr std::size_t chunk = 1 << 20;

    explicit block_source(ckpt::reader& r)
        : reader_(r), path_(r.path()), file_(r.sharded() ? nullptr : std::fopen(path_.c_str(), "rb")), buffer_(chunk) {
        if (!file_ && !r.sharded())
            throw ckpt::io_error("cannot open", path_, std::error_code(errno, std::generic_category()));
    }
    block_source(const block_source&) = delete;
    block_source& operator=(const block_source&) = delete;
    ~block_source() {
        if (file_) std::fclose(file_);
    }

    /// The block in order, chunk by chunk, to `sink(data, size)`, every byte checked before the
    /// sink sees it: a damaged block throws corrupt_error, and the output is never committed.
    template <class Sink>
    void stream(const entry_info& e, Sink&& sink) {
        // Each range checked against the chunks it covers as it is read, so every byte is read once:
        // a sharded checkpoint, or a file whose checksum chunks our reads cover whole.
        if (!file_ || (reader_.chunk_size() && chunk % reader_.chunk_size() == 0)) {
            for (std::uint64_t done = 0; done < e.length;) {
                const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, e.length - done));
                reader_.read_range(e, done, n, buffer_.data());
                sink(buffer_.data(), n);
                done += n;
            }
            return;
        }
        reader_.verify(e);  // a version 1 file: the whole block checked first, then read
        for (std::uint64_t done = 0; done < e.length;) {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, e.length - done));
            read(e, done, buffer_.data(), n);
            sink(buffer_.data(), n);
            done += n;
        }
    }
    /// `n` bytes at `at` within the block, unchecked (the caller verified the block first).
    void read(const entry_info& e, std::uint64_t at, void* into, std::size_t n) {
        if (!file_) return reader_.read_range(e, at, n, into);
        if (::fseeko(file_, static_cast<off_t>(e.offset + at), SEEK_SET) != 0)
            throw ckpt::io_error("cannot read", path_, std::error_code(errno, std::generic_category()));
        if (std::fread(into, 1, n, file_) != n) {
            if (std::ferror(file_))
                throw ckpt::io_error("cannot read", path_, std::error_code(errno, std::generic_category()));
            throw corrupt_error("file ended early at byte " + std::to_string(e.offset + at), path_);
        }
    }

private:
    ckpt::reader& reader_;
    std::filesystem::path path_;
    std::FILE* file_;
    std::vector<char> buffer_;
};

}  // namespace ckpt::tool
