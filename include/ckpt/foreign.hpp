#pragma once
// Weights in from PyTorch and numpy, and back out: restore tracked objects from safetensors files
// (single or HF-sharded), npz and npy files, and write them as safetensors. A separate header (target
// ckpt::foreign): its JSON parser and zlib stay out of translation units that only use ckpt.hpp.
//
//   ckpt::name_map names;                  // '/' in an entry path is '.' in the foreign file
//   names.rename_prefix("model/", "");     // entry "model/fc1/weight" <-> file name "fc1.weight"
//   names.rename("model/head/kernel", "lm_head.weight", ckpt::transposed);
//   ck.restore("model.safetensors", ckpt::strict, names);
//   ck.write("out.safetensors", ckpt::as_safetensors, names);

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ckpt/ckpt.hpp>  // everything else of ckpt: foreign files are one more way in and out
#include <ckpt/dtype.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/foreign/reader.hpp>  // ckpt::foreign_tensor, the readers' base

namespace ckpt {

/// Tag of name_map::rename: the foreign tensor is the transpose of the tracked 2-D tensor (PyTorch's
/// Linear stores weight as [out, in]; a kernel tracked as [in, out] takes it with this tag).
struct transposed_t {
    explicit constexpr transposed_t() = default;
};
/// `names.rename("model/head/kernel", "lm_head.weight", ckpt::transposed);`
inline constexpr transposed_t transposed{};

/// Tag of any_checkpoint::write: write a safetensors file. `ck.write(p, ckpt::as_safetensors, names);`
struct as_safetensors_t {
    explicit constexpr as_safetensors_t() = default;
};
/// `ck.write("model.safetensors", ckpt::as_safetensors, ckpt::name_map{});`
inline constexpr as_safetensors_t as_safetensors{};

/// Restore flag for foreign files: float16, bfloat16, float32 and float64 convert among themselves, and
/// integers widen (int8 -> int64, uint8 -> int16, ...), where the file's dtype is not the object's.
/// Without it such a mismatch is an error. `ck.restore(p, ckpt::strict | ckpt::convert, names);`
inline constexpr restore_mode convert = restore_mode::convert;

/// Entry paths of a checkpoint ("model/fc1/weight") <-> tensor names of a foreign file ("fc1.weight").
/// By default every '/' is a '.'. Exact renames come first, then the longest matching prefix.
class name_map {
public:
    /// '/' <-> '.': `ckpt::name_map names;`
    name_map() = default;
    /// Entry paths that start with `entry_prefix` have foreign names that start with `foreign_prefix`
    /// instead (the rest still '/' <-> '.'). `names.rename_prefix("model/", "");`
    name_map& rename_prefix(std::string entry_prefix, std::string foreign_prefix);
    /// One entry path, one foreign name. `names.rename("model/head/bias", "lm_head.bias");`
    name_map& rename(std::string entry_path, std::string foreign_name);
    /// The same, for a 2-D tensor stored transposed in the foreign file.
    /// `names.rename("model/head/kernel", "lm_head.weight", ckpt::transposed);`
    name_map& rename(std::string entry_path, std::string foreign_name, transposed_t);

    /// The foreign name of an entry path: `names.to_foreign("model/fc1/weight") == "fc1.weight"`
    std::string to_foreign(std::string_view entry_path) const;
    /// The entry path of a foreign name, the way back: `names.to_entry("fc1.weight") == "model/fc1/weight"`
    std::string to_entry(std::string_view foreign_name) const;
    /// Whether the entry was renamed with ckpt::transposed: `names.is_transposed("model/head/kernel")`
    bool is_transposed(std::string_view entry_path) const;

private:
    struct exact {
        std::string entry, foreign;
        bool transposed;
    };
    std::vector<exact> exact_;
    std::vector<std::pair<std::string, std::string>> prefixes_;  // entry prefix, foreign prefix
};

/// A foreign file opened by its content, not its name: a safetensors file, an HF-sharded safetensors
/// model (its `*.index.json`, or the directory holding `model.safetensors.index.json`), an npz (stored or
/// deflated, zip64 too) or an npy file. Everything the file says is checked against its size when it
/// is opened; tensors are read on request, in chunks.
///   ckpt::foreign_file f("model.safetensors");
///   for (const auto& t : f.tensors()) std::cout << t.name << ' ' << t.shape.to_string() << '\n';
class foreign_file {
public:
    /// Opens and checks `path`. Throws format_error (not a supported file), corrupt_error (damaged or
    /// inconsistent), io_error.
    explicit foreign_file(const std::filesystem::path& path);
    /// Takes over `other`'s open file; `other` may then only be assigned to or destroyed.
    foreign_file(foreign_file&& other) noexcept;
    /// Closes this file and takes over `other`'s.
    foreign_file& operator=(foreign_file&& other) noexcept;
    /// Closes the file.
    ~foreign_file();

    /// The path it was opened with.
    const std::filesystem::path& path() const noexcept;
    /// "safetensors", "safetensors-sharded", "npz" or "npy".
    std::string_view format() const noexcept;
    /// Every tensor, in the file's order (safetensors: sorted by name, as the reference lists them).
    const std::vector<foreign_tensor>& tensors() const noexcept;
    /// The tensor named `name`, or null. `if (auto* t = f.find("lm_head.weight")) ...`
    const foreign_tensor* find(std::string_view name) const;
    /// The safetensors `__metadata__` strings (empty for other formats).
    const std::vector<std::pair<std::string, std::string>>& metadata() const noexcept;

    /// All of `t`'s bytes (t.bytes of them) into `dest`, in the file's element order.
    /// `std::vector<char> b(t.bytes); f.read(t, b.data());`
    void read(const foreign_tensor& t, void* dest) const;
    /// `t`'s bytes in order, handed to `consume` in pieces of at most `chunk` bytes; memory: one chunk.
    /// `f.read(t, [&](const void* p, std::size_t n) { out.write(p, n); });`
    void read(const foreign_tensor& t, const std::function<void(const void*, std::size_t)>& consume,
              std::size_t chunk = std::size_t{1} << 20) const;

private:
    std::unique_ptr<detail::foreign_reader> reader_;
};

/// Writes the ckpt file `out` (atomically) holding every tensor of the foreign file `source`, each
/// named `names.to_entry(foreign name)`, checksums computed while copying. Returns `out`.
/// `ckpt::import_file("model.safetensors", "model.ckpt");`
std::filesystem::path import_file(const std::filesystem::path& source, const std::filesystem::path& out,
                                  const name_map& names = {});

/// What `ck.restore(file, mode, names)` calls (any_checkpoint::restore): restores the tracked objects
/// from the foreign file with the guarantees of a ckpt restore (see restore_mode).
restore_status restore_foreign(any_checkpoint& ck, const std::filesystem::path& file, restore_mode mode,
                               const name_map& names);
/// What `ck.write(file, ckpt::as_safetensors, names)` calls: writes every tracked tensor, streaming,
/// to a safetensors file published atomically. Non-tensor leaves (counters, random engines) are left out.
std::filesystem::path write_foreign(any_checkpoint& ck, const std::filesystem::path& file, as_safetensors_t,
                                    const name_map& names);

}  // namespace ckpt

#include <ckpt/detail/foreign/impl.hpp>
