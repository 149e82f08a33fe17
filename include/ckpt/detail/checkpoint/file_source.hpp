#pragma once
// Where a checkpoint's restore in one process reads from: a checkpoint file, or a sharded
// checkpoint (ckpt/mpi.hpp), which restores in one process too: replicated entries, shards as
// whole tensors, and per-rank entries when one rank saved it. The one place outside the MPI layer
// that tells the two apart, so that ckpt::checkpoint itself knows neither format.

#include <filesystem>

#include <ckpt/detail/format/file_reader.hpp>
#include <ckpt/detail/format/sharded_reader.hpp>
#include <ckpt/detail/restore/staged_reads.hpp>
#include <ckpt/detail/restore/walker.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt::detail {

/// Opens `file` and returns `restore(source, metadata)`, `source` reading the file (or the sharded
/// checkpoint at `file`) and `metadata` the one it was saved with.
template <class Restore>
auto restore_from_file(const std::filesystem::path& file, Restore&& restore) {
    if (is_sharded_checkpoint(file)) {
        sharded_reader reader(file);
        if (reader.world_size() == 1) reader.view_rank(0);
        restore_source_of<sharded_reader> source(reader);
        return restore(static_cast<restore_source&>(source), reader.metadata());
    }
    file_reader reader(file);
    restore_source_of<file_reader> source(reader);
    return restore(static_cast<restore_source&>(source), reader.metadata());
}

}  // namespace ckpt::detail
