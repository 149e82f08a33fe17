#pragma once
// The layout of a safetensors file as the reference writer makes it: the one rule behind
// `ck.write(file, ckpt::as_safetensors, names)` (foreign.hpp) and `ckpt export`, public so that a
// program can stream tensors into such a file itself. No JSON library: the header is small, and the
// names are checked for what JSON needs (UTF-8) instead of failing in a serializer.
//
//   std::vector<ckpt::safetensors_tensor> tensors{{"fc1.weight", ckpt::dtype::float32, {64, 32}}};
//   const std::string head = ckpt::safetensors_header(tensors, {{"format", "pt"}}, "model.safetensors");
//   out.write(head); then each tensor's row-major bytes at tensors[i].offset

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/dtype.hpp>
#include <ckpt/error.hpp>

namespace ckpt {

/// safetensors' name of a dtype ("F32", "BF16", "C64", ...), or nullptr where it has none (complex128,
/// bytes). C64 is read by safetensors 0.7 and later. `if (!ckpt::safetensors_dtype(e.dtype)) skip(e);`
const char* safetensors_dtype(dtype type) noexcept;

/// One tensor of a safetensors file to be written.
struct safetensors_tensor {
    /// Its name in the file: "model.layers.0.mlp.up_proj.weight".
    std::string name;
    /// Element type; safetensors_dtype(dtype) must name it.
    ckpt::dtype dtype = ckpt::dtype::float32;
    /// Row-major, outermost first, as the file stores it.
    ckpt::shape shape;
    /// What errors call it, when not its name: the checkpoint entry it comes from.
    std::string entry = {};
    /// Set by safetensors_header: where its bytes start, from the beginning of the file.
    std::uint64_t offset = 0;
};

/// The largest header the reference reader accepts (its MAX_HEADER_SIZE): 100 MB.
inline constexpr std::uint64_t safetensors_max_header = 100000000;

/// The start of a safetensors file holding `tensors`: the header's length (8 bytes, little-endian) and
/// the JSON header (`metadata` under "__metadata__" when not empty, then each tensor's dtype, shape
/// and data offsets), padded with spaces so that the data starts 8-byte aligned. Lays the tensors out
/// as the reference writer does: larger elements first, then by name, back to back, so that each
/// starts aligned to its element size; sets each one's `offset` in the file. Throws ckpt::error
/// naming `file` and the tensor for a dtype safetensors lacks, a name that is empty, not UTF-8,
/// "__metadata__" or another tensor's too, and for a header over safetensors_max_header.
std::string safetensors_header(std::vector<safetensors_tensor>& tensors,
                               const std::map<std::string, std::string>& metadata, const std::filesystem::path& file);

}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt {
namespace detail {

// Length of the well-formed UTF-8 sequence at s[i] (no overlong forms, surrogates or code points
// over U+10FFFF: what JSON readers refuse), or 0.
CKPT_INLINE std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = byte(i);
    if (c < 0x80) return 1;
    std::size_t n;
    unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) low = 0xA0;
        if (c == 0xED) high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) low = 0x90;
        if (c == 0xF4) high = 0x8F;
    } else {
        return 0;
    }
    if (s.size() - i < n || byte(i + 1) < low || byte(i + 1) > high) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
    return n;
}

// `text` as a JSON string, appended to `out`; false (and `out` partly appended) where it is not UTF-8.
CKPT_INLINE bool append_json_string(std::string& out, std::string_view text) {
    out += '"';
    const char* const bytes = text.data();
    for (std::size_t i = 0; i < text.size();) {
        std::size_t plain = i;  // printable ASCII but '"' and '\\', appended as it is, a run at a time
        while (plain < text.size() && bytes[plain] >= 0x20 && bytes[plain] < 0x7f && bytes[plain] != '"' &&
               bytes[plain] != '\\')
            ++plain;
        out.append(bytes + i, plain - i);
        i = plain;
        if (i == text.size()) break;
        const auto c = static_cast<unsigned char>(text[i]);
        const std::size_t n = utf8_sequence_length(text, i);
        if (n == 0) return false;
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {  // as JSON serializers write them
            static constexpr char hex[] = "0123456789abcdef";
            const char* short_form = c == '\b'   ? "\\b"
                                     : c == '\f' ? "\\f"
                                     : c == '\n' ? "\\n"
                                     : c == '\r' ? "\\r"
                                     : c == '\t' ? "\\t"
                                                 : nullptr;
            if (short_form) {
                out += short_form;
            } else {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 15];
            }
        } else {
            out.append(text, i, n);
        }
        i += n;
    }
    out += '"';
    return true;
}

}  // namespace detail

