#pragma once
// Definitions of ckpt/foreign.hpp (work in progress: the readers follow).

#include <ckpt/foreign.hpp>

namespace ckpt {
namespace detail {
class foreign_reader {
public:
    virtual ~foreign_reader() = default;
};
}  // namespace detail

inline foreign_file::foreign_file(const std::filesystem::path& path) {
    throw error("foreign files: not implemented yet", path);
}
inline foreign_file::foreign_file(foreign_file&&) noexcept = default;
inline foreign_file& foreign_file::operator=(foreign_file&&) noexcept = default;
inline foreign_file::~foreign_file() = default;
}  // namespace ckpt
