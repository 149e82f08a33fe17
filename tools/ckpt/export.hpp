#pragma once
// Exports of a checkpoint's tensors for Python: numpy's .npz (a ZIP of .npy files, stored
// uncompressed, ZIP64 when sizes or offsets need it) and safetensors (8-byte header length, JSON
// header, row-major data). Both are written under a temporary name and renamed into place, and
// both stream: each tensor goes from the checkpoint to the output in chunks, so memory stays near
// a few MiB whatever the tensors' sizes.
//
// Names. A member (npz) or key (safetensors) is the entry path, with every byte that is not
// printable UTF-8 (control characters, invalid sequences) percent-escaped as %XX, the escape ckpt
// already uses for '%' and '/' in map keys: urllib.parse.unquote_to_bytes(segment) gives a map
// key's bytes back. Names the reference readers still cannot open are refused with a message
// naming the entry (leave them out with --exclude): two entries with one exported name, an npz
// member with a path segment over 255 bytes or over 4095 bytes in all (unzip, file systems), a
// safetensors tensor named __metadata__ (the header's own key).
//
// bfloat16 has no numpy dtype: in npz it is the structured dtype [('bfloat16', '<u2')], the raw
// bits marked by the field name. In PyTorch: torch.from_numpy(a.view(np.int16)).view(torch.bfloat16).

#include <ckpt/ckpt.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common.hpp"

