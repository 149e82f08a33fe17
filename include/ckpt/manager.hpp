#pragma once
// ckpt::checkpoint_manager: numbered checkpoints in a directory, a crash-safe state file, composable
// rotation policies, save intervals, and restore_or_initialize.
//
//   ckpt::checkpoint_manager mgr{ck, "run", ckpt::keep_last(3)};
//   mgr.restore_or_initialize();
//   for (; step < steps; ++step) { train(); mgr.save_if_due(step); }
//
// Order of work in a save: write the checkpoint (atomically), record it in the state file
// (atomically), record what the policies drop as "deleting", delete those files, record again. A
// crash between any two steps leaves every listed checkpoint loadable and every checkpoint file
// accounted for: the next manager to open the directory finishes the deletions and removes the
// temporary files of an interrupted write.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <sys/file.h>

#include <ckpt/checkpoint.hpp>
#include <ckpt/policy.hpp>
#include <ckpt/reader.hpp>

namespace ckpt {

/// One checkpoint a manager keeps, as its state file records it.
struct checkpoint_record {
    std::uint64_t number = 0;        ///< 1, 2, ... in order of saving, never reused
    std::string name;                ///< file name inside the directory
    std::filesystem::path path;      ///< directory / name
    /// The training step given at save time, if any.
    std::optional<std::int64_t> step;
    /// When the checkpoint was saved.
    std::chrono::system_clock::time_point wall_time;
    /// The metrics given at save time: `r.metrics.at("val_loss")`
    std::map<std::string, double> metrics;
    /// The strings given at save time.
    std::map<std::string, std::string> strings;
    bool preserved = false;          ///< kept for good by keep_every
};

namespace detail {

inline constexpr const char* manager_state_name = "ckpt-state";
inline constexpr const char* manager_lock_name = ".ckpt-lock";

/// Points in a manager's save where tests inject crashes.
enum class manager_point { written, recorded, deleted };
inline void (*manager_test_hook)(manager_point) = nullptr;

inline std::int64_t to_ns(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline std::chrono::system_clock::time_point from_ns(std::int64_t ns) {
    return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns)));
}

/// Names from a state file become paths: only plain file names of this directory are accepted.
inline bool is_plain_file_name(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\0') == std::string::npos && name != manager_state_name && name != manager_lock_name &&
           name.find(temp_marker) == std::string::npos;
}

// The state file is text, one record per line, with %-escaped fields, and ends with the XXH3-64
// of everything before it, so a damaged file is recognised and rebuilt instead of trusted.
inline std::string escape_field(const std::string& s) {
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c <= ' ' || c == '%' || c == '=' || c >= 0x7f) {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out.empty() ? "%" : out;
}
inline bool unescape_field(const std::string& s, std::string& out) {
    out.clear();
    if (s == "%") return true;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') { out += s[i]; continue; }
        if (i + 2 >= s.size()) return false;
        unsigned v = 0;
        if (std::sscanf(s.substr(i + 1, 2).c_str(), "%2X", &v) != 1) return false;
        out += static_cast<char>(v);
        i += 2;
    }
    return true;
}

struct manager_state {
    std::uint64_t next_number = 1;
    std::optional<std::int64_t> preserve_anchor_ns;
    std::vector<checkpoint_record> records;  // oldest first
    std::vector<std::string> deleting;       // dropped by the policies, files perhaps not yet removed
};

