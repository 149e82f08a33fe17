#pragma once
// The restore side of the walk, run twice over the same objects. The check pass changes nothing:
// it finds every entry, compares kinds, dtypes and shapes, decodes the small opaque values into
// copies, and collects every problem. Only when it found none does the apply pass resize objects
// and read blocks into their memory. So a mismatch never leaves an object half restored.

#include <algorithm>
#include <charconv>
#include <cstring>
#include <locale>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <ckpt/detail/archive.hpp>
#include <ckpt/detail/classify.hpp>
#include <ckpt/detail/keys.hpp>
#include <ckpt/format/file_reader.hpp>

namespace ckpt::detail {

struct restore_problem {
    std::string path;
    std::string what;
};

// Source is where entries come from: a file_reader, or anything with its find, index_of, entries,
// path and read_block (a sharded checkpoint's pieces, see detail/mpi_manifest.hpp).
template <class Source>
struct basic_restore_context {
    explicit basic_restore_context(Source& f, bool partial_mode)
        : file(f), partial(partial_mode), consumed(f.entries().size(), 0) {}
    Source& file;
    bool partial;
    bool apply = false;
    std::vector<restore_problem> problems;  // found by the check pass
    std::vector<std::string> missing;       // tracked paths the file lacks (partial mode)
    std::vector<char> consumed;             // per entry, set by the apply pass
    std::vector<const entry_info*> plan;    // the check pass's lookups, in visiting order
    std::size_t replayed = 0;
};
using restore_context = basic_restore_context<file_reader>;

inline std::string describe(const entry_info& e) {
    switch (e.kind) {
        case entry_kind::tensor: return std::string(dtype_name(e.dtype)) + " " + e.shape.to_string();
        case entry_kind::sparse: return std::string("sparse ") + dtype_name(e.dtype) + " " + e.shape.to_string();
        case entry_kind::sequence: return "a sequence of " + std::to_string(e.shape[0]) + " elements";
        case entry_kind::mapping: return "a map of " + std::to_string(e.shape[0]) + " elements";
        case entry_kind::serialized: return "a serialized value of " + std::to_string(e.length) + " bytes";
        case entry_kind::text: return "a random engine or distribution state";
    }
    return "an unknown entry";
}

/// Converts between row- and column-major element order of the same logical shape.
inline void reorder(const char* src, char* dst, const shape& s, std::size_t elem, bool src_column_major) {
    const std::size_t rank = s.rank();
    std::uint64_t row_major[shape::max_rank], column_major[shape::max_rank];
    for (std::uint64_t i = rank, stride = 1; i-- > 0; stride *= s[i]) row_major[i] = stride;
    for (std::uint64_t i = 0, stride = 1; i < rank; stride *= s[i], ++i) column_major[i] = stride;
    const std::uint64_t* src_stride = src_column_major ? column_major : row_major;
    const std::uint64_t* dst_stride = src_column_major ? row_major : column_major;
    std::uint64_t index[shape::max_rank] = {};
    std::uint64_t src_off = 0, dst_off = 0;
    for (std::uint64_t k = 0, n = s.elements(); k < n; ++k) {
        std::memcpy(dst + dst_off * elem, src + src_off * elem, elem);
        for (std::size_t i = rank; i-- > 0;) {
            if (++index[i] < s[i]) { src_off += src_stride[i]; dst_off += dst_stride[i]; break; }
            src_off -= src_stride[i] * (s[i] - 1);
            dst_off -= dst_stride[i] * (s[i] - 1);
            index[i] = 0;
        }
    }
}

template <class Source>
class basic_restore_walker {
public:
    basic_restore_walker(basic_restore_context<Source>& ctx, std::string root) : ctx_(ctx), path_(std::move(root)) {}

    template <class T>
    void visit(T& obj) {
        require_checkpointable<T>();
        constexpr node kind = classify<T>();
        const entry_info* e = nullptr;
        if constexpr (kind != node::structure) {
            // Both passes visit the same nodes in the same order: the apply pass replays the
            // lookups of the check pass instead of hashing every path again.
            if (ctx_.apply) e = ctx_.plan[ctx_.replayed++];
            else ctx_.plan.push_back(e = ctx_.file.find(path_));
            if (!e) return missing();
            if (ctx_.apply) ctx_.consumed[ctx_.file.index_of(*e)] = 1;
        }
        if constexpr (kind == node::tensor) tensor(obj, *e);
        else if constexpr (kind == node::sparse) sparse(obj, *e);
        else if constexpr (kind == node::text) text(obj, *e);
        else if constexpr (kind == node::serialized) serialized(obj, *e);
        else if constexpr (kind == node::structure)
            for_each_field(obj, [&](std::string_view name, auto& member) { child(name, member); });
        else if constexpr (kind == node::sequence) sequence(obj, *e);
        else if constexpr (kind == node::mapping) mapping(obj, *e);
    }

private:
    template <class T>
    void child(std::string_view segment, T& member) {
        // The apply pass replays the check pass's lookups and reports through entry paths: it
        // needs no path of its own, which saves building one per leaf.
        if (ctx_.apply) return visit(member);
        const auto size = path_.size();
        path_ += '/';
        path_ += segment;
        visit(member);
        path_.resize(size);
    }

