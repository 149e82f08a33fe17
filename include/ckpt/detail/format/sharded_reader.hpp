#pragma once
// sharded_reader: a sharded checkpoint directory (see sharded_manifest.hpp) read as one source for
// basic_restore_walker (find, index_of, entries, path, read_block) over its logical entries:
// replicated entries, shards as global tensors assembled from their pieces, and the per-rank
// entries of one chosen rank. Needs no MPI: the tool, the reader and single-process programs use
// it too.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/bool_bytes.hpp>
#include <ckpt/detail/format/byte_range.hpp>
#include <ckpt/detail/format/sharded_manifest.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/format/file_reader.hpp>
#include <ckpt/detail/format/read_buffer.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt::detail {

/// Reads bytes [byte_offset, byte_offset + byte_count) of a piece's block, checked: the format's
/// read_range reads and verifies only the chunks that cover the range (a version 1 file: the whole
/// block). The range comes from the manifest, which is data: outside the block it is corrupt.
CKPT_INLINE void read_range(file_reader& f, const entry_info& e, std::uint64_t byte_offset, std::uint64_t byte_count,
                            void* dest);

/// A sharded checkpoint directory. `rank_view`: whose per-rank entries entries() shows (none: no
/// per-rank entries).
class sharded_reader {
public:
    explicit sharded_reader(std::filesystem::path dir, std::optional<std::uint32_t> rank_view = std::nullopt);

    /// Shows the per-rank entries of rank `r` in entries() (none: no per-rank entries).
    void view_rank(std::optional<std::uint32_t> rank_view);

    const std::filesystem::path& path() const noexcept { return dir_; }
    const ckpt::metadata& metadata() const noexcept { return manifest_file_.metadata(); }
    const sharded_manifest& manifest() const noexcept { return manifest_; }
    std::uint32_t world_size() const noexcept { return manifest_.world_size; }
    /// Logical entries: replicated, shards (global shape, row-major), per-rank of the viewed rank.
    const std::vector<entry_info>& entries() const noexcept { return entries_; }
    const entry_info* find(std::string_view path) const;
    std::size_t index_of(const entry_info& e) const noexcept { return to_size(&e - entries_.data()); }
    /// The manifest entry of a logical entry: one of entries(), or a copy of one (found by path).
    const manifest_entry& logical(const entry_info& e) const;

    /// The file of rank `r`, opened on first use.
    file_reader& file(std::uint32_t r);

    /// The entry of a piece in its rank file, checked against what the manifest says of it.
    const entry_info& piece_entry(const manifest_entry& m, const manifest_piece& p);

    void read_block(const entry_info& e, void* dest);
    std::string read_block(const entry_info& e);
    /// Bytes [offset, offset + count) of a logical entry (a shard: of its row-major global tensor),
    /// reading only the pieces and chunks the range covers.
    void read_range(const entry_info& e, std::uint64_t offset, std::uint64_t count, void* dest);
    /// Reads and checks every piece of a logical entry without keeping its bytes.
    void verify_block(const entry_info& e) { verify_entry(logical(e)); }
    void verify_entry(const manifest_entry& m) {
        for (const auto& p : m.pieces) file(p.file).verify_block(piece_entry(m, p));
    }
    /// Every piece of every entry, and every rank file whole (a file's own entries included).
    void verify_all();

    /// Copies the box [lo, lo + ext) of a shard's global tensor into `dest`, laid out as a tensor of
    /// shape `ext` in row- or column-major order, reading of each overlapping piece only the chunks
    /// that cover the overlap, checked. An overlap that is one contiguous run in both the piece and
    /// `dest` (a split by rows, the same storage order) is read straight into `dest`: no buffer, no
    /// second copy. Any other goes through a bounded buffer reused from call to call, a window of
    /// whole chunks at a time (a fresh full-size buffer costs a page fault per 4 KiB, which on our
    /// machines took longer than the read). With `dest` nullptr the box is only checked: every chunk
    /// that covers it is read and checked, nothing kept (a box verified before it is landed).
    void read_box(const manifest_entry& m, const shape& lo, const shape& ext, bool column_major, void* dest);

private:
    // Bytes of the window a non-contiguous overlap is read through (whole chunks: a chunk read by
    // two windows would be read and hashed twice).
    static constexpr std::uint64_t window_bytes = std::uint64_t{1} << 20;

