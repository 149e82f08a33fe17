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

// Open MPI's mpi.h pulls in its deprecated C++ bindings, which trip -Wcast-function-type; CMake's
// MPI targets include it as a system header, this covers direct compiler calls.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wcast-function-type"
#endif
#include <mpi.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <unistd.h>

#include <ckpt/checkpoint.hpp>
#include <ckpt/detail/hash.hpp>
#include <ckpt/detail/mpi_manifest.hpp>
#include <ckpt/warning.hpp>

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

using ckpt::detail::entry_role;

/// A failure as it travels between ranks.
struct failure {
    enum kind_t : int { none = 0, generic = 1, io = 2, format = 3, corrupt = 4, mismatch = 5 } kind = none;
    std::string entry;
    std::string what;
    int code = 0;  // an io_error's errno, so that `e.code()` survives the trip (a full disk is told apart)
    explicit operator bool() const noexcept { return kind != none; }
};

/// The exception in flight as a failure: `catch (...) { f = capture(); }`
inline failure capture() {
    try {
        throw;
    } catch (const mismatch_error& e) {
        return {failure::mismatch, e.entry(), e.what()};
    } catch (const corrupt_error& e) {
        return {failure::corrupt, e.entry(), e.what()};
    } catch (const format_error& e) {
        return {failure::format, e.entry(), e.what()};
    } catch (const io_error& e) {
        // raise() rebuilds the io_error with its code, which appends the code's message again.
        std::string what = e.what();
        const std::string reason = e.code() ? ": " + e.code().message() : std::string();
        if (!reason.empty() && what.size() >= reason.size() &&
            what.compare(what.size() - reason.size(), reason.size(), reason) == 0)
            what.resize(what.size() - reason.size());
        return {failure::io, e.entry(), what, e.code() ? e.code().value() : 0};
    } catch (const error& e) {
        return {failure::generic, e.entry(), e.what()};
    } catch (const std::exception& e) {
        return {failure::generic, {}, e.what()};
    } catch (...) {
        return {failure::generic, {}, "an unknown exception"};
    }
}

[[noreturn]] inline void raise(const failure& f, const std::filesystem::path& file) {
    switch (f.kind) {
        case failure::io:
            throw io_error(f.what, file,
                           f.code != 0 ? std::error_code(f.code, std::generic_category()) : std::error_code());
        case failure::format:
            throw format_error(f.what, file, f.entry);
        case failure::corrupt:
            throw corrupt_error(f.what, file, f.entry);
        case failure::mismatch:
            throw mismatch_error(f.what, file, f.entry);
        default:
            throw error(f.what, file, f.entry);
    }
}

/// The few collectives a sharded save and restore need, over the caller's communicator. agree()
/// is the one decision point: every rank passes its outcome, every rank gets the same answer.
/// (A checkpoint_manager over MPI needs exactly this too: all(), broadcast() and agree().)
class communicator {
public:
    explicit communicator(MPI_Comm comm) : comm_(comm) {
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &size_);
    }
    MPI_Comm get() const noexcept { return comm_; }
    int rank() const noexcept { return rank_; }
    int size() const noexcept { return size_; }

    /// Every rank's bytes, in rank order.
    std::vector<std::string> allgather(const std::string& mine) const {
        const int n = static_cast<int>(mine.size());
        std::vector<int> counts(ckpt::detail::to_size(size_)), displs(ckpt::detail::to_size(size_));
        MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_);
        long long total = 0;
        for (int r = 0; r < size_; ++r) {
            displs[ckpt::detail::to_size(r)] = static_cast<int>(total);
            total += counts[ckpt::detail::to_size(r)];
        }
        if (total > INT32_MAX)
            throw error("the ranks' block descriptions exceed 2 GiB: too many entries for one exchange");
        std::string all(ckpt::detail::to_size(total), '\0');
        MPI_Allgatherv(mine.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, comm_);
        std::vector<std::string> out;
        for (int r = 0; r < size_; ++r)
            out.push_back(all.substr(ckpt::detail::to_size(displs[ckpt::detail::to_size(r)]),
                                     ckpt::detail::to_size(counts[ckpt::detail::to_size(r)])));
        return out;
    }

    /// `root`'s bytes on every rank.
    std::string broadcast(std::string bytes, int root) const {
        unsigned long long n = bytes.size();
        MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, comm_);
        bytes.resize(ckpt::detail::to_size(n));
        if (n) MPI_Bcast(bytes.data(), static_cast<int>(n), MPI_BYTE, root, comm_);
        return bytes;
    }

    /// True on every rank when `mine` is true on every rank.
    bool all(bool mine) const {
        int in = mine ? 1 : 0, out = 0;
        MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MIN, comm_);
        return out == 1;
    }

    /// Every rank passes its outcome; when any failed, every rank gets the failure of the lowest
    /// failing rank, its message naming that rank and `during`.
    failure agree(const failure& mine, const std::string& during) const {
        const int kind = static_cast<int>(mine.kind);
        std::vector<int> kinds(ckpt::detail::to_size(size_));
        MPI_Allgather(&kind, 1, MPI_INT, kinds.data(), 1, MPI_INT, comm_);
        int failed = -1;
        for (int r = 0; r < size_ && failed < 0; ++r)
            if (kinds[ckpt::detail::to_size(r)] != failure::none) failed = r;
        if (failed < 0) return {};
        failure f;
        f.kind = static_cast<failure::kind_t>(kinds[ckpt::detail::to_size(failed)]);
        f.entry = broadcast(mine.entry, failed);
        f.code = std::stoi(broadcast(std::to_string(mine.code), failed));
        f.what = "rank " + std::to_string(failed) + " of " + std::to_string(size_) + " failed " + during + ": " +
                 broadcast(mine.what, failed);
        return f;
    }

private:
    MPI_Comm comm_;
    int rank_ = 0, size_ = 1;
};

/// ckpt::coordinator over a communicator: what a checkpoint_manager of a ckpt::mpi::checkpoint
/// takes its decisions through.
class mpi_coordinator final : public coordinator {
public:
    explicit mpi_coordinator(const communicator& comm) : comm_(comm) {}
    int rank() const noexcept override { return comm_.rank(); }
    int size() const noexcept override { return comm_.size(); }
    std::string share(std::string bytes) override { return comm_.broadcast(std::move(bytes), 0); }
    std::uint64_t combine(std::uint64_t mine) override {
        unsigned long long in = mine, out = 0;
        MPI_Allreduce(&in, &out, 1, MPI_UNSIGNED_LONG_LONG, MPI_BOR, comm_.get());
        return out;
    }
    void agree(std::exception_ptr mine, const std::string& during, const std::filesystem::path& file) override {
        failure f;
        if (mine) {
            try {
                std::rethrow_exception(mine);
            } catch (...) {
                f = capture();
            }
        }
        if (auto any = comm_.agree(f, during)) raise(any, file);
    }

private:
    const communicator& comm_;
};

