#pragma once
// ckpt::reader: a checkpoint file read without the types that wrote it. Lists entries and
// metadata, reads one entry (or a whole subtree) into a given type, or checks every checksum.
//
//   ckpt::reader r("run/ckpt-3");
//   for (const auto& e : r.entries()) std::cout << e.path << " " << e.shape.to_string() << "\n";
//   auto kernel = r.read<Eigen::MatrixXf>("model/hidden/kernel");

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/detail/restore_walk.hpp>
#include <ckpt/format/file_reader.hpp>

namespace ckpt {

/// A checkpoint file read without the types that wrote it: `ckpt::reader r("run/ckpt-3"); auto k = r.read<Eigen::MatrixXf>("model/kernel");`
class reader {
public:
    /// Opens the file and checks its header and index; throws format_error or corrupt_error.
    explicit reader(const std::filesystem::path& file) : file_(file) {}

    /// The file read: `r.path()`; on a temporary reader, a copy.
    const std::filesystem::path& path() const& noexcept { return file_.path(); }
    std::filesystem::path path() && { return file_.path(); }  ///< a copy: a reference would dangle
    /// In file order. `for (auto& e : r.entries()) ...`
    const std::vector<entry_info>& entries() const& noexcept { return file_.entries(); }
    /// `for (auto& e : ckpt::reader(p).entries())` would iterate a destroyed reader: keep it in a variable.
    const std::vector<entry_info>& entries() && = delete;
    /// `if (auto* e = r.find("step")) ...`
    /// The pointer lives as long as the reader: on a temporary reader use it within the expression.
    const entry_info* find(std::string_view path) const { return file_.find(path); }
    /// `if (r.contains("model/kernel")) ...`
    bool contains(std::string_view path) const { return file_.find(path) != nullptr; }
    /// The file's metadata: `r.metadata().step`
    const ckpt::metadata& metadata() const& noexcept { return file_.metadata(); }
    /// On a temporary reader, a copy: `auto m = ckpt::reader(p).metadata();` is safe.
    ckpt::metadata metadata() && { return file_.metadata(); }
    /// Size of the file in bytes.
    std::uint64_t size() const noexcept { return file_.size(); }

    /// Reads the entry (or subtree of entries) at `path` into `into`, with the rules of a strict
    /// restore: `Eigen::MatrixXf k; r.read("model/hidden/kernel", k);`
    template <class T>
    void read(std::string_view path, T& into) {
        if (path.empty() || !detail::is_valid_entry_path(path))
            throw error("invalid entry path '" + std::string(path) + "'", file_.path());
        detail::restore_plan plan(file_, false, false);
        detail::restore_walker(plan, std::string(path)).visit(into);
        plan.throw_if_problems();
        plan.apply();
    }
    /// `auto step = r.read<std::int64_t>("step");`
    template <class T>
    T read(std::string_view path) {
        T value{};
        read(path, value);
        return value;
    }

    /// The raw bytes of one entry's block, checked against its checksum.
    std::string read_bytes(const entry_info& e) { return file_.read_block(e); }
    /// The same into caller memory of `e.length` bytes.
    void read_bytes(const entry_info& e, void* dest) { file_.read_block(e, dest); }

    /// Bytes [offset, offset + count) of one entry's block into `dest`, reading and checking only the
    /// chunks the range covers (a version 1 file: the whole block). Throws ckpt::error for a range
    /// outside the block, corrupt_error on damage (then `dest` may hold damaged bytes).
    /// `std::vector<float> row(cols); r.read_range(*r.find("emb"), 4 * cols * i, 4 * cols, row.data());`
    void read_range(const entry_info& e, std::uint64_t offset, std::uint64_t count, void* dest) {
        file_.read_range(e, offset, count, dest);
    }

    /// Reads every block and checks its checksum and padding; throws corrupt_error at the first bad one.
    void verify() { file_.verify(); }
    /// The same for one entry, in chunks: nothing the size of the block is allocated.
    void verify(const entry_info& e) { file_.verify_block(e); }

private:
    detail::file_reader file_;
};

}  // namespace ckpt