    // The overlap [ilo, ilo + iext) of piece `p` (block entry `e` of file `f`), whose elements span
    // [first, end) of the piece, into `out` (strides `dst_stride` from `lo`): runs along the
    // piece's fastest dimension, taken in the piece's order, so that windows of the span are read
    // once each, in order; a window holding no element of the overlap is skipped.
    void copy_runs(file_reader& f, const entry_info& e, const manifest_piece& p, const shape& ilo, const shape& iext,
                   const shape& lo, const std::uint64_t* dst_stride, std::uint64_t elem, std::uint64_t first,
                   std::uint64_t end, char* out);

    // The reusable buffer of copy_runs, 64-byte aligned (a read in step with the file goes
    // straight into it).
    char* scratch(std::size_t size);

    static shape shape_zeros(std::size_t rank);

    std::filesystem::path dir_;
    file_reader manifest_file_;
    sharded_manifest manifest_;
    std::vector<entry_info> entries_;
    std::vector<std::size_t> logical_;  // entries_[i] is manifest_.entries[logical_[i]]
    std::unordered_map<std::string, std::size_t> lookup_;
    std::vector<std::unique_ptr<file_reader>> files_;
    std::unique_ptr<char[]> scratch_;
    std::size_t scratch_size_ = 0;
    read_buffer verify_buffer_;  // of read_box without a destination
};

}  // namespace ckpt::detail
// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void read_range(file_reader& f, const entry_info& e, std::uint64_t byte_offset, std::uint64_t byte_count,
                            void* dest) {
    if (!range_within(byte_offset, byte_count, e.length))
        throw corrupt_error("range [" + std::to_string(byte_offset) + ", +" + std::to_string(byte_count) +
                                ") lies outside the block of " + std::to_string(e.length) + " bytes",
                            f.path(), e.path);
    f.read_range(e, byte_offset, byte_count, dest);
}

CKPT_INLINE sharded_reader::sharded_reader(std::filesystem::path dir, std::optional<std::uint32_t> rank_view)
    : dir_(std::move(dir)), manifest_file_(dir_ / sharded_manifest_name) {
    const entry_info* e = manifest_file_.find(sharded_manifest_entry);
    if (!e || e->kind != entry_kind::tensor || e->dtype != ckpt::dtype::uint8)
        throw format_error("no sharded manifest entry in the manifest file", manifest_file_.path());
    manifest_ = decode_manifest(manifest_file_.read_block(*e), manifest_file_.path());
    // Before anything is sized by the manifest's world size or lengths (see check_rank_files).
    files_.resize(check_rank_files(dir_, manifest_, manifest_file_.path()).size());
    view_rank(rank_view);
}

CKPT_INLINE void sharded_reader::view_rank(std::optional<std::uint32_t> rank_view) {
    if (rank_view && *rank_view >= manifest_.world_size)
        throw error("rank " + std::to_string(*rank_view) + " does not exist: the checkpoint was saved by " +
                        std::to_string(manifest_.world_size) + " ranks",
                    dir_);
    entries_.clear();
    logical_.clear();
    lookup_.clear();
    for (std::size_t i = 0; i < manifest_.entries.size(); ++i) {
        const auto& m = manifest_.entries[i];
        if (m.role == entry_role::per_rank && (!rank_view || m.pieces[0].file != *rank_view)) continue;
        entry_info e2;
        e2.path = m.path;
        e2.kind = m.kind;
        e2.dtype = m.dtype;
        e2.shape = m.dims;
        if (m.role == entry_role::shard) {
            e2.length = *tensor_byte_length(m.dims, m.dtype);  // checked by decode_manifest
        } else {
            e2.column_major = m.pieces[0].column_major;
            e2.length = m.pieces[0].length;
            e2.checksum = m.pieces[0].checksum;
        }
        if (!lookup_.emplace(e2.path, entries_.size()).second)
            throw corrupt_error("sharded manifest: duplicate entry path '" + e2.path + "'", manifest_file_.path());
        entries_.push_back(std::move(e2));
        logical_.push_back(i);
    }
}