inline std::string format_double(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

inline std::string encode_state(const manager_state& s) {
    std::ostringstream out;
    out << "ckpt-manager-state 1\n";
    out << "next_number " << s.next_number << "\n";
    if (s.preserve_anchor_ns) out << "preserve_anchor_ns " << *s.preserve_anchor_ns << "\n";
    for (const auto& r : s.records) {
        out << "checkpoint " << r.number << " " << escape_field(r.name) << " " << (r.step ? std::to_string(*r.step) : "-") << " "
            << to_ns(r.wall_time) << " " << (r.preserved ? 1 : 0) << " " << r.metrics.size();
        for (const auto& [k, v] : r.metrics) out << " " << escape_field(k) << "=" << format_double(v);
        out << " " << r.strings.size();
        for (const auto& [k, v] : r.strings) out << " " << escape_field(k) << "=" << escape_field(v);
        out << "\n";
    }
    for (const auto& name : s.deleting) out << "deleting " << escape_field(name) << "\n";
    std::string text = out.str();
    char sum[32];
    std::snprintf(sum, sizeof sum, "end %016llx\n", static_cast<unsigned long long>(hash64(text.data(), text.size())));
    return text + sum;
}

/// Parses a state file; false for anything damaged or unsafe (then the directory is rescanned).
inline bool decode_state(const std::string& text, const std::filesystem::path& dir, manager_state& s) {
    const auto end = text.rfind("end ");
    if (end == std::string::npos || (end > 0 && text[end - 1] != '\n')) return false;
    unsigned long long sum = 0;
    if (std::sscanf(text.c_str() + end, "end %16llx", &sum) != 1 || sum != hash64(text.data(), end)) return false;
    std::istringstream in(text.substr(0, end));
    std::string line, word;
    if (!std::getline(in, line) || line != "ckpt-manager-state 1") return false;
    s = {};
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        fields >> word;
        if (word == "next_number") {
            if (!(fields >> s.next_number)) return false;
        } else if (word == "preserve_anchor_ns") {
            std::int64_t v;
            if (!(fields >> v)) return false;
            s.preserve_anchor_ns = v;
        } else if (word == "checkpoint") {
            checkpoint_record r;
            std::string name, step;
            std::int64_t ns = 0;
            int preserved = 0;
            std::size_t n = 0;
            if (!(fields >> r.number >> name >> step >> ns >> preserved >> n) || !unescape_field(name, r.name) ||
                !is_plain_file_name(r.name))
                return false;
            if (step != "-") {
                try { r.step = std::stoll(step); } catch (...) { return false; }
            }
            r.wall_time = from_ns(ns);
            r.preserved = preserved == 1;
            for (std::size_t i = 0; i < n; ++i) {
                if (!(fields >> word)) return false;
                const auto eq = word.find('=');
                std::string key;
                if (eq == std::string::npos || !unescape_field(word.substr(0, eq), key)) return false;
                try { r.metrics[key] = std::stod(word.substr(eq + 1)); } catch (...) { return false; }
            }
            if (!(fields >> n)) return false;
            for (std::size_t i = 0; i < n; ++i) {
                std::string key, value;
                if (!(fields >> word)) return false;
                const auto eq = word.find('=');
                if (eq == std::string::npos || !unescape_field(word.substr(0, eq), key) || !unescape_field(word.substr(eq + 1), value))
                    return false;
                r.strings[key] = value;
            }
            r.path = dir / r.name;
            s.records.push_back(std::move(r));
        } else if (word == "deleting") {
            std::string name, raw;
            if (!(fields >> raw) || !unescape_field(raw, name) || !is_plain_file_name(name)) return false;
            s.deleting.push_back(name);
        } else {
            return false;
        }
    }
    return true;
}

inline std::optional<manager_state> read_state_file(const std::filesystem::path& dir) {
    std::error_code ec;
    const auto file = dir / manager_state_name;
    if (!std::filesystem::is_regular_file(file, ec)) return std::nullopt;
    try {
        file_descriptor fd = open_for_reading(file);
        const auto size = file_size(fd.get(), file);
        if (size > (64u << 20)) return std::nullopt;
        std::string text(static_cast<std::size_t>(size), '\0');
        pread_all(fd.get(), text.data(), text.size(), 0, file);
        manager_state s;
        if (!decode_state(text, dir, s)) return std::nullopt;
        return s;
    } catch (const error&) {
        return std::nullopt;
    }
}

