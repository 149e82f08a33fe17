#pragma once
// The write of a checkpoint's tensors as a safetensors file (ckpt::write_foreign): a planning walk
// for the header, then a data walk that streams the tensors' bytes.

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <ckpt/foreign.hpp>
#include <ckpt/safetensors.hpp>
#include <ckpt/detail/foreign/bridge.hpp>
#include <ckpt/detail/format/writer.hpp>
#include <ckpt/detail/io/atomic_file.hpp>
#include <ckpt/detail/io/durable_directories.hpp>
#include <ckpt/detail/io/read_write.hpp>

namespace ckpt {

namespace detail {

/// One tensor of the safetensors file being written.
struct safetensors_out {
    std::string path, name;
    dtype type;
    shape dims;         // as the foreign file has it
    bool reorder;       // the object's memory is not in the file's (row-major) order
    shape memory_dims;  // the object's logical shape, for the reorder
    bool memory_column_major;
    std::uint64_t offset = 0, bytes = 0;  // in the file
};

struct safetensors_plan_sink final : block_sink {
    const name_map& names;
    const std::filesystem::path& file;
    std::vector<safetensors_out> out;
    safetensors_plan_sink(const name_map& n, const std::filesystem::path& f) : names(n), file(f) {}
    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major, const void*,
               std::size_t size) override {
        if (kind != entry_kind::tensor) return;  // counters' text, engines: not tensors, left out
        safetensors_out t;
        t.path = std::string(path);
        t.name = names.to_foreign(path);
        t.type = type;
        t.memory_dims = dims;
        t.memory_column_major = column_major;
        t.bytes = size;
        if (names.is_transposed(path)) {
            if (dims.rank() != 2)
                throw error("ckpt::transposed needs a 2-D tensor; this one is " + dims.to_string(), file,
                            std::string(path));
            t.dims = shape{dims[1], dims[0]};
            t.reorder = !column_major;  // [r, c] column-major is [c, r] row-major
        } else {
            t.dims = dims;
            t.reorder = dims.rank() >= 2 && column_major;
        }
        out.push_back(std::move(t));
    }
};

struct safetensors_data_sink final : block_sink {
    int fd;
    const std::filesystem::path& file;
    std::unordered_map<std::string, const safetensors_out*> by_path;
    safetensors_data_sink(int d, const std::filesystem::path& f) : fd(d), file(f) {}
    void block(std::string_view path, entry_kind kind, dtype, const shape&, bool, const void* data,
               std::size_t size) override {
        if (kind != entry_kind::tensor) return;
        const auto it = by_path.find(std::string(path));
        if (it == by_path.end() || it->second->bytes != size)
            throw error("the tracked objects changed while they were being written", file, std::string(path));
        const safetensors_out& t = *it->second;
        if (size == 0) return;
        if (!t.reorder) return pwrite_all(fd, data, size, t.offset, file);
        // A column-major matrix goes out row-major: one tensor's copy at a time.
        std::unique_ptr<char[]> rows(new char[size]);
        reorder(static_cast<const char*>(data), rows.get(), t.memory_dims, dtype_size(t.type), t.memory_column_major);
        pwrite_all(fd, rows.get(), size, t.offset, file);
    }
};

}  // namespace detail

inline std::filesystem::path write_foreign(any_checkpoint& ck, const std::filesystem::path& file, as_safetensors_t,
                                           const name_map& names) {
    detail::foreign_bridge::locked(ck, [&] {
        detail::safetensors_plan_sink plan(names, file);
        detail::foreign_bridge::save_walk(ck, plan);
        // safetensors_header refuses what safetensors cannot hold (dtypes, names), naming the entry.
        std::vector<safetensors_tensor> layout;
        for (const auto& t : plan.out) layout.push_back({t.name, t.type, t.dims, t.path});
        // transformers refuses files without "format": "pt".
        const std::string prefix = safetensors_header(layout, {{"format", "pt"}}, file);
        for (std::size_t i = 0; i < layout.size(); ++i) plan.out[i].offset = layout[i].offset;

        detail::create_parent_directories(file);
        detail::atomic_file out(file);
        detail::pwrite_all(out.fd(), prefix.data(), prefix.size(), 0, file);
        detail::safetensors_data_sink data(out.fd(), file);
        for (const auto& t : plan.out) data.by_path.emplace(t.path, &t);
        detail::foreign_bridge::save_walk(ck, data);
        out.commit();
    });
    return file;
}

}  // namespace ckpt