namespace ckpt::tool {

/// One tensor to export: its entry and the name it gets in the output.
struct export_item {
    const entry_info* entry;
    std::string name;
};

namespace detail {

inline std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t size) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    crc = ~crc;
    for (std::size_t i = 0; i < size; ++i)
        crc = table[(crc ^ static_cast<const unsigned char*>(data)[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/// numpy's descr for a dtype; bfloat16, which numpy lacks, is its raw bits in a field named so.
inline const char* numpy_descr(ckpt::dtype t) {
    switch (t) {
        case dtype::boolean:
            return "'|b1'";
        case dtype::int8:
            return "'|i1'";
        case dtype::int16:
            return "'<i2'";
        case dtype::int32:
            return "'<i4'";
        case dtype::int64:
            return "'<i8'";
        case dtype::uint8:
            return "'|u1'";
        case dtype::uint16:
            return "'<u2'";
        case dtype::uint32:
            return "'<u4'";
        case dtype::uint64:
            return "'<u8'";
        case dtype::float16:
            return "'<f2'";
        case dtype::bfloat16:
            return "[('bfloat16', '<u2')]";
        case dtype::float32:
            return "'<f4'";
        case dtype::float64:
            return "'<f8'";
        case dtype::complex64:
            return "'<c8'";
        case dtype::complex128:
            return "'<c16'";
        case dtype::bytes:
            return "'|u1'";
    }
    return "'|u1'";
}

/// safetensors' dtype name, or nullptr when it has none (complex numbers).
inline const char* safetensors_dtype(ckpt::dtype t) {
    switch (t) {
        case dtype::boolean:
            return "BOOL";
        case dtype::int8:
            return "I8";
        case dtype::int16:
            return "I16";
        case dtype::int32:
            return "I32";
        case dtype::int64:
            return "I64";
        case dtype::uint8:
            return "U8";
        case dtype::uint16:
            return "U16";
        case dtype::uint32:
            return "U32";
        case dtype::uint64:
            return "U64";
        case dtype::float16:
            return "F16";
        case dtype::bfloat16:
            return "BF16";
        case dtype::float32:
            return "F32";
        case dtype::float64:
            return "F64";
        default:
            return nullptr;
    }
}

inline std::string npy_header(const entry_info& e) {
    std::string dict = std::string("{'descr': ") + numpy_descr(e.dtype) +
                       ", 'fortran_order': " + (e.column_major && e.shape.rank() > 1 ? "True" : "False") +
                       ", 'shape': (";
    for (std::size_t i = 0; i < e.shape.rank(); ++i)
        dict += std::to_string(e.shape[i]) + (e.shape.rank() == 1 || i + 1 < e.shape.rank() ? ", " : "");
    if (e.shape.rank() == 1) dict.resize(dict.size() - 1);  // "(3,)"
    dict += "), }";
    // Version 1.0 has a 2-byte header length; 2.0 a 4-byte one. Total header a multiple of 64.
    const bool v2 = dict.size() + 1 + 10 > 65535;
    const std::size_t prefix = v2 ? 12 : 10;
    const std::size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
    dict.append(total - prefix - dict.size() - 1, ' ');
    dict += '\n';
    std::string h = "\x93NUMPY";
    h += static_cast<char>(v2 ? 2 : 1);
    h += '\0';
    const auto len = static_cast<std::uint32_t>(dict.size());
    h += static_cast<char>(len & 0xff);
    h += static_cast<char>((len >> 8) & 0xff);
    if (v2) {
        h += static_cast<char>((len >> 16) & 0xff);
        h += static_cast<char>((len >> 24) & 0xff);
    }
    return h + dict;
}

template <class T>
void put_le(std::string& out, T v) {
    for (std::size_t i = 0; i < sizeof(T); ++i)
        out += static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
}

/// Writes through a ckpt::atomic_output at a running offset, by pwrite, so that a region can be reserved
/// and filled out of order (transposed tensors) or patched later (an npz member's CRC).
class output {
public:
    explicit output(const std::filesystem::path& path) : file_(path) {}
    void write(std::string_view bytes) {
        write_at(offset_, bytes.data(), bytes.size());
        offset_ += bytes.size();
    }
    void write_at(std::uint64_t at, const void* data, std::size_t n) { file_.write_at(at, data, n); }
    /// Reserves `n` bytes at the current offset for write_at.
    std::uint64_t reserve(std::uint64_t n) { return std::exchange(offset_, offset_ + n); }
    std::uint64_t offset() const { return offset_; }
    void commit() { file_.commit(); }

private:
    ckpt::atomic_output file_;
    std::uint64_t offset_ = 0;
};

/// Reads tensor blocks of the checkpoint in chunks: a file's through a stream of its own, a
/// sharded checkpoint's through the reader, which assembles them from the ranks' pieces.
class block_source {
public:
    static constexpr std::size_t chunk = 1 << 20;

    explicit block_source(ckpt::reader& r)
        : reader_(r), path_(r.path()), file_(r.sharded() ? nullptr : std::fopen(path_.c_str(), "rb")), buffer_(chunk) {
        if (!file_ && !r.sharded())
            throw ckpt::io_error("cannot open", path_, std::error_code(errno, std::generic_category()));
    }
    block_source(const block_source&) = delete;
    block_source& operator=(const block_source&) = delete;
    ~block_source() {
        if (file_) std::fclose(file_);
    }

    /// The block in order, chunk by chunk, to `sink(data, size)`, every byte checked before the
    /// sink sees it: a damaged block throws corrupt_error, and the output is never committed.
    template <class Sink>
    void stream(const entry_info& e, Sink&& sink) {
        // Each range checked against the chunks it covers as it is read, so every byte is read once:
        // a sharded checkpoint, or a file whose checksum chunks our reads cover whole.
        if (!file_ || (reader_.chunk_size() && chunk % reader_.chunk_size() == 0)) {
            for (std::uint64_t done = 0; done < e.length;) {
                const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, e.length - done));
                reader_.read_range(e, done, n, buffer_.data());
                sink(buffer_.data(), n);
                done += n;
            }
            return;
        }
        reader_.verify(e);  // a version 1 file: the whole block checked first, then read
        for (std::uint64_t done = 0; done < e.length;) {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, e.length - done));
            read(e, done, buffer_.data(), n);
            sink(buffer_.data(), n);
            done += n;
        }
    }
    /// `n` bytes at `at` within the block, unchecked (the caller verified the block first).
    void read(const entry_info& e, std::uint64_t at, void* into, std::size_t n) {
        if (!file_) return reader_.read_range(e, at, n, into);
        if (::fseeko(file_, static_cast<off_t>(e.offset + at), SEEK_SET) != 0)
            throw ckpt::io_error("cannot read", path_, std::error_code(errno, std::generic_category()));
        if (std::fread(into, 1, n, file_) != n) {
            if (std::ferror(file_))
                throw ckpt::io_error("cannot read", path_, std::error_code(errno, std::generic_category()));
            throw corrupt_error("file ended early at byte " + std::to_string(e.offset + at), path_);
        }
    }

private:
    ckpt::reader& reader_;
    std::filesystem::path path_;
    std::FILE* file_;
    std::vector<char> buffer_;
};

