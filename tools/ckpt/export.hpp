#pragma once
// `ckpt export FILE --format npz|safetensors -o OUT [--only P] [--exclude P] [--names paths|dotted]`:
// a checkpoint's tensors for Python, a file's or a sharded checkpoint's (its global tensors, which
// ckpt::reader assembles from the ranks' pieces), written under a temporary name and renamed into
// place. The formats are in npz.hpp and safetensors.hpp.
//
// Names. A member (npz) or key (safetensors) is the entry path, with every byte that is not
// printable UTF-8 (control characters, invalid sequences) percent-escaped as %XX, the escape ckpt
// already uses for '%' and '/' in map keys: urllib.parse.unquote_to_bytes(segment) gives a map
// key's bytes back. Names the reference readers still cannot open are refused with a message
// naming the entry (leave them out with --exclude): two entries with one exported name, an npz
// member with a path segment over 255 bytes or over 4095 bytes in all (unzip, file systems), a
// safetensors tensor named __metadata__ (the header's own key).

#include <filesystem>
#include <string>

#include "filter.hpp"

namespace ckpt::tool {

/// `ckpt export`: the tensors `filter` keeps, streamed into `out` in `format` ("npz" or
/// "safetensors"), named by `names` ("paths" or "dotted"); other entries are skipped with a note on
/// stderr. Returns the exit status.
int export_tensors(const std::filesystem::path& file, const std::string& format, const std::filesystem::path& out,
                   const path_filter& filter, const std::string& names);

}  // namespace ckpt::tool
