#pragma once
// The restore from a foreign file (ckpt::restore_foreign): the restore source that presents its
// tensors to the restore walk under the tracked entry paths, converted and transposed as asked.

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include <ckpt/foreign.hpp>
#include <ckpt/detail/foreign/bridge.hpp>
#include <ckpt/detail/foreign/convert.hpp>
#include <ckpt/detail/foreign/foreign_file.hpp>
#include <ckpt/detail/foreign/reader.hpp>
#include <ckpt/detail/suggest.hpp>

namespace ckpt {

namespace detail {

/// What a save walk says about the tracked entries: their paths, kinds, dtypes and shapes (tensors'
/// bytes stay where they are).
struct schema_sink final : block_sink {
    std::vector<entry_info> entries;
    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major, const void*,
               std::size_t size) override {
        entry_info e;
        e.path = std::string(path);
        e.kind = kind;
        e.dtype = type;
        e.shape = dims;
        e.column_major = column_major;
        e.length = size;
        entries.push_back(std::move(e));
    }
};

/// A foreign file's tensors as the restore walk's entries: named by the tracked entry paths the name
/// map gives them, in the tracked dtype where ckpt::convert converts, transposed tensors presented as
/// the column-major transpose (the same bytes). Tensors nothing maps to keep their foreign name, so
/// restore_status::unused() lists them.
class foreign_source final : public restore_source {
public:
    struct origin {
        std::size_t tensor;  // in the foreign file
        dtype stored;        // the file's dtype (converted when not the entry's)
    };

    explicit foreign_source(const foreign_file& f) : file_(f) {}

    /// Adds an entry the walk finds under `key` (none: only listed as unused when not consumed).
    void add(entry_info e, origin o, const std::string* key) {
        if (key) by_path_.emplace(*key, entries_.size());
        entries_.push_back(std::move(e));
        origins_.push_back(o);
    }
    bool has(const std::string& path) const { return by_path_.count(path) != 0; }
    /// Whether some findable path is `prefix` or starts with `prefix` + '/'.
    bool has_under(const std::string& prefix) const {
        if (has(prefix)) return true;
        const std::string head = prefix + "/";
        for (const auto& p : by_path_)
            if (p.first.compare(0, head.size(), head) == 0) return true;
        return false;
    }

    const std::filesystem::path& path() const noexcept override { return file_.path(); }
    const std::vector<entry_info>& entries() const noexcept override { return entries_; }
    const entry_info* find(std::string_view path) const override {
        const auto it = by_path_.find(std::string(path));
        return it == by_path_.end() ? nullptr : &entries_[it->second];
    }
    std::size_t index_of(const entry_info& e) const noexcept override {
        return static_cast<std::size_t>(&e - entries_.data());
    }
    void read_block(const entry_info& e, void* dest) override {
        if (e.kind != entry_kind::tensor) return;  // a sequence made up for the walk: no bytes
        const origin& o = origins_[index_of(e)];
        const foreign_tensor& t = file_.tensors()[o.tensor];
        char* out = static_cast<char*>(dest);
        if (o.stored == e.dtype) return file_.read(t, dest);
        // Converted piece by piece; an element split between two pieces waits in `carry`.
        const std::size_t in = dtype_size(o.stored), outsize = dtype_size(e.dtype);
        char carry[16];
        std::size_t carried = 0;
        file_.read(t, [&](const void* p, std::size_t n) {
            const char* src = static_cast<const char*>(p);
            if (carried) {
                const std::size_t take = std::min(in - carried, n);
                std::memcpy(carry + carried, src, take);
                carried += take, src += take, n -= take;
                if (carried < in) return;
                convert_elements(carry, o.stored, out, e.dtype, 1);
                out += outsize;
                carried = 0;
            }
            const std::size_t whole = n / in;
            convert_elements(src, o.stored, out, e.dtype, whole);
            out += whole * outsize;
            carried = n - whole * in;
            std::memcpy(carry, src + whole * in, carried);
        });
    }
    std::string read_block(const entry_info& e) override {
        std::string bytes(static_cast<std::size_t>(e.length), '\0');
        read_block(e, bytes.data());
        return bytes;
    }
    void verify_block(const entry_info&) override {}  // nothing to check before reading: no checksums

private:
    const foreign_file& file_;
    std::vector<entry_info> entries_;
    std::vector<origin> origins_;
    std::unordered_map<std::string, std::size_t> by_path_;
};

/// The closest foreign names to `name` for a "did you mean".
inline std::string suggest_foreign(const std::string& name, const std::vector<foreign_tensor>& tensors) {
    std::string best;
    std::size_t best_distance = name.size() / 2 + 1;
    for (const auto& t : tensors) {
        const std::size_t d = edit_distance(name, t.name);
        if (d < best_distance) best_distance = d, best = t.name;
    }
    return best.empty() ? std::string() : " (did you mean '" + best + "'?)";
}

inline std::string foreign_problems(const std::vector<std::pair<std::string, std::string>>& problems) {
    std::string what = problems.front().second;
    for (std::size_t i = 1; i < problems.size() && i < 20; ++i)
        what += "\n  and entry '" + problems[i].first + "': " + problems[i].second;
    if (problems.size() > 20) what += "\n  and " + std::to_string(problems.size() - 20) + " more";
    return what;
}

}  // namespace detail

