#pragma once
// `ckpt diff A B [--atol X] [--rtol X] [--json] [--only P] [--exclude P]`: entries added, removed and
// changed, tensors by value in logical order; files and sharded checkpoints alike.

#include <filesystem>
#include <ostream>

#include "filter.hpp"

namespace ckpt::tool {

struct diff_options {
    double atol = 0, rtol = 0;  // elements a, b are equal when |a - b| <= atol + rtol * |b| (numpy.isclose)
    bool json = false;
    path_filter filter;
};

/// `ckpt diff A B`: added, removed, changed entries; 0 only when every entry the filter keeps is
/// equal. Tensors are compared by value in logical order, so the same matrix saved column-major
/// and row-major is equal; other entries byte for byte. What changed is shown: a scalar's two
/// values, a tensor's first few differing elements with their indices, a string's two texts, a
/// random engine's state by its length and checksum (bytes_summary). When either is sharded, the
/// text output then compares their rank counts and their per-rank entries rank by rank.
int diff(const std::filesystem::path& a, const std::filesystem::path& b, const diff_options& opt, std::ostream& out);

}  // namespace ckpt::tool
