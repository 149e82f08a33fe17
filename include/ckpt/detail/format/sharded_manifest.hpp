#pragma once
// The manifest of a sharded checkpoint, its codec and its checks. The directory `run/ckpt-7/`
// holds one ckpt file per rank that saved (`rank-0`, `rank-1`, ...) and a manifest (`manifest`,
// itself a ckpt file whose one entry holds the listing below; docs/format.md, "Sharded
// checkpoints"). The manifest is written last and the directory renamed into place only after
// every rank's file is durable, so a directory under a final name with a sound manifest is a
// whole checkpoint. Needs no MPI: the tool, the reader and single-process programs use it too.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/sharded_tiling.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/format/file_reader.hpp>
#include <ckpt/detail/format/layout.hpp>
#include <ckpt/detail/io/descriptor.hpp>
#include <ckpt/detail/io/temp_names.hpp>
#include <ckpt/metadata.hpp>

#include <sys/stat.h>

namespace ckpt::detail {

inline constexpr const char* sharded_manifest_name = "manifest";
inline constexpr const char* sharded_manifest_entry = "manifest";
inline constexpr char sharded_manifest_magic[8] = {'C', 'K', 'P', 'T', 'S', 'H', 'R', 'D'};
inline constexpr std::uint32_t sharded_manifest_version = 1;

inline std::string rank_file_name(std::uint64_t rank) { return "rank-" + std::to_string(rank); }

/// How an entry was tracked. The numeric values are part of the manifest format.
enum class entry_role : std::uint8_t {
    replicated = 0,  // identical on every rank, stored once (by one rank)
    per_rank = 1,    // one copy per rank, in that rank's file
    shard = 2,       // a block of a global tensor; the pieces tile it
};

CKPT_INLINE const char* role_name(entry_role r) noexcept;

/// One stored block: an entry of one rank file.
struct manifest_piece {
    std::uint32_t file = 0;      // the rank whose file holds it
    bool column_major = false;   // element order of the block
    shape offsets;               // of the block in the global tensor (zeros unless a shard)
    shape extents;               // the block's shape
    std::uint64_t length = 0;    // bytes
    std::uint64_t checksum = 0;  // XXH3-64 of the block, as in the rank file's index
};

/// One logical entry of a sharded checkpoint.
struct manifest_entry {
    std::string path;
    entry_role role = entry_role::replicated;
    entry_kind kind = entry_kind::tensor;
    ckpt::dtype dtype = ckpt::dtype::bytes;
    shape dims;  // the global shape for a shard, the entry's shape otherwise
    std::vector<manifest_piece> pieces;
};

struct sharded_manifest {
    std::uint32_t world_size = 0;  // ranks that saved; files rank-0 .. rank-(world_size-1)
    std::vector<manifest_entry> entries;
};

inline void encode_shape(index_builder& out, const shape& s) {
    for (auto d : s) out.u64(d);
}

CKPT_INLINE std::string encode_manifest(const sharded_manifest& m);

CKPT_INLINE sharded_manifest decode_manifest(std::string_view bytes, const std::filesystem::path& file);

/// The sizes of the rank files rank-0 .. rank-(m.world_size - 1) of `dir`, after checking that
/// the manifest `m` (read from `manifest_path`) is bounded by them: every rank file is present
/// (found by listing the directory, so a world size of 4e9 costs a listing, not 4e9 of anything)
/// and a regular file, and the blocks the manifest places in each fit in it (so no length taken
/// from the manifest is allocated beyond what the files hold). corrupt_error otherwise.
CKPT_INLINE std::vector<std::uint64_t> check_rank_files(const std::filesystem::path& dir, const sharded_manifest& m,
                                                        const std::filesystem::path& manifest_path);

/// True when `dir` is a directory holding a manifest with a sound header: what directory scans
/// take for a committed sharded checkpoint (a temporary directory's name is never taken).
CKPT_INLINE bool is_sharded_checkpoint(const std::filesystem::path& dir) noexcept;
/// A piece as an error message tells it: `float32 [4,8], 128 bytes` (as its rank file's entry, or
/// as the manifest has it).
CKPT_INLINE std::string describe_piece(const entry_info& e);
CKPT_INLINE std::string describe_piece(const manifest_entry& m, const manifest_piece& p);

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE const char* role_name(entry_role r) noexcept {
    switch (r) {
        case entry_role::replicated:
            return "replicated";
        case entry_role::per_rank:
            return "per-rank";
        case entry_role::shard:
            return "shard";
    }
    return "unknown";
}

CKPT_INLINE std::string encode_manifest(const sharded_manifest& m) {
    index_builder out;
    out.append(sharded_manifest_magic, 8);
    out.u32(sharded_manifest_version);
    out.u32(m.world_size);
    out.u64(m.entries.size());
    for (const auto& e : m.entries) {
        out.text(e.path);
        out.u8(static_cast<std::uint8_t>(e.role));
        out.u8(static_cast<std::uint8_t>(e.kind));
        out.u8(static_cast<std::uint8_t>(e.dtype));
        out.u8(static_cast<std::uint8_t>(e.dims.rank()));
        encode_shape(out, e.dims);
        out.u64(e.pieces.size());
        for (const auto& p : e.pieces) {
            out.u32(p.file);
            out.u8(p.column_major ? 1 : 0);
            encode_shape(out, p.offsets);
            encode_shape(out, p.extents);
            out.u64(p.length);
            out.u64(p.checksum);
        }
    }
    return out.bytes();
}
CKPT_INLINE sharded_manifest decode_manifest(std::string_view bytes, const std::filesystem::path& file) {
    index_parser in(bytes, file);
    auto fail = [&](const std::string& what) { throw corrupt_error("sharded manifest: " + what, file); };
    if (bytes.size() < 8 || std::memcmp(bytes.data(), sharded_manifest_magic, 8) != 0)
        throw format_error("not a sharded checkpoint manifest (wrong magic bytes)", file);
    for (int i = 0; i < 8; ++i) in.u8();
    const auto version = in.u32();
    if (version != sharded_manifest_version)
        throw format_error("sharded manifest version " + std::to_string(version) +
                               " is not supported (this build reads version " +
                               std::to_string(sharded_manifest_version) + ")",
                           file);
    sharded_manifest m;
    m.world_size = in.u32();
    if (m.world_size == 0) fail("zero ranks");
    const auto count = in.u64();
    if (count > bytes.size() / 20) fail("entry count " + std::to_string(count) + " cannot fit");
    m.entries.reserve(to_size(count));
    auto read_shape = [&](std::size_t rank) {
        shape s;
        for (std::size_t i = 0; i < rank; ++i) s.push_back(in.u64());
        return s;
    };
    for (std::uint64_t i = 0; i < count; ++i) {
        manifest_entry e;
        e.path = in.text("entry path");
        if (!is_valid_entry_path(e.path)) fail("invalid entry path '" + e.path + "'");
        const auto role = in.u8(), kind = in.u8(), type = in.u8(), rank = in.u8();
        if (role > 2) fail("entry '" + e.path + "' has unknown role " + std::to_string(role));
        if (kind > static_cast<std::uint8_t>(entry_kind::mapping))
            fail("entry '" + e.path + "' has unknown kind " + std::to_string(kind));
        if (!is_valid_dtype(type)) fail("entry '" + e.path + "' has unknown dtype " + std::to_string(type));
        if (rank > shape::max_rank) fail("entry '" + e.path + "' has rank " + std::to_string(rank));
        e.role = static_cast<entry_role>(role);
        e.kind = static_cast<entry_kind>(kind);
        e.dtype = static_cast<ckpt::dtype>(type);
        e.dims = read_shape(rank);
        const auto pieces = in.u64();
        if (pieces > in.remaining() / 21 + 1)
            fail("entry '" + e.path + "' piece count " + std::to_string(pieces) + " cannot fit");
        if (e.role != entry_role::shard && pieces != 1)
            fail("entry '" + e.path + "' is not a shard and has " + std::to_string(pieces) + " pieces");
        if (e.role == entry_role::shard && (e.kind != entry_kind::tensor || rank == 0))
            fail("shard '" + e.path + "' is not a tensor of rank >= 1");
        if (e.role == entry_role::shard && !tensor_byte_length(e.dims, e.dtype))
            fail("shard '" + e.path + "': a " + dtype_name(e.dtype) + " tensor of shape " + e.dims.to_string() +
                 " has more bytes than 64 bits can count");
        std::vector<shape> lo, ext;
        std::vector<std::uint32_t> owners;
        for (std::uint64_t k = 0; k < pieces; ++k) {
            manifest_piece p;
            p.file = in.u32();
            const auto order = in.u8();
            p.offsets = read_shape(rank);
            p.extents = read_shape(rank);
            p.length = in.u64();
            p.checksum = in.u64();
            if (p.file >= m.world_size)
                fail("entry '" + e.path + "' has a piece in rank file " + std::to_string(p.file) + " of " +
                     std::to_string(m.world_size));
            if (order > 1) fail("entry '" + e.path + "' has unknown flags");
            p.column_major = order == 1;
            if (e.kind == entry_kind::tensor) {
                const auto n = tensor_byte_length(p.extents, e.dtype);
                if (!n || *n != p.length)
                    fail("entry '" + e.path + "': a piece " + p.extents.to_string() +
                         " does not agree with its length " + std::to_string(p.length));
            }
            if (e.role != entry_role::shard && p.extents != e.dims)
                fail("entry '" + e.path + "': its piece's shape differs from the entry's");
            lo.push_back(p.offsets);
            ext.push_back(p.extents);
            owners.push_back(p.file);
            e.pieces.push_back(std::move(p));
        }
        if (e.role == entry_role::shard)
            if (auto why = tiling_problem(e.dims, lo, ext, owners); !why.empty())
                fail("shard '" + e.path + "': " + why);
        m.entries.push_back(std::move(e));
    }
    if (in.remaining() != 0) fail(std::to_string(in.remaining()) + " unexpected bytes at the end");
    return m;
}

CKPT_INLINE bool is_sharded_checkpoint(const std::filesystem::path& dir) noexcept {
    std::error_code ec;
    if (is_temp_name(dir) || !std::filesystem::is_directory(dir, ec)) return false;
    return peek_header(dir / sharded_manifest_name).has_value();
}

CKPT_INLINE std::vector<std::uint64_t> check_rank_files(const std::filesystem::path& dir, const sharded_manifest& m,
                                                        const std::filesystem::path& manifest_path) {
    auto fail = [&](const std::string& what) { throw corrupt_error("sharded manifest: " + what, manifest_path); };
    // The ranks whose files the directory holds, each name as the writer spells it ("rank-7").
    std::vector<std::uint32_t> present;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.size() < 6 || name.size() > 15 || name.compare(0, 5, "rank-") != 0) continue;
        std::uint64_t r = 0;
        bool digits = name[5] != '0' || name.size() == 6;
        for (std::size_t k = 5; k < name.size() && digits; ++k) {
            digits = name[k] >= '0' && name[k] <= '9';
            r = r * 10 + static_cast<std::uint64_t>(name[k] - '0');
        }
        if (digits && r < m.world_size) present.push_back(static_cast<std::uint32_t>(r));
    }
    if (ec) throw io_error("cannot list the sharded checkpoint", dir, ec);
    if (present.size() < m.world_size) {
        std::sort(present.begin(), present.end());
        std::uint32_t missing = 0;
        while (missing < present.size() && present[missing] == missing) ++missing;
        fail("saved by " + std::to_string(m.world_size) + " ranks, but the directory holds " +
             std::to_string(present.size()) + " of their files (" + rank_file_name(missing) + " is missing)");
    }
    // Now world_size is bounded by the directory's entries.
    std::vector<std::uint64_t> size(m.world_size), claimed(m.world_size);
    for (std::uint32_t r = 0; r < m.world_size; ++r) {
        const auto path = dir / rank_file_name(r);
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) throw io_error("cannot stat", path, last_error());
        if (!S_ISREG(st.st_mode))
            throw corrupt_error(std::string("is ") + special_file_kind(st.st_mode) + ", not a rank file", path);
        size[r] = static_cast<std::uint64_t>(st.st_size);
    }
    // Blocks of one file never share bytes: their lengths add up to at most the file's size.
    for (const auto& e : m.entries)
        for (const auto& p : e.pieces) {
            if (p.length > size[p.file] - claimed[p.file])
                fail("entry '" + e.path + "' has a block of " + std::to_string(p.length) + " bytes in " +
                     rank_file_name(p.file) + ", which holds " + std::to_string(size[p.file]) + " bytes" +
                     (claimed[p.file] ? " (" + std::to_string(claimed[p.file]) + " of them for other blocks)" : ""));
            claimed[p.file] += p.length;
        }
    return size;
}

CKPT_INLINE std::string describe_piece(const entry_info& e) {
    return std::string(dtype_name(e.dtype)) + " " + e.shape.to_string() + ", " + std::to_string(e.length) + " bytes";
}

CKPT_INLINE std::string describe_piece(const manifest_entry& m, const manifest_piece& p) {
    return std::string(dtype_name(m.dtype)) + " " + p.extents.to_string() + ", " + std::to_string(p.length) + " bytes";
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
