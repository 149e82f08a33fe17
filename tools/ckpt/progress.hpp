#pragma once
// The progress bar of the `ckpt` tool's long passes (checking, verifying, exporting): one line on
// stderr, drawn only when stderr is a terminal and the pass is long enough to need one.

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include <unistd.h>

namespace ckpt::tool {

/// A one-line progress bar on stderr, only when stderr is a terminal.
class progress {
public:
    progress(std::string label, std::uint64_t total)
        : label_(std::move(label)), total_(total), active_(::isatty(2) && total > (64u << 20)) {}
    progress(const progress&) = delete;
    progress& operator=(const progress&) = delete;
    ~progress() {
        if (active_) std::fprintf(stderr, "\r%*s\r", 60, "");
    }
    void advance(std::uint64_t n) {
        done_ += n;
        if (!active_) return;
        const int width = 30, filled = total_ ? static_cast<int>(width * done_ / total_) : width;
        std::fprintf(stderr, "\r%s [%.*s%*s] %3d%%", label_.c_str(), filled, "##############################",
                     width - filled, "", total_ ? static_cast<int>(100 * done_ / total_) : 100);
        std::fflush(stderr);
    }

private:
    std::string label_;
    std::uint64_t total_, done_ = 0;
    bool active_;
};

}  // namespace ckpt::tool
