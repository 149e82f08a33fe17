#pragma once
// How a checkpoint_manager names its files: "<prefix>-<n>", or a name template in the style of Keras
// and Lightning ("epoch_{epoch:03d}-val_loss_{val_loss:.3f}"), and the reverse question, whether a
// file found in the directory bears a name this manager would have given it (only those are adopted,
// and so only they are ever deleted).

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <ckpt/detail/config.hpp>
#include <ckpt/checkpoint_record.hpp>
#include <ckpt/detail/manager/state_file.hpp>
#include <ckpt/error.hpp>

namespace ckpt::detail {

/// Fills "epoch_{epoch:03d}-val_loss_{val_loss:.3f}" from the step ({step} or {epoch}), metrics and strings.
CKPT_INLINE std::string fill_template(const std::string& tmpl, const std::optional<std::int64_t>& step,
                                      const std::map<std::string, double>& metrics,
                                      const std::map<std::string, std::string>& strings);

/// A manager's naming options (ckpt::prefix, ckpt::name_template) and what follows from them.
struct checkpoint_naming {
    std::string prefix = "ckpt";
    std::string name_template;  // empty: "<prefix>-<n>"

    void set_prefix(std::string p);

    /// "<prefix>-<n>", n the step when given, else the save number.
    std::string default_name(const std::optional<std::int64_t>& step, std::uint64_t number) const {
        return prefix + "-" + std::to_string(step ? static_cast<std::uint64_t>(*step) : number);
    }

    /// Whether this manager would have given a checkpoint with this metadata this name: "<prefix>-<n>"
    /// (n its step when it has one), or its name template filled from the file's own step,
    /// metrics and strings.
    bool named_by_us(const checkpoint_record& r) const;

    /// Names the next checkpoint of `dir`, whose state is `s`: `r` (its number, step, metrics and
    /// strings set) gets its name and path. A numbered name never replaces a file the state does
    /// not list: the number moves past it.
    void name(checkpoint_record& r, const manager_state& s, const std::filesystem::path& dir) const;
};

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE std::string fill_template(const std::string& tmpl, const std::optional<std::int64_t>& step,
                                      const std::map<std::string, double>& metrics,
                                      const std::map<std::string, std::string>& strings) {
    std::string out;
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i] != '{') {
            out += tmpl[i];
            continue;
        }
        const auto close = tmpl.find('}', i);
        if (close == std::string::npos) throw error("name template '" + tmpl + "' has an unclosed '{'");
        const std::string field = tmpl.substr(i + 1, close - i - 1);
        const auto colon = field.find(':');
        const std::string key = field.substr(0, colon),
                          spec = colon == std::string::npos ? "" : field.substr(colon + 1);
        std::optional<double> number;
        if ((key == "step" || key == "epoch") && step)
            number = static_cast<double>(*step);
        else if (auto m = metrics.find(key); m != metrics.end())
            number = m->second;
        char buf[128];
        if (number) {
            const char type = spec.empty() ? (key == "step" || key == "epoch" ? 'd' : 'g') : spec.back();
            const std::string flags = spec.empty() ? "" : spec.substr(0, spec.size() - 1);
            if (flags.find_first_not_of("0123456789.") != std::string::npos ||
                (type != 'd' && type != 'f' && type != 'g' && type != 'e'))
                throw error("name template field '{" + field + "}' has an unsupported format (use d, f, g or e)");
            const std::string format = "%" + flags + (type == 'd' ? "lld" : std::string(1, type));
            // The format is built from checked parts only (digits, '.', one of d f g e): users'
            // -Wformat-nonliteral has nothing to find here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            if (type == 'd')
                std::snprintf(buf, sizeof buf, format.c_str(), std::llround(*number));
            else
                std::snprintf(buf, sizeof buf, format.c_str(), *number);
#pragma GCC diagnostic pop
            out += buf;
        } else if (auto s = strings.find(key); s != strings.end()) {
            out += s->second;
        } else {
            throw error("name template field '{" + key + "}' has no value: pass it as the step or as a metric");
        }
        i = close;
    }
    if (!is_plain_file_name(out))
        throw error("name template '" + tmpl + "' gives '" + out + "', which is not a plain file name");
    return out;
}

CKPT_INLINE void checkpoint_naming::set_prefix(std::string p) {
    if (!is_plain_file_name(p + "-1")) throw error("prefix '" + p + "' does not make plain file names");
    prefix = std::move(p);
}

CKPT_INLINE bool checkpoint_naming::named_by_us(const checkpoint_record& r) const {
    if (!name_template.empty()) {
        try {
            return fill_template(name_template, r.step, r.metrics, r.strings) == r.name;
        } catch (const error&) {
            return false;  // a field the file has no value for: not made from this template
        }
    }
    const std::string head = prefix + "-";
    if (r.name.size() <= head.size() || r.name.compare(0, head.size(), head) != 0 ||
        r.name.find_first_not_of("0123456789", head.size()) != std::string::npos)
        return false;
    return !r.step || r.name == default_name(r.step, 0);
}

CKPT_INLINE void checkpoint_naming::name(checkpoint_record& r, const manager_state& s,
                                         const std::filesystem::path& dir) const {
    if (!name_template.empty()) {
        r.name = fill_template(name_template, r.step, r.metrics, r.strings);
    } else {
        r.name = default_name(r.step, r.number);
        std::error_code ec;
        while (!r.step && !lists(s, r.name) && std::filesystem::exists(dir / r.name, ec))
            r.name = default_name(std::nullopt, ++r.number);
    }
    if (!is_plain_file_name(r.name))
        throw error("the checkpoint's name '" + r.name + "' is not a plain file name", dir);
    r.path = dir / r.name;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
