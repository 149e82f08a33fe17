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

/// safetensors' dtype name, or nullptr when it has none (complex numbers).
const char* safetensors_dtype(ckpt::dtype t);

/// safetensors, row-major (column-major tensors are transposed on the way), the checkpoint's
/// metadata in "__metadata__". Tensors are laid out as the reference writer lays them out: by
/// element size, largest first, then by name, so every tensor starts aligned to its element size.
/// The header, with every offset, comes from the index before any tensor is read.
void write_safetensors(const std::filesystem::path& out_path, ckpt::reader& r, std::vector<export_item> items,
                       const std::map<std::string, std::string>& metadata, progress& bar);

}  // namespace ckpt::tool
