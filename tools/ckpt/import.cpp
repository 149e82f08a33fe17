// `ckpt import`: the library's ckpt::import_file, with the names of --rename. Built only with the
// foreign-file readers (CKPT_TOOL_IMPORT): they need a JSON parser and zlib.
#if CKPT_TOOL_IMPORT

#include "import.hpp"

#include <ckpt/ckpt.hpp>
#include <ckpt/foreign.hpp>

#include <cstdint>

#include "text.hpp"

namespace ckpt::tool {

namespace {

/// The name map of `--rename FROM=TO` options (FROM a foreign-name prefix, TO an entry-path prefix).
ckpt::name_map import_names(const std::vector<std::string>& renames) {
    ckpt::name_map names;
    for (const auto& r : renames) {
        const auto eq = r.find('=');
        if (eq == std::string::npos || eq == 0)
            throw ckpt::error(
                "--rename takes FROM=TO (a name prefix in the source, the entry-path prefix it "
                "becomes), not '" +
                r + "'");
        names.rename_prefix(r.substr(eq + 1), r.substr(0, eq));
    }
    return names;
}

}  // namespace

int import(const std::filesystem::path& source, const std::filesystem::path& out,
           const std::vector<std::string>& renames, std::ostream& os) {
    const auto names = import_names(renames);
    std::uint64_t tensors = 0, bytes = 0;
    std::string format;
    {
        const ckpt::foreign_file file(source);  // checked before anything is written
        format = file.format();
        for (const auto& t : file.tensors()) {
            ++tensors;
            bytes += t.bytes;
        }
    }
    ckpt::import_file(source, out, names);
    os << "wrote " << printable(out.string()) << " (" << tensors << (tensors == 1 ? " tensor, " : " tensors, ") << bytes
       << " bytes, from " << format << " " << printable(source.string()) << ")\n";
    return 0;
}

}  // namespace ckpt::tool

#endif  // CKPT_TOOL_IMPORT
