#pragma once
// safetensors: 8-byte header length, JSON header (the checkpoint's metadata in "__metadata__", each
// tensor's dtype, shape and data offsets), row-major data.

#include <ckpt/ckpt.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "export_stream.hpp"
#include "progress.hpp"

namespace ckpt::tool {

/// safetensors, row-major (column-major tensors are transposed on the way), the checkpoint's
/// metadata in "__metadata__". The layout is ckpt::safetensors_header's (the library's writer's):
/// the header, with every offset, comes from the index before any tensor is read.
void write_safetensors(const std::filesystem::path& out_path, ckpt::reader& r, const std::vector<export_item>& items,
                       const std::map<std::string, std::string>& metadata, progress& bar);

}  // namespace ckpt::tool
