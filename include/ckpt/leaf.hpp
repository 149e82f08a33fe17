#pragma once
// What a tensor leaf is. A type is stored as a raw tensor block when `ckpt::tensor_traits<T>` is
// specialized for it; this header covers scalars, std::vector and std::array of elements and C
// arrays, eigen.hpp covers Eigen. Users may specialize tensor_traits for their own tensor types:
//
//   template <> struct ckpt::tensor_traits<my_tensor> {
//       using element = float;                    // a type with a dtype (see dtype.hpp)
//       static constexpr std::size_t rank = 2;
//       static constexpr bool column_major = false;
//       static ckpt::shape shape_of(const my_tensor&);
//       // The tensor's own contiguous storage, not a copy: an asynchronous save reads it after
//       // the walk, while the caller is still in the save.
//       static const float* data(const my_tensor&);
//       static float* data(my_tensor&);
//       // May `t` take on shape `s` when restored (resizable, or already of that shape)?
//       static bool accepts(const my_tensor& t, const ckpt::shape& s);
//       static void resize(my_tensor&, const ckpt::shape&);   // called only when accepts() said yes
//   };

#include <array>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <ckpt/dtype.hpp>

namespace ckpt {

/// Customization point: specialize to store a type as a raw tensor. Left undefined for non-tensors.
template <class T, class = void>
struct tensor_traits;

namespace detail {
template <class T, class = void>
struct is_tensor : std::false_type {};
template <class T>
struct is_tensor<T, std::void_t<decltype(sizeof(tensor_traits<T>))>> : std::true_type {};
}  // namespace detail

/// `static_assert(ckpt::is_tensor_v<std::vector<float>>);`
template <class T>
inline constexpr bool is_tensor_v = detail::is_tensor<std::remove_cv_t<T>>::value;

/// Scalars: rank 0.
template <class T>
struct tensor_traits<T, std::enable_if_t<is_element_v<T>>> {
    /// The element type of the stored tensor.
    using element = T;
    /// Number of dimensions of the stored tensor.
    static constexpr std::size_t rank = 0;
    /// Whether elements are stored column-major (Eigen's default for matrices).
    static constexpr bool column_major = false;
    /// The object's current shape: `shape_of(m) == ckpt::shape{rows, cols}`.
    static shape shape_of(const T&) { return {}; }
    /// The first element, in the order of column_major.
    static const T* data(const T& t) { return &t; }
    /// The first element, in the order of column_major.
    static T* data(T& t) { return &t; }
    /// Whether a restore may give the object shape `s`: empty or resizable objects take the file's shape, sized ones
    /// must match.
    static bool accepts(const T&, const shape&) { return true; }
    /// Gives the object shape `s`; called only when accepts() said yes.
    static void resize(T&, const shape&) {}
};

/// std::vector of elements: rank 1; an empty one takes the file's size, a sized one must match it
/// (the rule for sizes of every container, docs/guide.md). std::vector<bool> is not contiguous and
/// goes through cereal instead.
template <class T, class A>
struct tensor_traits<std::vector<T, A>, std::enable_if_t<is_element_v<T> && !std::is_same_v<T, bool>>> {
    /// The element type of the stored tensor.
    using element = T;
    /// Number of dimensions of the stored tensor.
    static constexpr std::size_t rank = 1;
    /// Whether elements are stored column-major (Eigen's default for matrices).
    static constexpr bool column_major = false;
    /// The object's current shape: `shape_of(m) == ckpt::shape{rows, cols}`.
    static shape shape_of(const std::vector<T, A>& v) { return {v.size()}; }
    /// The first element, in the order of column_major.
    static const T* data(const std::vector<T, A>& v) { return v.data(); }
    /// The first element, in the order of column_major.
    static T* data(std::vector<T, A>& v) { return v.data(); }
    /// Whether a restore may give the object shape `s`: empty or resizable objects take the file's shape, sized ones
    /// must match.
    static bool accepts(const std::vector<T, A>& v, const shape& s) { return v.empty() || v.size() == s[0]; }
    /// Gives the object shape `s`; called only when accepts() said yes.
    static void resize(std::vector<T, A>& v, const shape& s) { v.resize(detail::to_size(s[0])); }
};

/// std::array and C arrays of elements: rank 1, fixed size.
template <class T, std::size_t N>
struct tensor_traits<std::array<T, N>, std::enable_if_t<is_element_v<T>>> {
    /// The element type of the stored tensor.
    using element = T;
    /// Number of dimensions of the stored tensor.
    static constexpr std::size_t rank = 1;
    /// Whether elements are stored column-major (Eigen's default for matrices).
    static constexpr bool column_major = false;
    /// The object's current shape: `shape_of(m) == ckpt::shape{rows, cols}`.
    static shape shape_of(const std::array<T, N>&) { return {N}; }
    /// The first element, in the order of column_major.
    static const T* data(const std::array<T, N>& a) { return a.data(); }
    /// The first element, in the order of column_major.
    static T* data(std::array<T, N>& a) { return a.data(); }
    /// Whether a restore may give the object shape `s`: empty or resizable objects take the file's shape, sized ones
    /// must match.
    static bool accepts(const std::array<T, N>&, const shape& s) { return s[0] == N; }
    /// Gives the object shape `s`; called only when accepts() said yes.
    static void resize(std::array<T, N>&, const shape&) {}
};

/// C arrays of elements: rank 1, fixed size. `float w[4]; ckpt::track("w", w);`
template <class T, std::size_t N>
struct tensor_traits<T[N], std::enable_if_t<is_element_v<T>>> {
    /// The element type of the stored tensor.
    using element = T;
    /// Number of dimensions of the stored tensor.
    static constexpr std::size_t rank = 1;
    /// Whether elements are stored column-major (Eigen's default for matrices).
    static constexpr bool column_major = false;
    /// The object's current shape: `shape_of(m) == ckpt::shape{rows, cols}`.
    static shape shape_of(const T (&)[N]) { return {N}; }
    /// The first element, in the order of column_major.
    static const T* data(const T (&a)[N]) { return a; }
    /// The first element, in the order of column_major.
    static T* data(T (&a)[N]) { return a; }
    /// Whether a restore may give the object shape `s`: empty or resizable objects take the file's shape, sized ones
    /// must match.
    static bool accepts(const T (&)[N], const shape& s) { return s[0] == N; }
    /// Gives the object shape `s`; called only when accepts() said yes.
    static void resize(T (&)[N], const shape&) {}
};

}  // namespace ckpt
