#pragma once
// What a tool needs to look at checkpoints without the types that wrote them (the `ckpt` command is
// built on this and the rest of the public API): the checkpoints of a directory with their records,
// whether a file is a checkpoint, an entry described in words, element order converted, and an
// output file published atomically.
//
//   for (const auto& r : ckpt::list_checkpoints("run")) std::cout << r.name << "\n";

#include <cstdint>
#include <cstdio>
#include <memory>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint_record.hpp>
#include <ckpt/detail/manager/scan.hpp>
#include <ckpt/detail/manager/state_file.hpp>
#include <ckpt/detail/format/sharded_reader.hpp>
#include <ckpt/detail/restore/staged_reads.hpp>
#include <ckpt/detail/restore/walker.hpp>
#include <ckpt/detail/format/layout.hpp>
#include <ckpt/detail/io/atomic_file.hpp>
#include <ckpt/detail/io/descriptor.hpp>
#include <ckpt/detail/io/read_write.hpp>
#include <ckpt/detail/io/temp_names.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt {

/// The checkpoints in `dir`, oldest first: those its manager's state file lists, or, without a
/// readable state file, every sound checkpoint file found there (numbered in order of saving).
/// `for (const auto& r : ckpt::list_checkpoints("run")) std::cout << r.name;`
CKPT_INLINE std::vector<checkpoint_record> list_checkpoints(const std::filesystem::path& dir);

/// Whether `path` names the temporary file of a write in progress (or one a crash left):
/// `if (ckpt::is_temporary_file(p)) continue;`
inline bool is_temporary_file(const std::filesystem::path& path) { return detail::is_temp_name(path); }

/// Whether `path` is a regular file that begins with a checkpoint's magic bytes (damaged or not):
/// `if (ckpt::is_checkpoint_file(p)) ...`. Temporaries of a save in progress are not.
CKPT_INLINE bool is_checkpoint_file(const std::filesystem::path& path);

/// An entry in words, as error messages say it: "float32 [4, 3]", "a map of 2 elements".
/// `std::cout << ckpt::describe(*r.find("model/kernel"));`
inline std::string describe(const entry_info& e) { return detail::describe(e); }

/// Copies the elements of a tensor of shape `s` (each `element_size` bytes) from `src` to `dst` in
/// the other element order: column-major to row-major when `src_column_major`, else the reverse.
/// `ckpt::convert_element_order(block.data(), out.data(), e.shape, 4, e.column_major);`
CKPT_INLINE void convert_element_order(const void* src, void* dst, const shape& s, std::size_t element_size,
                                       bool src_column_major);

/// A file written under a temporary name and renamed into place by commit(); destroyed without
/// commit, nothing appears under the final name. `ckpt::atomic_output o("x.npz"); o.write_at(0, p, n); o.commit();`
class atomic_output {
public:
    /// Creates the temporary next to `final_path`.
    explicit atomic_output(const std::filesystem::path& final_path) : file_(final_path) {}
    /// Writes `n` bytes at byte `offset` (in any order; a hole reads as zeros).
    void write_at(std::uint64_t offset, const void* data, std::size_t n) {
        detail::pwrite_all(file_.fd(), data, n, offset, file_.temp_path());
    }
    /// fsyncs and renames the file into place (and fsyncs the directory).
    void commit() { file_.commit(); }
    /// The name the file gets on commit.
    const std::filesystem::path& path() const noexcept { return file_.final_path(); }

private:
    detail::atomic_file file_;
};

/// Whether `path` is the directory of a sharded checkpoint (written by ckpt::mpi::checkpoint):
/// `if (ckpt::is_sharded_checkpoint(p)) ...`
inline bool is_sharded_checkpoint(const std::filesystem::path& path) { return detail::is_sharded_checkpoint(path); }

/// How a sharded checkpoint holds an entry: `if (e.role == ckpt::sharded_role::shard) ...`
enum class sharded_role {
    replicated,  ///< identical on every rank, stored once (by one rank)
    per_rank,    ///< one copy per rank, in that rank's file
    shard,       ///< a block of a global tensor; the pieces tile it
};

/// The role as the manifest and the tool name it: "replicated", "per-rank", "shard".
inline const char* sharded_role_name(sharded_role r) noexcept {
    return detail::role_name(static_cast<detail::entry_role>(static_cast<int>(r)));
}

