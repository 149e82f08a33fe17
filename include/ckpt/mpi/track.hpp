#pragma once
// What a ckpt::mpi::checkpoint tracks beside ckpt::track (replicated: identical on every rank,
// stored once): track_per_rank (one copy per rank) and track_shard (this rank's block of a global
// tensor), and what a save does with replicas that diverged (mpi::divergence). Needs no MPI.

#include <string>
#include <type_traits>
#include <utility>

#include <ckpt/checkpoint.hpp>

namespace ckpt {

/// An object with one copy per rank. Made by ckpt::track_per_rank.
template <class T>
struct tracked_per_rank {
    std::string name;  ///< the entry path: `t.name == "rng"`
    T* object;         ///< the tracked object, not owned
};

/// This rank's block of a global tensor. Made by ckpt::track_shard.
template <class T>
struct tracked_shard {
    std::string name;  ///< the entry path of the global tensor: `t.name == "model/embedding"`
    T* object;         ///< this rank's block, not owned
    shape global;      ///< the whole tensor's shape: `t.global.to_string() == "[1000,64]"`
    shape offsets;     ///< of this block in it; the block's shape is the object's
};

/// `ckpt::track_per_rank("rng", rng)`: each rank saves and restores its own copy.
template <class T>
tracked_per_rank<T> track_per_rank(std::string name, T& object) {
    detail::require_checkpointable<T>();
    return {std::move(name), &object};
}

/// `ckpt::track_shard("embedding", rows, ckpt::shape{1000, 64}, ckpt::shape{250, 0})`: `block` is
/// the part of a [1000,64] tensor starting at row 250 (its own shape gives the extents). The blocks
/// of all ranks must tile the global tensor exactly. On restore the object must already have the
/// shape of the block it is to receive; the split may differ from the one saved.
template <class T>
tracked_shard<T> track_shard(std::string name, T& block, shape global, shape offsets) {
    static_assert(is_tensor_v<T>,
                  "ckpt: track_shard takes a tensor: an Eigen matrix or vector, or a type with ckpt::tensor_traits");
    constexpr std::size_t rank = tensor_traits<T>::rank;
    static_assert(rank >= 1, "ckpt: a shard is a block of a tensor of rank 1 or more");
    if (global.rank() != rank || offsets.rank() != rank)
        throw error("track_shard('" + name + "'): the object has rank " + std::to_string(rank) + ", the global shape " +
                    global.to_string() + " and offsets " + offsets.to_string() + " must have as many dimensions");
    return {std::move(name), &block, global, offsets};
}

namespace mpi {

/// What a save does when replicas of an entry differ between ranks: refuse (the default) throws
/// mismatch_error naming the entry and two ranks; warn hands that to rank 0's warning handler (ckpt/warning.hpp) and
/// saves rank-owner's copy; off does not compare.
enum class divergence { refuse, warn, off };

namespace detail {

template <class T>
struct is_tracked_item : std::false_type {};
template <class T>
struct is_tracked_item<tracked<T>> : std::true_type {};
template <class T>
struct is_tracked_item<tracked_per_rank<T>> : std::true_type {};
template <class T>
struct is_tracked_item<tracked_shard<T>> : std::true_type {};

}  // namespace detail
}  // namespace mpi
}  // namespace ckpt
