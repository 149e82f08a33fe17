#pragma once
// ckpt::reader: a checkpoint file read without the types that wrote it. Lists entries and
// metadata, reads one entry (or a whole subtree) into a given type, or checks every checksum.
//
//   ckpt::reader r("run/ckpt-3");
//   for (const auto& e : r.entries()) std::cout << e.path << " " << e.shape.to_string() << "\n";
//   auto kernel = r.read<Eigen::MatrixXf>("model/hidden/kernel");

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/restore/plan.hpp>
#include <ckpt/detail/restore/reader_source.hpp>
#include <ckpt/detail/restore/walker.hpp>
#include <ckpt/detail/format/file_reader.hpp>

namespace ckpt {

/// A checkpoint file read without the types that wrote it: `ckpt::reader r("run/ckpt-3"); auto k =
/// r.read<Eigen::MatrixXf>("model/kernel");`
class reader {
public:
    /// Opens the file (or a sharded checkpoint's directory, see ckpt/mpi.hpp) and checks its header
    /// and index; throws format_error or corrupt_error.
    explicit reader(const std::filesystem::path& file);

    /// The file read (a sharded checkpoint's directory): `r.path()`; on a temporary reader, a copy.
    const std::filesystem::path& path() const& noexcept { return source_->path(); }
    std::filesystem::path path() && { return source_->path(); }  ///< a copy: a reference would dangle
    /// In file order. `for (auto& e : r.entries()) ...` A sharded checkpoint lists its replicated
    /// entries and its shards (as whole tensors); per-rank entries are read with read_rank.
    const std::vector<entry_info>& entries() const& noexcept { return source_->entries(); }
    /// `for (auto& e : ckpt::reader(p).entries())` would iterate a destroyed reader: keep it in a variable.
    const std::vector<entry_info>& entries() && = delete;
    /// `if (auto* e = r.find("step")) ...`
    /// The pointer lives as long as the reader: on a temporary reader use it within the expression.
    const entry_info* find(std::string_view path) const { return source_->find(path); }
    /// `if (r.contains("model/kernel")) ...`
    bool contains(std::string_view path) const { return find(path) != nullptr; }
    /// The file's metadata: `r.metadata().step`
    const ckpt::metadata& metadata() const& noexcept { return source_->metadata(); }
    /// On a temporary reader, a copy: `auto m = ckpt::reader(p).metadata();` is safe.
    ckpt::metadata metadata() && { return source_->metadata(); }
    /// Size of the file in bytes (of every file, for a sharded checkpoint): `r.size()`
    std::uint64_t size() const { return source_->size(); }
    /// Number of ranks that saved: 1 for a checkpoint file. `for (std::uint32_t k = 0; k < r.ranks(); ++k) ...`
    std::uint32_t ranks() const noexcept { return source_->ranks(); }
    /// True for a sharded checkpoint (a directory written by ckpt::mpi::checkpoint): `if (r.sharded()) ...`
    bool sharded() const noexcept { return source_->sharded(); }

    /// Reads the entry (or subtree of entries) at `path` into `into`, with the rules of a strict
    /// restore: `Eigen::MatrixXf k; r.read("model/hidden/kernel", k);` A shard reads as its whole
    /// global tensor.
    template <class T>
    void read(std::string_view path, T& into) {
        read_from(*source_, path, into);
    }
    /// `auto step = r.read<std::int64_t>("step");`
    template <class T>
    T read(std::string_view path) {
        T value{};
        read(path, value);
        return value;
    }
    /// Reads rank `rank`'s copy of a per-rank entry (ckpt::track_per_rank) of a sharded checkpoint,
    /// or, like read(), any entry of a file when `rank` is 0: `r.read_rank(3, "data", cursor);`
    template <class T>
    void read_rank(std::uint32_t rank, std::string_view path, T& into) {
        read_from(source_->rank_view(rank), path, into);
    }

    /// The raw bytes of one entry's block, checked against its checksum.
    std::string read_bytes(const entry_info& e) { return source_->read_block(e); }
    /// The same into caller memory of `e.length` bytes.
    void read_bytes(const entry_info& e, void* dest) { source_->read_block(e, dest); }

    /// Bytes [offset, offset + count) of one entry's block into `dest`, reading and checking only the
    /// chunks the range covers (a version 1 file: the whole block; a shard of a sharded checkpoint:
    /// bytes of its row-major global tensor, from the covering pieces only). Throws ckpt::error for a range
    /// outside the block, corrupt_error on damage (then `dest` may hold damaged bytes).
    /// `std::vector<float> row(cols); r.read_range(*r.find("emb"), 4 * cols * i, 4 * cols, row.data());`
    void read_range(const entry_info& e, std::uint64_t offset, std::uint64_t count, void* dest) {
        source_->read_range(e, offset, count, dest);
    }

    /// The unit a checkpoint file's blocks are checked in: read_range over whole units reads every
    /// byte once. 0 for a version 1 file (whole blocks only) and for a sharded checkpoint.
    /// `if (r.chunk_size() && step % r.chunk_size() == 0) ...`
    std::uint64_t chunk_size() const noexcept { return source_->chunk_size(); }

    /// Reads every block and checks its checksum and padding; throws corrupt_error at the first bad one.
    void verify() { source_->verify_all(); }
    /// The same for one entry, in chunks: nothing the size of the block is allocated.
    void verify(const entry_info& e) { source_->verify_block(e); }

private:
    template <class T>
    static void read_from(detail::restore_source& source, std::string_view path, T& into) {
        if (path.empty() || !detail::is_valid_entry_path(path))
            throw error("invalid entry path '" + std::string(path) + "'", source.path());
        detail::restore_plan_core plan(source, false, false, nullptr);
        detail::restore_walker(plan, std::string(path)).visit(into);
        plan.throw_if_problems();
        plan.apply();
    }

    std::unique_ptr<detail::reader_source> source_;  // a checkpoint file or a sharded checkpoint
};

}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt {

CKPT_INLINE reader::reader(const std::filesystem::path& file) : source_(detail::open_reader_source(file)) {}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
