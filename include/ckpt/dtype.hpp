#pragma once
// Element types and shapes of tensor entries, as the file records them.

#include <algorithm>
#include <array>
#include <complex>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>

#include <Eigen/Core>

#include <ckpt/detail/config.hpp>

namespace ckpt {

/// Element type of a tensor entry. The numeric values are part of the file format: never renumber.
enum class dtype : std::uint8_t {
    bytes = 0,  // opaque bytes: serialized and text entries
    boolean = 1,
    int8 = 2,
    int16 = 3,
    int32 = 4,
    int64 = 5,
    uint8 = 6,
    uint16 = 7,
    uint32 = 8,
    uint64 = 9,
    float16 = 10,
    bfloat16 = 11,
    float32 = 12,
    float64 = 13,
    complex64 = 14,
    complex128 = 15,
};

/// `ckpt::dtype_size(ckpt::dtype::float32) == 4`
constexpr std::size_t dtype_size(dtype t) noexcept {
    switch (t) {
        case dtype::bytes:
        case dtype::boolean:
        case dtype::int8:
        case dtype::uint8:
            return 1;
        case dtype::int16:
        case dtype::uint16:
        case dtype::float16:
        case dtype::bfloat16:
            return 2;
        case dtype::int32:
        case dtype::uint32:
        case dtype::float32:
            return 4;
        case dtype::int64:
        case dtype::uint64:
        case dtype::float64:
        case dtype::complex64:
            return 8;
        case dtype::complex128:
            return 16;
    }
    return 0;
}

/// `ckpt::dtype_name(ckpt::dtype::float32) == "float32"`
constexpr const char* dtype_name(dtype t) noexcept {
    switch (t) {
        case dtype::bytes:
            return "bytes";
        case dtype::boolean:
            return "bool";
        case dtype::int8:
            return "int8";
        case dtype::int16:
            return "int16";
        case dtype::int32:
            return "int32";
        case dtype::int64:
            return "int64";
        case dtype::uint8:
            return "uint8";
        case dtype::uint16:
            return "uint16";
        case dtype::uint32:
            return "uint32";
        case dtype::uint64:
            return "uint64";
        case dtype::float16:
            return "float16";
        case dtype::bfloat16:
            return "bfloat16";
        case dtype::float32:
            return "float32";
        case dtype::float64:
            return "float64";
        case dtype::complex64:
            return "complex64";
        case dtype::complex128:
            return "complex128";
    }
    return "unknown";
}

/// Whether a byte read from a file names a dtype: `ckpt::is_valid_dtype(3)`
constexpr bool is_valid_dtype(std::uint8_t raw) noexcept { return raw <= 15; }

namespace detail {
// A count from the file (std::uint64_t) as a std::size_t. A function template: the same cast
// written inline is a "useless cast" to g++'s -Wuseless-cast where the two types coincide.
template <class From>
constexpr std::size_t to_size(From n) noexcept {
    return static_cast<std::size_t>(n);
}

template <class T>
struct always_false : std::false_type {};

template <class T>
constexpr dtype dtype_of_impl() {
    if constexpr (std::is_same_v<T, bool>)
        return dtype::boolean;
    else if constexpr (std::is_integral_v<T>) {
        constexpr bool s = std::is_signed_v<T>;
        if constexpr (sizeof(T) == 1)
            return s ? dtype::int8 : dtype::uint8;
        else if constexpr (sizeof(T) == 2)
            return s ? dtype::int16 : dtype::uint16;
        else if constexpr (sizeof(T) == 4)
            return s ? dtype::int32 : dtype::uint32;
        else if constexpr (sizeof(T) == 8)
            return s ? dtype::int64 : dtype::uint64;
        else
            static_assert(always_false<T>::value,
                          "ckpt: integers wider than 64 bits are not supported; store them as two 64-bit halves");
    } else if constexpr (std::is_same_v<T, float>)
        return dtype::float32;
    else if constexpr (std::is_same_v<T, double>)
        return dtype::float64;
    else if constexpr (std::is_same_v<T, Eigen::half>)
        return dtype::float16;
    else if constexpr (std::is_same_v<T, Eigen::bfloat16>)
        return dtype::bfloat16;
    else if constexpr (std::is_same_v<T, std::complex<float>>)
        return dtype::complex64;
    else if constexpr (std::is_same_v<T, std::complex<double>>)
        return dtype::complex128;
    else
        static_assert(always_false<T>::value,
                      "ckpt: this element type has no dtype (long double is not portable); use float or double");
}

template <class T, class = void>
struct has_dtype : std::false_type {};
template <class T>
struct has_dtype<T, std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, long double> && (sizeof(T) <= 8)>>
    : std::true_type {};
template <>
struct has_dtype<Eigen::half> : std::true_type {};
template <>
struct has_dtype<Eigen::bfloat16> : std::true_type {};
template <>
struct has_dtype<std::complex<float>> : std::true_type {};
template <>
struct has_dtype<std::complex<double>> : std::true_type {};
}  // namespace detail

/// True for the element types a tensor can hold: `static_assert(ckpt::is_element_v<float>);`
template <class T>
inline constexpr bool is_element_v = detail::has_dtype<std::remove_cv_t<T>>::value;

/// `ckpt::dtype_of<float>() == ckpt::dtype::float32`
template <class T>
constexpr dtype dtype_of() {
    return detail::dtype_of_impl<std::remove_cv_t<T>>();
}

/// The logical shape of a tensor entry: up to `shape::max_rank` dimensions, outermost first.
class shape {
public:
    /// The largest rank a file can hold.
    static constexpr std::size_t max_rank = 8;

