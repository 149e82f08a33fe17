#pragma once
// Whether the test program runs under AddressSanitizer. Its quarantine keeps freed memory from
// being reused, so a process's peak RSS grows by every byte it allocates, not by the most it held
// at once, and its runtime takes megabytes of its own: bounds on peak RSS are looser there.

namespace ckpt_test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool under_address_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool under_address_sanitizer = true;
#else
inline constexpr bool under_address_sanitizer = false;
#endif
#else
inline constexpr bool under_address_sanitizer = false;
#endif

}  // namespace ckpt_test
