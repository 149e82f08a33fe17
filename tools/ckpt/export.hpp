#pragma once
// Exports of a checkpoint's tensors for Python: numpy's .npz (a ZIP of .npy files, stored
// uncompressed, ZIP64 when sizes or offsets need it) and safetensors (8-byte header length, JSON
// header, row-major data). Both are written under a temporary name and renamed into place.

#include <ckpt/ckpt.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::tool {

struct export_tensor {
    std::string name;                  // entry path, e.g. "model/hidden/kernel"
    ckpt::dtype type;
    ckpt::shape dims;
    bool column_major = false;         // element order of `bytes` (Eigen's default is column-major)
    std::string_view bytes;            // raw little-endian elements
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
    for (std::size_t i = 0; i < size; ++i) crc = table[(crc ^ static_cast<const unsigned char*>(data)[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/// numpy's descr for a dtype; bfloat16 has none and is exported as its raw bits, '<u2'.
inline const char* numpy_descr(ckpt::dtype t) {
    switch (t) {
        case dtype::boolean: return "|b1";
        case dtype::int8: return "|i1";
        case dtype::int16: return "<i2";
        case dtype::int32: return "<i4";
        case dtype::int64: return "<i8";
        case dtype::uint8: return "|u1";
        case dtype::uint16: return "<u2";
        case dtype::uint32: return "<u4";
        case dtype::uint64: return "<u8";
        case dtype::float16: return "<f2";
        case dtype::bfloat16: return "<u2";
        case dtype::float32: return "<f4";
        case dtype::float64: return "<f8";
        case dtype::complex64: return "<c8";
        case dtype::complex128: return "<c16";
        case dtype::bytes: return "|u1";
    }
    return "|u1";
}

/// safetensors' dtype name, or nullptr when it has none (complex numbers).
inline const char* safetensors_dtype(ckpt::dtype t) {
    switch (t) {
        case dtype::boolean: return "BOOL";
        case dtype::int8: return "I8";
        case dtype::int16: return "I16";
        case dtype::int32: return "I32";
        case dtype::int64: return "I64";
        case dtype::uint8: return "U8";
        case dtype::uint16: return "U16";
        case dtype::uint32: return "U32";
        case dtype::uint64: return "U64";
        case dtype::float16: return "F16";
        case dtype::bfloat16: return "BF16";
        case dtype::float32: return "F32";
        case dtype::float64: return "F64";
        default: return nullptr;
    }
}

inline std::string npy_header(const export_tensor& t) {
    std::string dict = std::string("{'descr': '") + numpy_descr(t.type) + "', 'fortran_order': " + (t.column_major ? "True" : "False") +
                       ", 'shape': (";
    for (std::size_t i = 0; i < t.dims.rank(); ++i) dict += std::to_string(t.dims[i]) + (t.dims.rank() == 1 || i + 1 < t.dims.rank() ? ", " : "");
    if (t.dims.rank() == 1) dict.resize(dict.size() - 1);  // "(3,)"
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

template <class T> void put_le(std::string& out, T v) {
    for (std::size_t i = 0; i < sizeof(T); ++i) out += static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
}

/// Writes through an atomic_file with a running offset.
class output {
public:
    explicit output(const std::filesystem::path& path) : file_(path) {}
    void write(std::string_view bytes) {
        ckpt::detail::write_all(file_.fd(), bytes.data(), bytes.size(), file_.temp_path());
        offset_ += bytes.size();
    }
    std::uint64_t offset() const { return offset_; }
    void commit() { file_.commit(); }

private:
    ckpt::detail::atomic_file file_;
    std::uint64_t offset_ = 0;
};

}  // namespace detail

/// One member "<name>.npy" per tensor. `force_zip64` writes ZIP64 records even for small files (tests).
inline void write_npz(const std::filesystem::path& out_path, const std::vector<export_tensor>& tensors, bool force_zip64 = false) {
    detail::output out(out_path);
    struct member { std::string name; std::uint32_t crc; std::uint64_t size, offset; };
    std::vector<member> members;
    constexpr std::uint32_t max32 = 0xffffffffu;
    for (const auto& t : tensors) {
        const std::string header = detail::npy_header(t);
        member m{t.name + ".npy", 0, header.size() + t.bytes.size(), out.offset()};
        m.crc = detail::crc32_update(detail::crc32_update(0, header.data(), header.size()), t.bytes.data(), t.bytes.size());
        const bool zip64 = force_zip64 || m.size >= max32;
        std::string local;
        detail::put_le<std::uint32_t>(local, 0x04034b50);
        detail::put_le<std::uint16_t>(local, zip64 ? 45 : 20);  // version needed
        detail::put_le<std::uint16_t>(local, 0x0800);           // UTF-8 names
        detail::put_le<std::uint16_t>(local, 0);                // stored
        detail::put_le<std::uint32_t>(local, 0);                // time, date
        detail::put_le<std::uint32_t>(local, m.crc);
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
        out.write(t.bytes);
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
    const bool zip64_end = force_zip64 || members.size() >= 0xffff || directory_offset >= max32 || directory_size >= max32;
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
/// metadata in "__metadata__". Returns the names of tensors it cannot represent (complex).
inline std::vector<std::string> write_safetensors(const std::filesystem::path& out_path, const std::vector<export_tensor>& tensors,
                                                  const std::map<std::string, std::string>& metadata) {
    std::vector<std::string> skipped;
    std::vector<const export_tensor*> kept;
    std::string header = "{";
    std::uint64_t offset = 0;
    auto json = [](const std::string& s) {
        std::string o = "\"";
        for (unsigned char c : s) {
            if (c == '"' || c == '\\') { o += '\\'; o += static_cast<char>(c); }
            else if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); o += b; }
            else o += static_cast<char>(c);
        }
        return o + "\"";
    };
    if (!metadata.empty()) {
        header += "\"__metadata__\":{";
        bool first = true;
        for (const auto& [k, v] : metadata) {
            header += (first ? "" : ",") + json(k) + ":" + json(v);
            first = false;
        }
        header += "}";
    }
    for (const auto& t : tensors) {
        const char* name = detail::safetensors_dtype(t.type);
        if (!name) {
            skipped.push_back(t.name);
            continue;
        }
        header += (header.size() > 1 ? "," : "") + json(t.name) + ":{\"dtype\":\"" + name + "\",\"shape\":[";
        for (std::size_t i = 0; i < t.dims.rank(); ++i) header += (i ? "," : "") + std::to_string(t.dims[i]);
        header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.bytes.size()) + "]}";
        offset += t.bytes.size();
        kept.push_back(&t);
    }
    header += "}";
    header.append((8 - header.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
    detail::output out(out_path);
    std::string length;
    detail::put_le<std::uint64_t>(length, header.size());
    out.write(length);
    out.write(header);
    std::string row_major;
    for (const auto* t : kept) {
        if (t->column_major && t->dims.rank() > 1) {
            row_major.resize(t->bytes.size());
            ckpt::detail::reorder(t->bytes.data(), row_major.data(), t->dims, ckpt::dtype_size(t->type), true);
            out.write(row_major);
        } else {
            out.write(t->bytes);
        }
    }
    out.commit();
    return skipped;
}

}  // namespace ckpt::tool