/// One block a save walk produced on this rank.
struct planned_block {
    std::string path;
    entry_role role = entry_role::replicated;
    entry_kind kind = entry_kind::tensor;
    dtype type = dtype::bytes;
    shape dims;     // the block's shape
    shape offsets;  // shards: of the block in the global tensor
    shape global;   // shards: the global shape
    bool column_major = false;
    std::uint64_t size = 0;
    std::uint64_t checksum = 0;
    const void* data = nullptr;  // tensors: the object's own memory, stable during the save
    std::string owned;           // other kinds: the encoded bytes, copied
    bool uses_owned = false;
    const void* bytes() const noexcept { return uses_owned ? static_cast<const void*>(owned.data()) : data; }
};

/// The checksum file_writer::block gives a block (the manifest must list it): the block's hash, or
/// since format version 2, for a block longer than one chunk, the hash of its chunk hashes.
inline std::uint64_t block_checksum(const void* data, std::size_t size,
                                    std::uint64_t chunk_size = ckpt::detail::default_chunk_size) {
    const std::uint64_t chunks = ckpt::detail::chunk_count(size, chunk_size);
    if (chunks == 0) return ckpt::detail::hash64(size ? data : "", size);
    std::vector<std::uint64_t> sums(ckpt::detail::to_size(chunks));
    const auto* bytes = static_cast<const char*>(data);
    for (std::uint64_t c = 0; c < chunks; ++c) {
        const std::uint64_t at = c * chunk_size;
        sums[ckpt::detail::to_size(c)] =
            ckpt::detail::hash64(bytes + at, ckpt::detail::to_size(std::min<std::uint64_t>(chunk_size, size - at)));
    }
    return ckpt::detail::hash64(sums.data(), sums.size() * sizeof(std::uint64_t));
}

/// A save_walker sink that keeps what a save needs: descriptions and the bytes (tensor blocks by
/// reference, encoded values by copy). No hashing: write_blocks hashes each block once, after the
/// ranks have agreed which rank writes which replicated block.
struct plan_sink {
    entry_role role = entry_role::replicated;
    std::vector<planned_block> blocks;

    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major,
               const void* data, std::size_t size) {
        planned_block b;
        b.path = std::string(path);
        b.role = role;
        b.kind = kind;
        b.type = type;
        b.dims = dims;
        b.column_major = column_major;
        b.size = size;
        if (kind == entry_kind::tensor) {
            b.data = data;
        } else {
            b.owned.assign(static_cast<const char*>(size ? data : ""), size);
            b.uses_owned = true;
        }
        blocks.push_back(std::move(b));
    }
};

/// The save_walker sink of an asynchronous save. The walk records descriptions and copies encoded
/// values (their bytes live only during the call); tensors are copied by copy(), after the ranks'
/// exchange, from the objects' own memory, which does not change in between: so no rank waits in
/// the exchange for another's copy. Both buffers are reused from one save to the next (once grown,
/// a save allocates nothing). No hashing: that happens on the background thread.
class copy_sink {
public:
    entry_role role = entry_role::replicated;
    std::vector<planned_block> blocks;

    void clear(const std::filesystem::path& file) {
        file_ = file;
        blocks.clear();
        at_.clear();
        values_.clear();
        tensor_bytes_ = 0;
    }

    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major,
               const void* data, std::size_t size) {
        // Refused here, on the caller's thread, before anything is written.
        ckpt::detail::check_writable_entry(path, kind, type, dims, size, blocks.size(), file_);
        planned_block b;
        b.path = std::string(path);
        b.role = role;
        b.kind = kind;
        b.type = type;
        b.dims = dims;
        b.column_major = column_major;
        b.size = size;
        if (kind == entry_kind::tensor) {
            b.data = data;  // until copy()
            at_.push_back(tensor_bytes_);
            tensor_bytes_ += size;
        } else {
            at_.push_back(values_.size());
            values_.append(static_cast<const char*>(size ? data : ""), size);
        }
        blocks.push_back(std::move(b));
    }

    /// Room for the tensors' copies, taken before the exchange (so a failure is exchanged too).
    void reserve() {
        if (tensor_bytes_ <= capacity_) return;
        bytes_.reset();                         // nothing in it is kept: free first
        bytes_.reset(new char[tensor_bytes_]);  // not zero-filled: every byte is copied into
        capacity_ = tensor_bytes_;
    }

    /// Copies the tensors and points every block at its copy.
    void copy() noexcept {
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            auto& b = blocks[i];
            if (b.kind == entry_kind::tensor) {
                if (b.size) std::memcpy(bytes_.get() + at_[i], b.data, ckpt::detail::to_size(b.size));
                b.data = bytes_.get() + at_[i];
            } else {
                b.data = values_.data() + at_[i];
            }
        }
    }

private:
    std::filesystem::path file_;
    std::vector<std::size_t> at_;
    std::string values_;
    std::unique_ptr<char[]> bytes_;
    std::size_t capacity_ = 0, tensor_bytes_ = 0;
};

inline std::string encode_descriptions(const std::vector<planned_block>& blocks) {
    ckpt::detail::index_builder out;
    out.u64(blocks.size());
    for (const auto& b : blocks) {
        out.text(b.path);
        out.u8(static_cast<std::uint8_t>(b.role));
        out.u8(static_cast<std::uint8_t>(b.kind));
        out.u8(static_cast<std::uint8_t>(b.type));
        out.u8(b.column_major ? 1 : 0);
        out.u8(static_cast<std::uint8_t>(b.dims.rank()));
        for (auto d : b.dims) out.u64(d);
        out.u8(static_cast<std::uint8_t>(b.global.rank()));
        for (auto d : b.global) out.u64(d);
        for (auto d : b.offsets) out.u64(d);
        out.u64(b.size);
        out.u64(b.checksum);
    }
    return out.bytes();
}

inline std::vector<planned_block> decode_descriptions(const std::string& bytes) {
    ckpt::detail::index_parser in(bytes, {});
    std::vector<planned_block> blocks(ckpt::detail::to_size(in.u64()));
    for (auto& b : blocks) {
        b.path = in.text("path");
        b.role = static_cast<entry_role>(in.u8());
        b.kind = static_cast<entry_kind>(in.u8());
        b.type = static_cast<dtype>(in.u8());
        b.column_major = in.u8() == 1;
        for (auto r = in.u8(); r > 0; --r) b.dims.push_back(in.u64());
        const auto g = in.u8();
        for (unsigned i = 0; i < g; ++i) b.global.push_back(in.u64());
        for (unsigned i = 0; i < g; ++i) b.offsets.push_back(in.u64());
        b.size = in.u64();
        b.checksum = in.u64();
    }
    return blocks;
}

