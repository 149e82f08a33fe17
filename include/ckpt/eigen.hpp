#pragma once
// Eigen as tensor leaves: dense Matrix and Array (fixed and dynamic, either storage order), the
// unsupported Tensor module's Tensor and TensorFixedSize, and SparseMatrix (its own entry kind).
//
// Only Eigen/Core is included. The Tensor and Sparse modules cost more to compile than the rest of
// ckpt together, so their support is written over forward declarations: it is used once the
// program includes the module itself (<unsupported/Eigen/CXX11/Tensor>, <Eigen/SparseCore> or
// <Eigen/Sparse>), and costs nothing in a translation unit that does not.

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include <Eigen/Core>

// The modules' own declarations (SparseUtil.h, TensorForwardDeclarations.h) add the default
// arguments; a declaration without them may come before or after.
namespace Eigen {
template <typename Scalar, int Options, typename StorageIndex>
class SparseMatrix;
template <typename Scalar, int NumIndices, int Options, typename IndexType>
class Tensor;
template <typename Scalar, typename Dimensions, int Options, typename IndexType>
class TensorFixedSize;
}  // namespace Eigen

#include <ckpt/detail/config.hpp>
#include <ckpt/leaf.hpp>

namespace ckpt {

namespace detail {
inline bool fits_index(std::uint64_t d) {
    return d <= static_cast<std::uint64_t>(std::numeric_limits<Eigen::Index>::max());
}

// A dimension fixed at compile time must match; a dynamic one must match unless the object is
// empty (then it takes the saved shape), and must respect a compile-time maximum.
CKPT_INLINE bool dim_accepts(Eigen::Index fixed, Eigen::Index max, Eigen::Index current, bool empty,
                             std::uint64_t saved);
}  // namespace detail

/// Eigen::Matrix and Eigen::Array: vectors are rank 1, everything else rank 2 [rows, cols].
template <class T>
struct tensor_traits<
    T, std::enable_if_t<std::is_base_of_v<Eigen::PlainObjectBase<T>, T> && is_element_v<typename T::Scalar>>> {
    /// The element type of the stored tensor.
    using element = typename T::Scalar;
    /// Vectors (one dimension fixed to 1 at compile time) are stored with rank 1.
    static constexpr bool is_vector = T::RowsAtCompileTime == 1 || T::ColsAtCompileTime == 1;
    /// Number of dimensions of the stored tensor.
    static constexpr std::size_t rank = is_vector ? 1 : 2;
    /// Whether elements are stored column-major (Eigen's default for matrices).
    static constexpr bool column_major = !is_vector && !T::IsRowMajor;

    /// The object's current shape: `shape_of(m) == ckpt::shape{rows, cols}`.
    static shape shape_of(const T& t) {
        if constexpr (is_vector)
            return {static_cast<std::uint64_t>(t.size())};
        else
            return {static_cast<std::uint64_t>(t.rows()), static_cast<std::uint64_t>(t.cols())};
    }
    /// The first element, in the order of column_major.
    static const element* data(const T& t) { return t.data(); }
    /// The first element, in the order of column_major.
    static element* data(T& t) { return t.data(); }
    /// Whether a restore may give the object shape `s`: empty or resizable objects take the file's shape, sized ones
    /// must match.
    static bool accepts(const T& t, const shape& s) {
        const bool empty = t.size() == 0;
        if constexpr (is_vector)
            return detail::dim_accepts(T::SizeAtCompileTime, T::MaxSizeAtCompileTime, t.size(), empty, s[0]);
        else
            return detail::dim_accepts(T::RowsAtCompileTime, T::MaxRowsAtCompileTime, t.rows(), empty, s[0]) &&
                   detail::dim_accepts(T::ColsAtCompileTime, T::MaxColsAtCompileTime, t.cols(), empty, s[1]);
    }
    /// Gives the object shape `s`; called only when accepts() said yes.
    static void resize(T& t, const shape& s) {
        if constexpr (is_vector)
            t.resize(static_cast<Eigen::Index>(s[0]));
        else
            t.resize(static_cast<Eigen::Index>(s[0]), static_cast<Eigen::Index>(s[1]));
    }
};

/// Eigen::Tensor<Scalar, N>: rank N; an empty tensor takes the saved dimensions.
template <class S, int N, int Options, class I>
struct tensor_traits<Eigen::Tensor<S, N, Options, I>, std::enable_if_t<is_element_v<S>>> {
    /// The type this specialization describes.
    using type = Eigen::Tensor<S, N, Options, I>;
    /// The element type of the stored tensor.
    using element = S;
    /// Number of dimensions of the stored tensor.
    static constexpr std::size_t rank = static_cast<std::size_t>(N);
    static_assert(rank <= shape::max_rank, "ckpt: tensors of rank above 8 are not supported");
    /// Whether elements are stored column-major (Eigen's default for matrices).
    static constexpr bool column_major = !(Options & Eigen::RowMajor) && N > 1;