/// A column-major block written row-major into out[base, base + e.length), tile by tile, reading
/// only a tile (about 1 MiB) at a time. All axes but the last fuse into one, "a", contiguous in the
/// source: the source is an a-by-last column-major matrix. In the output each a is a contiguous
/// row of `last` elements, at the row-major rank of a's indices. A tile is read one contiguous run
/// per column (one run in all when a tile spans every a), transposed, and written a row at a time.
/// `first`, `second`: scratch buffers, kept from one tensor to the next (fewer allocations).
inline void write_transposed(block_source& in, const entry_info& e, output& out, std::uint64_t base,
                             std::vector<char>& first_buffer, std::vector<char>& second_buffer) {
    const std::size_t rank = e.shape.rank(), esize = dtype_size(e.dtype);
    const std::uint64_t last = e.shape[rank - 1], n = e.shape.elements();
    if (n == 0) return;
    // A short last axis makes short output rows, scattered when rank > 2: write bands of axis 0
    // instead, contiguous in the output, when a band of at least 16 indices fits in a tile.
    const std::uint64_t slice = n / e.shape[0], band = (block_source::chunk / esize) / slice;
    if (rank > 2 && last * esize < 4096 && band >= 16) {
        std::vector<char>& source = first_buffer;
        std::vector<char>& ordered = second_buffer;
        source.resize(std::max(source.size(), static_cast<std::size_t>(band * slice * esize)));
        ordered.resize(source.size());
        for (std::uint64_t first = 0; first < e.shape[0]; first += band) {
            ckpt::shape part = e.shape;
            part[0] = std::min(band, e.shape[0] - first);
            // Column-major, the band is part[0] contiguous elements for each index of the other axes.
            for (std::uint64_t rest = 0; rest < slice; ++rest)
                in.read(e, (first + rest * e.shape[0]) * esize, source.data() + rest * part[0] * esize,
                        static_cast<std::size_t>(part[0] * esize));
            ckpt::convert_element_order(source.data(), ordered.data(), part, esize, true);
            out.write_at(base + first * slice * esize, ordered.data(),
                         static_cast<std::size_t>(part[0] * slice * esize));
        }
        return;
    }
    const std::uint64_t fused = n / last;
    // The output row of fused index a: a's indices (column-major, axis 0 fastest) ranked row-major.
    auto output_row = [&](std::uint64_t a) {
        std::uint64_t index[shape::max_rank];
        for (std::size_t k = 0; k + 1 < rank; ++k) {
            index[k] = a % e.shape[k];
            a /= e.shape[k];
        }
        std::uint64_t row = 0;
        for (std::size_t k = 0; k + 1 < rank; ++k) row = row * e.shape[k] + index[k];
        return row;
    };
    const std::uint64_t rows = std::min<std::uint64_t>(fused, 512);
    const std::uint64_t cols =
        std::min<std::uint64_t>(last, std::max<std::uint64_t>(1, (block_source::chunk / esize) / rows));
    std::vector<char>& tile = first_buffer;
    std::vector<char>& transposed = second_buffer;
    tile.resize(std::max(tile.size(), static_cast<std::size_t>(rows * cols * esize)));
    transposed.resize(tile.size());
    for (std::uint64_t r0 = 0; r0 < fused; r0 += rows) {
        const std::uint64_t nr = std::min(rows, fused - r0);
        for (std::uint64_t c0 = 0; c0 < last; c0 += cols) {
            const std::uint64_t nc = std::min(cols, last - c0);
            // tile[j][i] = element (r0 + i, c0 + j)
            if (nr == fused) {
                in.read(e, c0 * fused * esize, tile.data(), static_cast<std::size_t>(nr * nc * esize));
            } else {
                for (std::uint64_t j = 0; j < nc; ++j)
                    in.read(e, (r0 + (c0 + j) * fused) * esize, tile.data() + j * nr * esize,
                            static_cast<std::size_t>(nr * esize));
            }
            for (std::uint64_t i = 0; i < nr; ++i)
                for (std::uint64_t j = 0; j < nc; ++j)
                    std::memcpy(transposed.data() + (i * nc + j) * esize, tile.data() + (j * nr + i) * esize, esize);
            for (std::uint64_t i = 0; i < nr;) {  // rows whose output rows are adjacent go in one write
                const std::uint64_t row = output_row(r0 + i);
                std::uint64_t k = 1;
                if (nc == last)
                    while (i + k < nr && output_row(r0 + i + k) == row + k) ++k;
                out.write_at(base + (row * last + c0) * esize, transposed.data() + i * nc * esize,
                             static_cast<std::size_t>(k * nc * esize));
                i += k;
            }
        }
    }
}

}  // namespace detail

