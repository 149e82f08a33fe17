#pragma once
// The cereal archives behind opaque entries. Binary, native byte order (the file header records
// it), written into a reusable buffer. The input archive reads from one entry's bytes and refuses
// any size tag larger than the bytes that remain, so a hostile entry cannot make a container
// allocate beyond what the file holds (cereal's own binary archive trusts them: its issues #103, #377).

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

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
    void loadBinary(void* data, std::size_t size) {
        if (size > in_.size())
            throw opaque_load_error{"needs " + std::to_string(size) + " more bytes, the entry has " +
                                   std::to_string(in_.size()) + " left"};
        if (size) std::memcpy(data, in_.data(), size);
        in_.remove_prefix(size);
    }
    std::size_t remaining() const noexcept { return in_.size(); }

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
        if (byte > 1) throw opaque_load_error{"a bool holds the byte " + std::to_string(byte)};
        t = byte != 0;
    } else {
        ar.loadBinary(&t, sizeof(t));
    }
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(opaque_output_archive& ar, const cereal::NameValuePair<T>& t) { ar(t.value); }
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(opaque_input_archive& ar, cereal::NameValuePair<T>& t) { ar(t.value); }
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

template <class T>
inline constexpr bool is_cereal_serializable_v =
    cereal::traits::is_output_serializable<T, opaque_output_archive>::value &&
    cereal::traits::is_input_serializable<T, opaque_input_archive>::value;

}  // namespace ckpt::detail

CEREAL_REGISTER_ARCHIVE(ckpt::detail::opaque_output_archive)
CEREAL_REGISTER_ARCHIVE(ckpt::detail::opaque_input_archive)
CEREAL_SETUP_ARCHIVE_TRAITS(ckpt::detail::opaque_input_archive, ckpt::detail::opaque_output_archive)
