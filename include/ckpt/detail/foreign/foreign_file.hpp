#pragma once
// Definitions of ckpt/foreign.hpp's name_map and foreign_file: the name mapping between entry
// paths and foreign names, and opening a foreign file by its content.

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include <ckpt/foreign.hpp>
#include <ckpt/detail/foreign/hf_index.hpp>
#include <ckpt/detail/foreign/npy.hpp>
#include <ckpt/detail/foreign/npz.hpp>
#include <ckpt/detail/foreign/reader.hpp>
#include <ckpt/detail/foreign/safetensors.hpp>

namespace ckpt {

// ---- name_map -------------------------------------------------------------------------------------

inline name_map& name_map::rename_prefix(std::string entry_prefix, std::string foreign_prefix) {
    prefixes_.emplace_back(std::move(entry_prefix), std::move(foreign_prefix));
    return *this;
}

inline name_map& name_map::rename(std::string entry_path, std::string foreign_name) {
    exact_.push_back({std::move(entry_path), std::move(foreign_name), false});
    return *this;
}

inline name_map& name_map::rename(std::string entry_path, std::string foreign_name, transposed_t) {
    exact_.push_back({std::move(entry_path), std::move(foreign_name), true});
    return *this;
}

inline std::string name_map::to_foreign(std::string_view entry_path) const {
    for (auto it = exact_.rbegin(); it != exact_.rend(); ++it)  // the last rename of a path wins
        if (it->entry == entry_path) return it->foreign;
    const std::pair<std::string, std::string>* best = nullptr;
    for (const auto& p : prefixes_)
        if (entry_path.substr(0, p.first.size()) == p.first && (!best || p.first.size() > best->first.size()))
            best = &p;
    std::string rest(best ? entry_path.substr(best->first.size()) : entry_path);
    std::replace(rest.begin(), rest.end(), '/', '.');
    return best ? best->second + rest : rest;
}

inline std::string name_map::to_entry(std::string_view foreign_name) const {
    for (auto it = exact_.rbegin(); it != exact_.rend(); ++it)
        if (it->foreign == foreign_name) return it->entry;
    const std::pair<std::string, std::string>* best = nullptr;
    for (const auto& p : prefixes_)
        if (foreign_name.substr(0, p.second.size()) == p.second && (!best || p.second.size() > best->second.size()))
            best = &p;
    std::string rest(best ? foreign_name.substr(best->second.size()) : foreign_name);
    std::replace(rest.begin(), rest.end(), '.', '/');
    return best ? best->first + rest : rest;
}

inline bool name_map::is_transposed(std::string_view entry_path) const {
    for (auto it = exact_.rbegin(); it != exact_.rend(); ++it)
        if (it->entry == entry_path) return it->transposed;
    return false;
}

// ---- foreign_file ---------------------------------------------------------------------------------

namespace detail {

/// Opens `p` as whatever its content says it is (see foreign_file).
inline std::unique_ptr<foreign_reader> open_foreign(const std::filesystem::path& p) {
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
        if (std::filesystem::exists(p / "model.safetensors.index.json", ec))
            return std::make_unique<hf_sharded_reader>(p / "model.safetensors.index.json");
        std::vector<std::filesystem::path> indexes;
        for (auto it = std::filesystem::directory_iterator(p, ec); !ec && it != std::filesystem::directory_iterator();
             it.increment(ec)) {
            const std::string name = it->path().filename().string();
            const std::string tail = ".safetensors.index.json";
            if (name.size() > tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0)
                indexes.push_back(it->path());
        }
        if (indexes.size() == 1) return std::make_unique<hf_sharded_reader>(indexes.front());
        if (indexes.empty() && std::filesystem::exists(p / "model.safetensors", ec))
            return std::make_unique<safetensors_reader>(p / "model.safetensors");
        throw format_error(indexes.empty() ? "directory holds no *.safetensors.index.json and no model.safetensors"
                                           : "directory holds several *.safetensors.index.json: name one",
                           p);
    }
    const read_only_file file(p);
    unsigned char head[16] = {};
    const auto got = static_cast<std::size_t>(std::min<std::uint64_t>(file.size, sizeof head));
    file.read(head, got, 0);
    if (got >= 6 && std::memcmp(head, "\x93NUMPY", 6) == 0) return std::make_unique<npy_reader>(p);
    if (got >= 4 && head[0] == 'P' && head[1] == 'K') return std::make_unique<npz_reader>(p);
    std::size_t first = 0;
    while (first < got && (head[first] == ' ' || head[first] == '\n' || head[first] == '\r' || head[first] == '\t'))
        ++first;
    if (first < got && head[first] == '{') return std::make_unique<hf_sharded_reader>(p);
    if (got >= 9 && head[8] == '{') return std::make_unique<safetensors_reader>(p);
    throw format_error("not a safetensors file, HF-sharded model index, npz or npy file (by its first bytes)", p);
}

}  // namespace detail

inline foreign_file::foreign_file(const std::filesystem::path& path) : reader_(detail::open_foreign(path)) {}
inline foreign_file::foreign_file(foreign_file&&) noexcept = default;
inline foreign_file& foreign_file::operator=(foreign_file&&) noexcept = default;
inline foreign_file::~foreign_file() = default;

inline const std::filesystem::path& foreign_file::path() const noexcept { return reader_->path; }
inline std::string_view foreign_file::format() const noexcept { return reader_->format; }
inline const std::vector<foreign_tensor>& foreign_file::tensors() const noexcept { return reader_->tensors; }
inline const foreign_tensor* foreign_file::find(std::string_view name) const { return reader_->find(name); }
inline const std::vector<std::pair<std::string, std::string>>& foreign_file::metadata() const noexcept {
    return reader_->metadata;
}

inline void foreign_file::read(const foreign_tensor& t, void* dest) const {
    char* out = static_cast<char*>(dest);
    read(t, [&](const void* p, std::size_t n) {
        std::memcpy(out, p, n);
        out += n;
    });
}

inline void foreign_file::read(const foreign_tensor& t, const std::function<void(const void*, std::size_t)>& consume,
                               std::size_t chunk) const {
    const auto& all = reader_->tensors;
    const std::less<const foreign_tensor*> before;  // a total order, even for another file's tensor
    if (all.empty() || before(&t, all.data()) || !before(&t, all.data() + all.size()))
        throw error("foreign_file::read: tensor '" + t.name + "' is not one of this file's tensors()", path());
    std::uint64_t seen = 0;
    reader_->stream(
        reader_->index_of(t),
        [&](const void* p, std::size_t n) {
            seen += n;
            consume(p, n);
        },
        chunk);
    if (seen != t.bytes)
        throw corrupt_error(
            "tensor '" + t.name + "' gave " + std::to_string(seen) + " bytes, not " + std::to_string(t.bytes), path());
}

}  // namespace ckpt
