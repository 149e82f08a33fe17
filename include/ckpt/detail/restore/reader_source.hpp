#pragma once
// What ckpt::reader reads from, as one interface: a checkpoint file or a sharded checkpoint's
// directory. Both are a restore_source (so a reader's reads are restores) with the little more a
// reader asks: metadata, sizes, ranges, verification, the view of one rank's per-rank entries.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/sharded_reader.hpp>
#include <ckpt/detail/restore/source.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/format/file_reader.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt::detail {

/// A checkpoint as ckpt::reader sees it.
class reader_source : public restore_source {
public:
    virtual const ckpt::metadata& metadata() const noexcept = 0;
    /// Bytes of every file read.
    virtual std::uint64_t size() const = 0;
    virtual std::uint32_t ranks() const noexcept = 0;
    virtual bool sharded() const noexcept = 0;
    virtual void read_range(const entry_info& e, std::uint64_t offset, std::uint64_t count, void* dest) = 0;
    /// 0 where blocks are read whole only (see ckpt::reader::chunk_size).
    virtual std::uint64_t chunk_size() const noexcept = 0;
    virtual void verify_all() = 0;
    /// The entries that rank `rank` sees, its per-rank ones included; throws ckpt::error when
    /// there is no such rank. Valid until the next call.
    virtual restore_source& rank_view(std::uint32_t rank) = 0;
};

/// One checkpoint file.
class file_reader_source final : public reader_source {
public:
    explicit file_reader_source(const std::filesystem::path& file) : file_(file) {}

    const std::filesystem::path& path() const noexcept override { return file_.path(); }
    const std::vector<entry_info>& entries() const noexcept override { return file_.entries(); }
    const entry_info* find(std::string_view path) const override { return file_.find(path); }
    std::size_t index_of(const entry_info& e) const noexcept override { return file_.index_of(e); }
    void read_block(const entry_info& e, void* dest) override { file_.read_block(e, dest); }
    std::string read_block(const entry_info& e) override { return file_.read_block(e); }
    void verify_block(const entry_info& e) override { file_.verify_block(e); }
    bool reads_in_parallel() const noexcept override { return true; }
    void read_part(const entry_info& e, std::uint64_t lo, std::uint64_t hi, char* dest,
                   file_reader::read_buffer& buffer) const override {
        file_.read_part(e, lo, hi, dest, buffer);
    }
    std::uint64_t part_size(const entry_info& e) const noexcept override { return file_.part_size(e); }
    std::uint64_t small_span(const entry_info& e) const noexcept override { return file_.small_span(e); }
    const char* read_span(std::uint64_t lo, std::uint64_t hi, file_reader::read_buffer& buffer) const override {
        return file_.read_span(lo, hi, buffer);
    }
    void check_small(const entry_info& e, const char* bytes) const override { file_.check_small(e, bytes); }

    const ckpt::metadata& metadata() const noexcept override { return file_.metadata(); }
    std::uint64_t size() const override { return file_.size(); }
    std::uint32_t ranks() const noexcept override { return 1; }
    bool sharded() const noexcept override { return false; }
    void read_range(const entry_info& e, std::uint64_t offset, std::uint64_t count, void* dest) override {
        file_.read_range(e, offset, count, dest);
    }
    std::uint64_t chunk_size() const noexcept override { return file_.chunk_size(); }
    void verify_all() override { file_.verify(); }
    restore_source& rank_view(std::uint32_t rank) override;

private:
    file_reader file_;
};

/// A sharded checkpoint's directory (detail/format/sharded_reader.hpp), through a sharded_reader.
class sharded_reader_source final : public reader_source {
public:
    explicit sharded_reader_source(const std::filesystem::path& dir)
        : sharded_(std::make_unique<sharded_reader>(dir)) {}

    const std::filesystem::path& path() const noexcept override { return sharded_->path(); }
    const std::vector<entry_info>& entries() const noexcept override { return sharded_->entries(); }
    const entry_info* find(std::string_view path) const override { return sharded_->find(path); }
    std::size_t index_of(const entry_info& e) const noexcept override { return sharded_->index_of(e); }
    void read_block(const entry_info& e, void* dest) override { sharded_->read_block(e, dest); }
    std::string read_block(const entry_info& e) override { return sharded_->read_block(e); }
    void verify_block(const entry_info& e) override { sharded_->verify_block(e); }

    const ckpt::metadata& metadata() const noexcept override { return sharded_->metadata(); }
    std::uint64_t size() const override;
    std::uint32_t ranks() const noexcept override { return sharded_->world_size(); }
    bool sharded() const noexcept override { return true; }
    void read_range(const entry_info& e, std::uint64_t offset, std::uint64_t count, void* dest) override {
        sharded_->read_range(e, offset, count, dest);
    }
    std::uint64_t chunk_size() const noexcept override { return 0; }
    void verify_all() override { sharded_->verify_all(); }
    restore_source& rank_view(std::uint32_t rank) override;

private:
    // Behind pointers: a sharded_reader's const methods are few, and size() opens rank files.
    std::unique_ptr<sharded_reader> sharded_, rank_view_;  // rank_view_: opened on first use
    std::unique_ptr<restore_source_of<sharded_reader>> rank_source_;
};

/// The source for `path`: a sharded checkpoint's directory or a checkpoint file.
CKPT_INLINE std::unique_ptr<reader_source> open_reader_source(const std::filesystem::path& path);

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE restore_source& file_reader_source::rank_view(std::uint32_t rank) {
    if (rank != 0)
        throw error("rank " + std::to_string(rank) + " does not exist: the checkpoint is one file", file_.path());
    return *this;
}

CKPT_INLINE std::uint64_t sharded_reader_source::size() const {
    std::uint64_t total = 0;
    for (std::uint32_t r = 0; r < sharded_->world_size(); ++r) total += sharded_->file(r).size();
    return total;
}

CKPT_INLINE restore_source& sharded_reader_source::rank_view(std::uint32_t rank) {
    if (!rank_view_) {
        auto view = std::make_unique<sharded_reader>(sharded_->path());
        rank_source_ = std::make_unique<restore_source_of<sharded_reader>>(*view);
        rank_view_ = std::move(view);
    }
    rank_view_->view_rank(rank);
    return *rank_source_;
}

CKPT_INLINE std::unique_ptr<reader_source> open_reader_source(const std::filesystem::path& path) {
    if (is_sharded_checkpoint(path)) return std::make_unique<sharded_reader_source>(path);
    return std::make_unique<file_reader_source>(path);
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