/// The sound checkpoint files in `dir`, oldest first (by wall time, then save counter), numbered
/// in that order. Files whose header or index do not read are left out: never adopted, and so
/// never deleted by a manager either.
inline manager_state scan_directory(const std::filesystem::path& dir) {
    std::vector<std::pair<std::uint64_t, checkpoint_record>> found;  // with its save counter
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        const auto name = it->path().filename().string();
        // A sharded checkpoint (ckpt/mpi.hpp) is a directory with a manifest; it counts like a file.
        const bool sharded = is_sharded_checkpoint(it->path());
        if (!is_plain_file_name(name) || (!sharded && (!it->is_regular_file(ec) || !peek_header(it->path())))) continue;
        try {
            reader r(it->path());
            checkpoint_record rec;
            rec.name = name;
            rec.path = it->path();
            rec.step = r.metadata().step;
            rec.wall_time = r.metadata().wall_time;
            rec.metrics = r.metadata().metrics;
            rec.strings = r.metadata().strings;
            found.emplace_back(r.metadata().save_counter, std::move(rec));
        } catch (const error&) {
            // Damaged: left out.
        }
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
        return std::tie(a.second.wall_time, a.first, a.second.name) < std::tie(b.second.wall_time, b.first, b.second.name);
    });
    manager_state s;
    for (auto& counted : found) {
        counted.second.number = s.next_number++;
        s.records.push_back(std::move(counted.second));
    }
    return s;
}

/// Fills "epoch_{epoch:03d}-val_loss_{val_loss:.3f}" from the step ({step} or {epoch}), metrics and strings.
inline std::string fill_template(const std::string& tmpl, const std::optional<std::int64_t>& step,
                                 const std::map<std::string, double>& metrics, const std::map<std::string, std::string>& strings) {
    std::string out;
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i] != '{') { out += tmpl[i]; continue; }
        const auto close = tmpl.find('}', i);
        if (close == std::string::npos) throw error("name template '" + tmpl + "' has an unclosed '{'");
        const std::string field = tmpl.substr(i + 1, close - i - 1);
        const auto colon = field.find(':');
        const std::string key = field.substr(0, colon), spec = colon == std::string::npos ? "" : field.substr(colon + 1);
        std::optional<double> number;
        if ((key == "step" || key == "epoch") && step) number = static_cast<double>(*step);
        else if (auto m = metrics.find(key); m != metrics.end()) number = m->second;
        char buf[128];
        if (number) {
            const char type = spec.empty() ? (key == "step" || key == "epoch" ? 'd' : 'g') : spec.back();
            const std::string flags = spec.empty() ? "" : spec.substr(0, spec.size() - 1);
            if (flags.find_first_not_of("0123456789.") != std::string::npos || (type != 'd' && type != 'f' && type != 'g' && type != 'e'))
                throw error("name template field '{" + field + "}' has an unsupported format (use d, f, g or e)");
            const std::string format = "%" + flags + (type == 'd' ? "lld" : std::string(1, type));
            // The format is built from checked parts only (digits, '.', one of d f g e): users'
            // -Wformat-nonliteral has nothing to find here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            if (type == 'd') std::snprintf(buf, sizeof buf, format.c_str(), std::llround(*number));
            else std::snprintf(buf, sizeof buf, format.c_str(), *number);
#pragma GCC diagnostic pop
            out += buf;
        } else if (auto s = strings.find(key); s != strings.end()) {
            out += s->second;
        } else {
            throw error("name template field '{" + key + "}' has no value: pass it as the step or as a metric");
        }
        i = close;
    }
    if (!is_plain_file_name(out)) throw error("name template '" + tmpl + "' gives '" + out + "', which is not a plain file name");
    return out;
}

}  // namespace detail

/// The checkpoints a manager keeps in `dir`, read from its state file without taking the
/// directory's lock (a running training keeps it); nothing if there is no readable state file.
inline std::optional<std::vector<checkpoint_record>> read_manager_records(const std::filesystem::path& dir) {
    auto s = detail::read_state_file(dir);
    if (!s) return std::nullopt;
    return std::move(s->records);
}