inline std::string describe(const planned_block& b) {
    return std::string(entry_kind_name(b.kind)) + " " + dtype_name(b.type) + " " + b.dims.to_string() +
           (b.column_major ? " column-major" : "") + ", " + std::to_string(b.size) + " bytes";
}

inline std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

/// What every rank derives alike from all ranks' block descriptions.
struct save_layout {
    std::vector<std::uint32_t> owner;  // per replicated block (in rank 0's order): the rank that writes it
    ckpt::detail::sharded_manifest manifest;
    std::string warning;  // divergent replicas under divergence::warn
};

/// Checks the ranks' blocks against each other and plans the save; throws mismatch_error (the
/// same on every rank, since every rank has the same input).
inline save_layout plan_save(const std::vector<std::vector<planned_block>>& all, divergence policy,
                             const std::filesystem::path& file) {
    const auto world = static_cast<std::uint32_t>(all.size());
    auto of_role = [&](std::uint32_t r, entry_role role) {
        std::vector<const planned_block*> out;
        for (const auto& b : all[r])
            if (b.role == role) out.push_back(&b);
        return out;
    };
    save_layout layout;
    layout.manifest.world_size = world;

    // Replicated: the same entries everywhere, and (unless told otherwise) the same bytes.
    const auto reference = of_role(0, entry_role::replicated);
    for (std::uint32_t r = 1; r < world; ++r) {
        const auto mine = of_role(r, entry_role::replicated);
        for (std::size_t i = 0; i < std::max(mine.size(), reference.size()); ++i) {
            if (i >= mine.size())
                throw mismatch_error("replicated entry differs between ranks 0 and " + std::to_string(r) + ": rank " +
                                         std::to_string(r) + " lacks it",
                                     file, reference[i]->path);
            if (i >= reference.size())
                throw mismatch_error(
                    "replicated entry differs between ranks 0 and " + std::to_string(r) + ": rank 0 lacks it", file,
                    mine[i]->path);
            const auto &a = *reference[i], &b = *mine[i];
            if (a.path != b.path)
                throw mismatch_error("replicated entries differ between ranks 0 and " + std::to_string(r) +
                                         ": rank 0 has '" + a.path + "' where rank " + std::to_string(r) + " has '" +
                                         b.path + "'",
                                     file, a.path);
            if (a.kind != b.kind || a.type != b.type || a.dims != b.dims || a.size != b.size ||
                a.column_major != b.column_major)
                throw mismatch_error("replicated entry differs between ranks 0 and " + std::to_string(r) +
                                         ": rank 0 has " + describe(a) + ", rank " + std::to_string(r) + " has " +
                                         describe(b),
                                     file, a.path);
        }
    }
    std::vector<std::vector<const planned_block*>> replicas(world);
    for (std::uint32_t r = 0; r < world; ++r) replicas[r] = of_role(r, entry_role::replicated);
    if (policy != divergence::off)
        for (std::size_t i = 0; i < reference.size(); ++i)
            for (std::uint32_t r = 1; r < world; ++r) {
                const auto& b = *replicas[r][i];
                if (b.checksum == reference[i]->checksum) continue;
                const std::string what = "replicas differ between ranks 0 and " + std::to_string(r) + " (checksums " +
                                         hex(reference[i]->checksum) + " and " + hex(b.checksum) +
                                         "): a replicated object has diverged across ranks";
                if (policy == divergence::refuse) throw mismatch_error(what, file, b.path);
                if (layout.warning.empty()) layout.warning = file.string() + ": entry '" + b.path + "': " + what;
                break;
            }

    // Shards: the same names on every rank, one dtype and global shape each, tiling it exactly.
    std::vector<std::uint64_t> load(world, 0);
    const auto shards = of_role(0, entry_role::shard);
    std::vector<std::vector<const planned_block*>> shard_blocks(world);
    for (std::uint32_t r = 0; r < world; ++r) {
        shard_blocks[r] = of_role(r, entry_role::shard);
        if (shard_blocks[r].size() != shards.size())
            throw mismatch_error("ranks 0 and " + std::to_string(r) + " track different shards (" +
                                     std::to_string(shards.size()) + " and " + std::to_string(shard_blocks[r].size()) +
                                     ")",
                                 file);
        for (const auto& b : all[r])
            if (b.role != entry_role::replicated) load[r] += b.size;
    }
    for (std::size_t i = 0; i < shards.size(); ++i) {
        ckpt::detail::manifest_entry m;
        m.path = shards[i]->path;
        m.role = entry_role::shard;
        m.kind = entry_kind::tensor;
        m.dtype = shards[i]->type;
        m.dims = shards[i]->global;
        std::vector<shape> lo, ext;
        std::vector<std::uint32_t> owners;
        for (std::uint32_t r = 0; r < world; ++r) {
            const auto& b = *shard_blocks[r][i];
            if (b.path != m.path)
                throw mismatch_error("ranks 0 and " + std::to_string(r) + " track different shards ('" + m.path +
                                         "' and '" + b.path + "')",
                                     file, m.path);
            if (b.type != m.dtype || b.global != m.dims)
                throw mismatch_error("shard differs between ranks 0 and " + std::to_string(r) +
                                         ": rank 0 holds a block of " + dtype_name(m.dtype) + " " + m.dims.to_string() +
                                         ", rank " + std::to_string(r) + " of " + dtype_name(b.type) + " " +
                                         b.global.to_string(),
                                     file, m.path);
            lo.push_back(b.offsets);
            ext.push_back(b.dims);
            owners.push_back(r);
            if (b.dims.elements() != 0)
                m.pieces.push_back({r, b.column_major && b.dims.rank() > 1, b.offsets, b.dims, b.size, b.checksum});
        }
        if (auto why = ckpt::detail::tiling_problem(m.dims, lo, ext, owners); !why.empty())
            throw mismatch_error("shard blocks do not tile the global tensor: " + why, file, m.path);
        layout.manifest.entries.push_back(std::move(m));
    }

    // Each replicated block to the rank with the fewest bytes so far, largest blocks first (ties
    // to the lowest rank): every rank computes the same assignment.
    std::vector<std::size_t> order(reference.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return reference[a]->size > reference[b]->size; });
    layout.owner.assign(reference.size(), 0);
    for (std::size_t i : order) {
        std::uint32_t best = 0;
        for (std::uint32_t r = 1; r < world; ++r)
            if (load[r] < load[best]) best = r;
        layout.owner[i] = best;
        load[best] += reference[i]->size + ckpt::detail::block_alignment;  // empty blocks still cost an index record
    }
    std::vector<ckpt::detail::manifest_entry> replicated;
    for (std::size_t i = 0; i < reference.size(); ++i) {
        // The owner's copy is the one written: its checksum, not rank 0's, goes into the manifest
        // (they differ when diverged replicas are saved with divergence::warn or off).
        const auto& b = *replicas[layout.owner[i]][i];
        ckpt::detail::manifest_entry m{b.path, entry_role::replicated, b.kind, b.type, b.dims, {}};
        m.pieces.push_back({layout.owner[i], b.column_major, shape{}, b.dims, b.size, b.checksum});
        replicated.push_back(std::move(m));
    }
    layout.manifest.entries.insert(layout.manifest.entries.begin(), replicated.begin(), replicated.end());
    for (std::uint32_t r = 0; r < world; ++r)
        for (const auto& b : all[r])
            if (b.role == entry_role::per_rank) {
                ckpt::detail::manifest_entry m{b.path, entry_role::per_rank, b.kind, b.type, b.dims, {}};
                m.pieces.push_back({r, b.column_major, shape{}, b.dims, b.size, b.checksum});
                layout.manifest.entries.push_back(std::move(m));
            }
    for (auto& m : layout.manifest.entries)
        for (auto& p : m.pieces)
            if (m.role != entry_role::shard) {
                p.offsets = shape{};
                for (std::size_t d = 0; d < m.dims.rank(); ++d) p.offsets.push_back(0);
            }
    return layout;
}

