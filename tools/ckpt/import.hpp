#pragma once
// `ckpt import SRC -o OUT [--rename FROM=TO]...`: a safetensors file, an HF-sharded safetensors model
// (its directory or its *.index.json), an npz or an npy file into a ckpt file, by the library's
// ckpt::import_file: the format found by content, each tensor streamed into the output with its
// checksum computed on the way (memory: a chunk, whatever the sizes), published atomically.
// Names: the library's name_map, '.' in a foreign name becoming '/' in the entry path
// ("model.fc1.weight" -> "model/fc1/weight"); `--rename FROM=TO` puts the entry-path prefix TO in
// place of the foreign-name prefix FROM ("--rename model.=encoder/", "--rename lm_head.weight=head/kernel").
// Built when the target ckpt::foreign exists (CKPT_TOOL_IMPORT).

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

namespace ckpt::tool {

/// `ckpt import`: imports `source` into the ckpt file `out`; prints one line saying what was
/// written. Returns the exit status.
int import(const std::filesystem::path& source, const std::filesystem::path& out,
           const std::vector<std::string>& renames, std::ostream& os);

}  // namespace ckpt::tool
