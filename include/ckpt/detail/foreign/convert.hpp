#pragma once
// Element conversions that ckpt::convert allows: float16, bfloat16, float32 and float64 among
// themselves (rounded to nearest), and integer widening (every value representable), nothing else.

#include <cstdint>
#include <cstring>

#include <Eigen/Core>

#include <ckpt/dtype.hpp>

namespace ckpt::detail {

inline bool is_float_dtype(dtype t) noexcept {
    return t == dtype::float16 || t == dtype::bfloat16 || t == dtype::float32 || t == dtype::float64;
}
inline bool is_signed_int_dtype(dtype t) noexcept {
    return t == dtype::int8 || t == dtype::int16 || t == dtype::int32 || t == dtype::int64;
}
inline bool is_unsigned_int_dtype(dtype t) noexcept {
    return t == dtype::uint8 || t == dtype::uint16 || t == dtype::uint32 || t == dtype::uint64;
}

/// Whether ckpt::convert turns `from` into `to` (and they differ).
inline bool convertible(dtype from, dtype to) noexcept {
    if (from == to) return false;
    if (is_float_dtype(from) && is_float_dtype(to)) return true;
    const std::size_t a = dtype_size(from), b = dtype_size(to);
    if (is_signed_int_dtype(from)) return is_signed_int_dtype(to) && b > a;
    if (is_unsigned_int_dtype(from)) return (is_unsigned_int_dtype(to) && b > a) || (is_signed_int_dtype(to) && b > a);
    return false;
}

namespace convert_detail {
template <class T>
T load(const char* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
template <class T>
void store(char* p, T v) noexcept {
    std::memcpy(p, &v, sizeof v);
}
inline double load_float(dtype t, const char* p) noexcept {
    switch (t) {
        case dtype::float16:
            return static_cast<double>(static_cast<float>(load<Eigen::half>(p)));
        case dtype::bfloat16:
            return static_cast<double>(static_cast<float>(load<Eigen::bfloat16>(p)));
        case dtype::float32:
            return static_cast<double>(load<float>(p));
        default:
            return load<double>(p);
    }
}
inline void store_float(dtype t, char* p, double v) noexcept {
    switch (t) {
        // Via float: float16 and bfloat16 round from float, and float64 -> float32 -> half rounds twice
        // only where a double is exactly between two floats halfway between two halves (never mind).
        case dtype::float16:
            return store(p, Eigen::half(static_cast<float>(v)));
        case dtype::bfloat16:
            return store(p, Eigen::bfloat16(static_cast<float>(v)));
        case dtype::float32:
            return store(p, static_cast<float>(v));
        default:
            return store(p, v);
    }
}
inline std::int64_t load_int(dtype t, const char* p) noexcept {
    switch (t) {
        case dtype::int8:
            return load<std::int8_t>(p);
        case dtype::int16:
            return load<std::int16_t>(p);
        case dtype::int32:
            return load<std::int32_t>(p);
        case dtype::int64:
            return load<std::int64_t>(p);
        case dtype::uint8:
            return load<std::uint8_t>(p);
        case dtype::uint16:
            return load<std::uint16_t>(p);
        case dtype::uint32:
            return load<std::uint32_t>(p);
        default:
            return static_cast<std::int64_t>(load<std::uint64_t>(p));  // never widened to a signed type
    }
}
inline void store_int(dtype t, char* p, std::int64_t v) noexcept {
    switch (t) {
        case dtype::int16:
            return store(p, static_cast<std::int16_t>(v));
        case dtype::int32:
            return store(p, static_cast<std::int32_t>(v));
        case dtype::int64:
            return store(p, v);
        case dtype::uint16:
            return store(p, static_cast<std::uint16_t>(v));
        case dtype::uint32:
            return store(p, static_cast<std::uint32_t>(v));
        case dtype::uint64:
            return store(p, static_cast<std::uint64_t>(v));
        default:
            return store(p, static_cast<std::int8_t>(v));
    }
}
}  // namespace convert_detail

/// Converts `n` elements of `from` at `src` to `to` at `dst` (convertible(from, to) must hold).
inline void convert_elements(const char* src, dtype from, char* dst, dtype to, std::size_t n) noexcept {
    const std::size_t a = dtype_size(from), b = dtype_size(to);
    if (is_float_dtype(from))
        for (std::size_t i = 0; i < n; ++i)
            convert_detail::store_float(to, dst + i * b, convert_detail::load_float(from, src + i * a));
    else
        for (std::size_t i = 0; i < n; ++i)
            convert_detail::store_int(to, dst + i * b, convert_detail::load_int(from, src + i * a));
}

}  // namespace ckpt::detail
