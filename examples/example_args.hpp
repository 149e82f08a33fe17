#pragma once
// The one argument every example takes: `--dir DIR`, where its checkpoints go.

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace demo {
inline std::filesystem::path checkpoint_dir(int argc, char** argv, const char* fallback) {
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--dir" && i + 1 < argc) return argv[i + 1];
        std::fprintf(stderr, "usage: %s [--dir DIR]\n", argv[0]);
        std::exit(2);
    }
    return fallback;
}

[[noreturn]] inline void fail(const char* what) {
    std::fprintf(stderr, "check failed: %s\n", what);
    std::exit(1);
}
}  // namespace demo
