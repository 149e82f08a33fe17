#pragma once
// safetensors (https://github.com/huggingface/safetensors): 8 bytes little-endian N, N bytes of JSON
// {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}},
// then the data section; offsets count from its start. Every number of the header is checked against
// the file before anything is read or allocated beyond the header itself.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <ckpt/safetensors.hpp>
#include <ckpt/detail/foreign/reader.hpp>

namespace ckpt::detail {

/// JSON nesting a safetensors header or HF index needs is 3; anything deeper is refused while parsing.
inline constexpr int foreign_json_max_depth = 8;

/// The dtype of a safetensors code, false for codes ckpt has no type for (F8_E4M3, ...).
inline bool dtype_of_safetensors_code(std::string_view code, dtype& out) noexcept {
    for (unsigned raw = 0; raw <= 15; ++raw) {
        const auto t = static_cast<dtype>(raw);
        const char* c = ckpt::safetensors_dtype(t);
        if (c && code == c) {
            out = t;
            return true;
        }
    }
    return false;
}

/// Parses JSON text from a foreign file, refusing nesting deeper than foreign_json_max_depth (a
/// crafted "[[[[..." must not recurse without bound). Throws corrupt_error naming `file`.
inline nlohmann::json parse_foreign_json(std::string_view text, const std::filesystem::path& file, const char* what) {
    const auto depth_bound = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
        if (depth > foreign_json_max_depth)
            throw corrupt_error(
                std::string(what) + " nests JSON deeper than " + std::to_string(foreign_json_max_depth) + " levels",
                file);
        return true;
    };
    try {
        return nlohmann::json::parse(text.begin(), text.end(), depth_bound);
    } catch (const nlohmann::json::exception& e) {
        throw corrupt_error(std::string(what) + " is not valid JSON: " + e.what(), file);
    }
}

/// A JSON value as a uint64, or corrupt_error naming the tensor.
inline std::uint64_t json_count(const nlohmann::json& v, const std::filesystem::path& file, const std::string& tensor,
                                const char* field) {
    if (!v.is_number_unsigned())
        throw corrupt_error("tensor '" + tensor + "': " + field + " holds " + v.dump() + ", not a count", file);
    return v.get<std::uint64_t>();
}

class safetensors_reader final : public foreign_reader {
public:
    explicit safetensors_reader(const std::filesystem::path& p) : file_(p) {
        path = p;
        format = "safetensors";
        if (file_.size < 8) throw format_error("not a safetensors file: shorter than its 8-byte header length", p);
        unsigned char raw[8];
        file_.read(raw, 8, 0);
        std::uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | raw[i];
        if (n > safetensors_max_header || n > file_.size - 8)
            throw corrupt_error("safetensors header claims " + std::to_string(n) + " bytes; the file has " +
                                    std::to_string(file_.size - 8) + " after the length and the cap is " +
                                    std::to_string(safetensors_max_header),
                                p);
        std::string header(static_cast<std::size_t>(n), '\0');
        file_.read(header.data(), header.size(), 8);
        if (header.empty() || header[0] != '{')
            throw format_error("not a safetensors file: the header does not start with '{'", p);
        data_start_ = 8 + n;
        parse(parse_foreign_json(header, p, "the safetensors header"));
        index_names();
    }