/// Writes this rank's blocks of a save (its shards and per-rank blocks, and the replicated blocks
/// `owner` gives it) and sets the checksum of every block: a written block's from the writer, which
/// hashes it while writing (once: the bytes the file holds); the replicated blocks other ranks write
/// are hashed only for the comparison of replicas, so not under divergence::off, and only after the
/// kernel was asked to start writing this rank's blocks back, so that their hashing overlaps the
/// disk writes the fsync would otherwise wait for. The objects do not change meanwhile: a
/// synchronous save blocks its caller, an asynchronous one writes from its own copy.
inline void write_blocks(ckpt::detail::file_writer& writer, std::vector<planned_block>& blocks,
                         const std::vector<std::uint32_t>& owner, std::uint32_t me, divergence policy) {
    std::vector<planned_block*> others;
    std::size_t replicated = 0;
    for (auto& b : blocks) {
        bool writes = true;
        if (b.role == entry_role::replicated) writes = owner[replicated++] == me;
        if (b.role == entry_role::shard && b.dims.elements() == 0) writes = false;
        if (writes) {
            writer.block(b.path, b.kind, b.type, b.dims, b.column_major, b.bytes(), ckpt::detail::to_size(b.size));
            b.checksum = writer.last_checksum();
        } else if (b.role != entry_role::replicated || policy != divergence::off) {
            others.push_back(&b);
        }
    }
    if (!others.empty()) writer.start_writeback();
    for (auto* b : others) b->checksum = block_checksum(b->bytes(), ckpt::detail::to_size(b->size));
}

template <class T>
struct is_tracked_item : std::false_type {};
template <class T>
struct is_tracked_item<tracked<T>> : std::true_type {};
template <class T>
struct is_tracked_item<tracked_per_rank<T>> : std::true_type {};
template <class T>
struct is_tracked_item<tracked_shard<T>> : std::true_type {};

}  // namespace detail

/// A training state spread over the ranks of a communicator; see the top of this header. Every
/// rank constructs it with the same names in the same order; save and restore are collective.
template <class... Ts>
class checkpoint : public any_checkpoint {
    static_assert((detail::is_tracked_item<Ts>::value && ...),
                  "ckpt: ckpt::mpi::checkpoint takes ckpt::track, ckpt::track_per_rank and ckpt::track_shard items");

public:
    /// `ckpt::mpi::checkpoint ck{MPI_COMM_WORLD, ckpt::track("model", model), ckpt::track_per_rank("rng", rng)};`
    explicit checkpoint(MPI_Comm comm, Ts... objects) : comm_(comm), objects_(std::move(objects)...) {
        ckpt::detail::check_track_names(
            std::apply([](const auto&... t) { return std::vector<std::string>{t.name...}; }, objects_));
        ckpt::detail::warn_overlapping_objects(std::apply(
            [](const auto&... t) { return std::vector<ckpt::detail::tracked_extent>{ckpt::detail::extent_of(t)...}; },
            objects_));
    }

    /// Ends an asynchronous save still in flight (its commit is collective: every rank destroys its
    /// checkpoint; errors go to the warning handler). Under MPI_THREAD_MULTIPLE frees the duplicate
    /// communicator of the background thread.
    ~checkpoint() override {
        int finalized = 0;
        MPI_Finalized(&finalized);
        // Unwinding from an exception (maybe on this rank alone) or after MPI_Finalize, a commit
        // over the caller's communicator could wait forever: it is dropped, never half done.
        const bool may_commit = !finalized && std::uncaught_exceptions() <= uncaught_;
        if (settle_async(may_commit)) {
            if (comm_.rank() == 0) {
                std::error_code ec;
                std::filesystem::remove_all(async_.temp, ec);
            }
            ckpt::detail::warn(warning_kind::async_save_failed,
                               "an asynchronous save to '" + async_.file.string() +
                                   "' was abandoned before its commit (the checkpoint was destroyed " +
                                   (finalized ? "after MPI_Finalize" : "by an exception") + "): call wait() first");
        }
        if (own_ && !finalized) {
            MPI_Comm dup = own_->get();
            MPI_Comm_free(&dup);
        }
    }
    checkpoint(const checkpoint&) = delete;
    checkpoint& operator=(const checkpoint&) = delete;

