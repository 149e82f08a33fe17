#pragma once
// What a tool needs to look at checkpoints without the types that wrote them (the `ckpt` command is
// built on this and the rest of the public API): the checkpoints of a directory with their records,
// whether a file is a checkpoint, an entry described in words, element order converted, and an
// output file published atomically.
//
//   for (const auto& r : ckpt::list_checkpoints("run")) std::cout << r.name << "\n";

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/checkpoint_record.hpp>
#include <ckpt/detail/directory_scan.hpp>
#include <ckpt/detail/manager_state.hpp>
#include <ckpt/detail/restore_walk.hpp>
#include <ckpt/format/layout.hpp>
#include <ckpt/io/file.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt {

/// The checkpoints in `dir`, oldest first: those its manager's state file lists, or, without a
/// readable state file, every sound checkpoint file found there (numbered in order of saving).
/// `for (const auto& r : ckpt::list_checkpoints("run")) std::cout << r.name;`
inline std::vector<checkpoint_record> list_checkpoints(const std::filesystem::path& dir) {
    if (auto s = detail::read_state_file(dir)) return std::move(s->records);
    return detail::scan_directory(dir).records;
}

/// Whether `path` names the temporary file of a write in progress (or one a crash left):
/// `if (ckpt::is_temporary_file(p)) continue;`
inline bool is_temporary_file(const std::filesystem::path& path) { return detail::is_temp_name(path); }

/// Whether `path` is a regular file that begins with a checkpoint's magic bytes (damaged or not):
/// `if (ckpt::is_checkpoint_file(p)) ...`. Temporaries of a save in progress are not.
inline bool is_checkpoint_file(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec) || is_temporary_file(path)) return false;
    char magic[8] = {};
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return false;
    const auto n = std::fread(magic, 1, 8, f);
    std::fclose(f);
    return n == 8 && detail::is_file_magic(magic);
}

/// An entry in words, as error messages say it: "float32 [4, 3]", "a map of 2 elements".
/// `std::cout << ckpt::describe(*r.find("model/kernel"));`
inline std::string describe(const entry_info& e) { return detail::describe(e); }

/// Copies the elements of a tensor of shape `s` (each `element_size` bytes) from `src` to `dst` in
/// the other element order: column-major to row-major when `src_column_major`, else the reverse.
/// `ckpt::convert_element_order(block.data(), out.data(), e.shape, 4, e.column_major);`
inline void convert_element_order(const void* src, void* dst, const shape& s, std::size_t element_size,
                                  bool src_column_major) {
    detail::reorder(static_cast<const char*>(src), static_cast<char*>(dst), s, element_size, src_column_major);
}

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

}  // namespace ckpt
