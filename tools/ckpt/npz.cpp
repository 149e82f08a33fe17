// numpy's .npz, streamed: each member's local header is written with the sizes from the index,
// the bytes follow as they are read, and the CRC-32 is patched in after.

#include "npz.hpp"

#include <array>
#include <cstdint>
#include <string>

namespace ckpt::tool {
namespace {

std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t size) {
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
const char* numpy_descr(ckpt::dtype t) {
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

std::string npy_header(const entry_info& e) {
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

}  // namespace

void write_npz(const std::filesystem::path& out_path, ckpt::reader& r, const std::vector<export_item>& items,
               progress& bar, bool force_zip64) {
    output out(out_path);
    block_source in(r);
    struct member {
        std::string name;
        std::uint32_t crc;
        std::uint64_t size, offset;
    };
    std::vector<member> members;
    constexpr std::uint32_t max32 = 0xffffffffu;
    for (const auto& item : items) {
        const entry_info& e = *item.entry;
        const std::string header = npy_header(e);
        member m{item.name + ".npy", 0, header.size() + e.length, out.offset()};
        const bool zip64 = force_zip64 || m.size >= max32;
        std::string local;
        put_le<std::uint32_t>(local, 0x04034b50);
        put_le<std::uint16_t>(local, zip64 ? 45 : 20);  // version needed
        put_le<std::uint16_t>(local, 0x0800);           // UTF-8 names
        put_le<std::uint16_t>(local, 0);                // stored
        put_le<std::uint32_t>(local, 0);                // time, date
        put_le<std::uint32_t>(local, 0);                // CRC-32, patched below
        put_le<std::uint32_t>(local, zip64 ? max32 : static_cast<std::uint32_t>(m.size));
        put_le<std::uint32_t>(local, zip64 ? max32 : static_cast<std::uint32_t>(m.size));
        put_le<std::uint16_t>(local, static_cast<std::uint16_t>(m.name.size()));
        put_le<std::uint16_t>(local, zip64 ? 20 : 0);
        local += m.name;
        if (zip64) {
            put_le<std::uint16_t>(local, 1);
            put_le<std::uint16_t>(local, 16);
            put_le<std::uint64_t>(local, m.size);
            put_le<std::uint64_t>(local, m.size);
        }
        out.write(local);
        out.write(header);
        m.crc = crc32_update(0, header.data(), header.size());
        in.stream(e, [&](const char* data, std::size_t n) {
            m.crc = crc32_update(m.crc, data, n);
            out.write({data, n});
            bar.advance(n);
        });
        std::string crc;
        put_le<std::uint32_t>(crc, m.crc);
        out.write_at(m.offset + 14, crc.data(), crc.size());
        members.push_back(std::move(m));
    }
    const std::uint64_t directory_offset = out.offset();
    for (const auto& m : members) {
        const bool zip64 = force_zip64 || m.size >= max32 || m.offset >= max32;
        std::string c;
        put_le<std::uint32_t>(c, 0x02014b50);
        put_le<std::uint16_t>(c, 45);  // made by
        put_le<std::uint16_t>(c, zip64 ? 45 : 20);
        put_le<std::uint16_t>(c, 0x0800);
        put_le<std::uint16_t>(c, 0);
        put_le<std::uint32_t>(c, 0);
        put_le<std::uint32_t>(c, m.crc);
        put_le<std::uint32_t>(c, zip64 ? max32 : static_cast<std::uint32_t>(m.size));
        put_le<std::uint32_t>(c, zip64 ? max32 : static_cast<std::uint32_t>(m.size));
        put_le<std::uint16_t>(c, static_cast<std::uint16_t>(m.name.size()));
        put_le<std::uint16_t>(c, zip64 ? 28 : 0);
        put_le<std::uint16_t>(c, 0);  // comment
        put_le<std::uint16_t>(c, 0);  // disk
        put_le<std::uint16_t>(c, 0);  // internal attributes
        put_le<std::uint32_t>(c, 0);  // external attributes
        put_le<std::uint32_t>(c, zip64 ? max32 : static_cast<std::uint32_t>(m.offset));
        c += m.name;
        if (zip64) {
            put_le<std::uint16_t>(c, 1);
            put_le<std::uint16_t>(c, 24);
            put_le<std::uint64_t>(c, m.size);
            put_le<std::uint64_t>(c, m.size);
            put_le<std::uint64_t>(c, m.offset);
        }
        out.write(c);
    }
    const std::uint64_t directory_size = out.offset() - directory_offset;
    const bool zip64_end =
        force_zip64 || members.size() >= 0xffff || directory_offset >= max32 || directory_size >= max32;
    std::string end;
    if (zip64_end) {
        const std::uint64_t zip64_end_offset = out.offset();
        put_le<std::uint32_t>(end, 0x06064b50);
        put_le<std::uint64_t>(end, 44);
        put_le<std::uint16_t>(end, 45);
        put_le<std::uint16_t>(end, 45);
        put_le<std::uint32_t>(end, 0);
        put_le<std::uint32_t>(end, 0);
        put_le<std::uint64_t>(end, members.size());
        put_le<std::uint64_t>(end, members.size());
        put_le<std::uint64_t>(end, directory_size);
        put_le<std::uint64_t>(end, directory_offset);
        put_le<std::uint32_t>(end, 0x07064b50);  // locator
        put_le<std::uint32_t>(end, 0);
        put_le<std::uint64_t>(end, zip64_end_offset);
        put_le<std::uint32_t>(end, 1);
    }
    put_le<std::uint32_t>(end, 0x06054b50);
    put_le<std::uint16_t>(end, 0);
    put_le<std::uint16_t>(end, 0);
    put_le<std::uint16_t>(end, zip64_end ? 0xffff : static_cast<std::uint16_t>(members.size()));
    put_le<std::uint16_t>(end, zip64_end ? 0xffff : static_cast<std::uint16_t>(members.size()));
    put_le<std::uint32_t>(end, zip64_end ? max32 : static_cast<std::uint32_t>(directory_size));
    put_le<std::uint32_t>(end, zip64_end ? max32 : static_cast<std::uint32_t>(directory_offset));
    put_le<std::uint16_t>(end, 0);
    out.write(end);
    out.commit();
}

}  // namespace ckpt::tool
