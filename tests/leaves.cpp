// Every kind of leaf survives a save and a restore into fresh objects exactly: tensors of every
// element type and layout, sparse matrices, random engines and distributions, cereal values.

#include <ckpt/ckpt.hpp>

#include <Eigen/SparseCore>
#include <unsupported/Eigen/CXX11/Tensor>

#include <catch2/catch.hpp>

#include <chrono>
#include <complex>
#include <filesystem>
#include <optional>
#include <random>
#include <set>
#include <tuple>
#include <unordered_map>
#include <variant>

namespace {

std::mt19937_64 seeded(int round) { return std::mt19937_64(0xC0FFEEu + static_cast<unsigned>(round)); }

template <class T>
T random_value(std::mt19937_64& rng) {
    if constexpr (std::is_same_v<T, bool>)
        return rng() % 2 == 1;
    else if constexpr (std::is_integral_v<T>)
        return static_cast<T>(rng());
    else if constexpr (std::is_floating_point_v<T>)
        return static_cast<T>(std::uniform_real_distribution<double>(-1e3, 1e3)(rng));
    else if constexpr (std::is_same_v<T, Eigen::half> || std::is_same_v<T, Eigen::bfloat16>)
        return T(static_cast<float>(std::uniform_real_distribution<double>(-8, 8)(rng)));
    else
        return T(random_value<typename T::value_type>(rng), random_value<typename T::value_type>(rng));  // complex
}

// Saves `value` under one name, restores into `fresh`, requires equality.
template <class T>
void round_trip(const T& value, T fresh, const std::string& dir) {
    T saved = value;
    ckpt::checkpoint out{ckpt::track("value", saved)};
    const auto file = out.write(dir + "/value.ckpt");
    ckpt::checkpoint in{ckpt::track("value", fresh)};
    in.restore(file).assert_consumed();
    REQUIRE(fresh == value);
}

// Every layout of one element type in one object: one checkpoint type per element type rather than
// one per shape, with which this file took 2.4 times as long to compile (150 s against 62 s, g++ -Og).
template <class Scalar>
struct every_shape_of {
    template <int Rows, int Cols, int Options>
    using matrix = Eigen::Matrix<Scalar, Rows, Cols, Options>;
    template <int Rows, int Cols, int Options>
    using array = Eigen::Array<Scalar, Rows, Cols, Options>;
    static constexpr int dynamic = Eigen::Dynamic;

    matrix<dynamic, dynamic, Eigen::ColMajor> matrix_column_major;
    matrix<dynamic, dynamic, Eigen::RowMajor> matrix_row_major;
    matrix<3, 2, Eigen::ColMajor> fixed_column_major;
    matrix<3, 2, Eigen::RowMajor> fixed_row_major;
    matrix<dynamic, 1, Eigen::ColMajor> column_vector;
    matrix<1, dynamic, Eigen::RowMajor> row_vector;
    matrix<4, 1, Eigen::ColMajor> fixed_vector;
    array<dynamic, dynamic, Eigen::ColMajor> array_column_major;
    array<dynamic, dynamic, Eigen::RowMajor> array_row_major;
    array<3, 2, Eigen::ColMajor> fixed_array_column_major;
    array<3, 2, Eigen::RowMajor> fixed_array_row_major;
    array<dynamic, 1, Eigen::ColMajor> column_array;
    array<1, dynamic, Eigen::RowMajor> row_array;
    array<4, 1, Eigen::ColMajor> fixed_column_array;
    Scalar scalar{};

