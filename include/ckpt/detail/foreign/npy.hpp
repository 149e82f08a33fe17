#pragma once
// .npy (numpy's format, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
// "\x93NUMPY", version, a header length, then a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and '\n', then the
// raw elements. The dict is parsed strictly, by hand: only those three keys, only literals, never
// Python's eval; object arrays (pickles) are refused.

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include <ckpt/detail/foreign/reader.hpp>

namespace ckpt::detail {

/// Headers longer than this are refused (numpy itself refuses more than 10000 bytes unless told).
inline constexpr std::uint64_t npy_max_header = std::uint64_t{1} << 20;

/// What an npy header says.
struct npy_header {
    dtype type = dtype::float32;
    shape dims;
    bool fortran_order = false;
    std::uint64_t data_offset = 0;  // from the start of the npy bytes
    std::uint64_t data_bytes = 0;
};

/// The length of the whole header (magic to the first element) from its first 12 bytes, or
/// format_error when they are not an npy file's. `where` names the file (and npz member) in errors.
inline std::uint64_t npy_header_length(const unsigned char* first, std::size_t available, const std::string& where,
                                       const std::filesystem::path& file) {
    static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    if (available < 10 || std::memcmp(first, magic, 6) != 0)
        throw format_error(where + "not an npy array: no \\x93NUMPY magic", file);
    const unsigned major = first[6];
    std::uint64_t length = 0, prefix = 0;
    if (major == 1) {
        length = first[8] | (std::uint64_t{first[9]} << 8);
        prefix = 10;
    } else if (major == 2 || major == 3) {
        if (available < 12) throw corrupt_error(where + "npy header ends early", file);
        length = first[8] | (std::uint64_t{first[9]} << 8) | (std::uint64_t{first[10]} << 16) |
                 (std::uint64_t{first[11]} << 24);
        prefix = 12;
    } else {
        throw format_error(where + "npy version " + std::to_string(major) + " is not one of 1, 2, 3", file);
    }
    if (length > npy_max_header)
        throw corrupt_error(where + "npy header claims " + std::to_string(length) + " bytes, more than the cap of " +
                                std::to_string(npy_max_header),
                            file);
    return prefix + length;
}

namespace npy_parse {
struct cursor {
    std::string_view text;
    std::size_t at = 0;
    void skip_space() {
        while (at < text.size() && (text[at] == ' ' || text[at] == '\t')) ++at;
    }
    bool eat(char c) {
        skip_space();
        if (at < text.size() && text[at] == c) return ++at, true;
        return false;
    }
    bool eat_word(std::string_view w) {
        skip_space();
        if (text.substr(at, w.size()) == w) return at += w.size(), true;
        return false;
    }
    bool string(std::string& out) {
        skip_space();
        if (at >= text.size() || (text[at] != '\'' && text[at] != '"')) return false;
        const char quote = text[at++];
        const auto end = text.find(quote, at);
        if (end == std::string_view::npos) return false;
        out.assign(text.substr(at, end - at));
        at = end + 1;
        return true;
    }
    bool count(std::uint64_t& out) {
        skip_space();
        const std::size_t start = at;
        out = 0;
        while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) {
            if (__builtin_mul_overflow(out, 10u, &out) ||
                __builtin_add_overflow(out, static_cast<unsigned>(text[at] - '0'), &out))
                return false;
            ++at;
        }
        if (at < text.size() && text[at] == 'L') ++at;  // Python 2's long suffix
        return at > start;
    }
};
}  // namespace npy_parse

/// The dtype of an npy descr ('<f4', '|b1'); format_error for object arrays, big-endian data and
/// types ckpt has none for.
inline dtype npy_dtype(const std::string& descr, const std::string& where, const std::filesystem::path& file) {
    if (descr.find('O') != std::string::npos)
        throw format_error(where +
                               "dtype=object (pickled Python objects) is refused: ckpt never unpickles; save "
                               "numeric arrays",
                           file);
    if (descr.size() < 3 || (descr[0] != '<' && descr[0] != '|' && descr[0] != '='))
        throw format_error(where + "npy descr '" + descr + "' is not a little-endian numeric type", file);
    const std::string_view code = std::string_view(descr).substr(1);
    static const struct {
        const char* code;
        dtype type;
    } known[] = {{"b1", dtype::boolean},   {"i1", dtype::int8},       {"i2", dtype::int16},   {"i4", dtype::int32},
                 {"i8", dtype::int64},     {"u1", dtype::uint8},      {"u2", dtype::uint16},  {"u4", dtype::uint32},
                 {"u8", dtype::uint64},    {"f2", dtype::float16},    {"f4", dtype::float32}, {"f8", dtype::float64},
                 {"c8", dtype::complex64}, {"c16", dtype::complex128}};
    for (const auto& k : known)
        if (code == k.code) return k.type;
    throw format_error(where + "npy descr '" + descr + "' has no ckpt dtype", file);
}

