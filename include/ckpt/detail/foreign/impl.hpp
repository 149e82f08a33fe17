#pragma once
// Definitions of ckpt/foreign.hpp: the name map, opening a foreign file by its content, the restore
// source that presents its tensors to the restore walk, the safetensors writer and import_file.

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
#include <ckpt/detail/foreign/convert.hpp>
#include <ckpt/detail/foreign/hf_index.hpp>
#include <ckpt/detail/foreign/npy.hpp>
#include <ckpt/detail/foreign/npz.hpp>
#include <ckpt/detail/foreign/reader.hpp>
#include <ckpt/detail/foreign/safetensors.hpp>
#include <ckpt/detail/suggest.hpp>
#include <ckpt/detail/format/writer.hpp>
#include <ckpt/io/file.hpp>

namespace ckpt {

// ---- name_map -------------------------------------------------------------------------------------

inline name_map& name_map::rename_prefix(std::string entry_prefix, std::string foreign_prefix) {
    prefixes_.emplace_back(std::move(entry_prefix), std::move(foreign_prefix));
    return *this;
}

inline name_map& name_map::rename(std::string entry_path, std::string foreign_name) {
    exact_.push_back({std::move(entry_path), std::move(foreign_name), false});
    return *this;
}

inline name_map& name_map::rename(std::string entry_path, std::string foreign_name, transposed_t) {
    exact_.push_back({std::move(entry_path), std::move(foreign_name), true});
    return *this;
}

inline std::string name_map::to_foreign(std::string_view entry_path) const {
    for (auto it = exact_.rbegin(); it != exact_.rend(); ++it)  // the last rename of a path wins
        if (it->entry == entry_path) return it->foreign;
    const std::pair<std::string, std::string>* best = nullptr;
    for (const auto& p : prefixes_)
        if (entry_path.substr(0, p.first.size()) == p.first && (!best || p.first.size() > best->first.size()))
            best = &p;
    std::string rest(best ? entry_path.substr(best->first.size()) : entry_path);
    std::replace(rest.begin(), rest.end(), '/', '.');
    return best ? best->second + rest : rest;
}

inline std::string name_map::to_entry(std::string_view foreign_name) const {
    for (auto it = exact_.rbegin(); it != exact_.rend(); ++it)
        if (it->foreign == foreign_name) return it->entry;
    const std::pair<std::string, std::string>* best = nullptr;
    for (const auto& p : prefixes_)
        if (foreign_name.substr(0, p.second.size()) == p.second && (!best || p.second.size() > best->second.size()))
            best = &p;
    std::string rest(best ? foreign_name.substr(best->second.size()) : foreign_name);
    std::replace(rest.begin(), rest.end(), '.', '/');
    return best ? best->first + rest : rest;
}

inline bool name_map::is_transposed(std::string_view entry_path) const {
    for (auto it = exact_.rbegin(); it != exact_.rend(); ++it)
        if (it->entry == entry_path) return it->transposed;
    return false;
}

// ---- foreign_file ---------------------------------------------------------------------------------

namespace detail {

/// Opens `p` as whatever its content says it is (see foreign_file).
inline std::unique_ptr<foreign_reader> open_foreign(const std::filesystem::path& p) {
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
        if (std::filesystem::exists(p / "model.safetensors.index.json", ec))
            return std::make_unique<hf_sharded_reader>(p / "model.safetensors.index.json");
        std::vector<std::filesystem::path> indexes;
        for (auto it = std::filesystem::directory_iterator(p, ec); !ec && it != std::filesystem::directory_iterator();
             it.increment(ec)) {
            const std::string name = it->path().filename().string();
            const std::string tail = ".safetensors.index.json";
            if (name.size() > tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0)
                indexes.push_back(it->path());
        }
        if (indexes.size() == 1) return std::make_unique<hf_sharded_reader>(indexes.front());
        if (indexes.empty() && std::filesystem::exists(p / "model.safetensors", ec))
            return std::make_unique<safetensors_reader>(p / "model.safetensors");
        throw format_error(indexes.empty() ? "directory holds no *.safetensors.index.json and no model.safetensors"
                                           : "directory holds several *.safetensors.index.json: name one",
                           p);
    }
    const read_only_file file(p);
    unsigned char head[16] = {};
    const auto got = static_cast<std::size_t>(std::min<std::uint64_t>(file.size, sizeof head));
    file.read(head, got, 0);
    if (got >= 6 && std::memcmp(head, "\x93NUMPY", 6) == 0) return std::make_unique<npy_reader>(p);
    if (got >= 4 && head[0] == 'P' && head[1] == 'K') return std::make_unique<npz_reader>(p);
    std::size_t first = 0;
    while (first < got && (head[first] == ' ' || head[first] == '\n' || head[first] == '\r' || head[first] == '\t'))
        ++first;
    if (first < got && head[first] == '{') return std::make_unique<hf_sharded_reader>(p);
    if (got >= 9 && head[8] == '{') return std::make_unique<safetensors_reader>(p);
    throw format_error("not a safetensors file, HF-sharded model index, npz or npy file (by its first bytes)", p);
}

}  // namespace detail