    template <class F>
    void each_tensor(F&& f) {
        f(matrix_column_major);
        f(matrix_row_major);
        f(fixed_column_major);
        f(fixed_row_major);
        f(column_vector);
        f(row_vector);
        f(fixed_vector);
        f(array_column_major);
        f(array_row_major);
        f(fixed_array_column_major);
        f(fixed_array_row_major);
        f(column_array);
        f(row_array);
        f(fixed_column_array);
    }
};

template <class Scalar>
void every_shape(std::mt19937_64& rng, const std::string& dir) {
    every_shape_of<Scalar> saved;
    saved.each_tensor([&](auto& t) {
        using T = std::remove_reference_t<decltype(t)>;
        const auto rows = T::RowsAtCompileTime == Eigen::Dynamic ? 1 + static_cast<Eigen::Index>(rng() % 7)
                                                                 : Eigen::Index{T::RowsAtCompileTime};
        const auto cols = T::ColsAtCompileTime == Eigen::Dynamic ? 1 + static_cast<Eigen::Index>(rng() % 7)
                                                                 : Eigen::Index{T::ColsAtCompileTime};
        t.resize(rows, cols);
        for (Eigen::Index i = 0; i < t.size(); ++i) t.data()[i] = random_value<Scalar>(rng);
    });
    saved.scalar = random_value<Scalar>(rng);
    ckpt::checkpoint out{ckpt::track("value", saved)};
    const auto file = out.write(dir + "/value.ckpt");

    every_shape_of<Scalar> fresh;  // dynamic shapes empty, fixed ones uninitialized
    ckpt::checkpoint in{ckpt::track("value", fresh)};
    in.restore(file).assert_consumed();
    std::vector<std::pair<Eigen::Index, Eigen::Index>> shapes;
    std::vector<Scalar> values;
    saved.each_tensor([&](const auto& t) {
        shapes.emplace_back(t.rows(), t.cols());
        values.insert(values.end(), t.data(), t.data() + t.size());
    });
    std::size_t next_shape = 0, next_value = 0;
    fresh.each_tensor([&](const auto& t) {
        REQUIRE(std::make_pair(t.rows(), t.cols()) == shapes[next_shape++]);
        for (Eigen::Index i = 0; i < t.size(); ++i) REQUIRE(t.data()[i] == values[next_value++]);
    });
    REQUIRE(next_value == values.size());
    REQUIRE(fresh.scalar == saved.scalar);
}

struct with_arrays {  // C array members need CKPT_FIELDS: Boost.PFR cannot reflect them
    float weights[5];
    std::array<std::int16_t, 3> counts;
    std::vector<double> history;
};
CKPT_FIELDS(with_arrays, weights, counts, history)
bool operator==(const with_arrays& a, const with_arrays& b) {
    return std::equal(a.weights, a.weights + 5, b.weights) && a.counts == b.counts && a.history == b.history;
}

enum class phase { warmup, train, cooldown };

struct user_serialize {
    std::string name;
    int version = 0;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(name, version);
    }
    bool operator==(const user_serialize& o) const { return name == o.name && version == o.version; }
};
struct user_save_load {
    std::vector<int> values;
    template <class Archive>
    void save(Archive& ar) const {
        ar(values);
    }
    template <class Archive>
    void load(Archive& ar) {
        ar(values);
    }
    bool operator==(const user_save_load& o) const { return values == o.values; }
};

template <class Engine>
void engine_continues(const std::string& dir) {
    Engine engine;
    engine.discard(12345);
    ckpt::checkpoint out{ckpt::track("engine", engine)};
    const auto file = out.write(dir + "/engine.ckpt");
    Engine restored;
    ckpt::checkpoint in{ckpt::track("engine", restored)};
    in.restore(file).assert_consumed();
    for (int i = 0; i < 1000; ++i) REQUIRE(restored() == engine());
}

}  // namespace

TEST_CASE("tensors of every element type and layout round-trip exactly", "[leaves]") {
    const std::string dir = "leaves_tensors";
    std::filesystem::remove_all(dir);
    for (int round = 0; round < 3; ++round) {
        auto rng = seeded(round);
        every_shape<float>(rng, dir);
        every_shape<double>(rng, dir);
        every_shape<std::int8_t>(rng, dir);
        every_shape<std::int16_t>(rng, dir);
        every_shape<std::int32_t>(rng, dir);
        every_shape<std::int64_t>(rng, dir);
        every_shape<std::uint8_t>(rng, dir);
        every_shape<std::uint16_t>(rng, dir);
        every_shape<std::uint32_t>(rng, dir);
        every_shape<std::uint64_t>(rng, dir);
        every_shape<bool>(rng, dir);
        every_shape<Eigen::half>(rng, dir);
        every_shape<Eigen::bfloat16>(rng, dir);
        every_shape<std::complex<float>>(rng, dir);
        every_shape<std::complex<double>>(rng, dir);
    }
}