CKPT_INLINE const entry_info* sharded_reader::find(std::string_view path) const {
    auto it = lookup_.find(std::string(path));
    return it == lookup_.end() ? nullptr : &entries_[it->second];
}

CKPT_INLINE const manifest_entry& sharded_reader::logical(const entry_info& e) const {
    const entry_info* p = &e;
    const std::less<const entry_info*> before;
    if (before(p, entries_.data()) || !before(p, entries_.data() + entries_.size())) {
        p = find(e.path);
        if (!p) throw error("no entry '" + e.path + "' in this view of the sharded checkpoint", dir_, e.path);
    }
    return manifest_.entries[logical_[index_of(*p)]];
}

CKPT_INLINE file_reader& sharded_reader::file(std::uint32_t r) {
    if (!files_[r]) files_[r] = std::make_unique<file_reader>(dir_ / rank_file_name(r));
    return *files_[r];
}

CKPT_INLINE const entry_info& sharded_reader::piece_entry(const manifest_entry& m, const manifest_piece& p) {
    file_reader& f = file(p.file);
    const entry_info* e = f.find(m.path);
    if (!e) throw corrupt_error("the manifest lists a piece that the file lacks", f.path(), m.path);
    if (e->kind != m.kind || e->dtype != m.dtype || e->shape != p.extents || e->length != p.length ||
        e->checksum != p.checksum || (e->column_major != p.column_major && e->shape.rank() > 1))
        throw corrupt_error("the piece in this file does not match the manifest (" + describe_piece(*e) +
                                " in the file, " + describe_piece(m, p) + " in the manifest)",
                            f.path(), m.path);
    return *e;
}

CKPT_INLINE void sharded_reader::read_block(const entry_info& e, void* dest) {
    const manifest_entry& m = logical(e);
    if (m.role == entry_role::shard) return read_box(m, shape_zeros(m.dims.rank()), m.dims, false, dest);
    const manifest_piece& p = m.pieces[0];
    file(p.file).read_block(piece_entry(m, p), dest);
}

CKPT_INLINE std::string sharded_reader::read_block(const entry_info& e) {
    std::string s(to_size(e.length), '\0');
    read_block(e, s.data());
    return s;
}

