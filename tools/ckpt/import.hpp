#pragma once
// `ckpt import SRC -o OUT [--rename FROM=TO]...`: a safetensors file, an HF-sharded safetensors model
// (its directory or its *.index.json), an npz or an npy file into a ckpt file, by the library's
// ckpt::import_file: the format found by content, each tensor streamed into the output with its
// checksum computed on the way (memory: a chunk, whatever the sizes), published atomically.
// Names: the library's name_map, '.' in a foreign name becoming '/' in the entry path
// ("model.fc1.weight" -> "model/fc1/weight"); `--rename FROM=TO` puts the entry-path prefix TO in
// place of the foreign-name prefix FROM ("--rename model.=encoder/", "--rename lm_head.weight=head/kernel").
// Built when the target ckpt::foreign exists (CKPT_TOOL_IMPORT).

#include <ckpt/ckpt.hpp>
#include <ckpt/foreign.hpp>

#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "common.hpp"

namespace ckpt::tool {

/// The name map of `--rename FROM=TO` options (FROM a foreign-name prefix, TO an entry-path prefix).
inline ckpt::name_map import_names(const std::vector<std::string>& renames) {
    ckpt::name_map names;
    for (const auto& r : renames) {
        const auto eq = r.find('=');
        if (eq == std::string::npos || eq == 0)
            throw ckpt::error(
                "--rename takes FROM=TO (a name prefix in the source, the entry-path prefix it "
                "becomes), not '" +
                r + "'");
        names.rename_prefix(r.substr(eq + 1), r.substr(0, eq));
    }
    return names;
}

/// Imports `source` into the ckpt file `out`; prints one line saying what was written.
inline int import(const std::filesystem::path& source, const std::filesystem::path& out,
                  const std::vector<std::string>& renames, std::ostream& os) {
    const auto names = import_names(renames);
    std::uint64_t tensors = 0, bytes = 0;
    std::string format;
    {
        const ckpt::foreign_file file(source);  // checked before anything is written
        format = file.format();
        for (const auto& t : file.tensors()) {
            ++tensors;
            bytes += t.bytes;
        }
    }
    ckpt::import_file(source, out, names);
    os << "wrote " << printable(out.string()) << " (" << tensors << (tensors == 1 ? " tensor, " : " tensors, ") << bytes
       << " bytes, from " << format << " " << printable(source.string()) << ")\n";
    return 0;
}

}  // namespace ckpt::tool
