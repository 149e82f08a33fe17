#pragma once
// The path lookup of a checkpoint file's index: an open-addressing table over entry indices. A
// restore looks up a path per leaf, which must stay cheap for 100k entries; std::unordered_map's
// node chasing is not. Building it is also where a duplicate entry path is found.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/layout.hpp>

namespace ckpt::detail {

class path_index {
public:
    /// Indexes `entries` (at most UINT32_MAX - 1); a path that is there twice fails `in`.
    void build(const std::vector<entry_info>& entries, index_parser& in);

    /// The entry of `entries` (those it was built over) at `path`, or nullptr.
    const entry_info* find(const std::vector<entry_info>& entries, std::string_view path) const;

private:
    std::vector<std::uint32_t> slots_;  // entry index + 1; 0 = empty
    std::vector<std::uint64_t> hashes_;
    std::size_t mask_ = 0;
    mutable std::size_t next_ = 0;  // the entry after the last one found
};

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
#include <ckpt/detail/hash.hpp>  // XXH3, needed by the definitions only

namespace ckpt::detail {

CKPT_INLINE void path_index::build(const std::vector<entry_info>& entries, index_parser& in) {
    std::size_t capacity = 16;
    while (capacity < 2 * entries.size()) capacity *= 2;
    slots_.assign(capacity, 0);
    mask_ = capacity - 1;
    hashes_.resize(entries.size());
    for (std::size_t e = 0; e < entries.size(); ++e)
        hashes_[e] = hash64(entries[e].path.data(), entries[e].path.size());
    // The slots are visited in random order and the table outgrows the caches for large indexes:
    // the slot of a later entry is requested while this one is inserted.
    constexpr std::size_t ahead = 16;
    for (std::size_t e = 0; e < entries.size(); ++e) {
#if defined(__GNUC__)
        if (e + ahead < entries.size()) __builtin_prefetch(&slots_[hashes_[e + ahead] & mask_]);
#endif
        const auto& path = entries[e].path;
        const std::uint64_t h = hashes_[e];
        std::size_t i = h & mask_;
        for (; slots_[i] != 0; i = (i + 1) & mask_)
            if (hashes_[slots_[i] - 1] == h && entries[slots_[i] - 1].path == path)
                in.fail("duplicate entry path '" + path + "'");
        slots_[i] = static_cast<std::uint32_t>(e + 1);
    }
}

CKPT_INLINE const entry_info* path_index::find(const std::vector<entry_info>& entries, std::string_view path) const {
    // A restore asks for entries in the order they were written: try the one after the last hit
    // before hashing.
    if (next_ < entries.size() && entries[next_].path == path) return &entries[next_++];
    if (slots_.empty()) return nullptr;
    const std::uint64_t h = hash64(path.data(), path.size());
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
        const std::uint32_t slot = slots_[i];
        if (slot == 0) return nullptr;
        if (hashes_[slot - 1] == h && entries[slot - 1].path == path) {
            next_ = slot;
            return &entries[slot - 1];
        }
    }
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
