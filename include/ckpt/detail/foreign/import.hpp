#pragma once
// ckpt::import_file: a foreign file (safetensors, npz, npy) converted into a checkpoint file.

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
#include <ckpt/detail/foreign/foreign_file.hpp>
#include <ckpt/detail/format/writer.hpp>

namespace ckpt {

inline std::filesystem::path import_file(const std::filesystem::path& source, const std::filesystem::path& out,
                                         const name_map& names) {
    const foreign_file f(source);
    detail::file_writer writer(out);
    for (const auto& t : f.tensors()) {
        const std::string path = names.to_entry(t.name);
        if (!detail::is_valid_entry_path(path))
            throw error("foreign tensor '" + t.name + "' maps to entry path '" + path +
                            "', which has an empty, '.' or '..' part: rename it (name_map::rename)",
                        source, path);
        // Streamed: one chunk of the tensor in memory at a time, hashed on its way to the file.
        writer.begin_block(path, entry_kind::tensor, t.dtype, t.shape, t.fortran_order && t.shape.rank() >= 2,
                           static_cast<std::size_t>(t.bytes));
        f.read(t, [&](const void* p, std::size_t n) { writer.block_bytes(p, n); });
        writer.end_block();
    }
    writer.finish(save_options{}, 0, std::chrono::system_clock::now());
    return out;
}

}  // namespace ckpt
