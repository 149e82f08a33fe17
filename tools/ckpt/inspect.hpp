#pragma once
// `ckpt inspect PATH [--json]`: the metadata and every stored entry of a checkpoint, each checked
// against its checksum; a file, a sharded checkpoint (each entry with its role and pieces), or a
// manager's directory (its listing, as ls).

#include <filesystem>
#include <ostream>

namespace ckpt::tool {

/// `ckpt inspect PATH [--json]`; returns the exit status: 1 when an entry is damaged. Text output
/// escapes names and strings (printable); JSON numbers read back exactly (json_number).
int inspect(const std::filesystem::path& path, bool json, std::ostream& out);

}  // namespace ckpt::tool