    constexpr shape() = default;
    /// `ckpt::shape s{10, 128};`
    constexpr shape(std::initializer_list<std::uint64_t> dims) {
        for (auto d : dims) push_back(d);
    }
    /// Number of dimensions: `ckpt::shape{2, 3}.rank() == 2`
    constexpr std::size_t rank() const noexcept { return rank_; }
    /// Dimension i, outermost first: `s[0]`
    constexpr std::uint64_t operator[](std::size_t i) const noexcept { return dims_[i]; }
    /// Dimension i, outermost first: `s[0]`
    constexpr std::uint64_t& operator[](std::size_t i) noexcept { return dims_[i]; }
    /// `for (auto d : s) ...`
    constexpr const std::uint64_t* begin() const noexcept { return dims_.data(); }
    /// End of the dimensions.
    constexpr const std::uint64_t* end() const noexcept { return dims_.data() + rank_; }
    /// Appends a dimension: `s.push_back(3);`
    constexpr void push_back(std::uint64_t d) { dims_[rank_++] = d; }
    /// Sets the rank; dimensions beyond the old rank keep their value.
    constexpr void resize(std::size_t rank) { rank_ = rank; }

    /// Number of elements, or false in `ok` when the product overflows 64 bits.
    constexpr std::uint64_t elements(bool* ok = nullptr) const noexcept {
        std::uint64_t n = 1;
        bool fine = true;
        for (std::size_t i = 0; i < rank_; ++i) {
            if (dims_[i] != 0 && n > UINT64_MAX / dims_[i]) fine = false;
            n *= dims_[i];
        }
        if (ok) *ok = fine;
        return n;
    }
    /// "[10,128]"; "[]" for a scalar.
    std::string to_string() const;
    /// Same rank and dimensions: `ckpt::shape{2} == ckpt::shape{2}`
    friend constexpr bool operator==(const shape& a, const shape& b) noexcept {
        if (a.rank_ != b.rank_) return false;
        for (std::size_t i = 0; i < a.rank_; ++i)
            if (a.dims_[i] != b.dims_[i]) return false;
        return true;
    }
    /// Different rank or dimensions.
    friend constexpr bool operator!=(const shape& a, const shape& b) noexcept { return !(a == b); }

private:
    std::array<std::uint64_t, max_rank> dims_{};
    std::size_t rank_ = 0;
};

}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt {

CKPT_INLINE std::string shape::to_string() const {
    std::string s = "[";
    // Appended piece by piece: `"," + std::to_string(...)` trips g++ 12's -Wrestrict false
    // positive (GCC bug 105329) in users' -O2 -Werror builds.
    for (std::size_t i = 0; i < rank_; ++i) {
        if (i) s += ',';
        s += std::to_string(dims_[i]);
    }
    return s + "]";
}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
