#pragma once
// ckpt::restore_status: what a restore did (the file, its metadata, the tracked objects it lacked
// and the entries nothing took); assert_consumed() turns a mismatch into an error.

#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/error.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt {

/// What a restore did. `ck.restore(p).assert_consumed();`
class restore_status {
public:
    restore_status() = default;
    /// Made by a restore: `auto status = ck.restore(p);`
    restore_status(std::filesystem::path file, ckpt::metadata meta, std::vector<std::string> missing,
                   std::vector<std::string> unused);

    /// The file restored from: `ck.restore(p).file()`
    const std::filesystem::path& file() const noexcept { return file_; }
    /// The file's metadata (step, metrics, save counter): `ck.restore(p).metadata().step`
    const ckpt::metadata& metadata() const noexcept { return metadata_; }
    /// Tracked paths the file did not have (only a partial restore gets this far with any).
    const std::vector<std::string>& missing() const noexcept { return missing_; }
    /// Entries of the file that no tracked object took.
    const std::vector<std::string>& unused() const noexcept { return unused_; }

    /// Throws mismatch_error unless every entry of the file was restored and every tracked object found.
    const restore_status& assert_consumed() const;
    /// Throws mismatch_error unless every tracked object was found in the file (extra entries are fine).
    const restore_status& assert_existing_objects_matched() const;

private:
    static std::string list(const std::vector<std::string>& paths);

    std::filesystem::path file_;
    ckpt::metadata metadata_;
    std::vector<std::string> missing_, unused_;
};

}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt {

CKPT_INLINE restore_status::restore_status(std::filesystem::path file, ckpt::metadata meta,
                                           std::vector<std::string> missing, std::vector<std::string> unused)
    : file_(std::move(file)), metadata_(std::move(meta)), missing_(std::move(missing)), unused_(std::move(unused)) {}

CKPT_INLINE const restore_status& restore_status::assert_consumed() const {
    if (!unused_.empty())
        throw mismatch_error(std::to_string(unused_.size()) +
                                 " entries of the checkpoint were not restored into any tracked object" + list(unused_),
                             file_, unused_.front());
    return assert_existing_objects_matched();
}

CKPT_INLINE const restore_status& restore_status::assert_existing_objects_matched() const {
    if (!missing_.empty())
        throw mismatch_error(
            std::to_string(missing_.size()) + " tracked objects were not found in the checkpoint" + list(missing_),
            file_, missing_.front());
    return *this;
}

CKPT_INLINE std::string restore_status::list(const std::vector<std::string>& paths) {
    std::string s = ": ";
    for (std::size_t i = 0; i < paths.size() && i < 10; ++i) s += (i ? ", " : "") + paths[i];
    if (paths.size() > 10) s += ", ...";
    return s;
}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