/// The name an entry path gets in an export (see the top of this file). `export_name("m/a\x01") == "m/a%01"`
inline std::string export_name(std::string_view path) {
    std::string out;
    for (std::size_t i = 0; i < path.size();) {
        const std::size_t n = utf8_sequence(path, i);
        const auto c = static_cast<unsigned char>(path[i]);
        if (n == 0 || c < 0x20 || c == 0x7f || is_c1_control(path, i)) {
            for (std::size_t k = 0; k < (n ? n : 1); ++k) {
                char b[4];
                std::snprintf(b, sizeof b, "%%%02X", static_cast<unsigned char>(path[i + k]));
                out += b;
            }
            i += n ? n : 1;
        } else {
            out.append(path.substr(i, n));
            i += n;
        }
    }
    return out;
}

enum class export_format { npz, safetensors };

/// The names tensors get: entry paths as they are (`paths`), or with '.' between path segments as
/// in a PyTorch state_dict (`dotted`: "model/fc1/weight" becomes "model.fc1.weight"), the names
/// `ckpt import` and the library's default name_map turn back into the same paths.
enum class export_names { paths, dotted };

/// The tensors an export writes, chosen by `filter`, with their names; everything left out is
/// told in `notes`. Throws ckpt::error naming the entry when a name cannot be written (see top).
inline std::vector<export_item> plan_export(const ckpt::reader& r, const path_filter& filter, export_format format,
                                            std::vector<std::string>& notes,
                                            export_names naming = export_names::paths) {
    std::vector<export_item> items;
    std::map<std::string, std::string> taken;  // exported name -> entry path
    for (const auto& e : r.entries()) {
        if (!filter.keeps(e.path)) continue;
        if (e.kind != entry_kind::tensor) {
            if (e.kind != entry_kind::sequence && e.kind != entry_kind::mapping)
                notes.push_back("skipped " + printable(e.path) + " (" + entry_kind_name(e.kind) + ", not a tensor)");
            continue;
        }
        if (format == export_format::safetensors && !detail::safetensors_dtype(e.dtype)) {
            notes.push_back("skipped " + printable(e.path) + " (" + dtype_name(e.dtype) +
                            ": safetensors has no such dtype)");
            continue;
        }
        std::string name = export_name(e.path);
        auto refuse = [&](const std::string& why) {
            throw ckpt::error("cannot be exported: " + why + "; leave it out with --exclude", r.path(), e.path);
        };
        if (naming == export_names::dotted) {
            // A '.' inside a segment (a map key "v1.2") would come back as two segments: refused,
            // so that export and import stay each other's inverse.
            if (name.find('.') != std::string::npos)
                refuse(
                    "a path segment holds a '.', which the way back (ckpt import) would read as two segments; "
                    "export with --names paths");
            std::replace(name.begin(), name.end(), '/', '.');
        }
        if (format == export_format::safetensors && name == "__metadata__")
            refuse("safetensors keeps its metadata under the key __metadata__");
        if (format == export_format::npz) {
            const std::string member = name + ".npy";
            std::size_t longest = 0;
            for (std::size_t begin = 0; begin <= member.size();) {
                const std::size_t end = std::min(member.find('/', begin), member.size());
                longest = std::max(longest, end - begin);
                begin = end + 1;
            }
            if (longest > 255)
                refuse("its npz member name has a path segment of " + std::to_string(longest) +
                       " bytes (unzip and file systems allow 255)");
            if (member.size() > 4095)
                refuse("its npz member name has " + std::to_string(member.size()) +
                       " bytes (unzip and file systems allow 4095)");
        }
        const auto [it, fresh] = taken.emplace(name, e.path);
        if (!fresh)
            refuse("its exported name '" + name + "' is also that of entry '" + it->second +
                   "'");  // escaped when printed
        items.push_back({&e, std::move(name)});
    }
    return items;
}