    template <class T>
    void child_at(std::uint64_t index, T& member) {
        char digits[20];
        const auto end = std::to_chars(digits, digits + sizeof digits, index).ptr;
        child(std::string_view(digits, static_cast<std::size_t>(end - digits)), member);
    }

    void missing() {
        if (ctx_.apply) return;
        if (ctx_.partial) ctx_.missing.push_back(path_);
        else ctx_.problems.push_back({path_, "not found in the checkpoint"});
    }
    void problem(std::string what) { ctx_.problems.push_back({path_, std::move(what)}); }
    bool kind_is(const entry_info& e, entry_kind k, const std::string& object) {
        if (e.kind == k) return true;
        problem("checkpoint has " + describe(e) + ", object is " + object);
        return false;
    }

    template <class T>
    void tensor(T& obj, const entry_info& e) {
        using traits = tensor_traits<T>;
        using element = typename traits::element;
        if (!ctx_.apply) {
            if (e.kind != entry_kind::tensor || e.dtype != dtype_of<element>() || e.shape.rank() != traits::rank ||
                !traits::accepts(obj, e.shape))
                problem("checkpoint has " + describe(e) + ", object has " + dtype_name(dtype_of<element>()) + " " +
                        traits::shape_of(obj).to_string());
            return;
        }
        if (traits::shape_of(obj) != e.shape) traits::resize(obj, e.shape);
        auto* dest = reinterpret_cast<char*>(traits::data(obj));
        if (traits::rank < 2 || e.column_major == traits::column_major) {
            ctx_.file.read_block(e, dest);
        } else {
            std::unique_ptr<char[]> staging(new char[static_cast<std::size_t>(e.length)]);
            ctx_.file.read_block(e, staging.get());
            reorder(staging.get(), dest, e.shape, sizeof(element), e.column_major);
        }
        if constexpr (std::is_same_v<element, bool>) {
            // Any byte but 0 or 1 in a bool is undefined behaviour; the checksum cannot tell us intent.
            for (std::uint64_t i = 0; i < e.length; ++i)
                if (static_cast<unsigned char>(dest[i]) > 1)
                    throw corrupt_error("bool tensor holds a byte that is neither 0 nor 1", ctx_.file.path(), e.path);
        }
    }

    template <class T>
    void sparse(T& obj, const entry_info& e) {
        using S = typename T::Scalar;
        if (!ctx_.apply) {
            const std::string object = std::string("sparse ") + dtype_name(dtype_of<S>()) + " [" + std::to_string(obj.rows()) +
                                       "," + std::to_string(obj.cols()) + "]";
            const bool empty = obj.rows() == 0 && obj.cols() == 0;
            if (e.kind != entry_kind::sparse || e.dtype != dtype_of<S>() ||
                (!empty && (e.shape[0] != static_cast<std::uint64_t>(obj.rows()) || e.shape[1] != static_cast<std::uint64_t>(obj.cols()))))
                return problem("checkpoint has " + describe(e) + ", object has " + object);
            if (e.column_major == static_cast<bool>(T::IsRowMajor))
                return problem(std::string("checkpoint has a ") + (e.column_major ? "column" : "row") +
                               "-major sparse matrix, object is " + (e.column_major ? "row" : "column") + "-major");
            const std::string why = decode_sparse<S, T::Options, typename T::StorageIndex>(ctx_.file.read_block(e), e.shape[0], e.shape[1], nullptr);
            if (!why.empty()) throw corrupt_error(why, ctx_.file.path(), e.path);
            return;
        }
        (void)decode_sparse(ctx_.file.read_block(e), e.shape[0], e.shape[1], &obj);
    }

    template <class T>
    void text(T& obj, const entry_info& e) {
        if (!ctx_.apply && !kind_is(e, entry_kind::text, "a random engine or distribution")) return;
        const std::string bytes = ctx_.file.read_block(e);
        auto parse = [&](T& into) {
            std::istringstream is(bytes);
            is.imbue(std::locale::classic());
            is >> into;
            return !is.fail() && (is >> std::ws).eof();
        };
        if (ctx_.apply) {
            parse(obj);
        } else if (T copy = obj; !parse(copy)) {
            problem("the saved state does not parse as this engine or distribution type");
        }
    }

