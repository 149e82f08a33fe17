#pragma once
// The save side of the compile-time walk: turns a tracked object into blocks handed to a sink,
// `sink.block(path, kind, dtype, shape, column_major, data, size)`. Tensors point at the object's
// own memory; everything else is encoded into a scratch buffer that the sink must consume (write
// or copy) before returning.

#include <algorithm>
#include <charconv>
#include <locale>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/kinds/archive.hpp>
#include <ckpt/detail/kinds/classify.hpp>
#include <ckpt/detail/keys.hpp>

namespace ckpt::detail {

/// Where a save walk puts its blocks. An interface, not a template parameter of the walk: the
/// walk is instantiated once per tracked type rather than once per type and sink (a checkpoint has
/// two sinks: the file and the snapshot of an asynchronous save).
class block_sink {
public:
    virtual ~block_sink() = default;
    virtual void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major,
                       const void* data, std::size_t size) = 0;
};

/// Any Sink with that `block` member, as a block_sink.
template <class Sink>
class block_sink_of final : public block_sink {
public:
    explicit block_sink_of(Sink& sink) : sink_(sink) {}
    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major,
               const void* data, std::size_t size) override {
        sink_.block(path, kind, type, dims, column_major, data, size);
    }

private:
    Sink& sink_;
};

/// The save walk over one tracked object, into a block_sink.
class save_walk {
public:
    save_walk(block_sink& sink, std::string root) : sink_(sink), path_(std::move(root)) {}

    template <class T>
    void visit(const T& obj) {
        require_checkpointable<T>();
        constexpr node kind = classify<T>();
        if constexpr (kind == node::tensor) {
            using traits = tensor_traits<T>;
            const shape dims = traits::shape_of(obj);
            sink_.block(path_, entry_kind::tensor, dtype_of<typename traits::element>(), dims, traits::column_major,
                        traits::data(obj), to_size(dims.elements()) * sizeof(typename traits::element));
        } else if constexpr (kind == node::sparse) {
            encode_sparse(obj, scratch_);
            const bool column_major = !(T::IsRowMajor);
            sink_.block(path_, entry_kind::sparse, dtype_of<typename T::Scalar>(),
                        shape{static_cast<std::uint64_t>(obj.rows()), static_cast<std::uint64_t>(obj.cols())},
                        column_major, scratch_.data(), scratch_.size());
        } else if constexpr (kind == node::text) {
            std::ostringstream os;
            os.imbue(std::locale::classic());
            os << obj;
            const std::string text = os.str();
            if constexpr (std::is_copy_constructible_v<T>) {
                // A parameter of inf or nan is written as "inf"/"nan", which operator>> does not
                // read: refused now rather than saved as a checkpoint that never restores.
                T copy = obj;
                std::istringstream is(text);
                is.imbue(std::locale::classic());
                is >> copy;
                if (is.fail() || !(is >> std::ws).eof())
                    throw error(
                        "cannot save: this random engine's or distribution's state does not read back (an infinite or "
                        "NaN parameter?): " +
                            text.substr(0, 200),
                        {}, path_);
            }
            opaque(entry_kind::text, text);
        } else if constexpr (kind == node::serialized) {
            scratch_.clear();
            {
                opaque_output_archive ar(scratch_);
                ar(obj);
            }
            opaque(entry_kind::serialized, scratch_);
        } else if constexpr (kind == node::structure) {
            walk_fields(*this, obj);
        } else if constexpr (kind == node::sequence) {
            const auto n = static_cast<std::uint64_t>(std::size(obj));
            using E = typename sequence_of<T>::element;
            if constexpr (!makes_an_entry<E>()) {
                if (n > max_entryless_bytes / sizeof(E))  // the restore's bound for them: see makes_an_entry
                    throw error("cannot save: " + std::to_string(n) +
                                    " elements of a struct with no fields are more than a restore accepts",
                                {}, path_);
            }
            sink_.block(path_, entry_kind::sequence, dtype::bytes, shape{n}, false, nullptr, 0);
            std::uint64_t i = 0;
            for (const auto& element : obj) {
                char digits[20];
                const auto end = std::to_chars(digits, digits + sizeof digits, i++).ptr;
                child(std::string_view(digits, static_cast<std::size_t>(end - digits)), element);
            }
        } else if constexpr (kind == node::mapping) {
            // Sorted, so that an unordered_map gives the same file every time.
            std::vector<std::pair<std::string, const typename T::mapped_type*>> items;
            items.reserve(obj.size());
            for (const auto& [key, value] : obj) items.emplace_back(key_text(key), &value);
            std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
            std::vector<std::string> keys;
            keys.reserve(items.size());
            for (const auto& item : items) keys.push_back(item.first);
            encode_keys(keys, scratch_);
            sink_.block(path_, entry_kind::mapping, dtype::bytes, shape{items.size()}, false, scratch_.data(),
                        scratch_.size());
            for (const auto& [key, value] : items) child(key_segment(key), *value);
        } else if constexpr (kind == node::nullable) {
            // A sequence of 0 or 1 elements: readers and the tool need no new entry kind.
            const bool present = static_cast<bool>(obj);
            sink_.block(path_, entry_kind::sequence, dtype::bytes, shape{present ? 1u : 0u}, false, nullptr, 0);
            if (present) child("0", *obj);
        }
    }

    /// A member of type M (see walk_fields).
    template <class M>
    static void visit_erased(save_walk& walk, void* member) {
        walk.visit(*static_cast<const M*>(member));
    }
    /// The members of a struct, in order: not a template, whatever the struct.
    void fields(const erased_field<save_walk>* list, std::size_t n);

private:
    template <class T>
    void child(std::string_view segment, const T& member) {
        const auto size = path_.size();
        path_ += '/';
        path_ += segment;
        visit(member);
        path_.resize(size);
    }
    void opaque(entry_kind kind, const std::string& bytes) {
        sink_.block(path_, kind, dtype::bytes, shape{bytes.size()}, false, bytes.data(), bytes.size());
    }

    block_sink& sink_;
    std::string path_;
    std::string scratch_;
};

/// The save walk into a Sink: `save_walker<file_writer>(writer, "model").visit(model);`
template <class Sink>
class save_walker {
public:
    save_walker(Sink& sink, std::string root) : sink_(sink), walk_(sink_, std::move(root)) {}
    template <class T>
    void visit(const T& obj) {
        walk_.visit(obj);
    }

private:
    block_sink_of<Sink> sink_;
    save_walk walk_;
};

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void save_walk::fields(const erased_field<save_walk>* list, std::size_t n) {
    walk_erased_fields(*this, path_, list, n);
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