inline foreign_file::foreign_file(const std::filesystem::path& path) : reader_(detail::open_foreign(path)) {}
inline foreign_file::foreign_file(foreign_file&&) noexcept = default;
inline foreign_file& foreign_file::operator=(foreign_file&&) noexcept = default;
inline foreign_file::~foreign_file() = default;

inline const std::filesystem::path& foreign_file::path() const noexcept { return reader_->path; }
inline std::string_view foreign_file::format() const noexcept { return reader_->format; }
inline const std::vector<foreign_tensor>& foreign_file::tensors() const noexcept { return reader_->tensors; }
inline const foreign_tensor* foreign_file::find(std::string_view name) const { return reader_->find(name); }
inline const std::vector<std::pair<std::string, std::string>>& foreign_file::metadata() const noexcept {
    return reader_->metadata;
}

inline void foreign_file::read(const foreign_tensor& t, void* dest) const {
    char* out = static_cast<char*>(dest);
    read(t, [&](const void* p, std::size_t n) {
        std::memcpy(out, p, n);
        out += n;
    });
}

inline void foreign_file::read(const foreign_tensor& t, const std::function<void(const void*, std::size_t)>& consume,
                               std::size_t chunk) const {
    const auto& all = reader_->tensors;
    const std::less<const foreign_tensor*> before;  // a total order, even for another file's tensor
    if (all.empty() || before(&t, all.data()) || !before(&t, all.data() + all.size()))
        throw error("foreign_file::read: tensor '" + t.name + "' is not one of this file's tensors()", path());
    std::uint64_t seen = 0;
    reader_->stream(
        reader_->index_of(t),
        [&](const void* p, std::size_t n) {
            seen += n;
            consume(p, n);
        },
        chunk);
    if (seen != t.bytes)
        throw corrupt_error(
            "tensor '" + t.name + "' gave " + std::to_string(seen) + " bytes, not " + std::to_string(t.bytes), path());
}

// ---- restore --------------------------------------------------------------------------------------

namespace detail {

/// Reaches the protected walks of a checkpoint, under its lock, as its own restore and write do.
class foreign_bridge {
public:
    static restore_status restore(any_checkpoint& ck, restore_source& source, const std::filesystem::path& file,
                                  restore_mode mode) {
        std::lock_guard lock(ck.mutex_);
        ck.wait_for_worker();
        return ck.do_restore_source(source, file, mode);
    }
    template <class Body>
    static void locked(any_checkpoint& ck, Body&& body) {
        std::lock_guard lock(ck.mutex_);
        ck.wait_for_worker();
        body();
    }
    static void save_walk(any_checkpoint& ck, block_sink& sink) { ck.do_save_walk(sink); }
};

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

// ---- write as safetensors -------------------------------------------------------------------------

namespace detail {

/// One tensor of the safetensors file being written.
struct safetensors_out {
    std::string path, name;
    dtype type;
    shape dims;         // as the foreign file has it
    bool reorder;       // the object's memory is not in the file's (row-major) order
    shape memory_dims;  // the object's logical shape, for the reorder
    bool memory_column_major;
    std::uint64_t offset = 0, bytes = 0;  // in the data section
};

struct safetensors_plan_sink final : block_sink {
    const name_map& names;
    const std::filesystem::path& file;
    std::vector<safetensors_out> out;
    safetensors_plan_sink(const name_map& n, const std::filesystem::path& f) : names(n), file(f) {}
    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major, const void*,
               std::size_t size) override {
        if (kind != entry_kind::tensor) return;  // counters' text, engines: not tensors, left out
        if (!safetensors_dtype_code(type))
            throw error(std::string("safetensors has no dtype for ") + dtype_name(type), file, std::string(path));
        safetensors_out t;
        t.path = std::string(path);
        t.name = names.to_foreign(path);
        if (t.name == "__metadata__")
            throw error("maps to '__metadata__', the name safetensors keeps for its metadata: rename it", file,
                        std::string(path));
        t.type = type;
        t.memory_dims = dims;
        t.memory_column_major = column_major;
        t.bytes = size;
        if (names.is_transposed(path)) {
            if (dims.rank() != 2)
                throw error("ckpt::transposed needs a 2-D tensor; this one is " + dims.to_string(), file,
                            std::string(path));
            t.dims = shape{dims[1], dims[0]};
            t.reorder = !column_major;  // [r, c] column-major is [c, r] row-major
        } else {
            t.dims = dims;
            t.reorder = dims.rank() >= 2 && column_major;
        }
        out.push_back(std::move(t));
    }
};

struct safetensors_data_sink final : block_sink {
    int fd;
    std::uint64_t data_start;
    const std::filesystem::path& file;
    std::unordered_map<std::string, const safetensors_out*> by_path;
    safetensors_data_sink(int d, std::uint64_t start, const std::filesystem::path& f)
        : fd(d), data_start(start), file(f) {}
    void block(std::string_view path, entry_kind kind, dtype, const shape&, bool, const void* data,
               std::size_t size) override {
        if (kind != entry_kind::tensor) return;
        const auto it = by_path.find(std::string(path));
        if (it == by_path.end() || it->second->bytes != size)
            throw error("the tracked objects changed while they were being written", file, std::string(path));
        const safetensors_out& t = *it->second;
        if (size == 0) return;
        if (!t.reorder) return pwrite_all(fd, data, size, data_start + t.offset, file);
        // A column-major matrix goes out row-major: one tensor's copy at a time.
        std::unique_ptr<char[]> rows(new char[size]);
        reorder(static_cast<const char*>(data), rows.get(), t.memory_dims, dtype_size(t.type), t.memory_column_major);
        pwrite_all(fd, rows.get(), size, data_start + t.offset, file);
    }
};

}  // namespace detail