inline restore_status restore_foreign(any_checkpoint& ck, const std::filesystem::path& file, restore_mode mode,
                                      const name_map& names) {
    const foreign_file f(file);
    const std::vector<foreign_tensor>& tensors = f.tensors();
    const bool converting = detail::includes(mode, restore_mode::convert);
    const bool partial = detail::includes(mode, restore_mode::partial);

    // What the tracked objects hold (a save walk that copies nothing): their tensors' dtypes decide
    // conversions, and their paths give the foreign names.
    detail::schema_sink schema;
    detail::foreign_bridge::locked(ck, [&] { detail::foreign_bridge::save_walk(ck, schema); });

    // Every check that needs the foreign names comes here, before the walk (which changes nothing
    // either): the names the file lacks, transposes of what is not 2-D, dtypes without ckpt::convert.
    detail::foreign_source source(f);
    std::vector<std::pair<std::string, std::string>> problems;  // entry path, what
    std::vector<std::size_t> lacking;                           // problems that want a "did you mean"
    std::vector<char> used(tensors.size(), 0);
    for (const entry_info& want : schema.entries) {
        if (want.kind != entry_kind::tensor) continue;
        const std::string name = names.to_foreign(want.path);
        const foreign_tensor* t = f.find(name);
        if (!t) {
            if (!partial) {
                lacking.push_back(problems.size());
                problems.emplace_back(want.path, name);
            }
            continue;
        }
        const auto index = static_cast<std::size_t>(t - tensors.data());
        used[index] = 1;
        entry_info e;
        e.path = want.path;
        e.kind = entry_kind::tensor;
        e.dtype = t->dtype;
        e.shape = t->shape;
        e.column_major = t->fortran_order;
        if (names.is_transposed(want.path)) {
            if (t->shape.rank() != 2) {
                problems.emplace_back(want.path, "foreign tensor '" + name + "' is " + t->shape.to_string() +
                                                     ": ckpt::transposed needs a 2-D tensor");
                continue;
            }
            e.shape = shape{t->shape[1], t->shape[0]};  // the same bytes, read in the other order
            e.column_major = !t->fortran_order;
        }
        if (t->dtype != want.dtype) {
            if (converting && detail::convertible(t->dtype, want.dtype)) {
                e.dtype = want.dtype;
            } else {
                std::string what = "foreign tensor '" + name + "' is " + dtype_name(t->dtype) + ", the object " +
                                   dtype_name(want.dtype);
                if (detail::convertible(t->dtype, want.dtype))
                    what +=
                        ": to convert, restore with ckpt::convert (`ck.restore(file, ckpt::strict | "
                        "ckpt::convert, names)`)";
                else
                    what +=
                        ": ckpt::convert converts only among float16, bfloat16, float32 and float64, and "
                        "widens integers";
                problems.emplace_back(want.path, what);
                continue;
            }
        }
        e.length = e.shape.elements() * dtype_size(e.dtype);  // the file's bytes agree: checked when opened
        source.add(std::move(e), {index, t->dtype}, &want.path);
    }
    if (!problems.empty()) {
        // "Did you mean": among the file's names that no tracked object took.
        std::vector<foreign_tensor> untaken;
        for (std::size_t i = 0; i < tensors.size(); ++i)
            if (!used[i]) untaken.push_back(tensors[i]);
        for (std::size_t k = 0; k < lacking.size(); ++k) {
            std::string& what = problems[lacking[k]].second;
            what = "foreign name '" + what + "' is not in the file" +
                   (k < 20 ? detail::suggest_foreign(what, untaken) : std::string());
        }
        throw mismatch_error(detail::foreign_problems(problems), file, problems.front().first);
    }

    // The tensors no tracked path named: still found under their default entry path (the way an
    // empty std::vector of tensors learns its elements), and listed by their foreign names as unused.
    std::unordered_set<std::string> tracked;
    for (const entry_info& want : schema.entries) tracked.insert(want.path);
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        if (used[i]) continue;
        const foreign_tensor& t = tensors[i];
        entry_info e;
        e.path = t.name;
        e.dtype = t.dtype;
        e.shape = t.shape;
        e.column_major = t.fortran_order;
        e.length = t.bytes;
        // Not under a path the tracked objects have: those were looked up by their own foreign names.
        const std::string key = names.to_entry(t.name);
        source.add(std::move(e), {i, t.dtype}, source.has(key) || tracked.count(key) ? nullptr : &key);
    }
    // Sequences (std::vector) have an entry of their own in a ckpt file: made up here from the
    // elements the file has, 0, 1, ... in a row.
    for (const entry_info& want : schema.entries) {
        if (want.kind != entry_kind::sequence || source.has(want.path)) continue;
        std::uint64_t n = 0;
        while (source.has_under(want.path + "/" + std::to_string(n))) ++n;
        if (n == 0) continue;
        entry_info e;
        e.path = want.path;
        e.kind = entry_kind::sequence;
        e.dtype = dtype::bytes;
        e.shape = shape{n};
        source.add(std::move(e), {0, dtype::bytes}, &want.path);
    }

    try {
        return detail::foreign_bridge::restore(ck, source, file, mode);
    } catch (const mismatch_error& e) {
        // The walk names entry paths: the foreign name is added, and for what a foreign file cannot
        // hold, the usual way out.
        std::string what = e.what();
        const std::string prefix = mismatch_error("", file, e.entry()).what();
        if (what.compare(0, prefix.size(), prefix) == 0) what.erase(0, prefix.size());
        if (!e.entry().empty()) {
            what += "\n  (entry '" + e.entry() + "' is '" + names.to_foreign(e.entry()) + "' in the file)";
            for (const entry_info& want : schema.entries)
                if (want.path == e.entry() && want.kind != entry_kind::tensor)
                    what +=
                        "\n  (a foreign file holds tensors only: restore the weights with ckpt::partial and "
                        "initialize the rest, such as the optimizer and the step)";
        }
        throw mismatch_error(what, file, e.entry());
    }
}

}  // namespace ckpt
