#pragma once
// `ckpt verify PATH`: every checksum and the structure of a checkpoint file, a sharded checkpoint,
// or every checkpoint in a directory; for each, its damaged entries, then its verdict.

#include <filesystem>
#include <ostream>

namespace ckpt::tool {

/// `ckpt verify PATH`; returns the exit status: 1 when anything is damaged. Every line is flushed
/// as it is written, so that with `err` and `out` the same stream (as the tool has it) each verdict
/// follows its details.
int verify(const std::filesystem::path& target, std::ostream& out, std::ostream& err);

}  // namespace ckpt::tool
