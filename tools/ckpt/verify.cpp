// `ckpt verify`: one verdict per checkpoint, files and sharded checkpoints by the same pass.

#include "verify.hpp"

#include <ckpt/ckpt.hpp>

#include <algorithm>
#include <string>
#include <system_error>
#include <vector>

#include "stored.hpp"
#include "text.hpp"

namespace ckpt::tool {
namespace {

/// The checkpoints in a directory, files first, then sharded checkpoints, each kind sorted. Files
/// are every regular file that begins with a checkpoint's magic bytes (not temporaries, not the
/// manager's own files).
std::vector<std::filesystem::path> checkpoints_in(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> files, sharded;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (ckpt::is_checkpoint_file(e.path())) files.push_back(e.path());
        if (ckpt::is_sharded_checkpoint(e.path())) sharded.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    std::sort(sharded.begin(), sharded.end());
    files.insert(files.end(), sharded.begin(), sharded.end());
    return files;
}

/// One checkpoint: its damaged entries on `err`, then its verdict ("ok (...)" on `out`, "BAD (...)"
/// on `err`); a checkpoint that cannot be opened is BAD with the error's message.
int verify_one(const std::filesystem::path& path, std::ostream& out, std::ostream& err) {
    try {
        stored_checkpoint c(path);
        const std::string sharded = c.sharded() ? "sharded, " : "";
        std::size_t damaged = 0;
        c.check("verifying " + path.filename().string(), [&](std::size_t, const char* problem) {
            if (problem) err << printable(problem) << std::endl;
            damaged += problem ? 1 : 0;
        });
        if (damaged) {
            err << printable(path.string()) << ": BAD (" << sharded << damaged << " of " << c.size()
                << " entries damaged)" << std::endl;
            return 1;
        }
        c.check_files();
        out << printable(path.string()) << ": ok ("
            << (c.sharded() ? sharded + std::to_string(c.ranks()) + " ranks, " : "") << c.size() << " entries)"
            << std::endl;
        return 0;
    } catch (const ckpt::error& e) {
        err << printable(e.what()) << std::endl;  // names the file: the verdict itself
        return 1;
    }
}

}  // namespace

int verify(const std::filesystem::path& target, std::ostream& out, std::ostream& err) {
    std::error_code ec;
    if (!ckpt::is_sharded_checkpoint(target) && std::filesystem::is_directory(target, ec)) {
        const auto checkpoints = checkpoints_in(target);
        if (checkpoints.empty()) throw ckpt::error("no checkpoint files in the directory", target);
        int bad = 0;
        for (const auto& c : checkpoints) bad |= verify_one(c, out, err);
        return bad;
    }
    if (!std::filesystem::exists(target, ec)) throw ckpt::io_error("no such file or directory", target);
    return verify_one(target, out, err);
}

}  // namespace ckpt::tool