TEST_CASE("std::vector, std::array and C arrays of numbers are tensors too", "[leaves]") {
    const std::string dir = "leaves_arrays";
    std::filesystem::remove_all(dir);
    auto rng = seeded(7);
    with_arrays v{};
    for (auto& w : v.weights) w = random_value<float>(rng);
    for (auto& c : v.counts) c = random_value<std::int16_t>(rng);
    for (int i = 0; i < 9; ++i) v.history.push_back(random_value<double>(rng));
    round_trip(v, with_arrays{}, dir);
    ckpt::checkpoint ck{ckpt::track("v", v)};
    const auto file = ck.write(dir + "/kinds.ckpt");
    ckpt::reader r(file);
    CHECK(r.find("v/weights")->kind == ckpt::entry_kind::tensor);
    CHECK(r.find("v/weights")->shape == ckpt::shape{5});
    CHECK(r.find("v/history")->dtype == ckpt::dtype::float64);
}

TEST_CASE("Eigen::Tensor and TensorFixedSize round-trip in both storage orders", "[leaves]") {
    const std::string dir = "leaves_eigen_tensor";
    std::filesystem::remove_all(dir);
    auto rng = seeded(3);
    auto check = [&](auto tensor) {
        using T = decltype(tensor);
        for (Eigen::Index i = 0; i < tensor.size(); ++i) tensor.data()[i] = random_value<typename T::Scalar>(rng);
        T saved = tensor;
        ckpt::checkpoint out{ckpt::track("t", saved)};
        out.write(dir + "/t.ckpt");
        T fresh;
        ckpt::checkpoint in{ckpt::track("t", fresh)};
        in.restore(dir + "/t.ckpt").assert_consumed();
        for (std::size_t d = 0; d < static_cast<std::size_t>(T::NumIndices); ++d)
            REQUIRE(fresh.dimension(d) == tensor.dimension(d));
        for (Eigen::Index i = 0; i < tensor.size(); ++i) REQUIRE(fresh.data()[i] == tensor.data()[i]);
    };
    check(Eigen::Tensor<float, 1>(7));
    check(Eigen::Tensor<double, 2>(3, 4));
    check(Eigen::Tensor<std::int32_t, 3>(2, 3, 4));
    check(Eigen::Tensor<float, 4, Eigen::RowMajor>(2, 1, 3, 2));
    check(Eigen::Tensor<std::complex<float>, 3, Eigen::RowMajor>(2, 2, 2));
    Eigen::TensorFixedSize<float, Eigen::Sizes<2, 3>> fixed;
    fixed.setZero();  // copied into check() before it fills it: not from indeterminate values
    check(fixed);
}

TEST_CASE("sparse matrices round-trip, compressed or not, in both storage orders", "[leaves]") {
    const std::string dir = "leaves_sparse";
    std::filesystem::remove_all(dir);
    auto rng = seeded(4);
    auto check = [&](auto m) {
        using M = decltype(m);
        m.resize(20, 15);
        for (int k = 0; k < 30; ++k)
            m.coeffRef(static_cast<Eigen::Index>(rng() % 20), static_cast<Eigen::Index>(rng() % 15)) =
                random_value<typename M::Scalar>(rng);
        const M saved = m;
        ckpt::checkpoint out{ckpt::track("m", m)};  // m may be uncompressed here: saving compresses a copy
        out.write(dir + "/m.ckpt");
        M fresh;
        ckpt::checkpoint in{ckpt::track("m", fresh)};
        in.restore(dir + "/m.ckpt").assert_consumed();
        REQUIRE(fresh.nonZeros() == saved.nonZeros());
        REQUIRE(Eigen::Matrix<typename M::Scalar, Eigen::Dynamic, Eigen::Dynamic>(fresh) ==
                Eigen::Matrix<typename M::Scalar, Eigen::Dynamic, Eigen::Dynamic>(saved));
    };
    check(Eigen::SparseMatrix<double>());
    check(Eigen::SparseMatrix<float, Eigen::RowMajor>());
    check(Eigen::SparseMatrix<std::int64_t, Eigen::ColMajor, std::int64_t>());
}

