#pragma once
// ckpt::mpi::checkpoint: one checkpoint of a training state spread over the ranks of an MPI
// communicator. Optional header (CMake target ckpt::mpi); nothing else in ckpt needs MPI.
//
//   ckpt::mpi::checkpoint ck{MPI_COMM_WORLD,
//       ckpt::track("model", model),                 // replicated: identical on every rank, stored once
//       ckpt::track_per_rank("data", cursor),        // one copy per rank
//       ckpt::track_shard("embedding", local_rows,   // this rank's block of a global tensor
//                         ckpt::shape{global_rows, dim}, ckpt::shape{row_offset, 0})};
//   auto p = ck.save("run/ckpt");    // collective: run/ckpt-1/ (rank-0, rank-1, ..., manifest)
//   ck.restore(p).assert_consumed(); // collective; on any number of ranks
//
// Save, in order (docs/distributed.md): every rank walks its objects; the ranks exchange the block
// descriptions (one allgather) and each derives the same plan from them: shards checked to tile
// their tensors, each replicated block given to one rank balancing bytes. Rank 0 creates a
// temporary directory; every rank writes and fsyncs its file there, hashing each block it writes
// as it writes it, and hashes the replicas it does not write (unless divergence::off); the ranks
// exchange their outcomes and checksums (one allgather) and compare the replicas; rank 0 writes
// the manifest, renames the directory into place and fsyncs the parent. A failure anywhere
// becomes, on every rank, the same typed error naming the failing rank, and the temporary
// directory is removed.
//
// Asynchronous saves (save_async, write_async, save_as_async; docs/distributed.md): every rank
// copies its state into a buffer kept between saves and returns. Then, collectively: an exchange
// (the name, each rank's outcome, the block sizes that decide which rank writes which replicated
// block, a fixed-size header when nothing changed since the last save; rank 0 makes the temporary
// directory); each rank hashes, writes and fsyncs its file on a
// background thread; the commit (checksums exchanged, replicas compared, manifest, rename, agreed).
//   MPI_THREAD_MULTIPLE provided: the caller's thread makes no MPI call; the background thread
//     does the exchange and the commit over a duplicate of the communicator made by the first
//     asynchronous save (never the caller's, where the caller's own collectives run meanwhile);
//     `then` of save_as_async runs there after the commit.
//   otherwise (SINGLE, FUNNELED, SERIALIZED): the background thread makes no MPI call; the
//     exchange runs on the caller's thread around the copy, the commit at the next save, wait(),
//     restore or the destructor, which every rank must therefore call alike; `then` runs there.
// Either way an error on any rank surfaces on every rank at that point as the same typed error,
// and nothing exists under the final name until the rename.

#include <ckpt/checkpoint.hpp>
#include <ckpt/mpi/checkpoint.hpp>
#include <ckpt/mpi/detail/mpi_h.hpp>
#include <ckpt/mpi/track.hpp>
