#pragma once
// An HF-sharded safetensors model: `model.safetensors.index.json` ({"metadata": {...}, "weight_map":
// {tensor name: shard file name}}) beside its shards. Every shard is opened and checked; every name
// of the weight map must be in the shard it names. Shard names are plain file names in the index's
// directory: a name with a path separator or ".." is refused.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ckpt/detail/foreign/reader.hpp>
#include <ckpt/detail/foreign/safetensors.hpp>

namespace ckpt::detail {

/// An index larger than this is refused unread (a 1000-shard model's index is a few MiB).
inline constexpr std::uint64_t hf_index_max_size = std::uint64_t{64} << 20;

class hf_sharded_reader final : public foreign_reader {
public:
    explicit hf_sharded_reader(const std::filesystem::path& index) {
        path = index;
        format = "safetensors-sharded";
        const read_only_file file(index);
        if (file.size > hf_index_max_size)
            throw corrupt_error("index of " + std::to_string(file.size) + " bytes is larger than the cap of " +
                                    std::to_string(hf_index_max_size),
                                index);
        std::string text(static_cast<std::size_t>(file.size), '\0');
        file.read(text.data(), text.size(), 0);
        const nlohmann::json json = parse_foreign_json(text, index, "the sharded model's index");
        if (!json.is_object() || !json.contains("weight_map") || !json["weight_map"].is_object())
            throw format_error("not an HF-sharded model index: no \"weight_map\" object", index);
        std::map<std::string, std::size_t> shard_of;  // shard file name -> shards_ index
        for (const auto& item : json["weight_map"].items()) {
            if (!item.value().is_string())
                throw corrupt_error(
                    "weight_map: '" + item.key() + "' maps to " + item.value().dump() + ", not a shard file name",
                    index);
            const std::string shard = item.value().get<std::string>();
            if (shard.empty() || shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos ||
                shard == "." || shard == "..")
                throw corrupt_error("weight_map: shard '" + shard + "' is not a file name beside the index", index);
            auto it = shard_of.find(shard);
            if (it == shard_of.end()) {
                it = shard_of.emplace(shard, shards_.size()).first;
                shards_.push_back(std::make_unique<safetensors_reader>(index.parent_path() / shard));
            }
            const foreign_reader& s = *shards_[it->second];
            const foreign_tensor* t = s.find(item.key());
            if (!t)
                throw corrupt_error("weight_map puts '" + item.key() + "' in shard '" + shard + "', which lacks it",
                                    index);
            tensors.push_back(*t);
            where_.push_back({it->second, s.index_of(*t)});
        }
        if (json.contains("metadata") && json["metadata"].is_object())
            for (const auto& m : json["metadata"].items())
                metadata.emplace_back(m.key(), m.value().is_string() ? m.value().get<std::string>() : m.value().dump());
        index_names();
    }

    void stream(std::size_t i, const byte_consumer& consume, std::size_t chunk) const override {
        shards_[where_[i].first]->stream(where_[i].second, consume, chunk);
    }

private:
    std::vector<std::unique_ptr<safetensors_reader>> shards_;
    std::vector<std::pair<std::size_t, std::size_t>> where_;  // per tensor: shard, index in the shard
};

}  // namespace ckpt::detail
