#pragma once
// ckpt::restore_mode: how a restore treats the file and the objects (strict, partial, in_place,
// verify_first, single_threaded, convert), combined with `|`.

#include <ckpt/detail/config.hpp>

namespace ckpt {

/// How a restore treats the file and the objects. Whatever the mode, a restore that fails leaves
/// every tracked object as it was: every check (entries, dtypes, shapes, container sizes and keys,
/// every block's checksum, bool bytes, the decoding of every opaque value) happens before the first
/// object changes. A tensor whose storage already has the file's shape (a resume into a model built
/// with its sizes) costs no extra memory: its block is verified first (read and checked, keeping
/// nothing), then read again straight into the object and checked again while it lands, so the
/// second read usually comes from the page cache. Should the file change between the two reads
/// (which a committed checkpoint never does unless another program writes or truncates it), the
/// landing fails with a ckpt::error (corrupt_error, io_error) that says some objects then hold the
/// file's values and others their own: restore again. Every other tensor (one that takes the
/// file's shape, bool tensors, blocks under a page) is read into new storage that the object then
/// takes by a swap. From its second restore on, a checkpoint keeps the storage such swaps replaced
/// until its next save (or restore, or its end), and the next restore stages into it.
/// The reads are shared among the threads of ckpt/threads.hpp (the caller's included) from 16 MiB
/// on, at least 8 MiB per thread, large blocks split between threads in whole chunks; any failure
/// is thrown on the calling thread once they are done, and is the one a read in order would meet
/// first.
///   strict (the default): every tracked object must be in the file, and non-empty containers must
///     have the file's size and keys (an empty one takes them).
///   partial: objects the file lacks are left as they are and listed in restore_status::missing();
///     containers restore the elements both have, keep the object's others and list them as missing.
///   in_place: tensor blocks are read straight into the objects (resized when their shape differs)
///     once everything else checked out, each read once: no extra memory, but a block whose checksum
///     fails is then found after earlier objects changed.
///   verify_first: with in_place (`ckpt::in_place | ckpt::verify_first`), every block is checked
///     against its checksum before any object changes, at the cost of reading it twice. Alone it
///     changes nothing: the default already checks every block first.
///   single_threaded: every block is read on the calling thread (as with ckpt::set_max_threads(1),
///     for this restore only).
/// Flags combine: `ck.restore(p, ckpt::partial | ckpt::in_place);`
///   convert: foreign files only (ckpt/foreign.hpp, `ckpt::convert`): float16, bfloat16, float32 and
///     float64 convert among themselves and integers widen, when the file's dtype is not the object's.
enum class restore_mode : unsigned {
    strict = 0,
    partial = 1,
    verify_first = 2,
    in_place = 4,
    single_threaded = 8,
    convert = 16
};
/// `ck.restore(p, ckpt::strict)`, the default: every tracked object must be in the file.
inline constexpr restore_mode strict = restore_mode::strict;
/// `ck.restore(p, ckpt::partial).missing()`: objects the file lacks are left as they are.
inline constexpr restore_mode partial = restore_mode::partial;
/// `ck.restore(p, ckpt::in_place | ckpt::verify_first)`: in place, but every checksum checked first.
inline constexpr restore_mode verify_first = restore_mode::verify_first;
/// `ck.restore(p, ckpt::in_place)`: tensor blocks read straight into the objects (see restore_mode).
inline constexpr restore_mode in_place = restore_mode::in_place;
/// `ck.restore(p, ckpt::single_threaded)`: no helper threads read blocks (see restore_mode).
inline constexpr restore_mode single_threaded = restore_mode::single_threaded;
/// Combines modes: `ckpt::partial | ckpt::in_place`
constexpr restore_mode operator|(restore_mode a, restore_mode b) noexcept {
    return static_cast<restore_mode>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}

namespace detail {
constexpr bool includes(restore_mode mode, restore_mode flag) noexcept {
    return (static_cast<unsigned>(mode) & static_cast<unsigned>(flag)) != 0;
}
}  // namespace detail

}  // namespace ckpt
