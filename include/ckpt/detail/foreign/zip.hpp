#pragma once
// A zip archive as numpy writes one (np.savez stored, np.savez_compressed deflate), zip64 included
// (numpy forces zip64 headers). The central directory is the one list of members; each member's
// local header must agree with it. Deflate output is bounded by the member's declared size, and a
// member's CRC-32 is checked when it is read whole. The .npy members are npz.hpp's.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <zlib.h>

#include <ckpt/detail/foreign/reader.hpp>

namespace ckpt::detail {

namespace zip {
inline std::uint64_t le(const unsigned char* p, int bytes) noexcept {
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
inline constexpr std::uint32_t local_sig = 0x04034b50, central_sig = 0x02014b50, end_sig = 0x06054b50,
                               end64_sig = 0x06064b50, locator64_sig = 0x07064b50;
inline constexpr std::size_t central_fixed = 46, local_fixed = 30, end_fixed = 22;

struct member {
    std::string name;
    std::uint16_t method = 0;
    std::uint32_t crc = 0;
    std::uint64_t compressed = 0, size = 0, local_offset = 0;
    std::uint64_t data_offset = 0;  // after the local header
};
}  // namespace zip

/// The members of a zip archive and their contents, each read in bounded pieces.
class zip_archive {
public:
    explicit zip_archive(const std::filesystem::path& p) : path(p), file_(p) { read_central_directory(); }

    /// The archive's file members (directories left out), in the central directory's order.
    const std::vector<zip::member>& members() const noexcept { return members_; }

    /// Checks member `i`'s local header against the central directory and finds its data.
    void locate(std::size_t i) { locate_data(members_[i]); }

    // The first `upto` bytes of the member's content, in pieces of at most `chunk`; read whole
    // (upto == size), the CRC-32 is checked at the end.
    template <class Consume>
    void unpack(const zip::member& m, std::uint64_t upto, std::size_t chunk, Consume&& consume) const {
        if (chunk == 0) chunk = std::size_t{1} << 20;
        const bool whole = upto == m.size;
        uLong crc = crc32(0L, Z_NULL, 0);
        const auto take = [&](const unsigned char* d, std::size_t n) {
            if (whole) crc = crc32_z(crc, d, n);
            consume(d, n);
        };
        if (m.method == 0) {
            std::vector<unsigned char> buf(static_cast<std::size_t>(std::min<std::uint64_t>(upto, chunk)));
            for (std::uint64_t done = 0; done < upto;) {
                const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(upto - done, buf.size()));
                file_.read(buf.data(), n, m.data_offset + done);
                take(buf.data(), n);
                done += n;
            }
        } else {
            inflate_member(m, upto, chunk, take);
        }
        if (whole && crc != m.crc) damaged("member '" + m.name + "' fails its CRC-32 check");
    }

    const std::filesystem::path path;

private:
    [[noreturn]] void damaged(const std::string& why) const { throw corrupt_error("npz (zip) " + why, path); }