CKPT_INLINE void sharded_reader::read_range(const entry_info& e, std::uint64_t offset, std::uint64_t count,
                                            void* dest) {
    if (!range_within(offset, count, e.length))
        throw error("range [" + std::to_string(offset) + ", +" + std::to_string(count) +
                        ") lies outside the block of " + std::to_string(e.length) + " bytes",
                    dir_, e.path);
    const manifest_entry& m = logical(e);
    if (m.role != entry_role::shard) {
        const manifest_piece& p = m.pieces[0];
        return detail::read_range(file(p.file), piece_entry(m, p), offset, count, dest);
    }
    const std::size_t rank = m.dims.rank();
    const std::uint64_t elem = dtype_size(m.dtype);
    if (count == 0) return;
    if (offset % elem != 0 || count % elem != 0 || rank == 0) {
        // Not whole elements: through a buffer of the covering elements.
        const std::uint64_t first = offset / elem, last = (offset + count - 1) / elem;
        std::vector<char> buffer(to_size((last - first + 1) * elem));
        read_range(e, first * elem, (last - first + 1) * elem, buffer.data());
        std::memcpy(dest, buffer.data() + (offset - first * elem), to_size(count));
        return;
    }
    // Runs along the last dimension, each a box of one row piece.
    std::uint64_t index = offset / elem;
    const std::uint64_t end = (offset + count) / elem;
    char* out = static_cast<char*>(dest);
    while (index < end) {
        shape lo, ext;
        std::uint64_t rest = index;
        std::uint64_t coords[shape::max_rank] = {};
        for (std::size_t d = rank; d-- > 0;) {
            coords[d] = rest % m.dims[d];
            rest /= m.dims[d];
        }
        const std::uint64_t run = std::min(end - index, m.dims[rank - 1] - coords[rank - 1]);
        for (std::size_t d = 0; d < rank; ++d) {
            lo.push_back(coords[d]);
            ext.push_back(d + 1 == rank ? run : 1);
        }
        read_box(m, lo, ext, false, out);
        out += run * elem;
        index += run;
    }
}

CKPT_INLINE void sharded_reader::verify_all() {
    for (const auto& m : manifest_.entries) verify_entry(m);
    for (std::uint32_t r = 0; r < manifest_.world_size; ++r) file(r).verify();
    manifest_file_.verify();
}

CKPT_INLINE void sharded_reader::read_box(const manifest_entry& m, const shape& lo, const shape& ext, bool column_major,
                                          void* dest) {
    const std::size_t rank = m.dims.rank(), elem = dtype_size(m.dtype);
    const bool dst_cm = column_major && rank > 1;
    std::uint64_t dst_stride[shape::max_rank] = {};
    box_strides(ext, dst_cm, dst_stride);
    char* const out = static_cast<char*>(dest);
    for (const auto& p : m.pieces) {
        shape ilo, iext;
        bool empty = false;
        std::size_t spread = 0;  // dimensions of the overlap longer than 1
        for (std::size_t d = 0; d < rank; ++d) {
            const std::uint64_t a = std::max(lo[d], p.offsets[d]),
                                b = std::min(lo[d] + ext[d], p.offsets[d] + p.extents[d]);
            if (a >= b) empty = true;
            ilo.push_back(a);
            iext.push_back(a < b ? b - a : 0);
            if (b > a + 1) ++spread;
        }
        if (empty) continue;
        const bool src_cm = p.column_major && rank > 1;
        std::uint64_t src_stride[shape::max_rank] = {};
        box_strides(p.extents, src_cm, src_stride);
        // Element offsets of the overlap's first and last elements in the piece and in `dest`.
        std::uint64_t first = 0, last = 0, to_first = 0, to_last = 0;
        for (std::size_t d = 0; d < rank; ++d) {
            first += (ilo[d] - p.offsets[d]) * src_stride[d];
            last += (ilo[d] + iext[d] - 1 - p.offsets[d]) * src_stride[d];
            to_first += (ilo[d] - lo[d]) * dst_stride[d];
            to_last += (ilo[d] + iext[d] - 1 - lo[d]) * dst_stride[d];
        }
        const std::uint64_t n = iext.elements();
        file_reader& f = file(p.file);
        const entry_info& e = piece_entry(m, p);
        if (!out) {  // checked only: the chunks from the overlap's first element to its last
            const std::uint64_t unit = f.part_size(e), lo_byte = first * elem, hi_byte = (last + 1) * elem;
            f.read_part(e, unit ? lo_byte / unit * unit : 0,
                        unit ? std::min((hi_byte + unit - 1) / unit * unit, e.length) : e.length, nullptr,
                        verify_buffer_);
            continue;
        }
        // Both spans hold exactly the overlap's elements, each in its own storage order; the
        // orders agree when they are the same or at most one dimension is longer than 1.
        if (last - first + 1 == n && to_last - to_first + 1 == n && (src_cm == dst_cm || spread <= 1)) {
            detail::read_range(f, e, first * elem, n * elem, out + to_first * elem);
            continue;
        }
        copy_runs(f, e, p, ilo, iext, lo, dst_stride, elem, first, last + 1, out);
    }
    if (dest && m.dtype == ckpt::dtype::boolean) check_bool_bytes(dest, ext.elements(), dir_, m.path);
}

