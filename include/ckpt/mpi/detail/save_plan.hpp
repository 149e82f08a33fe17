#pragma once
// The plan of a sharded save: every rank describes its blocks (planned_block), the descriptions
// travel between ranks (encode_descriptions), and every rank derives the same plan from all of
// them (plan_save): the replicas and shards checked against each other, each replicated block
// given to one rank, the manifest. Needs no MPI.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <ckpt/detail/format/sharded_manifest.hpp>
#include <ckpt/detail/format/sharded_tiling.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/format/layout.hpp>
#include <ckpt/metadata.hpp>
#include <ckpt/mpi/track.hpp>

namespace ckpt::mpi::detail {

using ckpt::detail::entry_role;

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

}  // namespace ckpt::mpi::detail