inline std::filesystem::path write_foreign(any_checkpoint& ck, const std::filesystem::path& file, as_safetensors_t,
                                           const name_map& names) {
    detail::foreign_bridge::locked(ck, [&] {
        detail::safetensors_plan_sink plan(names, file);
        detail::foreign_bridge::save_walk(ck, plan);
        std::map<std::string, const detail::safetensors_out*> seen;
        for (const auto& t : plan.out)
            if (!seen.emplace(t.name, &t).second)
                throw error("entries '" + seen[t.name]->path + "' and '" + t.path + "' both map to '" + t.name + "'",
                            file, t.path);
        // Aligned as the reference writer aligns: larger dtypes first, then by name, back to back: every
        // tensor starts at a multiple of its element size once the header is padded to 8 bytes.
        std::vector<detail::safetensors_out*> order;
        for (auto& t : plan.out) order.push_back(&t);
        std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
            if (dtype_size(a->type) != dtype_size(b->type)) return dtype_size(a->type) > dtype_size(b->type);
            return a->name < b->name;
        });
        nlohmann::ordered_json header = nlohmann::ordered_json::object();
        header["__metadata__"] = {{"format", "pt"}};  // transformers refuses files without it
        std::uint64_t at = 0;
        for (auto* t : order) {
            t->offset = at;
            at += t->bytes;
            nlohmann::ordered_json dims = nlohmann::ordered_json::array();
            for (auto d : t->dims) dims.push_back(d);
            header[t->name] = {{"dtype", detail::safetensors_dtype_code(t->type)},
                               {"shape", dims},
                               {"data_offsets", {t->offset, t->offset + t->bytes}}};
        }
        std::string text = header.dump();
        text.append((8 - text.size() % 8) % 8, ' ');
        std::string prefix(8, '\0');
        for (int i = 0; i < 8; ++i)
            prefix[static_cast<std::size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xFF);
        prefix += text;

        detail::create_parent_directories(file);
        detail::atomic_file out(file);
        detail::pwrite_all(out.fd(), prefix.data(), prefix.size(), 0, file);
        detail::safetensors_data_sink data(out.fd(), prefix.size(), file);
        for (const auto& t : plan.out) data.by_path.emplace(t.path, &t);
        detail::foreign_bridge::save_walk(ck, data);
        out.commit();
    });
    return file;
}

// ---- import ---------------------------------------------------------------------------------------

inline std::filesystem::path import_file(const std::filesystem::path& source, const std::filesystem::path& out,
                                         const name_map& names) {
    const foreign_file f(source);
    detail::file_writer writer(out);
    for (const auto& t : f.tensors()) {
        const std::string path = names.to_entry(t.name);
        if (!detail::is_valid_entry_path(path))
            throw error("foreign tensor '" + t.name + "' maps to entry path '" + path +
                            "', which has an empty, '.' or '..' part: rename it (name_map::rename)",
                        source, path);
        // Streamed: one chunk of the tensor in memory at a time, hashed on its way to the file.
        writer.begin_block(path, entry_kind::tensor, t.dtype, t.shape, t.fortran_order && t.shape.rank() >= 2,
                           static_cast<std::size_t>(t.bytes));
        f.read(t, [&](const void* p, std::size_t n) { writer.block_bytes(p, n); });
        writer.end_block();
    }
    writer.finish(save_options{}, 0, std::chrono::system_clock::now());
    return out;
}

}  // namespace ckpt
