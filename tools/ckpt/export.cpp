// `ckpt export`: which tensors, under which names (plan_export), then the format's writer.

#include "export.hpp"

#include <ckpt/ckpt.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <string_view>
#include <vector>

#include "export_stream.hpp"
#include "npz.hpp"
#include "progress.hpp"
#include "safetensors.hpp"
#include "text.hpp"

namespace ckpt::tool {
namespace {

/// The name an entry path gets in an export (see export.hpp). `export_name("m/a\x01") == "m/a%01"`
std::string export_name(std::string_view path) {
    std::string out;
    for (std::size_t i = 0; i < path.size();) {
        const std::size_t n = utf8_sequence(path, i);
        const auto c = static_cast<unsigned char>(path[i]);
        if (n == 0 || c < 0x20 || c == 0x7f || is_c1_control(path, i)) {
            for (std::size_t k = 0; k < (n ? n : 1); ++k) {
                char b[4];
                std::snprintf(b, sizeof b, "%%%02X", static_cast<unsigned char>(path[i + k]));
                out += b;
            }
            i += n ? n : 1;
        } else {
            out.append(path.substr(i, n));
            i += n;
        }
    }
    return out;
}

enum class export_format { npz, safetensors };

/// The names tensors get: entry paths as they are (`paths`), or with '.' between path segments as
/// in a PyTorch state_dict (`dotted`: "model/fc1/weight" becomes "model.fc1.weight"), the names
/// `ckpt import` and the library's default name_map turn back into the same paths.
enum class export_names { paths, dotted };

/// The tensors an export writes, chosen by `filter`, with their names; everything left out is
/// told in `notes`. Throws ckpt::error naming the entry when a name cannot be written (see export.hpp).
std::vector<export_item> plan_export(const ckpt::reader& r, const path_filter& filter, export_format format,
                                     std::vector<std::string>& notes, export_names naming = export_names::paths) {
    std::vector<export_item> items;
    std::map<std::string, std::string> taken;  // exported name -> entry path
    for (const auto& e : r.entries()) {
        if (!filter.keeps(e.path)) continue;
        if (e.kind != entry_kind::tensor) {
            if (e.kind != entry_kind::sequence && e.kind != entry_kind::mapping)
                notes.push_back("skipped " + printable(e.path) + " (" + entry_kind_name(e.kind) + ", not a tensor)");
            continue;
        }
        // complex64 too: safetensors has it (C64), but readers before 0.7 refuse the whole file for it.
        if (format == export_format::safetensors &&
            (!ckpt::safetensors_dtype(e.dtype) || e.dtype == dtype::complex64)) {
            notes.push_back("skipped " + printable(e.path) + " (" + dtype_name(e.dtype) +
                            ": safetensors has no such dtype)");
            continue;
        }
        std::string name = export_name(e.path);
        auto refuse = [&](const std::string& why) {
            throw ckpt::error("cannot be exported: " + why + "; leave it out with --exclude", r.path(), e.path);
        };
        if (naming == export_names::dotted) {
            // A '.' inside a segment (a map key "v1.2") would come back as two segments: refused,
            // so that export and import stay each other's inverse.
            if (name.find('.') != std::string::npos)
                refuse(
                    "a path segment holds a '.', which the way back (ckpt import) would read as two segments; "
                    "export with --names paths");
            std::replace(name.begin(), name.end(), '/', '.');
        }
        if (format == export_format::safetensors && name == "__metadata__")
            refuse("safetensors keeps its metadata under the key __metadata__");
        if (format == export_format::npz) {
            const std::string member = name + ".npy";
            std::size_t longest = 0;
            for (std::size_t begin = 0; begin <= member.size();) {
                const std::size_t end = std::min(member.find('/', begin), member.size());
                longest = std::max(longest, end - begin);
                begin = end + 1;
            }
            if (longest > 255)
                refuse("its npz member name has a path segment of " + std::to_string(longest) +
                       " bytes (unzip and file systems allow 255)");
            if (member.size() > 4095)
                refuse("its npz member name has " + std::to_string(member.size()) +
                       " bytes (unzip and file systems allow 4095)");
        }
        const auto [it, fresh] = taken.emplace(name, e.path);
        if (!fresh)
            refuse("its exported name '" + name + "' is also that of entry '" + it->second +
                   "'");  // escaped when printed
        items.push_back({&e, std::move(name)});
    }
    return items;
}

}  // namespace

int export_tensors(const std::filesystem::path& file, const std::string& format, const std::filesystem::path& out,
                   const path_filter& filter, const std::string& names) {
    ckpt::reader r(file);
    const auto kind = format == "npz" ? export_format::npz : export_format::safetensors;
    std::vector<std::string> notes;
    const auto items =
        plan_export(r, filter, kind, notes, names == "dotted" ? export_names::dotted : export_names::paths);
    for (const auto& note : notes) std::cerr << "note: " << note << "\n";
    std::uint64_t total = 0;
    for (const auto& item : items) total += item.entry->length;
    progress bar("exporting", total);
    if (kind == export_format::npz) {
        write_npz(out, r, items, bar);
    } else {
        const auto& m = r.metadata();
        std::map<std::string, std::string> metadata = m.strings;
        metadata["ckpt.save_counter"] = std::to_string(m.save_counter);
        metadata["ckpt.wall_time"] = iso_time(m.wall_time);
        if (m.step) metadata["ckpt.step"] = std::to_string(*m.step);
        metadata.emplace("format", "pt");  // as the library's writer: transformers refuses files without it
        for (const auto& [k, v] : m.metrics) metadata["ckpt.metric." + k] = number(v);
        write_safetensors(out, r, items, metadata, bar);
    }
    std::cout << "wrote " << printable(out.string()) << " (" << items.size() << " tensors)\n";
    return 0;
}

}  // namespace ckpt::tool