CKPT_INLINE void sharded_reader::copy_runs(file_reader& f, const entry_info& e, const manifest_piece& p,
                                           const shape& ilo, const shape& iext, const shape& lo,
                                           const std::uint64_t* dst_stride, std::uint64_t elem, std::uint64_t first,
                                           std::uint64_t end, char* out) {
    const std::size_t rank = iext.rank();
    const bool src_cm = p.column_major && rank > 1;
    std::uint64_t src_stride[shape::max_rank] = {};
    box_strides(p.extents, src_cm, src_stride);
    const std::size_t fast = src_cm ? 0 : rank - 1;
    const std::uint64_t run = iext[fast];
    // A block checked as one (not chunked) is read whole by any range: one window then.
    const bool chunked = f.chunk_size() != 0 && e.length > f.chunk_size();
    const std::uint64_t window =
        chunked ? std::max<std::uint64_t>(1, std::max(f.chunk_size(), window_bytes) / elem) : end - first;
    char* const buffer = scratch(to_size(window * elem));
    std::uint64_t index[shape::max_rank] = {};
    std::uint64_t done = 0;  // elements of the current run already copied
    // The next coordinates in the piece's order (its fastest dimension excluded); false at the end.
    auto advance = [&] {
        for (std::size_t k = 0; k + 1 < rank; ++k) {
            const std::size_t d = src_cm ? k + 1 : rank - 2 - k;
            if (++index[d] < iext[d]) return true;
            index[d] = 0;
        }
        return false;
    };
    // The element offset of the current run's first element, in the piece or in `out`.
    auto start_of = [&](const std::uint64_t* stride, const shape& base) {
        std::uint64_t s = 0;
        for (std::size_t d = 0; d < rank; ++d) s += (ilo[d] + index[d] - base[d]) * stride[d];
        return s;
    };
    bool more = true;
    for (std::uint64_t at = first; more && at < end;) {
        const std::uint64_t stop = chunked ? std::min(end, (at / window + 1) * window) : end;
        detail::read_range(f, e, at * elem, (stop - at) * elem, buffer);
        while (more) {
            const std::uint64_t s = start_of(src_stride, p.offsets) + done;
            if (s >= stop) {
                // The next run begins in a later window: skip the windows in between.
                at = std::max(stop, chunked ? s / window * window : stop);
                break;
            }
            const std::uint64_t k = std::min(run - done, stop - s);
            const char* from = buffer + (s - at) * elem;
            char* to = out + (start_of(dst_stride, lo) + done * dst_stride[fast]) * elem;
            if (dst_stride[fast] == 1)
                std::memcpy(to, from, to_size(k * elem));
            else
                for (std::uint64_t i = 0; i < k; ++i)
                    std::memcpy(to + i * dst_stride[fast] * elem, from + i * elem, to_size(elem));
            done += k;
            if (done == run) {
                done = 0;
                more = advance();
            }
        }
    }
}

CKPT_INLINE char* sharded_reader::scratch(std::size_t size) {
    if (scratch_size_ < size) {
        scratch_.reset();
        scratch_.reset(new char[size + 64]);
        scratch_size_ = size;
    }
    const auto at = reinterpret_cast<std::uintptr_t>(scratch_.get());
    return scratch_.get() + ((64 - at % 64) % 64);
}

CKPT_INLINE shape sharded_reader::shape_zeros(std::size_t rank) {
    shape s;
    for (std::size_t i = 0; i < rank; ++i) s.push_back(0);
    return s;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