/// The most recent checkpoint in `dir`: the latest its manager recorded, or, without a readable
/// state file, the most recently saved sound checkpoint file found there. `if (auto p = ckpt::latest_checkpoint("run")) ...`
inline std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& dir) {
    if (auto s = detail::read_state_file(dir)) {
        for (auto it = s->records.rbegin(); it != s->records.rend(); ++it) {
            std::error_code ec;
            if (std::filesystem::is_regular_file(it->path, ec) || detail::is_sharded_checkpoint(it->path)) return it->path;
        }
        // Every listed file is gone: a manager rotated while it could not update the state file
        // (a full disk); the files it kept are found as without a state file.
    }
    auto found = detail::scan_directory(dir).records;
    if (found.empty()) return std::nullopt;
    return found.back().path;
}

/// Keeps a directory of numbered checkpoints of one ckpt::checkpoint, rotated by policies: `ckpt::checkpoint_manager mgr{ck, "run", ckpt::keep_last(3)};`
class checkpoint_manager {
public:
    /// Opens (creating it if needed) `dir` for `ck`, with any of the policies and naming options of
    /// policy.hpp. Refuses a directory another manager holds, in this process or another.
    template <class... Options>
    checkpoint_manager(any_checkpoint& ck, std::filesystem::path dir, Options... options) : ck_(ck), dir_(std::move(dir)) {
        (apply(std::move(options)), ...);
        open();
    }
    checkpoint_manager(const checkpoint_manager&) = delete;
    checkpoint_manager& operator=(const checkpoint_manager&) = delete;
    /// Waits for an asynchronous save in flight (its error, if any, is reported on stderr).
    ~checkpoint_manager() {
        try {
            ck_.wait();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "ckpt: the last asynchronous save of %s failed: %s\n", dir_.c_str(), e.what());
        }
    }

    /// Saves now, numbered by `options.step` when given (TensorFlow's checkpoint_number), and rotates.
    /// `ckpt::save_options o; o.step = 100; o.metrics["val_loss"] = 0.25; mgr.save(o);`
    std::filesystem::path save(const save_options& options = {}) { return save_impl(options, false); }
    /// `mgr.save(step)`
    std::filesystem::path save(std::int64_t step, save_options options = {}) {
        options.step = step;
        return save_impl(options, false);
    }
    /// As save(); the file is written, recorded and rotated in the background.
    std::filesystem::path save_async(const save_options& options = {}) { return save_impl(options, true); }

    /// Saves when the save intervals say so or when `force` is set (an interrupt, the last step);
    /// never twice for the same step. Returns the path saved, if any.
    /// `mgr.save_if_due(step, guard.requested());`
    std::optional<std::filesystem::path> save_if_due(std::int64_t step, bool force = false, save_options options = {}) {
        if (!is_due(step, force)) return std::nullopt;
        options.step = step;
        return save_impl(options, async_);
    }
    /// Whether save_if_due(step, force) would save.
    /// Intervals count from the latest checkpoint, or from step 0 and the manager's creation.
    bool is_due(std::int64_t step, bool force = false) const {
        std::lock_guard lock(mutex_);
        const checkpoint_record* last = state_.records.empty() ? nullptr : &state_.records.back();
        if (last && last->step && *last->step == step) return false;
        if (force || (!every_steps_ && !every_time_)) return true;
        const std::int64_t last_step = last ? last->step.value_or(INT64_MIN / 2) : 0;
        if (every_steps_ && step - last_step >= *every_steps_) return true;
        const auto since = last ? last->wall_time : opened_;
        if (every_time_ && std::chrono::system_clock::now() - since >= *every_time_) return true;
        return false;
    }

    /// Blocks until an asynchronous save is written, recorded and rotated; rethrows its error.
    void wait() { ck_.wait(); }

    /// The newest kept checkpoint, or nothing: `if (auto p = mgr.latest_checkpoint()) ck.restore(*p);`
    std::optional<std::filesystem::path> latest_checkpoint() const {
        std::lock_guard lock(mutex_);
        if (state_.records.empty()) return std::nullopt;
        return state_.records.back().path;
    }
    /// Oldest first.
    std::vector<std::filesystem::path> checkpoints() const {
        std::lock_guard lock(mutex_);
        std::vector<std::filesystem::path> out;
        for (const auto& r : state_.records) out.push_back(r.path);
        return out;
    }
    /// Everything the state file says about each checkpoint, oldest first.
    std::vector<checkpoint_record> records() const {
        std::lock_guard lock(mutex_);
        return state_.records;
    }
    /// The kept checkpoint with the lowest (ckpt::minimize) or highest (ckpt::maximize) value of a
    /// metric given at save time; nothing when no kept checkpoint has it. Ties go to the newest.
    /// `if (auto best = mgr.best_checkpoint("val_loss", ckpt::minimize)) ck.restore(*best);`
    std::optional<std::filesystem::path> best_checkpoint(const std::string& metric, direction goal = minimize) const {
        std::lock_guard lock(mutex_);
        const checkpoint_record* best = nullptr;
        double best_value = 0;
        for (const auto& r : state_.records) {
            const auto m = r.metrics.find(metric);
            if (m == r.metrics.end() || m->second != m->second) continue;  // absent or NaN
            if (!best || (goal == minimize ? m->second <= best_value : m->second >= best_value)) {
                best = &r;
                best_value = m->second;
            }
        }
        if (!best) return std::nullopt;
        return best->path;
    }
    /// The directory the manager keeps: `mgr.directory() / "checkpoint"`
    const std::filesystem::path& directory() const noexcept { return dir_; }

    /// Restores the latest checkpoint and returns its path; with none, calls `init` (if given)
    /// and returns nothing. A damaged latest checkpoint is reported on stderr and the one before
    /// it is tried; when every one is damaged the last error is thrown rather than starting over.
    std::optional<std::filesystem::path> restore_or_initialize(const std::function<void()>& init = {}) {
        const auto all = records();
        for (auto it = all.rbegin(); it != all.rend(); ++it) {
            try {
                ck_.restore(it->path);
                return it->path;
            } catch (const corrupt_error& e) {
                if (std::next(it) == all.rend()) throw;
                std::fprintf(stderr, "ckpt: skipping a damaged checkpoint: %s\n", e.what());
            } catch (const format_error& e) {
                if (std::next(it) == all.rend()) throw;
                std::fprintf(stderr, "ckpt: skipping an unreadable checkpoint: %s\n", e.what());
            } catch (const io_error& e) {
                if (std::next(it) == all.rend()) throw;
                std::fprintf(stderr, "ckpt: skipping a checkpoint that cannot be read: %s\n", e.what());
            }
        }
        if (init) init();
        return std::nullopt;
    }

