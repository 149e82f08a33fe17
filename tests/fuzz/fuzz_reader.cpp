// libFuzzer harness for everything that parses bytes from disk: the header, the index (with
// version 2's chunk tables), every block (verify), byte ranges of blocks (read_range), the typeless
// reader, and a strict, a partial and an in-place restore into a typical model holding every type
// family a restore decodes: tensors of each layout, sparse, engines, distributions of fixed and
// variable state, cereal strings, containers of large elements, move-only cereal types, and
// vectors and maps of structures.
// A finding is anything but a ckpt::error: a crash, a sanitizer report, std::bad_alloc, another
// exception type, or an allocation larger than libFuzzer's -rss_limit_mb / -malloc_limit_mb.
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I include -I /usr/include/eigen3
//   tests/fuzz/fuzz_reader.cpp -o fuzz_reader
//   ./fuzz_reader -max_total_time=600 -malloc_limit_mb=256 tests/fuzz/corpus
// With -DCKPT_FUZZ_MAKE_CORPUS and without -fsanitize=fuzzer it builds a program writing the seeds:
//   g++ -std=c++17 -O1 -DCKPT_FUZZ_MAKE_CORPUS -I include -I /usr/include/eigen3 tests/fuzz/fuzz_reader.cpp -o
//   make_corpus
//   ./make_corpus tests/fuzz/corpus
// seed-v1-*.ckpt are the seeds of format version 1, written before version 2 existed: keep them.

#include <ckpt/ckpt.hpp>

#include <Eigen/SparseCore>
#include <unsupported/Eigen/CXX11/Tensor>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <unistd.h>

namespace fuzz_model {
struct dense {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
};
CKPT_FIELDS(dense, kernel, bias)
struct mlp {
    dense hidden;
    dense out;
    std::vector<dense> extra;
    std::map<std::string, dense> heads;
};
CKPT_FIELDS(mlp, hidden, out, extra, heads)
struct adam {
    float lr = 1e-3f;
    std::int64_t iterations = 0;
    std::vector<Eigen::MatrixXf> m, v;
};
// A replay buffer saved through cereal: large elements behind one size tag.
struct replay {
    std::vector<std::array<float, 7056>> frames;
    std::deque<std::array<double, 64>> rewards;
    std::uint64_t head = 0;
    template <class A>
    void serialize(A& ar) {
        ar(frames, rewards, head);
    }
};
struct move_only {
    move_only() = default;
    move_only(move_only&&) = default;
    move_only& operator=(move_only&&) = default;
    move_only(const move_only&) = delete;
    move_only& operator=(const move_only&) = delete;
    std::vector<std::string> names;
    template <class A>
    void serialize(A& ar) {
        ar(names);
    }
};
struct state {
    mlp model;
    adam opt;
    std::int64_t step = 0;
    std::mt19937_64 rng{1};
    std::string note;
    Eigen::SparseMatrix<double> sparse;
    Eigen::Tensor<float, 3> tensor;
    std::vector<bool> flags;
    Eigen::Matrix<bool, Eigen::Dynamic, 1> mask;
    std::discrete_distribution<int> discrete{1, 2, 3};
    std::piecewise_constant_distribution<double> constant;
    std::piecewise_linear_distribution<double> linear;
    std::normal_distribution<double> normal;
    replay buffer;
    move_only tokens;
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major;
    Eigen::Matrix3d fixed = Eigen::Matrix3d::Zero();
};

template <class F>
auto with_checkpoint(state& s, F&& f) {
    ckpt::checkpoint ck{ckpt::track("model", s.model),       ckpt::track("optimizer", s.opt),
                        ckpt::track("step", s.step),         ckpt::track("rng", s.rng),
                        ckpt::track("note", s.note),         ckpt::track("sparse", s.sparse),
                        ckpt::track("tensor", s.tensor),     ckpt::track("flags", s.flags),
                        ckpt::track("mask", s.mask),         ckpt::track("discrete", s.discrete),
                        ckpt::track("constant", s.constant), ckpt::track("linear", s.linear),
                        ckpt::track("normal", s.normal),     ckpt::track("buffer", s.buffer),
                        ckpt::track("tokens", s.tokens),     ckpt::track("row_major", s.row_major),
                        ckpt::track("fixed", s.fixed)};
    return f(ck);
}

// The same state written with a small chunk size, so that small seeds have chunk tables.
inline void write_chunked(state& s, const std::string& file, const ckpt::save_options& options,
                          std::uint64_t chunk_size) {
    ckpt::detail::file_writer w(file, chunk_size);
    auto put = [&](const char* name, const auto& object) {
        ckpt::detail::save_walker<ckpt::detail::file_writer>(w, name).visit(object);
    };
    put("model", s.model);
    put("optimizer", s.opt);
    put("step", s.step);
    put("rng", s.rng);
    put("note", s.note);
    put("sparse", s.sparse);
    put("tensor", s.tensor);
    put("flags", s.flags);
    put("mask", s.mask);
    put("discrete", s.discrete);
    put("constant", s.constant);
    put("linear", s.linear);
    put("normal", s.normal);
    put("buffer", s.buffer);
    put("tokens", s.tokens);
    put("row_major", s.row_major);
    put("fixed", s.fixed);
    w.finish(options, 1, std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)));
}
}  // namespace fuzz_model

