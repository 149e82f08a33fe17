#pragma once
// .npz: a zip archive (zip.hpp) of .npy members, as np.savez and np.savez_compressed write it, C and
// Fortran order. Each member's npy header is read and checked when the file is opened; its elements
// are streamed on demand.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <ckpt/detail/foreign/npy.hpp>
#include <ckpt/detail/foreign/reader.hpp>
#include <ckpt/detail/foreign/zip.hpp>

namespace ckpt::detail {

class npz_reader final : public foreign_reader {
public:
    explicit npz_reader(const std::filesystem::path& p) : zip_(p) {
        path = p;
        format = "npz";
        for (std::size_t i = 0; i < zip_.members().size(); ++i) {
            zip_.locate(i);
            describe_member(zip_.members()[i]);
        }
        index_names();
    }

    void stream(std::size_t i, const byte_consumer& consume, std::size_t chunk) const override {
        const zip::member& m = zip_.members()[i];
        const std::uint64_t skip = headers_[i];
        std::uint64_t seen = 0;
        zip_.unpack(m, m.size, chunk, [&](const unsigned char* data, std::size_t n) {
            // The npy header comes first in the member: skipped, the elements handed on.
            const std::uint64_t from = seen < skip ? std::min<std::uint64_t>(skip - seen, n) : 0;
            seen += n;
            if (from < n) consume(data + from, static_cast<std::size_t>(n - from));
        });
    }

private:
    void describe_member(const zip::member& m) {
        const std::string where = "member '" + m.name + "': ";
        if (m.name.size() < 5 || m.name.compare(m.name.size() - 4, 4, ".npy") != 0)
            throw format_error(where + "not an .npy member, as np.savez writes", path);
        std::string head;
        const auto collect = [&](const unsigned char* d, std::size_t n) {
            head.append(reinterpret_cast<const char*>(d), n);
        };
        zip_.unpack(m, std::min<std::uint64_t>(m.size, 12), 12, collect);
        const std::uint64_t length =
            npy_header_length(reinterpret_cast<const unsigned char*>(head.data()), head.size(), where, path);
        if (length > m.size) throw corrupt_error(where + "npy header runs past the member", path);
        head.clear();
        zip_.unpack(m, length, 1 << 16, collect);
        const npy_header h = parse_npy_header(head, where, path);
        if (m.size - h.data_offset != h.data_bytes)
            throw corrupt_error(where + dtype_name(h.type) + " " + h.dims.to_string() + " needs " +
                                    std::to_string(h.data_bytes) + " bytes; the member has " +
                                    std::to_string(m.size - h.data_offset),
                                path);
        tensors.push_back({m.name.substr(0, m.name.size() - 4), h.type, h.dims, h.fortran_order, h.data_bytes});
        headers_.push_back(h.data_offset);
    }

    zip_archive zip_;
    std::vector<std::uint64_t> headers_;  // per member: the npy header's length
};

}  // namespace ckpt::detail