    void read_central_directory() {
        if (file_.size < zip::end_fixed) throw format_error("not an npz file: too short for a zip archive", path);
        // The end record is in the last 22 + 65535 (comment) bytes.
        const std::uint64_t tail = std::min<std::uint64_t>(file_.size, zip::end_fixed + 0xFFFF);
        std::vector<unsigned char> buf(static_cast<std::size_t>(tail));
        file_.read(buf.data(), buf.size(), file_.size - tail);
        std::size_t at = buf.size() - zip::end_fixed + 1;
        bool found = false;
        while (at-- > 0)
            if (zip::le(&buf[at], 4) == zip::end_sig && at + zip::end_fixed + zip::le(&buf[at + 20], 2) == buf.size()) {
                found = true;
                break;
            }
        if (!found) throw format_error("not an npz file: no zip end-of-central-directory record", path);
        const unsigned char* end = &buf[at];
        const std::uint64_t end_pos = file_.size - tail + at;
        if (zip::le(end + 4, 2) != 0 || zip::le(end + 6, 2) != 0) damaged("spans several disks");
        std::uint64_t count = zip::le(end + 10, 2), cd_size = zip::le(end + 12, 4), cd_offset = zip::le(end + 16, 4);
        std::uint64_t cd_end = end_pos;
        if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
            // zip64: a locator just before the end record points at the zip64 end record.
            if (end_pos < 20) damaged("claims zip64 but has no zip64 locator");
            unsigned char loc[20];
            file_.read(loc, 20, end_pos - 20);
            if (zip::le(loc, 4) != zip::locator64_sig) damaged("claims zip64 but has no zip64 locator");
            const std::uint64_t rec = zip::le(loc + 8, 8);
            if (!fits_within(rec, 56, end_pos - 20)) damaged("zip64 end record lies outside the file");
            unsigned char r[56];
            file_.read(r, 56, rec);
            if (zip::le(r, 4) != zip::end64_sig) damaged("zip64 end record has a wrong signature");
            count = zip::le(r + 32, 8);
            cd_size = zip::le(r + 40, 8);
            cd_offset = zip::le(r + 48, 8);
            cd_end = rec;
        }
        if (!fits_within(cd_offset, cd_size, cd_end))
            damaged("central directory [" + std::to_string(cd_offset) + ", +" + std::to_string(cd_size) +
                    ") lies outside the file");
        if (count > cd_size / zip::central_fixed)
            damaged("claims " + std::to_string(count) + " members in a central directory of " +
                    std::to_string(cd_size) + " bytes");
        std::vector<unsigned char> cd(static_cast<std::size_t>(cd_size));
        file_.read(cd.data(), cd.size(), cd_offset);
        members_.reserve(static_cast<std::size_t>(count));
        std::size_t pos = 0;
        for (std::uint64_t i = 0; i < count; ++i) {
            if (pos + zip::central_fixed > cd.size() || zip::le(&cd[pos], 4) != zip::central_sig)
                damaged("central directory entry " + std::to_string(i) + " is damaged");
            const unsigned char* h = &cd[pos];
            zip::member m;
            const auto flags = zip::le(h + 8, 2);
            m.method = static_cast<std::uint16_t>(zip::le(h + 10, 2));
            m.crc = static_cast<std::uint32_t>(zip::le(h + 16, 4));
            m.compressed = zip::le(h + 20, 4);
            m.size = zip::le(h + 24, 4);
            const std::size_t name_len = zip::le(h + 28, 2), extra_len = zip::le(h + 30, 2),
                              comment_len = zip::le(h + 32, 2);
            m.local_offset = zip::le(h + 42, 4);
            if (pos + zip::central_fixed + name_len + extra_len + comment_len > cd.size())
                damaged("central directory entry " + std::to_string(i) + " runs past the directory");
            m.name.assign(reinterpret_cast<const char*>(h + zip::central_fixed), name_len);
            if (flags & 1) throw format_error("npz member '" + m.name + "' is encrypted", path);
            read_zip64_extra(m, h + zip::central_fixed + name_len, extra_len);
            pos += zip::central_fixed + name_len + extra_len + comment_len;
            if (!m.name.empty() && m.name.back() == '/') continue;  // a directory
            members_.push_back(std::move(m));
        }
        cd_offset_ = cd_offset;
    }

    // The zip64 extra field (id 1) holds, in order, the 64-bit values of the fields that are 0xFFFFFFFF.
    void read_zip64_extra(zip::member& m, const unsigned char* extra, std::size_t length) {
        const bool need_size = m.size == 0xFFFFFFFF, need_compressed = m.compressed == 0xFFFFFFFF,
                   need_offset = m.local_offset == 0xFFFFFFFF;
        if (!need_size && !need_compressed && !need_offset) return;
        for (std::size_t at = 0; at + 4 <= length;) {
            const std::size_t id = zip::le(extra + at, 2), len = zip::le(extra + at + 2, 2);
            if (at + 4 + len > length) break;
            if (id == 1) {
                const unsigned char* v = extra + at + 4;
                std::size_t used = 0;
                const auto next = [&](std::uint64_t& field) {
                    if (used + 8 > len) damaged("member '" + m.name + "': zip64 extra field is too short");
                    field = zip::le(v + used, 8);
                    used += 8;
                };
                if (need_size) next(m.size);
                if (need_compressed) next(m.compressed);
                if (need_offset) next(m.local_offset);
                return;
            }
            at += 4 + len;
        }
        damaged("member '" + m.name + "' needs a zip64 extra field and has none");
    }

