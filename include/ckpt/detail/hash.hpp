#pragma once
// XXH3-64 from Debian's libxxhash-dev, compiled inline so nothing needs linking.

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#define CKPT_DETAIL_DEFINED_XXH_INLINE_ALL
#endif
#include <xxhash.h>
#ifdef CKPT_DETAIL_DEFINED_XXH_INLINE_ALL
#undef XXH_INLINE_ALL
#undef CKPT_DETAIL_DEFINED_XXH_INLINE_ALL
#endif

#include <cstddef>
#include <cstdint>

namespace ckpt::detail {

// Fuzzers mutate bytes and would almost never get past a checksum; builds for fuzzing (the macro
// is the libFuzzer/OSS-Fuzz convention) check every structure but ignore checksum mismatches.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
inline constexpr bool checksums_enforced = false;
#else
inline constexpr bool checksums_enforced = true;
#endif

inline std::uint64_t hash64(const void* data, std::size_t size) noexcept { return XXH3_64bits(data, size); }

/// Streaming XXH3-64 over pieces; equal to hash64 of their concatenation.
class hasher {
public:
    hasher() noexcept { XXH3_64bits_reset(&state_); }
    void update(const void* data, std::size_t size) noexcept { XXH3_64bits_update(&state_, data, size); }
    std::uint64_t digest() const noexcept { return XXH3_64bits_digest(&state_); }

private:
    XXH3_state_t state_;
};

}  // namespace ckpt::detail
