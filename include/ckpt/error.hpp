#pragma once
// The exception hierarchy. Every message starts with "ckpt: " and names the file and, where one is
// involved, the entry path, so that a log line alone tells what went wrong where.

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include <ckpt/detail/config.hpp>

namespace ckpt {

/// Root of everything ckpt throws. `catch (const ckpt::error& e) { log(e.what()); }`
class error : public std::runtime_error {
public:
    /// `throw ckpt::error("no checkpoint found", "run/");`
    explicit error(const std::string& what, std::filesystem::path file = {}, std::string entry = {})
        : std::runtime_error(compose(what, file, entry)), file_(std::move(file)), entry_(std::move(entry)) {}

    /// The checkpoint file (or directory) involved; empty when none is.
    const std::filesystem::path& file() const noexcept { return file_; }
    /// The entry path involved, like "model/hidden/kernel"; empty when the problem is not an entry's.
    const std::string& entry() const noexcept { return entry_; }

private:
    static std::string compose(const std::string& what, const std::filesystem::path& file, const std::string& entry);

    std::filesystem::path file_;
    std::string entry_;
};

/// The operating system refused a read, write, rename, fsync or lock. `e.code()` holds its reason.
class io_error : public error {
public:
    /// `throw ckpt::io_error("cannot open", file, std::error_code(errno, std::generic_category()));`
    io_error(const std::string& what, std::filesystem::path file, std::error_code code = {})
        : error(code ? what + ": " + code.message() : what, std::move(file)), code_(code) {}
    /// `if (e.code() == std::errc::no_space_on_device) ...`
    const std::error_code& code() const noexcept { return code_; }

private:
    std::error_code code_;
};

/// The file is not a ckpt checkpoint, or one of a version or byte order this build cannot read.
class format_error : public error {
    using error::error;
};

/// The file is a checkpoint but its bytes are damaged: checksums, lengths, offsets or sizes disagree.
class corrupt_error : public error {
    using error::error;
};

/// The file is sound but does not fit the tracked objects: an entry is missing, or has another
/// dtype or shape, or entries were left unused when the caller asked for all to be consumed.
class mismatch_error : public error {
    using error::error;
};

}  // namespace ckpt

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt {

CKPT_INLINE std::string error::compose(const std::string& what, const std::filesystem::path& file,
                                       const std::string& entry) {
    std::string message = "ckpt: ";
    if (!file.empty()) message += file.string() + ": ";
    if (!entry.empty()) message += "entry '" + entry + "': ";
    return message + what;
}

}  // namespace ckpt
#endif  // CKPT_HEADER_DEFINITIONS