#ifndef CKPT_FUZZ_MAKE_CORPUS
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = "fuzz_input." + std::to_string(::getpid()) + ".ckpt";
    if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
        std::fwrite(data, 1, size, f);
        std::fclose(f);
    } else {
        return 0;
    }
    try {
        ckpt::reader r(path);
        for (const auto& e : r.entries()) {
            try {
                (void)r.read_bytes(e);
            } catch (const ckpt::error&) {}
            // Ranges: the first byte, a middle stretch across chunk boundaries, the last bytes.
            if (e.length == 0 || e.length > (std::uint64_t{1} << 24)) continue;
            std::string dest(static_cast<std::size_t>(e.length), '\0');
            for (const auto& [offset, count] : {std::pair<std::uint64_t, std::uint64_t>{0, 1},
                                                {e.length / 3, e.length / 3 + 1},
                                                {e.length - e.length / 4 - 1, e.length / 4 + 1}}) {
                try {
                    r.read_range(e, offset, count, dest.data());
                } catch (const ckpt::error&) {}
            }
        }
        r.verify();
    } catch (const ckpt::error&) {}
    for (auto mode : {ckpt::strict, ckpt::partial, ckpt::partial | ckpt::in_place}) {
        fuzz_model::state s;
        try {
            fuzz_model::with_checkpoint(s, [&](auto& ck) { return ck.restore(path, mode); });
        } catch (const ckpt::error&) {}
    }
    return 0;
}
#else
// Writes small, real checkpoints as the seed corpus.
int main(int argc, char** argv) {
    const std::string dir = argc > 1 ? argv[1] : "corpus";
    std::mt19937 gen(5);
    for (int variant = 0; variant < 4; ++variant) {
        fuzz_model::state s;
        const int n = 1 + variant;
        s.model.hidden = {Eigen::MatrixXf::Random(n, 3), Eigen::VectorXf::Random(3)};
        s.model.out = {Eigen::MatrixXf::Random(3, 2), Eigen::VectorXf::Random(2)};
        s.model.extra.resize(static_cast<std::size_t>(variant));
        for (auto& d : s.model.extra) d = {Eigen::MatrixXf::Random(2, 2), Eigen::VectorXf::Random(2)};
        if (variant % 2) s.model.heads["en"] = {Eigen::MatrixXf::Random(1, 2), Eigen::VectorXf::Random(1)};
        s.opt.iterations = variant;
        s.opt.m = {Eigen::MatrixXf::Random(n, 2)};
        s.opt.v = {Eigen::MatrixXf::Random(2, n)};
        s.step = 100 * variant;
        s.rng.discard(static_cast<unsigned long long>(variant));
        s.note = std::string(static_cast<std::size_t>(variant) * 3, 'x');
        s.sparse.resize(4, 4);
        s.sparse.insert(variant % 4, 1) = 2.5;
        s.tensor.resize(2, 1, n);
        s.tensor.setConstant(1.5f);
        s.flags = {true, false, variant % 2 == 1};
        s.mask = Eigen::Matrix<bool, Eigen::Dynamic, 1>::Constant(n, true);
        s.discrete = std::discrete_distribution<int>{1.0, 2.0 + variant};
        std::vector<double> bounds{0, 1, 2.5}, weights{1, 3, 2};
        s.constant = std::piecewise_constant_distribution<double>(bounds.begin(), bounds.end(), weights.begin());
        s.linear = std::piecewise_linear_distribution<double>(bounds.begin(), bounds.end(), weights.begin());
        s.normal(gen);  // caches its second value
        s.buffer.frames.resize(static_cast<std::size_t>(variant % 2));
        for (auto& f : s.buffer.frames) f.fill(0.25f);
        s.buffer.rewards.resize(static_cast<std::size_t>(variant));
        s.buffer.head = static_cast<std::uint64_t>(variant);
        s.tokens.names.assign(static_cast<std::size_t>(variant), "tok");
        s.row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>::Random(2, n);
        s.fixed = Eigen::Matrix3d::Identity() * variant;
        ckpt::save_options options;
        options.step = s.step;
        options.metrics["loss"] = 0.5 / n;
        options.strings["run"] = "seed";
        fuzz_model::with_checkpoint(
            s, [&](auto& ck) { return ck.write(dir + "/seed-" + std::to_string(variant) + ".ckpt", options); });
        // Chunk tables on every block longer than 64 or 128 bytes.
        fuzz_model::write_chunked(s, dir + "/seed-chunked-" + std::to_string(variant) + ".ckpt", options,
                                  variant % 2 ? 128 : 64);
    }
    return 0;
}
#endif