    template <class T>
    void serialized(T& obj, const entry_info& e) {
        if (!ctx_.apply && !kind_is(e, entry_kind::serialized, "a serialized value")) return;
        const std::string bytes = ctx_.file.read_block(e);
        auto load = [&](T& into) -> std::string {
            try {
                opaque_input_archive ar(bytes);
                ar(into);
                if (ar.remaining() != 0)
                    return std::to_string(ar.remaining()) + " bytes left over after reading the value: it was saved as another type";
            } catch (const opaque_load_error& u) {
                return "the saved bytes do not hold a value of this type (" + u.what + ")";
            } catch (const cereal::Exception& x) {
                return std::string("the saved bytes do not hold a value of this type (") + x.what() + ")";
            }
            return {};
        };
        if (ctx_.apply) {
            const std::string why = load(obj);
            if (!why.empty()) throw corrupt_error(why, ctx_.file.path(), e.path);
        } else if constexpr (std::is_copy_constructible_v<T>) {
            T copy = obj;
            if (std::string why = load(copy); !why.empty()) problem(why);
        }
    }

    template <class T>
    void sequence(T& obj, const entry_info& e) {
        using seq = sequence_of<T>;
        using E = typename seq::element;
        if (!ctx_.apply && !kind_is(e, entry_kind::sequence, "a sequence")) return;
        const std::uint64_t n = e.shape[0];
        if constexpr (seq::fixed) {
            if (n != seq::size) {
                if (!ctx_.apply) problem("checkpoint has " + std::to_string(n) + " elements, object holds " + std::to_string(seq::size));
                return;
            }
            for (std::uint64_t i = 0; i < n; ++i) child_at(i, obj[i]);
        } else {
            static_assert(std::is_default_constructible_v<E>, "ckpt: elements of a restored std::vector must be default-constructible");
            if (!ctx_.apply) {
                // Every element has at least its own entry: a larger count cannot be honest.
                if (n > ctx_.file.entries().size()) throw corrupt_error("sequence claims " + std::to_string(n) + " elements, more than the file has entries", ctx_.file.path(), e.path);
                std::unique_ptr<E> fresh;
                for (std::uint64_t i = 0; i < n; ++i) {
                    if (i < obj.size()) child_at(i, obj[i]);
                    else {
                        if (!fresh) fresh = std::make_unique<E>();
                        child_at(i, *fresh);
                    }
                }
                return;
            }
            obj.resize(static_cast<std::size_t>(n));
            for (std::uint64_t i = 0; i < n; ++i) child_at(i, obj[i]);
        }
    }

    template <class T>
    void mapping(T& obj, const entry_info& e) {
        using key_type = typename T::key_type;
        using E = typename T::mapped_type;
        if (!ctx_.apply && !kind_is(e, entry_kind::mapping, "a map")) return;
        std::vector<std::string> texts;
        if (!decode_keys(ctx_.file.read_block(e), e.shape[0], texts))
            throw corrupt_error("map key list does not agree with its element count", ctx_.file.path(), e.path);
        std::vector<key_type> keys(texts.size());
        for (std::size_t i = 0; i < texts.size(); ++i)
            if (!parse_key(texts[i], keys[i])) {
                if (!ctx_.apply) problem("checkpoint has map key '" + texts[i] + "', which is not a key of this map's type");
                return;
            }
        if (!ctx_.apply) {
            std::unique_ptr<E> fresh;
            for (std::size_t i = 0; i < keys.size(); ++i) {
                auto it = obj.find(keys[i]);
                if (it != obj.end()) child(key_segment(texts[i]), it->second);
                else {
                    if (!fresh) fresh = std::make_unique<E>();
                    child(key_segment(texts[i]), *fresh);
                }
            }
            return;
        }
        // The map's keys follow the file: keys it lacks are dropped, new ones default-constructed.
        std::vector<key_type> sorted = keys;
        std::sort(sorted.begin(), sorted.end());
        for (auto it = obj.begin(); it != obj.end();) {
            if (!std::binary_search(sorted.begin(), sorted.end(), it->first)) it = obj.erase(it);
            else ++it;
        }
        for (std::size_t i = 0; i < keys.size(); ++i) child(key_segment(texts[i]), obj[keys[i]]);
    }

    basic_restore_context<Source>& ctx_;
    std::string path_;
};
using restore_walker = basic_restore_walker<file_reader>;

}  // namespace ckpt::detail
