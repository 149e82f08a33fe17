#pragma once
// numpy's .npz: a ZIP of one .npy file per tensor, stored uncompressed, ZIP64 when sizes or offsets
// need it. bfloat16 has no numpy dtype: it is the structured dtype [('bfloat16', '<u2')], the raw
// bits marked by the field name. In PyTorch: torch.from_numpy(a.view(np.int16)).view(torch.bfloat16).

#include <ckpt/ckpt.hpp>

#include <filesystem>
#include <vector>

#include "export_stream.hpp"
#include "progress.hpp"

namespace ckpt::tool {

/// One member "<name>.npy" per tensor, streamed: each member's local header is written with the
/// sizes from the index, the bytes follow as they are read, and the CRC-32 is patched in after.
/// `force_zip64` writes ZIP64 records even for small files (tests).
void write_npz(const std::filesystem::path& out_path, ckpt::reader& r, const std::vector<export_item>& items,
               progress& bar, bool force_zip64 = false);

}  // namespace ckpt::tool
