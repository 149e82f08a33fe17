#pragma once
// XXH3-64 from Debian's libxxhash-dev, compiled inline so nothing needs linking.

//
// On x86-64 without -mavx2, XXH3 is compiled for SSE2, whose long-input loop runs at about half
// the speed of the AVX2 one (measured 15 against 27-32 GB/s on our machines): on a restore from the
// page cache that made ckpt::in_place 0.69x a raw read of the same bytes, against 0.99x with the
// AVX2 loop. So the AVX2 loop is compiled too, behind a target attribute (as xxhash's own
// xxh_x86dispatch.c does), and chosen at run time when the CPU has AVX2. Both loops give the same
// digests. It uses xxhash internals, so only for the version they are taken from (0.8.1, Debian
// 12), and not when xxhash's implementation was already included or its vector unit was chosen.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__AVX2__) && \
    !defined(XXH_INLINE_ALL) && !defined(XXH_IMPLEM_13a8737387) && !defined(XXH_VECTOR) &&    \
    !defined(XXH_DISPATCH_AVX2) && !defined(XXH_TARGET_AVX2) && !defined(XXH_ACC_ALIGN)
#include <xxhash.h>  // declarations only (no XXH_INLINE_ALL yet): for XXH_VERSION_NUMBER
#if XXH_VERSION_NUMBER == 801
#define CKPT_DETAIL_XXH_AVX2
#define XXH_DISPATCH_AVX2 1
#define XXH_TARGET_AVX2 __attribute__((__target__("avx2")))
#define XXH_ACC_ALIGN 32  // the AVX2 loop loads its accumulators aligned
#include <immintrin.h>    // declares the AVX2 intrinsics whatever the -m flags
#endif
#endif
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#define CKPT_DETAIL_DEFINED_XXH_INLINE_ALL
#endif
#include <xxhash.h>
#ifdef CKPT_DETAIL_DEFINED_XXH_INLINE_ALL
#undef XXH_INLINE_ALL
#undef CKPT_DETAIL_DEFINED_XXH_INLINE_ALL
#endif
#ifdef CKPT_DETAIL_XXH_AVX2
#undef XXH_DISPATCH_AVX2
#undef XXH_TARGET_AVX2
#undef XXH_ACC_ALIGN
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

#ifdef CKPT_DETAIL_XXH_AVX2
inline bool cpu_has_avx2() noexcept {
    static const bool yes = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") != 0;
    }();
    return yes;
}
// XXH3_64bits of an input longer than XXH3_MIDSIZE_MAX, with the AVX2 loop.
__attribute__((__target__("avx2"))) inline std::uint64_t hash64_long_avx2(const void* data, std::size_t size) noexcept {
    return XXH3_hashLong_64b_internal(data, size, XXH3_kSecret, sizeof(XXH3_kSecret), XXH3_accumulate_512_avx2,
                                      XXH3_scrambleAcc_avx2);
}
// XXH3_64bits_update with the AVX2 loop.
__attribute__((__target__("avx2"))) inline void update_avx2(XXH3_state_t* state, const void* data,
                                                            std::size_t size) noexcept {
    XXH3_update(state, static_cast<const xxh_u8*>(data), size, XXH3_accumulate_512_avx2, XXH3_scrambleAcc_avx2);
}
#endif

inline std::uint64_t hash64(const void* data, std::size_t size) noexcept {
#ifdef CKPT_DETAIL_XXH_AVX2
    if (size > XXH3_MIDSIZE_MAX && cpu_has_avx2()) return hash64_long_avx2(data, size);
#endif
    return XXH3_64bits(data, size);
}

/// Streaming XXH3-64 over pieces; equal to hash64 of their concatenation.
class hasher {
public:
    hasher() noexcept { XXH3_64bits_reset(&state_); }
    void update(const void* data, std::size_t size) noexcept {
#ifdef CKPT_DETAIL_XXH_AVX2
        if (cpu_has_avx2()) return update_avx2(&state_, data, size);
#endif
        XXH3_64bits_update(&state_, data, size);
    }
    std::uint64_t digest() const noexcept;

private:
    XXH3_state_t state_;
};

// XXH3_64bits_digest, for xxhash 0.8.1, without the call that g++ 12 cannot compile at -Og: for a
// short total it calls XXH3_64bits_withSecret, whose long-input path (never taken there) passes
// always_inline functions by pointer, and g++ -Og stops with "inlining failed in call to
// 'always_inline'" (xxHash issue #800) in every program that includes ckpt. A short total hashed
// with the default secret, as hasher's, is XXH3_64bits of the buffered bytes.
inline std::uint64_t hasher::digest() const noexcept {
#if XXH_VERSION_NUMBER == 801
    const unsigned char* const secret = state_.extSecret == nullptr ? state_.customSecret : state_.extSecret;
    if (state_.totalLen > XXH3_MIDSIZE_MAX) {
        alignas(64) XXH64_hash_t acc[XXH_ACC_NB];
        XXH3_digest_long(acc, &state_, secret);
        return XXH3_mergeAccs(acc, secret + XXH_SECRET_MERGEACCS_START, state_.totalLen * XXH_PRIME64_1);
    }
    return XXH3_64bits(state_.buffer, static_cast<std::size_t>(state_.totalLen));
#else
    return XXH3_64bits_digest(&state_);
#endif
}

}  // namespace ckpt::detail