    void stream(std::size_t i, const byte_consumer& consume, std::size_t chunk) const override {
        stream_range(file_, data_start_ + begins_[i], tensors[i].bytes, consume, chunk);
    }

private:
    void parse(const nlohmann::json& header) {
        if (!header.is_object()) throw corrupt_error("the safetensors header is not a JSON object", path);
        const std::uint64_t data_size = file_.size - data_start_;
        struct byte_range {
            std::uint64_t begin, end;
            std::size_t tensor;
            bool operator<(const byte_range& other) const { return begin < other.begin; }
        };
        std::vector<byte_range> ranges;  // the non-empty tensors' bytes: for the layout check
        for (const auto& item : header.items()) {
            const std::string& name = item.key();
            const nlohmann::json& v = item.value();
            if (name == "__metadata__") {
                if (!v.is_object()) throw corrupt_error("__metadata__ is not a JSON object", path);
                for (const auto& m : v.items()) {
                    if (!m.value().is_string())
                        throw corrupt_error("__metadata__ '" + m.key() + "' is not a string", path);
                    metadata.emplace_back(m.key(), m.value().get<std::string>());
                }
                continue;
            }
            if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
                throw corrupt_error("tensor '" + name + "' lacks dtype, shape or data_offsets", path);
            foreign_tensor t;
            t.name = name;
            const auto& code = v["dtype"];
            if (!code.is_string() || !dtype_of_safetensors_code(code.get<std::string>(), t.dtype))
                throw format_error("tensor '" + name + "' has dtype " + code.dump() + ", which ckpt has no type for",
                                   path);
            const auto& dims = v["shape"];
            if (!dims.is_array() || dims.size() > shape::max_rank)
                throw corrupt_error("tensor '" + name + "': shape " + dims.dump() + " is not a list of at most " +
                                        std::to_string(shape::max_rank) + " dimensions",
                                    path);
            for (const auto& d : dims) t.shape.push_back(json_count(d, path, name, "shape"));
            const auto& offsets = v["data_offsets"];
            if (!offsets.is_array() || offsets.size() != 2)
                throw corrupt_error("tensor '" + name + "': data_offsets is not [begin, end]", path);
            const std::uint64_t begin = json_count(offsets[0], path, name, "data_offsets");
            const std::uint64_t end = json_count(offsets[1], path, name, "data_offsets");
            if (begin > end || end > data_size)
                throw corrupt_error("tensor '" + name + "': data_offsets [" + std::to_string(begin) + ", " +
                                        std::to_string(end) + "] are not inside the data section of " +
                                        std::to_string(data_size) + " bytes",
                                    path);
            const auto length = tensor_byte_length(t.shape, t.dtype);  // the library's one checked rule
            if (!length || *length != end - begin)
                throw corrupt_error("tensor '" + name + "': " + dtype_name(t.dtype) + " " + t.shape.to_string() +
                                        " does not agree with its " + std::to_string(end - begin) + " bytes",
                                    path);
            t.bytes = *length;
            if (end > begin) ranges.push_back({begin, end, tensors.size()});  // an empty tensor overlaps nothing
            begins_.push_back(begin);
            tensors.push_back(std::move(t));
        }
        // As the reference reader checks (safetensors' Metadata::validate), the tensors fill the data
        // section: in offset order each begins where the one before it ends, and the last ends where
        // the file does. Bytes that no tensor accounts for are refused as it refuses them.
        std::sort(ranges.begin(), ranges.end());
        const auto tensor_name = [&](const byte_range& r) { return "tensor '" + tensors[r.tensor].name + "'"; };
        const auto bytes_between = [](std::uint64_t from, std::uint64_t to) {
            return "bytes " + std::to_string(from) + " to " + std::to_string(to) + " of the data section";
        };
        for (std::size_t i = 0; i < ranges.size(); ++i) {
            const std::uint64_t covered = i == 0 ? 0 : ranges[i - 1].end;  // the bytes the tensors so far hold
            const std::string before = i == 0 ? "the section's start" : tensor_name(ranges[i - 1]);
            if (ranges[i].begin < covered)
                throw corrupt_error(tensor_name(ranges[i]) + " and " + before +
                                        " overlap: " + bytes_between(ranges[i].begin, std::min(ranges[i].end, covered)),
                                    path);
            if (ranges[i].begin > covered)
                throw corrupt_error(bytes_between(covered, ranges[i].begin) + " belong to no tensor: a gap between " +
                                        before + " and " + tensor_name(ranges[i]) +
                                        " (the safetensors library refuses it too)",
                                    path);
        }
        const std::uint64_t covered = ranges.empty() ? 0 : ranges.back().end;
        if (covered != data_size)
            throw corrupt_error("the data section has " + std::to_string(data_size) + " bytes, the tensors hold " +
                                    std::to_string(covered) + ": " + std::to_string(data_size - covered) +
                                    " bytes after " + (ranges.empty() ? "its start" : tensor_name(ranges.back())) +
                                    " belong to no tensor (the safetensors library refuses them too)",
                                path);
    }

    read_only_file file_;
    std::uint64_t data_start_ = 0;
    std::vector<std::uint64_t> begins_;  // per tensor, from the data section's start
};

}  // namespace ckpt::detail