CKPT_INLINE const char* safetensors_dtype(dtype type) noexcept {
    switch (type) {
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
        case dtype::complex64:
            return "C64";
        default:
            return nullptr;
    }
}

CKPT_INLINE std::string safetensors_header(std::vector<safetensors_tensor>& tensors,
                                           const std::map<std::string, std::string>& metadata,
                                           const std::filesystem::path& file) {
    const auto called = [](const safetensors_tensor& t) { return t.entry.empty() ? t.name : t.entry; };
    std::map<std::string_view, const safetensors_tensor*> names;
    for (const auto& t : tensors) {
        if (!safetensors_dtype(t.dtype))
            throw error(std::string("safetensors has no dtype for ") + dtype_name(t.dtype), file, called(t));
        if (t.name.empty() || t.name == "__metadata__")
            throw error("its safetensors name would be '" + t.name + "', which safetensors cannot hold: rename it",
                        file, called(t));
        const auto [it, fresh] = names.emplace(t.name, &t);
        if (!fresh)
            throw error("'" + called(*it->second) + "' and '" + called(t) + "' would both be '" + t.name +
                            "' in the safetensors file",
                        file, called(t));
    }
    std::vector<std::size_t> order(tensors.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        const std::size_t size_a = dtype_size(tensors[a].dtype), size_b = dtype_size(tensors[b].dtype);
        return size_a != size_b ? size_a > size_b : tensors[a].name < tensors[b].name;
    });
    // Appended piece by piece: `"..." + std::string` trips g++ 12's -Wrestrict false positive
    // (GCC bug 105329) in users' -O2 -Werror builds.
    std::string json = "{";
    if (!metadata.empty()) {
        json += "\"__metadata__\":{";
        for (const auto& [key, value] : metadata) {
            if (json.back() != '{') json += ',';
            const bool utf8 = detail::append_json_string(json, key);
            json += ':';
            if (!utf8 || !detail::append_json_string(json, value))
                throw error("the metadata item '" + key + "' is not UTF-8, which a safetensors header must be", file);
        }
        json += '}';
    }
    std::uint64_t data_offset = 0;
    for (const std::size_t k : order) {
        safetensors_tensor& t = tensors[k];
        if (json.size() > 1) json += ',';
        if (!detail::append_json_string(json, t.name))
            throw error("its safetensors name is not UTF-8, which a safetensors header must be: rename it", file,
                        called(t));
        json += ":{\"dtype\":\"";
        json += safetensors_dtype(t.dtype);
        json += "\",\"shape\":";
        json += t.shape.to_string();
        json += ",\"data_offsets\":[";
        json += std::to_string(data_offset);
        json += ',';
        t.offset = data_offset;  // in the data section, for now: in the file once the header's size is known
        data_offset += t.shape.elements() * dtype_size(t.dtype);
        json += std::to_string(data_offset);
        json += "]}";
    }
    json += '}';
    json.append((8 - json.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
    if (json.size() > safetensors_max_header)
        throw error("the safetensors header would be " + std::to_string(json.size()) + " bytes, over the " +
                        std::to_string(safetensors_max_header) + " readers accept: write fewer tensors",
                    file);
    std::string out(8, '\0');
    for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((json.size() >> (8 * i)) & 0xFF);
    out += json;
    for (auto& t : tensors) t.offset += out.size();
    return out;
}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