    void locate_data(zip::member& m) {
        if (!fits_within(m.local_offset, zip::local_fixed, cd_offset_))
            damaged("member '" + m.name + "': local header lies outside the archive");
        unsigned char h[zip::local_fixed];
        file_.read(h, sizeof h, m.local_offset);
        if (zip::le(h, 4) != zip::local_sig) damaged("member '" + m.name + "': local header has a wrong signature");
        const std::uint64_t name_len = zip::le(h + 26, 2), extra_len = zip::le(h + 28, 2);
        m.data_offset = m.local_offset + zip::local_fixed + name_len + extra_len;
        if (!fits_within(m.local_offset + zip::local_fixed, name_len, cd_offset_) || name_len != m.name.size())
            damaged("member '" + m.name + "': local header disagrees with the central directory");
        std::string local_name(static_cast<std::size_t>(name_len), '\0');
        file_.read(local_name.data(), local_name.size(), m.local_offset + zip::local_fixed);
        if (local_name != m.name) damaged("member '" + m.name + "': local header names '" + local_name + "'");
        if (!fits_within(m.data_offset, m.compressed, cd_offset_))
            damaged("member '" + m.name + "': its " + std::to_string(m.compressed) +
                    " bytes run past the central directory");
        if (m.method != 0 && m.method != 8)
            throw format_error("npz member '" + m.name + "' uses zip method " + std::to_string(m.method) +
                                   "; only stored (0) and deflate (8) are read",
                               path);
        // Deflate expands at most 1032:1: a member that claims more would have tensors allocated for
        // bytes it cannot hold.
        if (m.method == 8 && m.size / 1032 > m.compressed + 1)
            damaged("member '" + m.name + "' claims " + std::to_string(m.size) + " bytes from " +
                    std::to_string(m.compressed) + " deflated ones, beyond deflate's largest ratio");
        if (m.method == 0 && m.compressed != m.size) damaged("member '" + m.name + "' is stored but its sizes differ");
    }

    template <class Take>
    void inflate_member(const zip::member& m, std::uint64_t upto, std::size_t chunk, Take& take) const {
        z_stream z{};
        if (inflateInit2(&z, -MAX_WBITS) != Z_OK) throw error("zlib: inflateInit2 failed", path);
        struct closer {
            z_stream* z;
            ~closer() { inflateEnd(z); }
        } close_at_end{&z};
        std::vector<unsigned char> in(static_cast<std::size_t>(std::min<std::uint64_t>(m.compressed, 1 << 16)) + 1);
        std::vector<unsigned char> out(static_cast<std::size_t>(std::min<std::uint64_t>(upto, chunk)) + 1);
        std::uint64_t read = 0, produced = 0;
        bool ended = false;
        while (produced < upto) {
            refill(z, in, read, m);
            // One byte of room more than is wanted: output past the declared size is seen, not written.
            const std::uint64_t room =
                std::min<std::uint64_t>(std::min<std::uint64_t>(out.size(), chunk), upto - produced + 1);
            z.next_out = out.data();
            z.avail_out = static_cast<uInt>(room);
            const int rc = inflate(&z, Z_NO_FLUSH);
            const std::size_t n = static_cast<std::size_t>(room - z.avail_out);
            if (rc != Z_OK && rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && n > 0))
                damaged("member '" + m.name + "': deflate data is damaged (zlib " + std::to_string(rc) + ")");
            if (produced + n > m.size) damaged("member '" + m.name + "' inflates to more than its declared size");
            const std::size_t give = static_cast<std::size_t>(std::min<std::uint64_t>(n, upto - produced));
            take(out.data(), give);
            produced += n;
            if (rc == Z_STREAM_END) {
                ended = true;
                break;
            }
            if (n == 0 && z.avail_in == 0 && read == m.compressed)
                damaged("member '" + m.name + "': deflate data ends early");
        }
        if (upto == m.size && (produced != m.size || (!ended && !stream_ends(z, in, read, m))))
            damaged("member '" + m.name + "' inflates to " + std::to_string(produced) + " bytes, not its declared " +
                    std::to_string(m.size));
    }

    // Gives zlib the member's next compressed bytes once it has used those it had.
    void refill(z_stream& z, std::vector<unsigned char>& in, std::uint64_t& read, const zip::member& m) const {
        if (z.avail_in != 0 || read == m.compressed) return;
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(m.compressed - read, in.size()));
        file_.read(in.data(), n, m.data_offset + read);
        read += n;
        z.next_in = in.data();
        z.avail_in = static_cast<uInt>(n);
    }

    // Whether the deflate stream ends right after the declared size (no further output).
    bool stream_ends(z_stream& z, std::vector<unsigned char>& in, std::uint64_t& read, const zip::member& m) const {
        unsigned char extra;
        for (;;) {
            refill(z, in, read, m);
            z.next_out = &extra;
            z.avail_out = 1;
            const int rc = inflate(&z, Z_NO_FLUSH);
            if (z.avail_out == 0) return false;  // more output than declared
            if (rc == Z_STREAM_END) return true;
            if (rc != Z_OK || (z.avail_in == 0 && read == m.compressed)) return false;
        }
    }

    read_only_file file_;
    std::vector<zip::member> members_;
    std::uint64_t cd_offset_ = 0;
};

}  // namespace ckpt::detail
