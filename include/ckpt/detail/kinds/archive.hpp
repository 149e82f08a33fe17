#pragma once
// The cereal archives behind opaque entries. Binary, native byte order (the file header records
// it), written into a reusable buffer. The input archive reads from one entry's bytes and refuses
// any size tag larger than the bytes that remain, so a hostile entry cannot make a container
// allocate beyond what the file holds (cereal's own binary archive trusts them: its issues #103, #377).
// One byte per element is not enough of a bound when elements are large (a replay buffer of
// std::array<float, 7056>: 20 KB of file would reserve 555 MB), so std::vector, std::deque and
// std::list are loaded here instead of by cereal: the count is bounded by the elements' smallest
// encoded size, and the container grows as elements are actually read.

#include <array>
#include <complex>
#include <cstdint>
#include <cstring>
#include <deque>
#include <list>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/bool_bytes.hpp>
#include <ckpt/dtype.hpp>

#include <cereal/cereal.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/bitset.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/common.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

namespace ckpt::detail {

class opaque_output_archive : public cereal::OutputArchive<opaque_output_archive, cereal::AllowEmptyClassElision> {
public:
    explicit opaque_output_archive(std::string& out)
        : cereal::OutputArchive<opaque_output_archive, cereal::AllowEmptyClassElision>(this), out_(out) {}
    void saveBinary(const void* data, std::size_t size) { out_.append(static_cast<const char*>(data), size); }

private:
    std::string& out_;
};

/// Thrown inside cereal's load functions when the bytes cannot be a value; the caller adds the file
/// and entry to the message.
struct opaque_load_error {
    std::string what;
};

class opaque_input_archive : public cereal::InputArchive<opaque_input_archive, cereal::AllowEmptyClassElision> {
public:
    explicit opaque_input_archive(std::string_view in)
        : cereal::InputArchive<opaque_input_archive, cereal::AllowEmptyClassElision>(this), in_(in) {}
    void loadBinary(void* data, std::size_t size);
    std::size_t remaining() const noexcept { return in_.size(); }
    /// Refuses a count of elements that, at `element_bytes` each at least, the entry cannot hold.
    void check_count(std::uint64_t count, std::size_t element_bytes) const;

private:
    std::string_view in_;
};

template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(opaque_output_archive& ar, const T& t) {
    ar.saveBinary(&t, sizeof(t));
}
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(opaque_input_archive& ar, T& t) {
    if constexpr (std::is_same_v<T, bool>) {
        // A byte other than 0 or 1 read into a bool is undefined behaviour.
        unsigned char byte = 0;
        ar.loadBinary(&byte, 1);
        if (!valid_bool_byte(byte)) throw opaque_load_error{"a bool holds the byte " + std::to_string(byte)};
        t = byte != 0;
    } else {
        ar.loadBinary(&t, sizeof(t));
    }
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(opaque_output_archive& ar, const cereal::NameValuePair<T>& t) {
    ar(t.value);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(opaque_input_archive& ar, cereal::NameValuePair<T>& t) {
    ar(t.value);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(opaque_output_archive& ar, const cereal::SizeTag<T>& t) {
    const auto size = static_cast<std::uint64_t>(t.size);
    ar.saveBinary(&size, sizeof(size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(opaque_input_archive& ar, cereal::SizeTag<T>& t) {
    std::uint64_t size = 0;
    ar.loadBinary(&size, sizeof(size));
    // Every element of a non-empty container takes at least one byte, so a larger count is a lie.
    if (size > ar.remaining())
        throw opaque_load_error{"a container size of " + std::to_string(size) + " exceeds the " +
                                std::to_string(ar.remaining()) + " bytes left in the entry"};
    t.size = static_cast<std::remove_reference_t<T>>(size);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(opaque_output_archive& ar, const cereal::BinaryData<T>& b) {
    ar.saveBinary(b.data, static_cast<std::size_t>(b.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(opaque_input_archive& ar, cereal::BinaryData<T>& b) {
    ar.loadBinary(b.data, static_cast<std::size_t>(b.size));
}

// The fewest bytes a value of T takes in the archive; 1 for types not known here (an empty class
// takes none, but the size tag's own bound already assumes one byte per element).
template <class T>
struct min_encoded_size : std::integral_constant<std::size_t, 1> {};
template <class T>
inline constexpr std::size_t min_encoded_size_v = std::is_arithmetic_v<T> ? sizeof(T) : min_encoded_size<T>::value;
template <class T, std::size_t N>
struct min_encoded_size<std::array<T, N>> : std::integral_constant<std::size_t, N * min_encoded_size_v<T>> {};
template <class T>
struct min_encoded_size<std::complex<T>> : std::integral_constant<std::size_t, 2 * sizeof(T)> {};
template <class A, class B>
struct min_encoded_size<std::pair<A, B>>
    : std::integral_constant<std::size_t, min_encoded_size_v<A> + min_encoded_size_v<B>> {};
template <class... Ts>
struct min_encoded_size<std::tuple<Ts...>>
    : std::integral_constant<std::size_t, (std::size_t{0} + ... + min_encoded_size_v<Ts>)> {};
// Containers with a size tag.
template <class C, class T, class A>
struct min_encoded_size<std::basic_string<C, T, A>> : std::integral_constant<std::size_t, 8> {};
template <class T, class A>
struct min_encoded_size<std::vector<T, A>> : std::integral_constant<std::size_t, 8> {};
template <class T, class A>
struct min_encoded_size<std::deque<T, A>> : std::integral_constant<std::size_t, 8> {};
template <class T, class A>
struct min_encoded_size<std::list<T, A>> : std::integral_constant<std::size_t, 8> {};

// Sequences grow as their elements are read: memory follows the bytes actually decoded.
template <class Seq>
void load_bounded_sequence(opaque_input_archive& ar, Seq& seq) {
    using T = typename Seq::value_type;
    cereal::size_type n = 0;
    ar(cereal::make_size_tag(n));
    ar.check_count(n, min_encoded_size_v<T>);
    seq.clear();
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool> &&
                  std::is_same_v<Seq, std::vector<T, typename Seq::allocator_type>>) {
        seq.resize(to_size(n));
        ar(cereal::binary_data(seq.data(), to_size(n) * sizeof(T)));
    } else {
        for (cereal::size_type i = 0; i < n; ++i) {
            seq.emplace_back();
            ar(seq.back());
        }
    }
}
// More specialized than cereal's own (the archive type is not a template parameter): chosen for
// this archive only. std::vector<bool> keeps cereal's, which reads one byte per element.
template <class T, class A>
std::enable_if_t<!std::is_same_v<T, bool>> CEREAL_LOAD_FUNCTION_NAME(opaque_input_archive& ar, std::vector<T, A>& v) {
    load_bounded_sequence(ar, v);
}
template <class T, class A>
void CEREAL_LOAD_FUNCTION_NAME(opaque_input_archive& ar, std::deque<T, A>& d) {
    load_bounded_sequence(ar, d);
}
template <class T, class A>
void CEREAL_LOAD_FUNCTION_NAME(opaque_input_archive& ar, std::list<T, A>& l) {
    load_bounded_sequence(ar, l);
}

template <class T>
inline constexpr bool is_cereal_serializable_v =
    cereal::traits::is_output_serializable<T, opaque_output_archive>::value&&
        cereal::traits::is_input_serializable<T, opaque_input_archive>::value;

}  // namespace ckpt::detail

CEREAL_REGISTER_ARCHIVE(ckpt::detail::opaque_output_archive)
CEREAL_REGISTER_ARCHIVE(ckpt::detail::opaque_input_archive)
CEREAL_SETUP_ARCHIVE_TRAITS(ckpt::detail::opaque_input_archive, ckpt::detail::opaque_output_archive)

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void opaque_input_archive::loadBinary(void* data, std::size_t size) {
    if (size > in_.size())
        throw opaque_load_error{"needs " + std::to_string(size) + " more bytes, the entry has " +
                                std::to_string(in_.size()) + " left"};
    if (size) std::memcpy(data, in_.data(), size);
    in_.remove_prefix(size);
}

CKPT_INLINE void opaque_input_archive::check_count(std::uint64_t count, std::size_t element_bytes) const {
    if (element_bytes > 1 && count > in_.size() / element_bytes)
        throw opaque_load_error{"a container of " + std::to_string(count) + " elements of at least " +
                                std::to_string(element_bytes) + " bytes each exceeds the " +
                                std::to_string(in_.size()) + " bytes left in the entry"};
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
