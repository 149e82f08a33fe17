#pragma once
// `ckpt ls DIR [--json]`: the checkpoints a manager keeps, from its state file (read without its
// lock, so a running training can be looked at), or, without one, every checkpoint file found
// there. `ckpt inspect DIR` on such a directory shows the same listing.

#include <filesystem>
#include <ostream>

namespace ckpt::tool {

/// `ckpt ls DIR [--json]`; returns the exit status.
int list(const std::filesystem::path& dir, bool json, std::ostream& out);

/// `ckpt inspect DIR [--json]` on a directory that is not itself a (sharded) checkpoint: what a
/// user who points inspect at a manager's directory wants to see first, the checkpoints in it, and
/// how to inspect one. A directory with none is an error, as a file that is not a checkpoint.
int inspect_directory(const std::filesystem::path& dir, bool json, std::ostream& out);

}  // namespace ckpt::tool
