// libFuzzer harness for the foreign readers (ckpt/foreign.hpp): safetensors, npz (zip, zip64,
// deflate), npy, and HF index JSON, detected by content as a user's file would be; every tensor read
// whole and in small chunks, then strict and partial restores, with and without ckpt::convert, into
// a small model. A finding is anything but a ckpt::error: a crash, a sanitizer report, std::bad_alloc
// or an allocation beyond libFuzzer's -malloc_limit_mb.
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I include -I /usr/include/eigen3
//   tests/fuzz/fuzz_foreign.cpp -lz -o fuzz_foreign
//   ./fuzz_foreign -max_total_time=600 -malloc_limit_mb=512 tests/fuzz/corpus_foreign
// The seeds (tests/fuzz/corpus_foreign) were written by numpy (npz stored and deflated, npy) and by
// ck.write(p, ckpt::as_safetensors, names).

#include <ckpt/foreign.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>
#include <unistd.h>

namespace {
struct linear {
    Eigen::MatrixXf weight;
    Eigen::VectorXf bias;
};
CKPT_FIELDS(linear, weight, bias)
struct model {
    linear fc1;
    Eigen::Matrix<double, 2, 3> fixed;
    std::vector<Eigen::VectorXf> layers;
    std::int64_t step = 0;
};
CKPT_FIELDS(model, fc1, fixed, layers, step)
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = "fuzz_foreign." + std::to_string(::getpid()) + ".bin";
    if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
        std::fwrite(data, 1, size, f);
        std::fclose(f);
    } else {
        return 0;
    }
    try {
        const ckpt::foreign_file f(path);
        std::vector<char> whole;
        for (const auto& t : f.tensors()) {
            try {
                whole.resize(static_cast<std::size_t>(t.bytes));
                f.read(t, whole.data());
                std::uint64_t seen = 0;
                f.read(
                    t, [&](const void*, std::size_t n) { seen += n; }, 7);
            } catch (const ckpt::error&) {}
        }
    } catch (const ckpt::error&) {}
    ckpt::name_map names;
    names.rename_prefix("m/", "").rename("m/fixed", "fixed", ckpt::transposed);
    for (auto mode : {ckpt::strict, ckpt::partial, ckpt::partial | ckpt::convert, ckpt::partial | ckpt::in_place}) {
        model m;
        ckpt::checkpoint ck{ckpt::track("m", m)};
        try {
            ck.restore(path, mode, names);
        } catch (const ckpt::error&) {}
    }
    return 0;
}