/// One stored block of a sharded checkpoint's entry: `p.rank`'s file holds `p.extents` at `p.offsets`.
struct sharded_piece {
    std::uint32_t rank = 0;      ///< the rank whose file holds it: `"rank-" + std::to_string(p.rank)`
    bool column_major = false;   ///< the block's element order
    shape offsets;               ///< of the block in the global tensor (zeros unless a shard)
    shape extents;               ///< the block's shape
    std::uint64_t bytes = 0;     ///< the block's length: `total += p.bytes;`
    std::uint64_t checksum = 0;  ///< XXH3-64 as the rank file's index keeps it
};

/// One logical entry of a sharded checkpoint with its pieces: `for (auto& p : e.pieces) ...`
struct sharded_entry {
    std::string path;                              ///< "model/kernel"
    sharded_role role = sharded_role::replicated;  ///< how it was tracked
    entry_kind kind = entry_kind::tensor;          ///< tensor or encoded value
    ckpt::dtype dtype = ckpt::dtype::bytes;        ///< element type
    shape dims;                                    ///< the global shape for a shard, the entry's shape otherwise
    std::vector<sharded_piece> pieces;             ///< per-rank entries: one piece, in its rank's file
};

/// The layout of a sharded checkpoint as its manifest records it, and checks of its pieces:
/// `ckpt::sharded_layout l("run/ckpt-3"); for (auto& e : l.entries()) l.verify(e);`
class sharded_layout {
public:
    /// Reads the manifest; throws format_error or corrupt_error when it is missing or damaged.
    explicit sharded_layout(const std::filesystem::path& dir);
    /// The number of ranks that saved it: `l.ranks() == 4`
    std::uint32_t ranks() const noexcept { return reader_->world_size(); }
    /// The save's metadata: `l.metadata().step`
    const ckpt::metadata& metadata() const noexcept { return reader_->metadata(); }
    /// Every entry, per-rank entries of every rank included, in manifest order.
    const std::vector<sharded_entry>& entries() const noexcept { return entries_; }
    /// Reads every piece of `e` (one of entries()) and checks it against its checksum; throws
    /// corrupt_error naming the rank file and the entry. `l.verify(l.entries()[0]);`
    void verify(const sharded_entry& e) {
        reader_->verify_entry(reader_->manifest().entries.at(detail::to_size(&e - entries_.data())));
    }
    /// What no piece covers: every rank file and the manifest file checked whole. `l.verify_files();`
    void verify_files();

private:
    std::unique_ptr<detail::sharded_reader> reader_;
    std::vector<sharded_entry> entries_;
};

}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt {

CKPT_INLINE std::vector<checkpoint_record> list_checkpoints(const std::filesystem::path& dir) {
    if (auto s = detail::read_state_file(dir)) return std::move(s->records);
    return detail::scan_directory(dir).records;
}

CKPT_INLINE bool is_checkpoint_file(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec) || is_temporary_file(path)) return false;
    char magic[8] = {};
    try {
        // Never blocks, and reads only a regular file (a FIFO swapped in after the check above).
        const detail::file_descriptor fd = detail::open_for_reading(path);
        if (detail::file_size(fd.get(), path) < 8) return false;
        detail::pread_all(fd.get(), magic, 8, 0, path);
        return detail::is_file_magic(magic);
    } catch (const error&) {
        return false;
    }
}

CKPT_INLINE void convert_element_order(const void* src, void* dst, const shape& s, std::size_t element_size,
                                       bool src_column_major) {
    detail::reorder(static_cast<const char*>(src), static_cast<char*>(dst), s, element_size, src_column_major);
}

CKPT_INLINE sharded_layout::sharded_layout(const std::filesystem::path& dir)
    : reader_(std::make_unique<detail::sharded_reader>(dir)) {
    for (const auto& m : reader_->manifest().entries) {
        sharded_entry e{m.path, static_cast<sharded_role>(static_cast<int>(m.role)), m.kind, m.dtype, m.dims, {}};
        for (const auto& p : m.pieces)
            e.pieces.push_back({p.file, p.column_major, p.offsets, p.extents, p.length, p.checksum});
        entries_.push_back(std::move(e));
    }
}

CKPT_INLINE void sharded_layout::verify_files() {
    for (std::uint32_t r = 0; r < reader_->world_size(); ++r)
        detail::file_reader(reader_->path() / detail::rank_file_name(r)).verify();
    detail::file_reader(reader_->path() / detail::sharded_manifest_name).verify();
}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