    /// The object's current shape: `shape_of(m) == ckpt::shape{rows, cols}`.
    static shape shape_of(const type& t) {
        shape s;
        for (std::size_t i = 0; i < rank; ++i) s.push_back(static_cast<std::uint64_t>(t.dimension(i)));
        return s;
    }
    /// The first element, in the order of column_major.
    static const S* data(const type& t) { return t.data(); }
    /// The first element, in the order of column_major.
    static S* data(type& t) { return t.data(); }
    /// Whether a restore may give the object shape `s`: empty or resizable objects take the file's shape, sized ones
    /// must match.
    static bool accepts(const type& t, const shape& s) {
        for (std::size_t i = 0; i < rank; ++i) {
            if (!detail::fits_index(s[i])) return false;
            if (t.size() != 0 && static_cast<std::uint64_t>(t.dimension(i)) != s[i]) return false;
        }
        return true;
    }
    /// Gives the object shape `s`; called only when accepts() said yes.
    static void resize(type& t, const shape& s) {
        std::array<I, static_cast<std::size_t>(N)> dims;  // Eigen::array is std::array since C++11
        for (std::size_t i = 0; i < rank; ++i) dims[i] = static_cast<I>(s[i]);
        t.resize(dims);
    }
};

/// Eigen::TensorFixedSize<Scalar, Eigen::Sizes<...>>: fixed dimensions that must match.
template <class S, class Dims, int Options, class I>
struct tensor_traits<Eigen::TensorFixedSize<S, Dims, Options, I>, std::enable_if_t<is_element_v<S>>> {
    /// The type this specialization describes.
    using type = Eigen::TensorFixedSize<S, Dims, Options, I>;
    /// The element type of the stored tensor.
    using element = S;
    /// Number of dimensions of the stored tensor.
    static constexpr std::size_t rank = static_cast<std::size_t>(type::NumIndices);
    /// Whether elements are stored column-major (Eigen's default for matrices).
    static constexpr bool column_major = !(Options & Eigen::RowMajor) && rank > 1;

