#pragma once
// A checkpoint as it is stored, a file or a sharded directory alike, for the commands that look at
// storage rather than values (inspect, verify): its stored entries, each checked against its
// checksum in one pass, and its size. A file's stored entries are its entries (ckpt::reader); a
// sharded checkpoint's are its manifest's (ckpt::sharded_layout), per-rank entries of every rank
// included, each with its pieces. Commands that compare values (diff, export) take ckpt::reader,
// which reads both kinds as their logical entries.

#include <ckpt/ckpt.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "progress.hpp"

namespace ckpt::tool {

/// Bytes of a checkpoint on disk: the file, or every file of a sharded checkpoint's directory.
inline std::uintmax_t checkpoint_size(const std::filesystem::path& p, std::error_code& ec) {
    if (!ckpt::is_sharded_checkpoint(p)) return std::filesystem::file_size(p, ec);
    std::uintmax_t total = 0;
    for (const auto& e : std::filesystem::directory_iterator(p, ec))
        if (e.is_regular_file(ec)) total += e.file_size(ec);
    return total;
}

/// `stored_checkpoint c(path); c.check("checking", [&](std::size_t i, const char* problem) { ... });`
class stored_checkpoint {
public:
    /// Opens a file with ckpt::reader, a sharded checkpoint with ckpt::sharded_layout (its manifest
    /// only: the rank files are opened as they are checked). Throws what they throw.
    explicit stored_checkpoint(const std::filesystem::path& path) {
        if (ckpt::is_sharded_checkpoint(path))
            layout_.emplace(path);
        else
            file_.emplace(path);
    }

    bool sharded() const noexcept { return layout_.has_value(); }
    const ckpt::metadata& metadata() const noexcept { return file_ ? file_->metadata() : layout_->metadata(); }
    std::uint32_t ranks() const noexcept { return file_ ? 1 : layout_->ranks(); }
    /// The number of stored entries.
    std::size_t size() const noexcept { return file_ ? file_->entries().size() : layout_->entries().size(); }
    std::string_view entry_path(std::size_t i) const { return file_ ? entry(i).path : piece_entry(i).path; }
    /// Stored bytes of entry `i`: a file's block, or the sum of a sharded entry's pieces.
    std::uint64_t bytes(std::size_t i) const {
        if (file_) return entry(i).length;
        std::uint64_t total = 0;
        for (const auto& p : piece_entry(i).pieces) total += p.bytes;
        return total;
    }
    /// Entry `i` of a file (only when !sharded()).
    const ckpt::entry_info& entry(std::size_t i) const { return file_->entries()[i]; }
    /// Entry `i` of a sharded checkpoint, with its role and pieces (only when sharded()).
    const ckpt::sharded_entry& piece_entry(std::size_t i) const { return layout_->entries()[i]; }
    /// The file's reader (only when !sharded()): its size.
    const ckpt::reader& file() const { return *file_; }

    /// Checks every stored entry against its checksum, in chunks, under one progress bar; after
    /// each, `each(i, problem)` with problem nullptr or the corrupt_error's message.
    void check(const std::string& label, const std::function<void(std::size_t, const char*)>& each) {
        std::uint64_t total = 0;
        for (std::size_t i = 0; i < size(); ++i) total += bytes(i);
        progress bar(label, total);
        for (std::size_t i = 0; i < size(); ++i) {
            std::string problem;
            try {
                if (file_)
                    file_->verify(entry(i));
                else
                    layout_->verify(piece_entry(i));
            } catch (const ckpt::corrupt_error& e) {
                problem = e.what();
            }
            bar.advance(bytes(i));
            each(i, problem.empty() ? nullptr : problem.c_str());
        }
    }
    /// What check() does not cover: a sharded checkpoint's rank files whole and its manifest file
    /// (a file's entries and index are all its reader checks).
    void check_files() {
        if (layout_) layout_->verify_files();
    }

private:
    std::optional<ckpt::reader> file_;
    std::optional<ckpt::sharded_layout> layout_;
};

}  // namespace ckpt::tool