private:
    void apply(keep_last p) { keep_last_ = p.n; retention_ = true; }
    void apply(keep_all) { keep_all_ = true; retention_ = true; }
    void apply(keep_every p) { keep_every_ = p.interval; retention_ = true; }
    void apply(keep_every_n_steps p) {
        if (p.k <= 0) throw error("keep_every_n_steps needs a positive step count");
        keep_every_n_steps_ = p.k;
        retention_ = true;
    }
    void apply(keep_best p) { keep_best_.push_back(std::move(p)); retention_ = true; }
    void apply(save_every_n_steps p) {
        if (p.n <= 0) throw error("save_every_n_steps needs a positive step count");
        every_steps_ = p.n;
    }
    void apply(save_every p) { every_time_ = p.interval; }
    void apply(prefix p) {
        if (!detail::is_plain_file_name(p.value + "-1")) throw error("prefix '" + p.value + "' does not make plain file names");
        prefix_ = std::move(p.value);
    }
    void apply(name_template t) { template_ = std::move(t.value); }
    void apply(asynchronous_t) { async_ = true; }

    void open() {
        detail::create_directories_durably(dir_);
        std::error_code ec;
        if (!std::filesystem::is_directory(dir_, ec)) throw io_error("is not a directory (a checkpoint directory was expected)", dir_, ec);
        lock_ = detail::file_descriptor(detail::open_created(dir_ / detail::manager_lock_name, O_RDWR));
        if (!lock_) throw io_error("cannot create the directory's lock file", dir_ / detail::manager_lock_name, detail::last_error());
        // flock locks belong to the open file description: a second manager is refused in this
        // process as in another, and the lock dies with the process.
        if (::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK)
                throw error("another checkpoint_manager (in this or another process) is using this directory", dir_);
            throw io_error("cannot lock the directory", dir_, detail::last_error());
        }
        // Left by a crash; a temporary some other writer still holds (a ck.write into this
        // directory) is left alone.
        detail::remove_stale_temporaries(dir_, [](const std::string&) { return true; });

        bool changed = false;
        if (auto s = detail::read_state_file(dir_)) {
            state_ = std::move(*s);
        } else {
            // Lost or damaged: rebuilt from the files this manager would have made, and only
            // those (a "pretrained" checkpoint kept in the same directory is not ours to rotate).
            state_ = detail::scan_directory(dir_);
            state_.records.erase(std::remove_if(state_.records.begin(), state_.records.end(), [&](const auto& r) { return !named_by_us(r); }),
                                 state_.records.end());
            state_.next_number = 1;
            for (auto& r : state_.records) r.number = state_.next_number++;
            changed = true;
        }
        // Deletions a crash interrupted: the files are ours and no longer listed.
        for (const auto& name : state_.deleting) std::filesystem::remove(dir_ / name, ec);
        changed = changed || !state_.deleting.empty();
        state_.deleting.clear();
        // A recorded file that is gone was deleted by a save that crashed before recording it.
        const auto before = state_.records.size();
        state_.records.erase(std::remove_if(state_.records.begin(), state_.records.end(),
                                            [](const auto& r) { std::error_code e; return !std::filesystem::is_regular_file(r.path, e); }),
                             state_.records.end());
        changed = changed || state_.records.size() != before;
        for (const auto& r : state_.records) state_.next_number = std::max(state_.next_number, r.number + 1);
        changed = adopt_unrecorded() || changed;
        // The directory was not as the state file said (a crash, or a state file that could not
        // be written): record what is there and apply the policies now, as the interrupted save
        // would have. A full disk must not keep a restarted training from restoring: the record
        // is left to the next save. Any other reason is an error at once.
        if (changed) {
            dirty_ = true;
            try {
                settle();
            } catch (const io_error& e) {
                if (e.code() != std::errc::no_space_on_device && e.code().value() != EDQUOT) throw;
                std::fprintf(stderr, "ckpt: %s (the next save records the directory's checkpoints)\n", e.what());
            }
        }
    }

    /// Whether this manager would have given a checkpoint with this metadata this name: "<prefix>-<n>"
    /// (n its step when it has one), or its name template filled from the file's own step,
    /// metrics and strings. Only such files are adopted, and so only they are ever deleted.
    bool named_by_us(const checkpoint_record& r) const {
        if (!template_.empty()) {
            try {
                return detail::fill_template(template_, r.step, r.metrics, r.strings) == r.name;
            } catch (const error&) {
                return false;  // a field the file has no value for: not made from this template
            }
        }
        const std::string head = prefix_ + "-";
        if (r.name.size() <= head.size() || r.name.compare(0, head.size(), head) != 0 ||
            r.name.find_first_not_of("0123456789", head.size()) != std::string::npos)
            return false;
        return !r.step || r.name == default_name(r.step, 0);
    }

    std::string default_name(const std::optional<std::int64_t>& step, std::uint64_t number) const {
        return prefix_ + "-" + std::to_string(step ? static_cast<std::uint64_t>(*step) : number);
    }

    bool listed(const std::string& name) const {
        return std::any_of(state_.records.begin(), state_.records.end(), [&](const auto& x) { return x.name == name; });
    }

    // A crash between writing a checkpoint and recording it leaves a complete file the state does
    // not list. Files named as this manager names them and newer than its latest record are its own.
    bool adopt_unrecorded() {
        const auto latest = state_.records.empty() ? std::chrono::system_clock::time_point::min() : state_.records.back().wall_time;
        std::vector<checkpoint_record> found;
        for (auto& r : detail::scan_directory(dir_).records)
            if (named_by_us(r) && !listed(r.name) && r.wall_time > latest) found.push_back(std::move(r));
        for (auto& r : found) {
            r.number = state_.next_number++;
            state_.records.push_back(std::move(r));
        }
        return !found.empty();
    }

    std::filesystem::path save_impl(save_options options, bool async) {
        // One save at a time: two threads saving through one manager would take the same number.
        std::lock_guard serial(save_mutex_);
        ck_.wait();  // an earlier asynchronous save's error surfaces here
        checkpoint_record r;
        {
            std::lock_guard lock(mutex_);
            // An earlier save could not update the state file (a full disk): record what is on
            // disk and rotate first, which may free the space this save needs. Best effort: if it
            // fails again, the save below tries once more and reports it.
            if (dirty_) {
                try {
                    settle();
                } catch (const error&) {
                }
            }
            r.number = state_.next_number;
            r.step = options.step;
            r.wall_time = std::chrono::system_clock::now();
            r.metrics = options.metrics;
            r.strings = options.strings;
            if (!template_.empty()) {
                r.name = detail::fill_template(template_, options.step, options.metrics, options.strings);
            } else {
                r.name = default_name(options.step, r.number);
                // A numbered name never replaces a file this manager did not record.
                std::error_code ec;
                while (!options.step && !listed(r.name) && std::filesystem::exists(dir_ / r.name, ec))
                    r.name = default_name(std::nullopt, ++r.number);
            }
            r.path = dir_ / r.name;
            refuse_to_replace_foreign(r);
        }
        if (async) {
            ck_.save_as_async(r.path, options, [this, r](const std::filesystem::path&) { record_and_rotate(r); });
        } else {
            ck_.save_as(r.path, options);
            record_and_rotate(r);
        }
        return r.path;
    }

    // Saving under a name that already exists replaces the file. That is right for a checkpoint
    // of ours (the same step saved again, or one a crash left unrecorded), never for a file
    // someone else put there.
    void refuse_to_replace_foreign(const checkpoint_record& r) const {
        std::error_code ec;
        if (listed(r.name) || !std::filesystem::exists(std::filesystem::symlink_status(r.path, ec))) return;
        bool ours = false;
        if (std::filesystem::is_regular_file(std::filesystem::symlink_status(r.path, ec))) {
            try {
                reader existing(r.path);
                checkpoint_record e;
                e.name = r.name;
                e.step = existing.metadata().step;
                e.metrics = existing.metadata().metrics;
                e.strings = existing.metadata().strings;
                ours = named_by_us(e);
            } catch (const error&) {
            }
        }
        if (!ours)
            throw error("a file of this name exists that this manager did not write; refusing to replace it (move it, or use "
                        "another prefix or name template)", r.path);
    }

    void hook(detail::manager_point p) {
        if (detail::manager_test_hook) detail::manager_test_hook(p);
    }

    void record_and_rotate(checkpoint_record r) {
        std::lock_guard lock(mutex_);
        hook(detail::manager_point::written);
        // Saving the same name again (the same step) replaces the earlier record.
        state_.records.erase(std::remove_if(state_.records.begin(), state_.records.end(), [&](const auto& x) { return x.name == r.name; }),
                             state_.records.end());
        if (keep_every_) {
            const auto t = detail::to_ns(r.wall_time);
            if (!state_.preserve_anchor_ns) state_.preserve_anchor_ns = t;
            else if (t - *state_.preserve_anchor_ns >= keep_every_->count()) {
                r.preserved = true;
                state_.preserve_anchor_ns = t;
            }
        }
        state_.next_number = std::max(state_.next_number, r.number + 1);
        const auto path = r.path;
        state_.records.push_back(std::move(r));
        dirty_ = true;
        try {
            write_state();
            dirty_ = false;
            hook(detail::manager_point::recorded);
        } catch (const io_error&) {
            // The checkpoint is durable; what follows frees space and retries the record.
        }
        try {
            settle();
        } catch (const io_error& e) {
            throw io_error("cannot record " + path.filename().string() + " in the state file, although the checkpoint itself was written and is "
                           "complete (" + std::string(e.what()) + "); the next save, or the next manager to open the directory, records it "
                           "and applies the policies", dir_ / detail::manager_state_name, e.code());
        }
    }

    /// Applies the policies and brings the state file in line with state_; throws when the
    /// state file cannot be written (dirty_ stays set, and the next save tries again).
    void settle() {
        // Drop from the list first (as "deleting"), then delete: a listed checkpoint always exists.
        // When the state file cannot be written (ENOSPC) the files are deleted all the same: that
        // frees the space to record the save, and a listed file found missing is dropped at the
        // next open (and passed over by latest_checkpoint), so nothing is lost either way.
        const auto keep = kept(state_.records);
        std::vector<checkpoint_record> survivors;
        for (std::size_t i = 0; i < state_.records.size(); ++i) {
            if (keep[i]) survivors.push_back(state_.records[i]);
            else state_.deleting.push_back(state_.records[i].name);
        }
        if (!state_.deleting.empty()) {
            state_.records = std::move(survivors);
            dirty_ = true;
            try {
                write_state();
            } catch (const io_error&) {
            }
            std::vector<std::string> remaining;
            for (const auto& name : state_.deleting) {
                std::error_code ec;
                std::filesystem::remove(dir_ / name, ec);
                if (ec) {
                    remaining.push_back(name);  // still ours: the next open tries again
                    std::fprintf(stderr, "ckpt: cannot delete %s: %s\n", (dir_ / name).c_str(), ec.message().c_str());
                }
            }
            hook(detail::manager_point::deleted);
            state_.deleting = std::move(remaining);
        }
        if (!dirty_) return;
        write_state();
        dirty_ = false;
    }

    /// Which records the policies keep; the latest and preserved ones always.
    std::vector<bool> kept(const std::vector<checkpoint_record>& rs) const {
        const std::size_t n = rs.size();
        std::vector<bool> keep(n, !retention_ || keep_all_);
        if (n) keep[n - 1] = true;
        for (std::size_t i = 0; i < n; ++i) {
            if (rs[i].preserved) keep[i] = true;
            if (keep_last_ && i + *keep_last_ >= n) keep[i] = true;
            if (keep_every_n_steps_ && rs[i].step && *rs[i].step % *keep_every_n_steps_ == 0) keep[i] = true;
        }
        for (const auto& best : keep_best_) {
            std::vector<std::size_t> with;
            for (std::size_t i = 0; i < n; ++i) {
                const auto m = rs[i].metrics.find(best.metric);
                if (m != rs[i].metrics.end() && !std::isnan(m->second)) with.push_back(i);
                else if (best.missing == if_metric_missing::keep) keep[i] = true;
            }
            // Best first; among equals the newer one.
            std::stable_sort(with.begin(), with.end(), [&](std::size_t a, std::size_t b) {
                const double x = rs[a].metrics.at(best.metric), y = rs[b].metrics.at(best.metric);
                if (x != y) return best.better == minimize ? x < y : x > y;
                return a > b;
            });
            for (std::size_t j = 0; j < with.size() && j < best.k; ++j) keep[with[j]] = true;
        }
        return keep;
    }

    void write_state() {
        const std::string text = detail::encode_state(state_);
        detail::atomic_file file(dir_ / detail::manager_state_name);
        detail::write_all(file.fd(), text.data(), text.size(), file.temp_path());
        file.commit();
    }

    any_checkpoint& ck_;
    std::filesystem::path dir_;
    detail::file_descriptor lock_;
    std::mutex save_mutex_;     // held through each save_impl
    mutable std::mutex mutex_;  // the state is updated on the background thread by asynchronous saves
    detail::manager_state state_;
    bool dirty_ = false;        // state_ differs from the state file (a write failed)

    bool retention_ = false, keep_all_ = false, async_ = false;
    std::optional<std::size_t> keep_last_;
    std::optional<std::chrono::nanoseconds> keep_every_;
    std::optional<std::int64_t> keep_every_n_steps_;
    std::vector<keep_best> keep_best_;
    std::optional<std::int64_t> every_steps_;
    std::optional<std::chrono::nanoseconds> every_time_;
    std::string prefix_ = "ckpt", template_;
    std::chrono::system_clock::time_point opened_ = std::chrono::system_clock::now();
};

}  // namespace ckpt