/// One member "<name>.npy" per tensor, streamed: each member's local header is written with the
/// sizes from the index, the bytes follow as they are read, and the CRC-32 is patched in after.
/// `force_zip64` writes ZIP64 records even for small files (tests).
inline void write_npz(const std::filesystem::path& out_path, ckpt::reader& r, const std::vector<export_item>& items,
                      progress& bar, bool force_zip64 = false) {
    detail::output out(out_path);
    detail::block_source in(r);
    struct member {
        std::string name;
        std::uint32_t crc;
        std::uint64_t size, offset;
    };
    std::vector<member> members;
    constexpr std::uint32_t max32 = 0xffffffffu;
    for (const auto& item : items) {
        const entry_info& e = *item.entry;
        const std::string header = detail::npy_header(e);
        member m{item.name + ".npy", 0, header.size() + e.length, out.offset()};
        const bool zip64 = force_zip64 || m.size >= max32;
        std::string local;
        detail::put_le<std::uint32_t>(local, 0x04034b50);
        detail::put_le<std::uint16_t>(local, zip64 ? 45 : 20);  // version needed
        detail::put_le<std::uint16_t>(local, 0x0800);           // UTF-8 names
        detail::put_le<std::uint16_t>(local, 0);                // stored
        detail::put_le<std::uint32_t>(local, 0);                // time, date
        detail::put_le<std::uint32_t>(local, 0);                // CRC-32, patched below
        detail::put_le<std::uint32_t>(local, zip64 ? max32 : static_cast<std::uint32_t>(m.size));
        detail::put_le<std::uint32_t>(local, zip64 ? max32 : static_cast<std::uint32_t>(m.size));
        detail::put_le<std::uint16_t>(local, static_cast<std::uint16_t>(m.name.size()));
        detail::put_le<std::uint16_t>(local, zip64 ? 20 : 0);
        local += m.name;
        if (zip64) {
            detail::put_le<std::uint16_t>(local, 1);
            detail::put_le<std::uint16_t>(local, 16);
            detail::put_le<std::uint64_t>(local, m.size);
            detail::put_le<std::uint64_t>(local, m.size);
        }
        out.write(local);
        out.write(header);
        m.crc = detail::crc32_update(0, header.data(), header.size());
        in.stream(e, [&](const char* data, std::size_t n) {
            m.crc = detail::crc32_update(m.crc, data, n);
            out.write({data, n});
            bar.advance(n);
        });
        std::string crc;
        detail::put_le<std::uint32_t>(crc, m.crc);
        out.write_at(m.offset + 14, crc.data(), crc.size());
        members.push_back(std::move(m));
    }
    const std::uint64_t directory_offset = out.offset();
    for (const auto& m : members) {
        const bool zip64 = force_zip64 || m.size >= max32 || m.offset >= max32;
        std::string c;
        detail::put_le<std::uint32_t>(c, 0x02014b50);
        detail::put_le<std::uint16_t>(c, 45);  // made by
        detail::put_le<std::uint16_t>(c, zip64 ? 45 : 20);
        detail::put_le<std::uint16_t>(c, 0x0800);
        detail::put_le<std::uint16_t>(c, 0);
        detail::put_le<std::uint32_t>(c, 0);
        detail::put_le<std::uint32_t>(c, m.crc);
        detail::put_le<std::uint32_t>(c, zip64 ? max32 : static_cast<std::uint32_t>(m.size));
        detail::put_le<std::uint32_t>(c, zip64 ? max32 : static_cast<std::uint32_t>(m.size));
        detail::put_le<std::uint16_t>(c, static_cast<std::uint16_t>(m.name.size()));
        detail::put_le<std::uint16_t>(c, zip64 ? 28 : 0);
        detail::put_le<std::uint16_t>(c, 0);  // comment
        detail::put_le<std::uint16_t>(c, 0);  // disk
        detail::put_le<std::uint16_t>(c, 0);  // internal attributes
        detail::put_le<std::uint32_t>(c, 0);  // external attributes
        detail::put_le<std::uint32_t>(c, zip64 ? max32 : static_cast<std::uint32_t>(m.offset));
        c += m.name;
        if (zip64) {
            detail::put_le<std::uint16_t>(c, 1);
            detail::put_le<std::uint16_t>(c, 24);
            detail::put_le<std::uint64_t>(c, m.size);
            detail::put_le<std::uint64_t>(c, m.size);
            detail::put_le<std::uint64_t>(c, m.offset);
        }
        out.write(c);
    }
    const std::uint64_t directory_size = out.offset() - directory_offset;
    const bool zip64_end =
        force_zip64 || members.size() >= 0xffff || directory_offset >= max32 || directory_size >= max32;
    std::string end;
    if (zip64_end) {
        const std::uint64_t zip64_end_offset = out.offset();
        detail::put_le<std::uint32_t>(end, 0x06064b50);
        detail::put_le<std::uint64_t>(end, 44);
        detail::put_le<std::uint16_t>(end, 45);
        detail::put_le<std::uint16_t>(end, 45);
        detail::put_le<std::uint32_t>(end, 0);
        detail::put_le<std::uint32_t>(end, 0);
        detail::put_le<std::uint64_t>(end, members.size());
        detail::put_le<std::uint64_t>(end, members.size());
        detail::put_le<std::uint64_t>(end, directory_size);
        detail::put_le<std::uint64_t>(end, directory_offset);
        detail::put_le<std::uint32_t>(end, 0x07064b50);  // locator
        detail::put_le<std::uint32_t>(end, 0);
        detail::put_le<std::uint64_t>(end, zip64_end_offset);
        detail::put_le<std::uint32_t>(end, 1);
    }
    detail::put_le<std::uint32_t>(end, 0x06054b50);
    detail::put_le<std::uint16_t>(end, 0);
    detail::put_le<std::uint16_t>(end, 0);
    detail::put_le<std::uint16_t>(end, zip64_end ? 0xffff : static_cast<std::uint16_t>(members.size()));
    detail::put_le<std::uint16_t>(end, zip64_end ? 0xffff : static_cast<std::uint16_t>(members.size()));
    detail::put_le<std::uint32_t>(end, zip64_end ? max32 : static_cast<std::uint32_t>(directory_size));
    detail::put_le<std::uint32_t>(end, zip64_end ? max32 : static_cast<std::uint32_t>(directory_offset));
    detail::put_le<std::uint16_t>(end, 0);
    out.write(end);
    out.commit();
}