/// Parses a whole npy header (`bytes`, npy_header_length of them). `where`: "member 'w.npy': ".
inline npy_header parse_npy_header(std::string_view bytes, const std::string& where,
                                   const std::filesystem::path& file) {
    npy_header h;
    const std::size_t prefix = static_cast<unsigned char>(bytes[6]) == 1 ? 10 : 12;
    npy_parse::cursor c{bytes.substr(prefix)};
    const auto bad = [&](const std::string& why) {
        return corrupt_error(where + "npy header " + why + ": " + std::string(bytes.substr(prefix, 200)), file);
    };
    if (!c.eat('{')) throw bad("does not start with '{'");
    bool have_descr = false, have_order = false, have_shape = false;
    std::string descr;
    while (!c.eat('}')) {
        std::string key;
        if (!c.string(key) || !c.eat(':')) throw bad("has no 'key': value");
        if (key == "descr" && !have_descr) {
            if (!c.string(descr)) {
                c.skip_space();
                if (c.at < c.text.size() && c.text[c.at] == '[')
                    throw format_error(where + "structured npy dtypes (a descr list) are not supported", file);
                throw bad("descr is not a string");
            }
            have_descr = true;
        } else if (key == "fortran_order" && !have_order) {
            if (c.eat_word("True"))
                h.fortran_order = true;
            else if (!c.eat_word("False"))
                throw bad("fortran_order is neither True nor False");
            have_order = true;
        } else if (key == "shape" && !have_shape) {
            if (!c.eat('(')) throw bad("shape is not a tuple");
            while (!c.eat(')')) {
                std::uint64_t d = 0;
                if (h.dims.rank() == shape::max_rank || !c.count(d)) throw bad("shape is not a tuple of counts");
                h.dims.push_back(d);
                if (!c.eat(',')) {
                    if (!c.eat(')')) throw bad("shape is not a tuple of counts");
                    break;
                }
            }
            have_shape = true;
        } else {
            throw bad("has key '" + key + "' (twice, or not one of descr, fortran_order, shape)");
        }
        if (!c.eat(',')) {
            if (!c.eat('}')) throw bad("has no ',' or '}' after a value");
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape) throw bad("lacks descr, fortran_order or shape");
    for (std::size_t i = c.at; i < c.text.size(); ++i)
        if (c.text[i] != ' ' && c.text[i] != '\n' && c.text[i] != '\0') throw bad("has bytes after the dict");
    h.type = npy_dtype(descr, where, file);
    if (!foreign_tensor_bytes(h.type, h.dims, h.data_bytes))
        throw corrupt_error(where + "npy shape " + h.dims.to_string() + " overflows", file);
    h.data_offset = bytes.size();
    return h;
}

/// A plain .npy file: one tensor, named by the file's stem.
class npy_reader final : public foreign_reader {
public:
    explicit npy_reader(const std::filesystem::path& p) : file_(p) {
        path = p;
        format = "npy";
        unsigned char first[12] = {};
        const std::size_t got = static_cast<std::size_t>(std::min<std::uint64_t>(file_.size, 12));
        file_.read(first, got, 0);
        const std::uint64_t length = npy_header_length(first, got, "", p);
        if (length > file_.size) throw corrupt_error("npy header runs past the end of the file", p);
        std::string header(static_cast<std::size_t>(length), '\0');
        file_.read(header.data(), header.size(), 0);
        const npy_header h = parse_npy_header(header, "", p);
        if (file_.size - h.data_offset != h.data_bytes)
            throw corrupt_error("npy " + std::string(dtype_name(h.type)) + " " + h.dims.to_string() + " needs " +
                                    std::to_string(h.data_bytes) + " bytes of data; the file has " +
                                    std::to_string(file_.size - h.data_offset),
                                p);
        offset_ = h.data_offset;
        tensors.push_back({p.stem().string(), h.type, h.dims, h.fortran_order, h.data_bytes});
        index_names();
    }

    void stream(std::size_t i, const byte_consumer& consume, std::size_t chunk) const override {
        stream_range(file_, offset_, tensors[i].bytes, consume, chunk);
    }

private:
    read_only_file file_;
    std::uint64_t offset_ = 0;
};

}  // namespace ckpt::detail