    /// The object's current shape: `shape_of(m) == ckpt::shape{rows, cols}`.
    static shape shape_of(const type& t) {
        shape s;
        for (std::size_t i = 0; i < rank; ++i) s.push_back(static_cast<std::uint64_t>(t.dimension(i)));
        return s;
    }
    /// The first element, in the order of column_major.
    static const S* data(const type& t) { return t.data(); }
    /// The first element, in the order of column_major.
    static S* data(type& t) { return t.data(); }
    /// Whether a restore may give the object shape `s`: empty or resizable objects take the file's shape, sized ones
    /// must match.
    static bool accepts(const type& t, const shape& s) { return shape_of(t) == s; }
    /// Gives the object shape `s`; called only when accepts() said yes.
    static void resize(type&, const shape&) {}
};

namespace detail {

template <class T>
struct is_sparse : std::false_type {};
template <class S, int O, class I>
struct is_sparse<Eigen::SparseMatrix<S, O, I>> : std::bool_constant<is_element_v<S>> {};
template <class T>
inline constexpr bool is_sparse_v = is_sparse<std::remove_cv_t<T>>::value;

// A sparse entry's block: u64 nnz, i64 outer_starts[outer + 1], i64 inner_indices[nnz],
// values[nnz]. Indices are widened to 64 bits so the file does not depend on StorageIndex.
template <class S, int O, class I>
void encode_sparse(const Eigen::SparseMatrix<S, O, I>& m, std::string& out) {
    Eigen::SparseMatrix<S, O, I> compressed;
    const Eigen::SparseMatrix<S, O, I>* src = &m;
    if (!m.isCompressed()) {
        compressed = m;
        compressed.makeCompressed();
        src = &compressed;
    }
    const auto outer = static_cast<std::size_t>(src->outerSize());
    const auto nnz = static_cast<std::size_t>(src->nonZeros());
    out.resize(8 + 8 * (outer + 1) + 8 * nnz + sizeof(S) * nnz);
    char* p = out.data();
    auto put64 = [&p](std::uint64_t v) {
        std::memcpy(p, &v, 8);
        p += 8;
    };
    put64(nnz);
    for (std::size_t i = 0; i <= outer; ++i) put64(static_cast<std::uint64_t>(src->outerIndexPtr()[i]));
    for (std::size_t i = 0; i < nnz; ++i) put64(static_cast<std::uint64_t>(src->innerIndexPtr()[i]));
    if (nnz) std::memcpy(p, src->valuePtr(), sizeof(S) * nnz);
}

/// Rebuilds a sparse matrix from its block, checking every index; returns why not on failure.
template <class S, int O, class I>
std::string decode_sparse(std::string_view block, std::uint64_t rows, std::uint64_t cols,
                          Eigen::SparseMatrix<S, O, I>* out) {
    const bool row_major = (O & Eigen::RowMajor) != 0;
    const std::uint64_t outer = row_major ? rows : cols, inner = row_major ? cols : rows;
    if (!fits_index(rows) || !fits_index(cols) || outer > static_cast<std::uint64_t>(std::numeric_limits<I>::max()) ||
        inner > static_cast<std::uint64_t>(std::numeric_limits<I>::max()))
        return "sparse dimensions do not fit the matrix's index type";
    if (block.size() < 8) return "sparse block shorter than its header";
    std::uint64_t nnz;
    std::memcpy(&nnz, block.data(), 8);
    const std::uint64_t room = block.size() - 8;
    if (outer + 1 > room / 8 || nnz > (room - 8 * (outer + 1)) / (8 + sizeof(S)) ||
        room != 8 * (outer + 1) + (8 + sizeof(S)) * nnz)
        return "sparse block length does not match its nonzero count";
    const char* p = block.data() + 8;
    auto get64 = [&p] {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        p += 8;
        return v;
    };
    std::vector<std::uint64_t> starts(outer + 1);
    for (auto& s : starts) s = get64();
    if (starts[0] != 0 || starts[outer] != nnz) return "sparse outer starts do not span the nonzeros";
    for (std::uint64_t i = 0; i < outer; ++i)
        if (starts[i] > starts[i + 1]) return "sparse outer starts are not ascending";
    std::vector<std::uint64_t> indices(nnz);
    for (auto& x : indices) x = get64();
    for (std::uint64_t o = 0; o < outer; ++o)
        for (std::uint64_t k = starts[o]; k < starts[o + 1]; ++k)
            if (indices[k] >= inner || (k > starts[o] && indices[k] <= indices[k - 1]))
                return "sparse inner indices out of range or not strictly ascending";
    if (!out) return {};
    Eigen::SparseMatrix<S, O, I> m(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
    m.resizeNonZeros(static_cast<Eigen::Index>(nnz));
    for (std::uint64_t i = 0; i <= outer; ++i) m.outerIndexPtr()[i] = static_cast<I>(starts[i]);
    for (std::uint64_t i = 0; i < nnz; ++i) m.innerIndexPtr()[i] = static_cast<I>(indices[i]);
    if (nnz) std::memcpy(static_cast<void*>(m.valuePtr()), p, sizeof(S) * nnz);
    *out = std::move(m);
    return {};
}

}  // namespace detail
}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE bool dim_accepts(Eigen::Index fixed, Eigen::Index max, Eigen::Index current, bool empty,
                             std::uint64_t saved) {
    if (!fits_index(saved)) return false;
    const auto s = static_cast<Eigen::Index>(saved);
    if (fixed != Eigen::Dynamic) return s == fixed;
    if (max != Eigen::Dynamic && s > max) return false;
    return empty || s == current;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