TEST_CASE("a column-major entry restores into a row-major matrix of the same logical shape", "[leaves]") {
    const std::string dir = "leaves_layout";
    std::filesystem::remove_all(dir);
    Eigen::MatrixXf column_major = Eigen::MatrixXf::Random(4, 6);
    ckpt::checkpoint out{ckpt::track("w", column_major)};
    out.write(dir + "/w.ckpt");
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major;
    ckpt::checkpoint in{ckpt::track("w", row_major)};
    in.restore(dir + "/w.ckpt").assert_consumed();
    REQUIRE(row_major.rows() == 4);
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 6; ++j) REQUIRE(row_major(i, j) == column_major(i, j));
}

TEST_CASE("random engines continue the same sequence and distributions keep their cached state", "[leaves]") {
    const std::string dir = "leaves_random";
    std::filesystem::remove_all(dir);
    engine_continues<std::mt19937>(dir);
    engine_continues<std::mt19937_64>(dir);
    engine_continues<std::minstd_rand>(dir);
    engine_continues<std::ranlux24>(dir);
    engine_continues<std::ranlux48>(dir);
    engine_continues<std::knuth_b>(dir);

    std::mt19937_64 engine(5);
    std::normal_distribution<double> normal(2.0, 3.0);
    (void)normal(engine);  // draws a pair: the second value is cached inside the distribution
    ckpt::checkpoint out{ckpt::track("engine", engine), ckpt::track("normal", normal)};
    out.write(dir + "/normal.ckpt");
    std::mt19937_64 engine2;
    std::normal_distribution<double> normal2;
    ckpt::checkpoint in{ckpt::track("engine", engine2), ckpt::track("normal", normal2)};
    in.restore(dir + "/normal.ckpt").assert_consumed();
    for (int i = 0; i < 100; ++i) REQUIRE(normal2(engine2) == normal(engine));
}

TEST_CASE("values cereal serializes round-trip as opaque entries", "[leaves]") {
    const std::string dir = "leaves_cereal";
    std::filesystem::remove_all(dir);
    round_trip(std::string("learning rate schedule: cosine"), std::string(), dir);
    round_trip(std::map<int, std::string>{{1, "a"}, {5, "b"}}, {}, dir);
    round_trip(std::set<std::string>{"x", "y"}, {}, dir);
    round_trip(std::unordered_map<std::string, double>{{"lr", 0.1}, {"wd", 1e-4}}, {}, dir);
    round_trip(std::optional<int>(42), std::optional<int>(), dir);
    round_trip(std::optional<int>(), std::optional<int>(7), dir);
    round_trip(std::variant<int, std::string>(std::string("two")), std::variant<int, std::string>(), dir);
    round_trip(std::pair<int, float>(3, 1.5f), {}, dir);
    round_trip(std::tuple<int, std::string, double>(1, "t", 2.5), {}, dir);
    round_trip(std::chrono::milliseconds(1234), std::chrono::milliseconds(0), dir);
    round_trip(phase::cooldown, phase::warmup, dir);
    round_trip(std::vector<bool>{true, false, true, true}, {}, dir);
    round_trip(user_serialize{"adamw", 2}, {}, dir);
    round_trip(user_save_load{{4, 5, 6}}, {}, dir);
    std::string s = "x";
    ckpt::checkpoint ck{ckpt::track("s", s)};
    CHECK(ckpt::reader(ck.write(dir + "/kind.ckpt")).find("s")->kind == ckpt::entry_kind::serialized);
}
