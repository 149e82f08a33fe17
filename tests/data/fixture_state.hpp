#pragma once
// The state written into the compatibility fixtures (tests/data/v*/fixture.ckpt) and expected back
// from them, bit for bit, by tests/format_v1.cpp. Every value is a fixed formula, not a random
// draw, so the program that wrote a fixture and a test built years later agree on it. Never change
// a value here without regenerating every fixture from the commit that introduced its version.

#include <ckpt/ckpt.hpp>

#include <Eigen/SparseCore>
#include <unsupported/Eigen/CXX11/Tensor>

#include <complex>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace ckpt_fixture {

struct state {
    Eigen::MatrixXf f32;                                                         // 3 x 4, column-major
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> f64;  // 2 x 5, row-major
    Eigen::Matrix<std::int32_t, Eigen::Dynamic, 1> i32;
    std::vector<std::int64_t> i64;
    std::vector<std::uint8_t> u8;
    Eigen::Matrix<Eigen::half, Eigen::Dynamic, 1> f16;
    Eigen::VectorXcd c128;
    Eigen::Matrix<bool, Eigen::Dynamic, 1> mask;
    Eigen::VectorXf big;  // 400000 floats: 1.53 MiB, more than one 1 MiB chunk
    Eigen::Tensor<float, 3> cube;
    Eigen::SparseMatrix<double> sparse;
    std::string note;
    std::vector<std::string> names;
    std::map<std::string, Eigen::VectorXf> heads;
    std::mt19937_64 rng;
    std::int64_t step = 0;
    float lr = 0;
};

inline constexpr int big_size = 400000;

inline state expected() {
    state s;
    s.f32.resize(3, 4);
    for (int i = 0; i < 12; ++i) s.f32.data()[i] = 0.25f * static_cast<float>(i) - 1.0f;
    s.f64.resize(2, 5);
    for (int i = 0; i < 10; ++i) s.f64.data()[i] = 1.0 / (i + 1);
    s.i32.resize(5);
    s.i32 << -2147483647 - 1, -1, 0, 1, 2147483647;
    s.i64 = {INT64_MIN, -3, 0, 7, INT64_MAX};
    s.u8 = {0, 1, 127, 128, 255};
    s.f16.resize(3);
    s.f16 << Eigen::half(0.5f), Eigen::half(-2.0f), Eigen::half(65504.0f);
    s.c128.resize(2);
    s.c128 << std::complex<double>(1.5, -2.5), std::complex<double>(-0.0, 1e-300);
    s.mask.resize(4);
    s.mask << true, false, false, true;
    s.big.resize(big_size);
    for (int i = 0; i < big_size; ++i) s.big[i] = static_cast<float>(i % 1000) * 0.5f + static_cast<float>(i / 1000);
    s.cube.resize(2, 3, 4);
    for (int i = 0; i < 24; ++i) s.cube.data()[i] = static_cast<float>(i * i) / 8.0f;
    s.sparse.resize(4, 5);
    s.sparse.insert(0, 1) = 1.25;
    s.sparse.insert(2, 4) = -3.5;
    s.sparse.insert(3, 0) = 8.0;
    s.sparse.makeCompressed();
    s.note = "format fixture: caf\xc3\xa9";
    s.names = {"alpha", "", "gamma/delta"};
    s.heads["en"] = Eigen::VectorXf::LinSpaced(3, 0.0f, 1.0f);
    s.heads["de/at"] = Eigen::VectorXf::Constant(2, -0.5f);
    s.rng.seed(20261125);
    s.rng.discard(17);
    s.step = 4200;
    s.lr = 3e-4f;
    return s;
}

inline ckpt::save_options expected_options() {
    ckpt::save_options o;
    o.step = 4200;
    o.metrics["loss"] = 0.125;
    o.metrics["accuracy"] = 0.75;
    o.strings["run"] = "fixture";
    o.strings["note"] = "written by tests/data/make_fixtures.cpp";
    return o;
}

template <class F>
auto with_checkpoint(state& s, F&& f) {
    ckpt::checkpoint ck{ckpt::track("f32", s.f32),     ckpt::track("f64", s.f64),       ckpt::track("i32", s.i32),
                        ckpt::track("i64", s.i64),     ckpt::track("u8", s.u8),         ckpt::track("f16", s.f16),
                        ckpt::track("c128", s.c128),   ckpt::track("mask", s.mask),     ckpt::track("big", s.big),
                        ckpt::track("cube", s.cube),   ckpt::track("sparse", s.sparse), ckpt::track("note", s.note),
                        ckpt::track("names", s.names), ckpt::track("heads", s.heads),   ckpt::track("rng", s.rng),
                        ckpt::track("step", s.step),   ckpt::track("lr", s.lr)};
    return f(ck);
}

}  // namespace ckpt_fixture