    /// `ck.on_divergent_replicas(ckpt::mpi::divergence::warn);` see divergence.
    void on_divergent_replicas(divergence policy) noexcept { divergence_ = policy; }
    /// The communicator's rank of this process: `if (ck.rank() == 0) log(...);`
    int rank() const noexcept { return comm_.rank(); }
    /// The number of ranks: `auto rows = global_rows / ck.size();`
    int size() const noexcept { return comm_.size(); }
    /// The communicator the checkpoint runs on (the caller's): `MPI_Barrier(ck.communicator());`
    MPI_Comm communicator() const noexcept { return comm_.get(); }
    /// Decisions shared by every rank (a checkpoint_manager takes them through it).
    coordinator* coordination() noexcept override { return &coordinator_; }

private:
    void do_write(const std::filesystem::path& file, const save_options& options, std::uint64_t counter) override {
        namespace cd = ckpt::detail;
        namespace fs = std::filesystem;
        const int me = comm_.rank();

        // Rank 0's name, number and time are the save's; a rank that chose another name (no shared
        // file system, or a directory changed under the job) makes every rank refuse.
        cd::index_builder chosen;
        chosen.text(file.string());
        chosen.u64(counter);
        chosen.u64(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count()));
        chosen.text(temp_directory(file, counter).string());
        const std::string agreed = comm_.broadcast(chosen.bytes(), 0);
        cd::index_parser in(agreed, file);
        const fs::path name = in.text("file");
        const std::uint64_t agreed_counter = in.u64();
        const auto when =
            std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::nanoseconds(static_cast<std::int64_t>(in.u64()))));
        const fs::path temp = in.text("temporary directory");
        detail::failure mine;
        if (name != file || agreed_counter != counter)
            mine = {detail::failure::generic,
                    {},
                    "it would save to '" + file.string() + "' (save " + std::to_string(counter) + "), rank 0 to '" +
                        name.string() + "' (save " + std::to_string(agreed_counter) + ")"};
        if (auto f = comm_.agree(mine, "to agree on the checkpoint's name")) detail::raise(f, file);

        // Walk; exchange descriptions; every rank derives the same plan of which rank writes which
        // replicated block (from the sizes: the checksums come with the writes, and the replicas
        // are compared at the commit).
        detail::plan_sink sink;
        try {
            walk(sink);
        } catch (...) {
            mine = detail::capture();
        }
        if (auto f = comm_.agree(mine, "while walking its tracked objects")) detail::raise(f, file);
        std::vector<std::vector<detail::planned_block>> all;
        for (const auto& bytes : comm_.allgather(detail::encode_descriptions(sink.blocks)))
            all.push_back(detail::decode_descriptions(bytes));
        const std::vector<std::uint32_t> owner = detail::plan_save(all, divergence::off, file).owner;

        // Rank 0 makes the temporary directory (its name marks it as temporary to every scan) and
        // holds it until the save returns, so that a manager's cleanup leaves it alone.
        cd::file_descriptor held;
        if (me == 0) {
            try {
                if (fs::exists(file)) throw io_error("a checkpoint of this name already exists", file);
                cd::create_parent_directories(file);
                std::error_code ec;
                fs::remove_all(temp, ec);
                if (!fs::create_directory(temp, ec) || ec)
                    throw io_error("cannot create the temporary directory", temp, ec);
                held = cd::hold_directory(temp);
            } catch (...) {
                mine = detail::capture();
            }
        }
        if (auto f = comm_.agree(mine, "to create the checkpoint's temporary directory")) detail::raise(f, file);

        // Phase one: every rank writes and fsyncs its own file, hashing each block once.
        try {
            cd::file_writer writer(temp / cd::rank_file_name(static_cast<std::uint64_t>(me)));
            detail::write_blocks(writer, sink.blocks, owner, static_cast<std::uint32_t>(me), divergence_);
            writer.finish(options, counter, when);
        } catch (...) {
            mine = detail::capture();
        }

        // Phase two: outcomes and checksums exchanged, replicas compared, then rank 0 commits.
        // Until the rename, nothing under a final name exists.
        commit_save(comm_, all, sink.blocks, mine, temp, file, divergence_, options, counter, when, held);
    }

    // Rank 0: the manifest, then the rename that makes the checkpoint exist, then the fsync that
    // makes it durable (a failure after the rename removes it: not known durable, not a checkpoint).
    static void commit_directory(const std::filesystem::path& temp, const std::filesystem::path& file,
                                 const ckpt::detail::sharded_manifest& layout, const save_options& options,
                                 std::uint64_t counter, std::chrono::system_clock::time_point when) {
        namespace cd = ckpt::detail;
        const std::string body = cd::encode_manifest(layout);
        cd::file_writer manifest(temp / cd::sharded_manifest_name);
        manifest.block(cd::sharded_manifest_entry, entry_kind::tensor, dtype::uint8, shape{body.size()}, false,
                       body.data(), body.size());
        manifest.finish(options, counter, when);
        if (std::filesystem::exists(file)) throw io_error("a checkpoint of this name already exists", file);
        if (cd::injected_failure(cd::io_op::rename, file) || ::rename(temp.c_str(), file.c_str()) != 0)
            throw io_error("cannot rename the temporary directory into place", file, cd::last_error());
        try {
            cd::fsync_directory(file.parent_path());
        } catch (...) {
            std::error_code ec;
            std::filesystem::remove_all(file, ec);
            throw;
        }
    }

    void do_snapshot(ckpt::detail::snapshot&) override {
        // Unused: do_start_async below replaces the single-file snapshot.
        throw error("internal: ckpt::mpi::checkpoint takes no single-file snapshot");
    }

    // An asynchronous save, on the caller's thread: every rank copies its blocks (no hashing).
    // Under MPI_THREAD_MULTIPLE that is all: the exchange below runs on the background thread.
    // Otherwise the background thread can make no MPI call, so the exchange runs here first,
    // before the copy (no rank waits in it for another's copy).
    async_save do_start_async(const std::filesystem::path& file, const save_options& options, std::uint64_t counter,
                              std::chrono::system_clock::time_point when) override {
        int level = MPI_THREAD_SINGLE;
        MPI_Query_thread(&level);
        const bool multiple = level == MPI_THREAD_MULTIPLE;
        if (multiple && !own_) {
            // The background thread's collectives never share the caller's communicator, where the
            // caller's own collectives (a manager's per-step check, an Allreduce) run meanwhile.
            MPI_Comm dup = MPI_COMM_NULL;
            MPI_Comm_dup(comm_.get(), &dup);
            own_.emplace(dup);
        }
        auto& a = async_;
        a.file = file;
        a.options = options;
        a.counter = counter;
        a.when = when;
        a.temp = temp_directory(file, counter);
        a.policy = divergence_;
        a.outcome = a.start = {};
        a.sink.clear(file);
        try {
            walk(a.sink);
            a.sink.reserve();
        } catch (...) {
            // Not thrown here: the other ranks go on to the exchange, which reports it on all.
            a.start = detail::capture();
            a.start.what = "while copying its tracked objects: " + a.start.what;
        }
        async_save parts;
        parts.collective = true;
        if (multiple) {
            if (!a.start) a.sink.copy();
            parts.write = [this] {
                arrive(*own_);
                exchange_async(*own_, false);
                write_own_file();
                arrive(*own_);
                commit_async(*own_);
            };
        } else {
            exchange_async(comm_, true);
            parts.write = [this] { write_own_file(); };
            parts.commit = [this] { commit_async(comm_); };
        }
        return parts;
    }

    // Collective over `c`: what must be agreed before any rank writes. Rank 0 creates the temporary
    // directory. A fixed-size header from every rank (MPI_Iallgather) carries its outcome so far,
    // name, number, time, process id and a hash of its block descriptions; `copy`: this rank copies
    // its tensors while the others' headers arrive. When every rank succeeded, chose rank 0's name
    // and has the descriptions of the last exchange, the plan made then stands. Otherwise one more
    // allgather carries the messages, names and descriptions (sizes, no checksums), from which every
    // rank derives the same plan of which rank writes which replicated block. Refusals (a failed
    // copy, another name, replicated entries or shards that do not match) throw on every rank
    // alike, the temporary directory removed.
    void exchange_async(const detail::communicator& c, bool copy) {
        namespace cd = ckpt::detail;
        namespace fs = std::filesystem;
        auto& a = async_;
        const int world = c.size();
        detail::failure mine = a.start;
        if (c.rank() == 0 && !mine) {
            try {
                if (fs::exists(a.file)) throw io_error("a checkpoint of this name already exists", a.file);
                cd::create_parent_directories(a.file);
                std::error_code ec;
                fs::remove_all(a.temp, ec);
                if (!fs::create_directory(a.temp, ec) || ec)
                    throw io_error("cannot create the temporary directory", a.temp, ec);
                a.held = cd::hold_directory(a.temp);  // against a manager's cleanup, as in do_write
            } catch (...) {
                mine = detail::capture();
                mine.what = "to create the checkpoint's temporary directory: " + mine.what;
            }
        }
        const std::string descriptions = detail::encode_descriptions(a.sink.blocks);
        const std::string name = a.file.string();
        enum { kind, counter, time, pid, name_hash, descriptions_hash, fields };
        std::uint64_t header[fields] = {
            static_cast<std::uint64_t>(mine.kind),
            a.counter,
            static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(a.when.time_since_epoch()).count()),
            static_cast<std::uint64_t>(::getpid()),
            cd::hash64(name.data(), name.size()),
            cd::hash64(descriptions.data(), descriptions.size())};
        std::vector<std::uint64_t> headers(cd::to_size(world) * fields);
        MPI_Request request = MPI_REQUEST_NULL;
        MPI_Iallgather(header, fields, MPI_UINT64_T, headers.data(), fields, MPI_UINT64_T, c.get(), &request);
        if (copy && !a.start) a.sink.copy();
        MPI_Wait(&request, MPI_STATUS_IGNORE);

        // Rank 0's time and temporary directory are the save's.
        a.when = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(static_cast<std::int64_t>(headers[time]))));
        a.temp = temp_directory(a.file, a.counter, headers[pid]);
        bool again = a.planned_hashes.size() != cd::to_size(world);
        for (int r = 0; r < world && !again; ++r) {
            const std::uint64_t* h = &headers[cd::to_size(r) * fields];
            again = h[kind] != detail::failure::none || h[counter] != headers[counter] ||
                    h[name_hash] != headers[name_hash] || h[descriptions_hash] != a.planned_hashes[cd::to_size(r)];
        }
        if (!again) return;  // a.all and a.owner are the last exchange's
        a.planned_hashes.clear();

        cd::index_builder out;
        out.u8(static_cast<std::uint8_t>(mine.kind));
        out.text(mine.entry);
        out.text(mine.what);
        out.u64(static_cast<std::uint64_t>(mine.code));
        out.text(name);
        out.u64(a.counter);
        out.text(descriptions);
        const auto gathered = c.allgather(out.bytes());

        detail::failure agreed;
        a.all.clear();
        std::string name0;
        std::uint64_t counter0 = 0;
        for (int r = 0; r < world; ++r) {
            cd::index_parser in(gathered[cd::to_size(r)], a.file);
            detail::failure f;
            f.kind = static_cast<detail::failure::kind_t>(in.u8());
            f.entry = in.text("entry");
            f.what = in.text("message");
            f.code = static_cast<int>(in.u64());
            const std::string their_name = in.text("file");
            const std::uint64_t their_counter = in.u64();
            a.all.push_back(detail::decode_descriptions(in.text("descriptions")));
            if (r == 0) {
                name0 = their_name;
                counter0 = their_counter;
            }
            if (agreed) continue;
            if (f) {
                f.what = "rank " + std::to_string(r) + " of " + std::to_string(world) + " failed " + f.what;
                agreed = f;
            } else if (their_name != name0 || their_counter != counter0) {
                agreed = {detail::failure::generic,
                          {},
                          "rank " + std::to_string(r) + " of " + std::to_string(world) +
                              " failed to agree on the checkpoint's name: it would save to '" + their_name +
                              "' (save " + std::to_string(their_counter) + "), rank 0 to '" + name0 + "' (save " +
                              std::to_string(counter0) + ")"};
            }
        }
        if (agreed) {
            discard(a.temp, c);
            detail::raise(agreed, a.file);
        }
        try {
            // Sizes only: the owners do not depend on checksums, which the commit compares.
            a.owner = detail::plan_save(a.all, divergence::off, a.file).owner;
        } catch (...) {
            discard(a.temp, c);
            throw;
        }
        for (int r = 0; r < world; ++r)
            a.planned_hashes.push_back(headers[cd::to_size(r) * fields + descriptions_hash]);
    }

    // Background thread, no MPI: this rank's file, written and fsynced in the temporary directory,
    // and the checksums of its blocks (of the replicated ones it does not write too, unless
    // divergence::off, for the commit's comparison). The outcome is kept, never thrown: every rank
    // must reach the commit, where the outcomes are agreed.
    void write_own_file() noexcept {
        namespace cd = ckpt::detail;
        auto& a = async_;
        const auto me = static_cast<std::uint32_t>(comm_.rank());
        try {
            cd::file_writer writer(a.temp / cd::rank_file_name(me));
            detail::write_blocks(writer, a.sink.blocks, a.owner, me, a.policy);
            writer.finish(a.options, a.counter, a.when);
        } catch (...) {
            a.outcome = detail::capture();
        }
    }

    // A blocking collective spins while it waits for the slowest rank: on the background thread
    // that would take a core from the training. The ranks meet in a barrier polled between sleeps
    // first, so the commit's collectives then find every rank there.
    static void arrive(const detail::communicator& c) {
        MPI_Request request = MPI_REQUEST_NULL;
        MPI_Ibarrier(c.get(), &request);
        for (int done = 0; MPI_Test(&request, &done, MPI_STATUS_IGNORE), !done;)
            std::this_thread::sleep_for(std::chrono::microseconds(200));
    }

    // The commit of an asynchronous save, collective over `c` (the checkpoint's own communicator
    // on the background thread under MPI_THREAD_MULTIPLE, else the caller's, on the caller's
    // thread); see commit_save.
    void commit_async(const detail::communicator& c) {
        auto& a = async_;
        commit_save(c, a.all, a.sink.blocks, a.outcome, a.temp, a.file, a.policy, a.options, a.counter, a.when, a.held);
    }

    // The commit of a save, collective over `c`: the outcomes of the writes and the checksums of
    // every rank (`blocks`, this rank's; `all`, every rank's descriptions, whose checksums this
    // fills in) in one allgather; a failed write anywhere, or (by default) diverged replicas,
    // refuse it on every rank and remove the temporary directory; else rank 0 writes the manifest
    // and renames, and the ranks agree on that. `held`: rank 0's hold on the temporary directory.
    static void commit_save(const detail::communicator& c, std::vector<std::vector<detail::planned_block>>& all,
                            const std::vector<detail::planned_block>& blocks, const detail::failure& outcome,
                            const std::filesystem::path& temp, const std::filesystem::path& file, divergence policy,
                            const save_options& options, std::uint64_t counter,
                            std::chrono::system_clock::time_point when, ckpt::detail::file_descriptor& held) {
        namespace cd = ckpt::detail;
        const int world = c.size();
        cd::index_builder out;
        out.u8(static_cast<std::uint8_t>(outcome.kind));
        out.text(outcome.entry);
        out.text(outcome.what);
        out.u64(static_cast<std::uint64_t>(outcome.code));
        out.u64(blocks.size());
        for (const auto& b : blocks) out.u64(b.checksum);
        const auto gathered = c.allgather(out.bytes());
        detail::failure agreed;
        try {
            for (int r = 0; r < world; ++r) {
                cd::index_parser in(gathered[cd::to_size(r)], file);
                detail::failure f;
                f.kind = static_cast<detail::failure::kind_t>(in.u8());
                f.entry = in.text("entry");
                f.what = in.text("message");
                f.code = static_cast<int>(in.u64());
                auto& theirs = all[cd::to_size(r)];
                if (in.u64() != theirs.size()) throw error("internal: the ranks' block counts changed during a save");
                for (auto& b : theirs) b.checksum = in.u64();
                if (f && !agreed) {
                    f.what = "rank " + std::to_string(r) + " of " + std::to_string(world) +
                             " failed while writing its file of the checkpoint: " + f.what;
                    agreed = f;
                }
            }
        } catch (...) {
            agreed = detail::capture();  // the same on every rank: every rank parses the same bytes
        }
        if (agreed) {
            discard(temp, c);
            detail::raise(agreed, file);
        }
        detail::save_layout layout;
        try {
            layout = detail::plan_save(all, policy, file);
        } catch (...) {
            discard(temp, c);  // diverged replicas: refused alike on every rank
            throw;
        }
        if (!layout.warning.empty() && c.rank() == 0)
            ckpt::detail::warn(warning_kind::diverged_replicas, layout.warning);
        detail::failure mine;
        if (c.rank() == 0) {
            try {
                commit_directory(temp, file, layout.manifest, options, counter, when);
            } catch (...) {
                mine = detail::capture();
            }
        }
        held.close();
        if (auto f = c.agree(mine, "to commit the checkpoint")) {
            discard(temp, c);
            detail::raise(f, file);
        }
    }

    restore_status do_restore(const std::filesystem::path& file, restore_mode mode) override {
        namespace cd = ckpt::detail;
        const bool partial = cd::includes(mode, restore_mode::partial);
        const auto me = static_cast<std::uint32_t>(comm_.rank()), world = static_cast<std::uint32_t>(comm_.size());
        detail::failure mine;
        std::optional<cd::sharded_reader> source;
        try {
            source.emplace(file);
            if (source->world_size() == world) source->view_rank(me);
        } catch (...) {
            mine = detail::capture();
        }
        if (auto f = comm_.agree(mine, "to open the checkpoint")) detail::raise(f, file);
        const std::uint32_t saved = source->world_size();

        // Check pass: nothing changes. Every rank finds its entries, reads and checks every block
        // it uses (shards: only the covering pieces and chunks) into staged values, and collects
        // every problem. The ranks agree before any of them applies: a restore that fails on any
        // rank (a damaged chunk, a mismatch) leaves every object on every rank as it was.
        // Always staged, also under ckpt::in_place: a read at apply time could fail on one rank
        // after the others changed their objects.
        plan_type plan(*source, partial, false);
        try {
            std::apply([&](auto&... t) { (check(plan, t, saved), ...); }, objects_);
            if (!plan.problems.empty()) {
                std::string what = plan.problems.front().what;
                for (std::size_t i = 1; i < plan.problems.size() && i < 20; ++i)
                    what += "\n  and entry '" + plan.problems[i].path + "': " + plan.problems[i].what;
                if (plan.problems.size() > 20) what += "\n  and " + std::to_string(plan.problems.size() - 20) + " more";
                throw mismatch_error(what, {}, plan.problems.front().path);
            }
        } catch (...) {
            mine = detail::capture();
        }
        if (auto f = comm_.agree(mine, "to check the checkpoint against its objects")) detail::raise(f, file);

        // Apply: staged steps only move or swap values in, which does not fail.
        plan.apply();
        save_counter_ = source->metadata().save_counter;
        return restore_status(file, source->metadata(), std::move(plan.missing), plan.unused());
    }

    template <class Sink>
    void walk(Sink& sink) {
        std::apply([&](auto&... t) { (walk_one(sink, t), ...); }, objects_);
    }
    template <class Sink, class T>
    static void walk_one(Sink& sink, const tracked<T>& t) {
        sink.role = detail::entry_role::replicated;
        ckpt::detail::save_walker<Sink>(sink, t.name).visit(*t.object);
    }
    template <class Sink, class T>
    static void walk_one(Sink& sink, const tracked_per_rank<T>& t) {
        sink.role = detail::entry_role::per_rank;
        ckpt::detail::save_walker<Sink>(sink, t.name).visit(*t.object);
    }
    template <class Sink, class T>
    static void walk_one(Sink& sink, const tracked_shard<T>& t) {
        sink.role = detail::entry_role::shard;
        ckpt::detail::save_walker<Sink>(sink, t.name).visit(*t.object);
        sink.blocks.back().global = t.global;
        sink.blocks.back().offsets = t.offsets;
    }

    using plan_type = ckpt::detail::basic_restore_plan<ckpt::detail::sharded_reader>;
    using walker = ckpt::detail::basic_restore_walker<ckpt::detail::sharded_reader>;

    template <class T>
    static void check(plan_type& plan, tracked<T>& t, std::uint32_t) {
        walker(plan, t.name).visit(*t.object);
    }
    template <class T>
    void check(plan_type& plan, tracked_per_rank<T>& t, std::uint32_t saved) {
        if (saved == static_cast<std::uint32_t>(comm_.size())) return walker(plan, t.name).visit(*t.object);
        // Another rank's state is never silently dropped or reused.
        if (plan.partial)
            plan.missing.push_back(t.name);
        else
            plan.problems.push_back({t.name, "per-rank state was saved by " + std::to_string(saved) +
                                                 " ranks and is restored on " + std::to_string(comm_.size()) +
                                                 ": restore with ckpt::partial to leave it as it is " +
                                                 "(ckpt::reader can read any rank's copy)"});
    }
    // A shard's box is read (only the pieces and chunks that cover it) into a fresh tensor of the
    // object's shape, which a plan step moves in.
    template <class T>
    static void check(plan_type& plan, tracked_shard<T>& t, std::uint32_t) {
        namespace cd = ckpt::detail;
        using traits = tensor_traits<T>;
        const entry_info* e = plan.file.find(t.name);
        if (!e) {
            if (plan.partial)
                plan.missing.push_back(t.name);
            else
                plan.problems.push_back({t.name, "not found in the checkpoint"});
            return;
        }
        plan.consumed[plan.file.index_of(*e)] = 1;
        const auto& m = plan.file.logical(*e);
        const shape ext = traits::shape_of(*t.object);
        std::string why;
        if (m.kind != entry_kind::tensor || m.role == detail::entry_role::per_rank)
            why = "checkpoint has a " + std::string(cd::role_name(m.role)) + " " + entry_kind_name(m.kind) +
                  ", object is a shard";
        else if (m.dtype != dtype_of<typename traits::element>() || m.dims != t.global)
            why = "checkpoint has a global tensor of " + std::string(dtype_name(m.dtype)) + " " + m.dims.to_string() +
                  ", the shard is of " + dtype_name(dtype_of<typename traits::element>()) + " " + t.global.to_string();
        else
            for (std::size_t d = 0; d < ext.rank(); ++d)
                if (t.offsets[d] > t.global[d] || ext[d] > t.global[d] - t.offsets[d])
                    why = "the object's block " + ext.to_string() + " at offsets " + t.offsets.to_string() +
                          " lies outside the global shape " + t.global.to_string();
        if (!why.empty()) return plan.problems.push_back({t.name, why});
        if (!plan.problems.empty()) return;  // the restore will throw: not worth reading
        auto read_into = [&](auto& value) {
            plan.file.read_box(m, t.offsets, ext, traits::column_major, traits::data(value));
        };
        if constexpr (std::is_array_v<T>) {
            auto step = std::make_unique<cd::array_step<T>>(*t.object);
            read_into(step->value);
            plan.steps.push_back(std::move(step));
        } else if constexpr (std::is_default_constructible_v<T> && std::is_move_assignable_v<T>) {
            std::unique_ptr<cd::move_step<T>> step;
            try {
                step = std::make_unique<cd::move_step<T>>(*t.object);
                if (traits::shape_of(step->value) != ext) {
                    traits::resize(step->value, ext);
                    // Fresh memory, filled next: see advise_fresh_buffer.
                    cd::advise_fresh_buffer(traits::data(step->value),
                                            cd::to_size(ext.elements() * sizeof(typename traits::element)));
                }
            } catch (const std::bad_alloc&) {
                throw error("not enough memory to stage the shard's " +
                                std::to_string(ext.elements() * sizeof(typename traits::element)) +
                                " bytes for the restore",
                            plan.file.path(), t.name);
            }
            if (traits::shape_of(step->value) == ext) {
                read_into(step->value);
                return plan.steps.push_back(std::move(step));
            }
        }
        if constexpr (!std::is_array_v<T>) {
            // A tensor type that cannot be made empty and resized: stage a copy of the object.
            static_assert(
                std::is_copy_constructible_v<T> && std::is_move_assignable_v<T>,
                "ckpt: a restored shard's tensor type must be default-constructible or copyable, and move-assignable");
            T copy = *t.object;
            read_into(copy);
            plan.steps.push_back(std::make_unique<cd::move_step<T>>(*t.object, std::move(copy)));
        }
    }

    static std::filesystem::path temp_directory(const std::filesystem::path& file, std::uint64_t counter,
                                                std::uint64_t pid = static_cast<std::uint64_t>(::getpid())) {
        auto temp = file;
        temp += std::string(ckpt::detail::temp_marker) + std::to_string(pid) + "." + std::to_string(counter);
        return temp;
    }
    // After a failed save every rank returns only once the temporary directory is gone.
    void discard(const std::filesystem::path& temp) { discard(temp, comm_); }
    static void discard(const std::filesystem::path& temp, const detail::communicator& c) {
        if (c.rank() == 0) {
            std::error_code ec;
            std::filesystem::remove_all(temp, ec);
        }
        MPI_Barrier(c.get());
    }

    // What an asynchronous save carries from its start to its commit.
    struct async_state {
        std::filesystem::path file, temp;
        save_options options;
        std::uint64_t counter = 0;
        std::chrono::system_clock::time_point when;
        divergence policy = divergence::refuse;
        detail::copy_sink sink;                               // this rank's copied blocks
        std::vector<std::vector<detail::planned_block>> all;  // every rank's descriptions
        std::vector<std::uint32_t> owner;                     // per replicated block: its writer
        std::vector<std::uint64_t> planned_hashes;            // per rank: its descriptions' hash, when planned
        detail::failure start;                                // of this rank's copy
        detail::failure outcome;                              // of this rank's background write
        ckpt::detail::file_descriptor held;                   // rank 0: the temporary directory, until the commit
    };

    detail::communicator comm_;
    detail::mpi_coordinator coordinator_{comm_};
    std::tuple<Ts...> objects_;
    divergence divergence_ = divergence::refuse;
    async_state async_;
    std::optional<detail::communicator> own_;  // MPI_THREAD_MULTIPLE: the background thread's duplicate
    int uncaught_ = std::uncaught_exceptions();
};

template <class... Ts>
checkpoint(MPI_Comm, Ts...) -> checkpoint<Ts...>;

}  // namespace mpi
}  // namespace ckpt