/// safetensors, row-major (column-major tensors are transposed on the way), the checkpoint's
/// metadata in "__metadata__". Tensors are laid out as the reference writer lays them out: by
/// element size, largest first, then by name, so every tensor starts aligned to its element size.
/// The header, with every offset, comes from the index before any tensor is read.
inline void write_safetensors(const std::filesystem::path& out_path, ckpt::reader& r, std::vector<export_item> items,
                              const std::map<std::string, std::string>& metadata, progress& bar) {
    std::stable_sort(items.begin(), items.end(), [](const export_item& a, const export_item& b) {
        const auto sa = dtype_size(a.entry->dtype), sb = dtype_size(b.entry->dtype);
        return sa != sb ? sa > sb : a.name < b.name;
    });
    std::string header = "{";
    if (!metadata.empty()) {
        header += "\"__metadata__\":{";
        bool first = true;
        for (const auto& [k, v] : metadata) {
            header += (first ? "" : ",") + json_string(k) + ":" + json_string(v);
            first = false;
        }
        header += "}";
    }
    std::uint64_t offset = 0;
    for (const auto& item : items) {
        const entry_info& e = *item.entry;
        header += (header.size() > 1 ? "," : "") + json_string(item.name) + ":{\"dtype\":\"" +
                  detail::safetensors_dtype(e.dtype) + "\",\"shape\":" + e.shape.to_string() + ",\"data_offsets\":[" +
                  std::to_string(offset) + "," + std::to_string(offset + e.length) + "]}";
        offset += e.length;
    }
    header += "}";
    header.append((8 - header.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
    // The reference reader refuses headers over 100 MB (safetensors' MAX_HEADER_SIZE).
    if (header.size() > 100000000)
        throw ckpt::error("the safetensors header would be " + std::to_string(header.size()) +
                              " bytes, over the 100 MB readers accept; export fewer tensors (--only, --exclude)",
                          r.path());
    detail::output out(out_path);
    detail::block_source in(r);
    std::vector<char> first, second;  // scratch for transpositions
    std::string length;
    detail::put_le<std::uint64_t>(length, header.size());
    out.write(length);
    out.write(header);
    for (const auto& item : items) {
        const entry_info& e = *item.entry;
        if (!e.column_major || e.shape.rank() < 2) {
            in.stream(e, [&](const char* data, std::size_t n) {
                out.write({data, n});
                bar.advance(n);
            });
        } else if (e.length <= detail::block_source::chunk) {  // small: reordered in memory
            const auto n = static_cast<std::size_t>(e.length);
            first.resize(std::max(first.size(), n));
            second.resize(first.size());
            r.read_bytes(e, first.data());
            ckpt::convert_element_order(first.data(), second.data(), e.shape, dtype_size(e.dtype), true);
            out.write({second.data(), n});
            bar.advance(e.length);
        } else {  // large: checked in one pass, then transposed tile by tile
            r.verify(e);
            detail::write_transposed(in, e, out, out.reserve(e.length), first, second);
            bar.advance(e.length);
        }
    }
    out.commit();
}

}  // namespace ckpt::tool
