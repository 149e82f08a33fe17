// A restore that fails, for any reason, leaves every tracked object as it was; containers restore
// strictly; hostile values in sound blocks fail as corrupt_error without large allocations.

#include <ckpt/ckpt.hpp>
#include <ckpt/detail/hash.hpp>  // XXH3 of hand-made blocks

#include <catch2/catch.hpp>

#include "support/counting_allocator.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct layer {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
};
CKPT_FIELDS(layer, kernel, bias)

layer make_layer(int in, int out) { return {Eigen::MatrixXf::Random(in, out), Eigen::VectorXf::Random(out)}; }

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}
void spit(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

// Damages files the way a disk or an adversary would.
struct damage {
    // Flips one bit in the block of `entry`: its checksum fails.
    static void flip(const fs::path& file, const std::string& entry, std::uint64_t at = 0) {
        std::string bytes = slurp(file);
        const auto e = *ckpt::reader(file).find(entry);
        bytes[e.offset + at] = static_cast<char>(bytes[e.offset + at] ^ 0x04);
        spit(file, bytes);
    }
    // Replaces the block of `entry` by `content` (the same length) and makes every checksum agree:
    // a sound file holding a hostile value.
    static void rewrite(const fs::path& file, const std::string& entry, std::string content) {
        using namespace ckpt::detail;
        std::string bytes = slurp(file);
        const auto e = *ckpt::reader(file).find(entry);
        REQUIRE(content.size() == e.length);
        std::memcpy(bytes.data() + e.offset, content.data(), content.size());
        const auto index_offset = get<std::uint64_t>(bytes.data() + 24);
        char old_sum[8];
        put<std::uint64_t>(old_sum, e.checksum);
        const auto at = bytes.find(std::string(old_sum, 8), index_offset);
        REQUIRE(at != std::string::npos);
        put<std::uint64_t>(bytes.data() + at, hash64(bytes.data() + e.offset, e.length));
        put<std::uint64_t>(bytes.data() + 32, bytes.size() - index_offset);
        put<std::uint64_t>(bytes.data() + 16, bytes.size());
        put<std::uint64_t>(bytes.data() + 40, hash64(bytes.data() + index_offset, bytes.size() - index_offset));
        put<std::uint64_t>(bytes.data() + 120, hash64(bytes.data(), 120));
        spit(file, bytes);
        ckpt::reader(file).verify();  // the bytes match their checksums: only the content is a lie
    }
};

// Runs `f` in a child process and returns how much its peak RSS grew, in MiB (-1 if it crashed or
// let an exception other than ckpt::error escape).
template <class F>
long peak_growth_mib(F f) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        rusage before{};
        ::getrusage(RUSAGE_SELF, &before);
        try {
            f();
        } catch (const ckpt::error&) {
        } catch (...) {
            ::_exit(255);
        }
        rusage after{};
        ::getrusage(RUSAGE_SELF, &after);
        ::_exit(static_cast<int>(std::min<long>(254, (after.ru_maxrss - before.ru_maxrss) / 1024)));
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 255) return -1;
    return WEXITSTATUS(status);
}

// A cereal type that cannot be copied: decoded into a fresh value in the check pass.
struct move_only {
    move_only() = default;
    move_only(move_only&&) = default;
    move_only& operator=(move_only&&) = default;
    move_only(const move_only&) = delete;
    move_only& operator=(const move_only&) = delete;
    std::int32_t value = 0;
    template <class A>
    void serialize(A& ar) {
        ar(value);
    }
};

// A replay buffer saved through cereal: a std::vector of large elements in one opaque entry.
struct replay_buffer {
    std::vector<std::array<float, 7056>> frames;
    std::uint64_t head = 3;
    template <class A>
    void serialize(A& ar) {
        ar(frames, head);
    }
};

}  // namespace

TEST_CASE("a damaged block leaves every object as it was, by default", "[restore]") {
    fs::remove_all("atomic_checksum");
    std::int64_t step = 42;
    std::vector<layer> layers{make_layer(4, 8), make_layer(8, 2)};
    Eigen::VectorXf last = Eigen::VectorXf::Random(100);
    ckpt::checkpoint ck{ckpt::track("step", step), ckpt::track("layers", layers), ckpt::track("last", last)};
    const auto file = ck.write("atomic_checksum/ckpt");
    damage::flip(file, "last", 17);

    std::int64_t step2 = 1;
    std::vector<layer> layers2{make_layer(4, 8), make_layer(8, 2)};
    Eigen::VectorXf last2 = Eigen::VectorXf::Random(100);
    const auto before_layers = layers2;
    const auto before_last = last2;
    ckpt::checkpoint loader{ckpt::track("step", step2), ckpt::track("layers", layers2), ckpt::track("last", last2)};
    auto unchanged = [&] {
        return step2 == 1 && layers2[0].kernel == before_layers[0].kernel && layers2[1].bias == before_layers[1].bias &&
               last2 == before_last;
    };
    CHECK_THROWS_AS(loader.restore(file), ckpt::corrupt_error);
    CHECK(unchanged());
    // Empty objects, which the restore would have resized, stay empty too.
    std::int64_t s3 = 0;
    std::vector<layer> l3;
    Eigen::VectorXf v3;
    ckpt::checkpoint empty{ckpt::track("step", s3), ckpt::track("layers", l3), ckpt::track("last", v3)};
    CHECK_THROWS_AS(empty.restore(file, ckpt::partial), ckpt::corrupt_error);
    CHECK(l3.empty());
    CHECK(v3.size() == 0);
    // in_place | verify_first: the same promise, in place.
    CHECK_THROWS_AS(loader.restore(file, ckpt::in_place | ckpt::verify_first), ckpt::corrupt_error);
    CHECK(unchanged());
    // in_place alone finds it while reading, after the objects before it changed: the documented trade.
    CHECK_THROWS_AS(loader.restore(file, ckpt::in_place), ckpt::corrupt_error);
    CHECK(step2 == 42);
    CHECK(layers2[0].kernel == layers[0].kernel);
}

TEST_CASE("a bool holding 2 is caught before any object changes, in every mode", "[restore]") {
    fs::remove_all("atomic_bool");
    std::int64_t step = 42;
    Eigen::Matrix<bool, Eigen::Dynamic, 1> mask = Eigen::Matrix<bool, Eigen::Dynamic, 1>::Constant(3, true);
    bool flag = true;
    ckpt::checkpoint ck{ckpt::track("step", step), ckpt::track("mask", mask), ckpt::track("flag", flag)};
    const auto file = ck.write("atomic_bool/ckpt");
    damage::rewrite(file, "flag", std::string(1, '\2'));

    for (const auto mode : {ckpt::strict, ckpt::verify_first, ckpt::in_place, ckpt::in_place | ckpt::verify_first}) {
        std::int64_t s = 1;
        Eigen::Matrix<bool, Eigen::Dynamic, 1> m;
        bool f = false;
        ckpt::checkpoint loader{ckpt::track("step", s), ckpt::track("mask", m), ckpt::track("flag", f)};
        CHECK_THROWS_WITH(loader.restore(file, mode), Catch::Contains("neither 0 nor 1") && Catch::Contains("flag"));
        CHECK(s == 1);
        CHECK(m.size() == 0);
        unsigned char byte;
        std::memcpy(&byte, &f, 1);
        CHECK(byte == 0);
    }
}

TEST_CASE("a move-only cereal type of the wrong type is a mismatch, found before anything changes", "[restore]") {
    fs::remove_all("atomic_move_only");
    std::int64_t step = 42;
    std::string token = "a string, not an int";
    ckpt::checkpoint ck{ckpt::track("step", step), ckpt::track("token", token)};
    const auto file = ck.write("atomic_move_only/ckpt");

    std::int64_t s = 1;
    move_only m;
    m.value = 5;
    ckpt::checkpoint loader{ckpt::track("step", s), ckpt::track("token", m)};
    try {
        loader.restore(file);
        FAIL("expected a mismatch");
    } catch (const ckpt::mismatch_error& e) {  // the file is fine: not a corrupt_error
        CHECK(e.entry() == "token");
    }
    CHECK(s == 1);
    CHECK(m.value == 5);

    // And one of the right type restores.
    move_only saved;
    saved.value = 77;
    ckpt::checkpoint good{ckpt::track("token", saved)};
    const auto f2 = good.write("atomic_move_only/good");
    move_only back;
    ckpt::checkpoint l2{ckpt::track("token", back)};
    l2.restore(f2).assert_consumed();
    CHECK(back.value == 77);
}

TEST_CASE("restore_or_initialize with a damaged only checkpoint leaves the objects as they were", "[restore]") {
    fs::remove_all("atomic_manager");
    std::int64_t step = 42;
    Eigen::VectorXf a = Eigen::VectorXf::Random(10), b = Eigen::VectorXf::Random(10);
    ckpt::checkpoint ck{ckpt::track("step", step), ckpt::track("a", a), ckpt::track("b", b)};
    fs::path file;
    {
        ckpt::checkpoint_manager saver(ck, "atomic_manager");
        file = saver.save();
    }
    damage::flip(file, "b");

    std::int64_t s = 0;
    Eigen::VectorXf a2 = Eigen::VectorXf::Zero(10), b2 = Eigen::VectorXf::Zero(10);
    ckpt::checkpoint fresh{ckpt::track("step", s), ckpt::track("a", a2), ckpt::track("b", b2)};
    ckpt::checkpoint_manager m(fresh, "atomic_manager");
    try {
        m.restore_or_initialize();
    } catch (const ckpt::error&) {}
    CHECK(s == 0);
    CHECK(a2.isZero());
    CHECK(b2.isZero());
}

TEST_CASE("a non-empty container whose size or keys differ is a mismatch in a strict restore", "[restore]") {
    fs::remove_all("atomic_containers");
    std::vector<layer> layers{make_layer(2, 3), make_layer(3, 1)};
    std::map<std::string, layer> heads{{"en", make_layer(3, 2)}};
    ckpt::checkpoint ck{ckpt::track("layers", layers), ckpt::track("heads", heads)};
    const auto file = ck.write("atomic_containers/ckpt");

    SECTION("a model that gained a layer") {
        std::vector<layer> grown{make_layer(2, 3), make_layer(3, 1), make_layer(1, 1)};
        std::map<std::string, layer> h;
        const auto before = grown;
        ckpt::checkpoint loader{ckpt::track("layers", grown), ckpt::track("heads", h)};
        try {
            loader.restore(file);
            FAIL("expected a mismatch");
        } catch (const ckpt::mismatch_error& e) {
            CHECK(e.entry() == "layers");
            CHECK_THAT(e.what(), Catch::Contains("checkpoint has 2 elements, object holds 3"));
        }
        CHECK(grown.size() == 3);
        CHECK(grown[0].kernel == before[0].kernel);
        CHECK(h.empty());

        // Partial: the two layers both have are restored, the new one is kept and listed.
        const auto status = loader.restore(file, ckpt::partial);
        CHECK(grown.size() == 3);
        CHECK(grown[0].kernel == layers[0].kernel);
        CHECK(grown[1].bias == layers[1].bias);
        CHECK(grown[2].kernel == before[2].kernel);
        CHECK(status.missing() == std::vector<std::string>{"layers/2"});
        CHECK_THROWS_AS(status.assert_consumed(), ckpt::mismatch_error);
        CHECK(h.at("en").kernel == heads.at("en").kernel);  // empty: took the file's keys
    }
    SECTION("a model that gained a head") {
        std::vector<layer> l;
        std::map<std::string, layer> more{{"en", make_layer(3, 2)}, {"fr", make_layer(3, 2)}};
        const auto fr = more.at("fr");
        ckpt::checkpoint loader{ckpt::track("layers", l), ckpt::track("heads", more)};
        try {
            loader.restore(file);
            FAIL("expected a mismatch");
        } catch (const ckpt::mismatch_error& e) {
            CHECK(e.entry() == "heads");
            CHECK_THAT(e.what(), Catch::Contains("checkpoint has 1 elements, object holds 2") &&
                                     Catch::Contains("keys only in the object: 'fr'"));
        }
        CHECK(more.size() == 2);
        CHECK(l.empty());
        const auto status = loader.restore(file, ckpt::partial);
        CHECK(more.size() == 2);
        CHECK(more.at("en").kernel == heads.at("en").kernel);
        CHECK(more.at("fr").kernel == fr.kernel);
        CHECK(status.missing() == std::vector<std::string>{"heads/fr"});
    }
    SECTION("a model that lost a layer or renamed a head") {
        std::vector<layer> fewer{make_layer(2, 3)};
        std::map<std::string, layer> renamed{{"de", make_layer(3, 2)}};
        ckpt::checkpoint loader{ckpt::track("layers", fewer), ckpt::track("heads", renamed)};
        CHECK_THROWS_WITH(loader.restore(file),
                          Catch::Contains("checkpoint has 2 elements, object holds 1") &&
                              Catch::Contains("keys only in the checkpoint: 'en'; keys only in the object: 'de'"));
        const auto status = loader.restore(file, ckpt::partial);
        CHECK(fewer.size() == 1);
        CHECK(fewer[0].kernel == layers[0].kernel);
        CHECK(renamed.count("en") == 0);
        CHECK(status.missing() == std::vector<std::string>{"heads/de"});
        CHECK(status.unused() ==
              std::vector<std::string>{"layers/1/kernel", "layers/1/bias", "heads/en/kernel", "heads/en/bias"});
    }
}

TEST_CASE("a distribution state announcing 2^60 values fails as corrupt_error, allocating nothing", "[restore]") {
    fs::remove_all("atomic_distribution");
    std::discrete_distribution<int> discrete{1, 2, 3, 4};
    std::piecewise_constant_distribution<double> constant;
    std::piecewise_linear_distribution<double> linear;
    ckpt::checkpoint ck{ckpt::track("discrete", discrete), ckpt::track("constant", constant),
                        ckpt::track("linear", linear)};
    const auto good = ck.write("atomic_distribution/good");
    for (const std::string name : {"discrete", "constant", "linear"}) {
        INFO(name);
        const fs::path file = "atomic_distribution/" + name;
        fs::copy_file(good, file, fs::copy_options::overwrite_existing);
        const auto length = ckpt::reader(file).find(name)->length;
        std::string hostile = "1152921504606846975 0.5";
        hostile.resize(static_cast<std::size_t>(length), ' ');
        damage::rewrite(file, name, hostile);
        auto restore = [&] {
            std::discrete_distribution<int> d;
            std::piecewise_constant_distribution<double> c;
            std::piecewise_linear_distribution<double> l;
            ckpt::checkpoint loader{ckpt::track("discrete", d), ckpt::track("constant", c), ckpt::track("linear", l)};
            loader.restore(file);
        };
        CHECK_THROWS_AS(restore(), ckpt::corrupt_error);
        CHECK_THROWS_WITH(restore(), Catch::Contains(name));
        const long growth = peak_growth_mib(restore);
        CHECK(growth >= 0);
        CHECK(growth < 16);
    }
    // A sound state restores.
    std::discrete_distribution<int> d;
    std::piecewise_constant_distribution<double> c;
    std::piecewise_linear_distribution<double> l;
    ckpt::checkpoint loader{ckpt::track("discrete", d), ckpt::track("constant", c), ckpt::track("linear", l)};
    loader.restore(good).assert_consumed();
    CHECK(d == discrete);
}

TEST_CASE("a cereal container of large elements is bounded by the elements' encoded size", "[restore]") {
    fs::remove_all("atomic_large_elements");
    replay_buffer replay;
    replay.frames.resize(1);
    replay.frames[0].fill(0.5f);
    std::vector<std::vector<std::string>> nested{{"a", "b"}, {}};
    ckpt::checkpoint ck{ckpt::track("replay", replay), ckpt::track("nested", nested)};
    const auto good = ck.write("atomic_large_elements/good");

    // The size tag claims as many frames as the entry has bytes left (the old, one-byte bound).
    const fs::path file = "atomic_large_elements/hostile";
    fs::copy_file(good, file, fs::copy_options::overwrite_existing);
    const auto e = *ckpt::reader(file).find("replay");
    std::string block = slurp(file).substr(static_cast<std::size_t>(e.offset), static_cast<std::size_t>(e.length));
    ckpt::detail::put<std::uint64_t>(block.data(), e.length - 8);
    damage::rewrite(file, "replay", block);
    auto restore = [&] {
        replay_buffer r;
        std::vector<std::vector<std::string>> n;
        ckpt::checkpoint loader{ckpt::track("replay", r), ckpt::track("nested", n)};
        loader.restore(file);
    };
    // A sound block whose size tag is a lie cannot be told from a value saved as another type.
    CHECK_THROWS_AS(restore(), ckpt::error);
    CHECK_THROWS_WITH(restore(), Catch::Contains("replay") && Catch::Contains("exceeds"));
    const long growth = peak_growth_mib(restore);
    CHECK(growth >= 0);
    CHECK(growth < 16);

    replay_buffer r;
    std::vector<std::vector<std::string>> n;
    ckpt::checkpoint loader{ckpt::track("replay", r), ckpt::track("nested", n)};
    loader.restore(good).assert_consumed();
    CHECK(r.frames == replay.frames);
    CHECK(r.head == 3);
    CHECK(n == nested);
}

namespace {
// A cereal type whose load function reserves what the bytes claim, as careless user code does.
struct careless {
    std::string text;
    template <class A>
    void save(A& ar) const {
        ar(static_cast<std::uint64_t>(text.size()));
    }
    template <class A>
    void load(A& ar) {
        std::uint64_t n = 0;
        ar(n);
        text.reserve(static_cast<std::size_t>(n));  // std::length_error or std::bad_alloc for a lie
        text.assign(static_cast<std::size_t>(std::min<std::uint64_t>(n, 4)), 'x');
    }
};
}  // namespace

TEST_CASE("any other exception from decoding a damaged value is a corrupt_error naming the entry", "[restore]") {
    fs::remove_all("atomic_foreign");
    std::int64_t step = 42;
    careless c{"abc"};
    ckpt::checkpoint ck{ckpt::track("step", step), ckpt::track("careless", c)};
    const auto file = ck.write("atomic_foreign/ckpt");
    std::string block(8, '\0');
    ckpt::detail::put<std::uint64_t>(block.data(), ~std::uint64_t{0});
    damage::rewrite(file, "careless", block);

    std::int64_t s = 1;
    careless back{"kept"};
    ckpt::checkpoint loader{ckpt::track("step", s), ckpt::track("careless", back)};
    try {
        loader.restore(file);
        FAIL("expected a corrupt_error");
    } catch (const ckpt::corrupt_error& e) {
        CHECK(e.entry() == "careless");
        CHECK(e.file() == file);
    }
    CHECK(s == 1);
    CHECK(back.text == "kept");
}

namespace {
struct no_fields {};
}  // namespace

TEST_CASE("a std::vector of an empty struct restores: its elements have no entries of their own", "[restore]") {
    fs::remove_all("atomic_empty_struct");
    std::vector<no_fields> v(5);
    ckpt::checkpoint ck{ckpt::track("v", v)};
    const auto file = ck.write("atomic_empty_struct/ckpt");
    std::vector<no_fields> back;
    ckpt::checkpoint loader{ckpt::track("v", back)};
    loader.restore(file).assert_consumed();
    CHECK(back.size() == 5);
}

using ckpt_test::counted_vector;
using ckpt_test::heap_count;

TEST_CASE("a restore into storage of the right size lands in place and allocates nothing; other sizes are staged",
          "[restore]") {
    fs::remove_all("atomic_spares");
    constexpr std::size_t n = 1 << 18;  // 1 MiB
    counted_vector w(n), v(n);
    for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<float>(i), v[i] = static_cast<float>(n - i);
    Eigen::MatrixXf m = Eigen::MatrixXf::Random(300, 200);
    const Eigen::MatrixXf m_saved = m;
    ckpt::checkpoint saver{ckpt::track("w", w), ckpt::track("v", v), ckpt::track("m", m)};
    const auto file = saver.write("atomic_spares/ckpt");
    const auto saved_w = w, saved_v = v;

    counted_vector w2(n, 1.0f), v2(n, 2.0f);
    Eigen::MatrixXf m2 = Eigen::MatrixXf::Zero(300, 200);
    ckpt::checkpoint ck{ckpt::track("w", w2), ckpt::track("v", v2), ckpt::track("m", m2)};
    const float* const storage[] = {w2.data(), v2.data(), m2.data()};
    // Every block verified, then read straight into the objects: no second copy of the model.
    for (int round = 0; round < 3; ++round) {
        w2.assign(n, 3.0f);
        m2.setZero();
        heap_count::reset();
        const std::size_t live_before = heap_count::live;
        ck.restore(file);
        CHECK(heap_count::allocations == 0);
        CHECK(heap_count::peak == live_before);
        CHECK(w2 == saved_w);
        CHECK(v2 == saved_v);
        CHECK(m2 == m_saved);
        CHECK(w2.data() == storage[0]);
        CHECK(v2.data() == storage[1]);
        CHECK(m2.data() == storage[2]);
    }

    // A damaged block is found before anything changes, although nothing is staged.
    fs::copy_file(file, "atomic_spares/damaged");
    damage::flip("atomic_spares/damaged", "m", 40);
    w2.assign(n, 5.0f);
    v2.assign(n, 6.0f);
    m2.setConstant(7.0f);
    const auto before_w = w2, before_v = v2;
    CHECK_THROWS_AS(ck.restore("atomic_spares/damaged"), ckpt::corrupt_error);
    CHECK(w2 == before_w);
    CHECK(v2 == before_v);
    CHECK((m2.array() == 7.0f).all());
    ck.restore(file);
    CHECK(w2 == saved_w);
    CHECK(m2 == m_saved);

    // Empty vectors take the file's size: staged in new storage, which becomes theirs (one
    // allocation each, no copy after).
    counted_vector().swap(w2);
    counted_vector().swap(v2);
    heap_count::reset();
    const std::size_t live_empty = heap_count::live;
    ck.restore(file);
    CHECK(heap_count::allocations == 2);
    CHECK(heap_count::peak == live_empty + 2 * n * sizeof(float));
    CHECK(w2 == saved_w);
    CHECK(v2 == saved_v);

    // Bool tensors are staged (their bytes are checked before anything changes): from the second
    // restore on, the storage a restore replaced is kept, and the next stages into it.
    Eigen::Matrix<bool, Eigen::Dynamic, 1> mask = Eigen::Matrix<bool, Eigen::Dynamic, 1>::Constant(1 << 20, true);
    ckpt::checkpoint mask_saver{ckpt::track("mask", mask)};
    const auto mask_file = mask_saver.write("atomic_spares/mask");
    Eigen::Matrix<bool, Eigen::Dynamic, 1> mask2 = Eigen::Matrix<bool, Eigen::Dynamic, 1>::Constant(1 << 20, false);
    ckpt::checkpoint mask_loader{ckpt::track("mask", mask2)};
    mask_loader.restore(mask_file);
    CHECK(mask2 == mask);
    const bool* const second = mask2.data();
    mask_loader.restore(mask_file);
    const bool* const third = mask2.data();
    CHECK(third != second);
    mask2.setConstant(false);
    mask_loader.restore(mask_file);
    CHECK(mask2 == mask);
    CHECK(mask2.data() == second);
}

namespace {

// The VmFlags of the mapping that holds `at`, from /proc/self/smaps (Linux), or "" when not found.
std::string vm_flags_at(const void* at) {
    std::ifstream smaps("/proc/self/smaps");
    const auto address = reinterpret_cast<std::uintptr_t>(at);
    bool inside = false;
    for (std::string line; std::getline(smaps, line);) {
        unsigned long long lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%llx-%llx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
            inside = address >= lo && address < hi;
        } else if (inside && line.rfind("VmFlags:", 0) == 0) {
            return line;
        }
    }
    return "";
}

}  // namespace

TEST_CASE("fresh staging memory is mapped at once, only inside the buffer (Linux 5.14)", "[restore]") {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t pages = (std::size_t{2} << 20) / page;  // 2 MiB: a buffer populated alone
    auto map = [&](std::size_t n) {
        void* p = ::mmap(nullptr, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        REQUIRE(p != MAP_FAILED);
        return static_cast<char*>(p);
    };
    char* const probe = map(1);
    const bool supported = ::madvise(probe, page, MADV_POPULATE_WRITE) == 0;
    ::munmap(probe, page);
    if (!supported) {
        WARN("this kernel cannot populate pages (before Linux 5.14): nothing to check");
        return;
    }
    char* const region = map(pages);
    auto resident = [&] {
        std::vector<unsigned char> in(pages);
        REQUIRE(::mincore(region, pages * page, in.data()) == 0);
        std::vector<bool> out(pages);
        for (std::size_t i = 0; i < pages; ++i) out[i] = (in[i] & 1) != 0;
        return out;
    };
    auto count = [](const std::vector<bool>& v) { return std::count(v.begin(), v.end(), true); };
    CHECK(count(resident()) == 0);
    // Under 1 MiB, alone: not populated (a call per small buffer costs more than it saves when
    // its pages are mapped already).
    ckpt::detail::advise_fresh_buffer(region + 100, 64 * page);
    CHECK(count(resident()) == 0);
    // From 1 MiB: a buffer from byte 100 of the first page to byte 100 of the last, its whole pages only.
    ckpt::detail::advise_fresh_buffer(region + 100, (pages - 1) * page);
    auto after = resident();
    CHECK_FALSE(after.front());
    CHECK_FALSE(after.back());
    CHECK(count(after) == static_cast<std::ptrdiff_t>(pages - 2));
    ::munmap(region, pages * page);

    // Buffers collected by a restore: neighbours are populated together, with the one page between
    // their interiors; pages outside any buffer and its neighbour's gap are not.
    char* const other = map(pages);
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges = {
        ckpt::detail::page_interior(other + 40 * page + 16, 10 * page),  // pages 41-49
        ckpt::detail::page_interior(other + 20 * page + 16, 10 * page),  // pages 21-29
        ckpt::detail::page_interior(other + 30 * page + 32, 10 * page),  // pages 31-39
    };
    ckpt::detail::populate_pages(ranges);
    std::vector<unsigned char> in(pages);
    REQUIRE(::mincore(other, pages * page, in.data()) == 0);
    for (std::size_t i = 0; i < pages; ++i) CHECK(((in[i] & 1) != 0) == (i >= 21 && i <= 49));
    ::munmap(other, pages * page);
#endif
}

TEST_CASE("a staged restore of tensors of several MiB restores exact values, and a damaged chunk changes nothing",
          "[restore]") {
    fs::remove_all("atomic_large");
    // Larger than two 2 MiB pages, so fresh staging storage is advised to use huge pages (Linux).
    Eigen::MatrixXf big = Eigen::MatrixXf::Random(1500, 1100);  // 6.3 MiB
    std::vector<double> wide(1500000);                          // 11.4 MiB
    for (std::size_t i = 0; i < wide.size(); ++i) wide[i] = static_cast<double>(i) * 0.5 - 3.0;
    Eigen::VectorXf small = Eigen::VectorXf::Random(100);
    ckpt::checkpoint saver{ckpt::track("big", big), ckpt::track("wide", wide), ckpt::track("small", small)};
    const auto file = saver.write("atomic_large/ckpt");
    fs::copy_file(file, "atomic_large/damaged");
    // The last MiB chunk of "wide", after "big" was read and staged whole.
    damage::flip("atomic_large/damaged", "wide", wide.size() * sizeof(double) - 100);

    // Objects without storage of the file's size yet (a program starting from nothing): staged.
    Eigen::MatrixXf big2;
    std::vector<double> wide2;
    Eigen::VectorXf small2 = Eigen::VectorXf::Zero(100);
    ckpt::checkpoint ck{ckpt::track("big", big2), ckpt::track("wide", wide2), ckpt::track("small", small2)};
    const float* const big_storage = big2.data();
    CHECK_THROWS_AS(ck.restore("atomic_large/damaged"), ckpt::corrupt_error);
    CHECK(big2.data() == big_storage);
    CHECK(big2.size() == 0);
    CHECK(wide2.empty());
    CHECK(small2 == Eigen::VectorXf::Zero(100));

    ck.restore(file);
    CHECK(big2 == big);
    CHECK(wide2 == wide);
    CHECK(small2 == small);
#if defined(__linux__)
    // The staged storage, now the objects', was advised to use huge pages in its 2 MiB-aligned interior,
    // where the kernel has transparent huge pages at all.
    if (fs::exists("/sys/kernel/mm/transparent_hugepage/enabled")) {
        auto interior = [](const void* p) {
            const auto a = reinterpret_cast<std::uintptr_t>(p);
            return reinterpret_cast<const void*>(((a + (std::uintptr_t{1} << 21) - 1) >> 21 << 21) + 4096);
        };
        CHECK(vm_flags_at(interior(big2.data())).find(" hg") != std::string::npos);
        CHECK(vm_flags_at(interior(wide2.data())).find(" hg") != std::string::npos);
        // Nothing outside the block changed its advice: the object the restore did not stage.
        CHECK(vm_flags_at(small2.data()).find(" hg") == std::string::npos);
    }
#endif
    // A second restore lands in that storage, in place, and stays exact.
    big2.setZero();
    ck.restore(file);
    CHECK(big2 == big);
    CHECK(wide2 == wide);
}

namespace {

// What restoring `file` into objects of the saved shapes throws, and whether they stayed as they were.
struct parallel_failure {
    std::string what, entry;
    fs::path file;
    bool unchanged = false;
};
parallel_failure restore_failure(const fs::path& good, const fs::path& file, ckpt::restore_mode mode, std::size_t count,
                                 Eigen::Index rows, Eigen::Index long_rows) {
    std::vector<Eigen::MatrixXf> ws(count, Eigen::MatrixXf::Constant(rows, 1, 2.0f));
    Eigen::VectorXd long_one = Eigen::VectorXd::Constant(long_rows, 3.0);
    Eigen::Matrix<bool, Eigen::Dynamic, 1> mask = Eigen::Matrix<bool, Eigen::Dynamic, 1>::Constant(8192, false);
    std::int64_t step = 1;
    std::vector<const float*> storage;
    ckpt::checkpoint ck{ckpt::track("w", ws), ckpt::track("long", long_one), ckpt::track("mask", mask),
                        ckpt::track("step", step)};
    // Two sound restores first: the third stages into their spares, which is when blocks are read
    // on several threads (a first restore, into new memory, reads on one).
    for (int i = 0; i < 2; ++i) ck.restore(good, mode);
    for (auto& w : ws) w.setConstant(2.0f);
    long_one.setConstant(3.0);
    mask.setConstant(false);
    step = 1;
    for (const auto& w : ws) storage.push_back(w.data());
    const double* const long_storage = long_one.data();
    parallel_failure out;
    try {
        ck.restore(file, mode);
        return out;
    } catch (const ckpt::corrupt_error& e) {
        out = {e.what(), e.entry(), e.file(), true};
    }
    for (std::size_t i = 0; i < count; ++i)
        out.unchanged = out.unchanged && ws[i].data() == storage[i] && (ws[i].array() == 2.0f).all();
    out.unchanged =
        out.unchanged && long_one.data() == long_storage && (long_one.array() == 3.0).all() && !mask.any() && step == 1;
    return out;
}

}  // namespace

TEST_CASE("a restore read on several threads throws what a read in order throws, and changes nothing", "[restore]") {
    // 16 MiB of 1 MiB tensors and a 16 MiB one (split into parts of whole chunks): 32 MiB, read by up
    // to 4 threads where the machine has several cores, by one with ckpt::single_threaded.
    fs::remove_all("atomic_threads");
    fs::create_directories("atomic_threads");
    constexpr std::size_t count = 16;
    constexpr Eigen::Index rows = 262144, long_rows = 2 << 20;
    std::vector<Eigen::MatrixXf> ws;
    for (std::size_t i = 0; i < count; ++i) ws.push_back(Eigen::MatrixXf::Random(rows, 1));
    Eigen::VectorXd long_one(long_rows);
    for (Eigen::Index i = 0; i < long_rows; ++i) long_one[i] = static_cast<double>(i) * 0.25;
    Eigen::Matrix<bool, Eigen::Dynamic, 1> mask(8192);
    for (Eigen::Index i = 0; i < mask.size(); ++i) mask[i] = i % 3 == 0;
    std::int64_t step = 7;
    ckpt::checkpoint saver{ckpt::track("w", ws), ckpt::track("long", long_one), ckpt::track("mask", mask),
                           ckpt::track("step", step)};
    const auto file = saver.write("atomic_threads/ckpt");

    SECTION("a sound file restores exactly, again into the spares, and single-threaded") {
        std::vector<Eigen::MatrixXf> ws2(count, Eigen::MatrixXf::Zero(rows, 1));
        Eigen::VectorXd long2 = Eigen::VectorXd::Zero(long_rows);
        Eigen::Matrix<bool, Eigen::Dynamic, 1> mask2;
        std::int64_t step2 = 0;
        ckpt::checkpoint ck{ckpt::track("w", ws2), ckpt::track("long", long2), ckpt::track("mask", mask2),
                            ckpt::track("step", step2)};
        for (const auto mode : {ckpt::strict, ckpt::strict, ckpt::strict, ckpt::single_threaded}) {
            for (auto& w : ws2) w.setZero();
            long2.setZero();
            ck.restore(file, mode);
            CHECK(ws2 == ws);
            CHECK(long2 == long_one);
            CHECK(mask2 == mask);
            CHECK(step2 == 7);
        }
    }
    SECTION("one damaged block in the middle") {
        const fs::path damaged = "atomic_threads/one";
        fs::copy_file(file, damaged);
        damage::flip(damaged, "w/8", 1000);
        const auto threaded = restore_failure(file, damaged, ckpt::strict, count, rows, long_rows);
        const auto serial = restore_failure(file, damaged, ckpt::single_threaded, count, rows, long_rows);
        CHECK(threaded.unchanged);
        CHECK(threaded.entry == "w/8");
        CHECK(threaded.file == damaged);
        CHECK(threaded.what == serial.what);
        CHECK(serial.unchanged);
    }
    SECTION("of several damaged blocks, the first in order is named, whichever thread finds it") {
        const fs::path damaged = "atomic_threads/several";
        fs::copy_file(file, damaged);
        damage::flip(damaged, "w/15", 5);
        damage::flip(damaged, "long", 9 * (1 << 20) + 3);  // chunk 9 of 16
        damage::flip(damaged, "long", 14 * (1 << 20) + 3);
        damage::flip(damaged, "w/10", 5);
        const auto serial = restore_failure(file, damaged, ckpt::single_threaded, count, rows, long_rows);
        CHECK(serial.entry == "w/10");
        for (int round = 0; round < 5; ++round) {
            const auto threaded = restore_failure(file, damaged, ckpt::strict, count, rows, long_rows);
            CHECK(threaded.unchanged);
            CHECK(threaded.what == serial.what);
        }
    }
    SECTION("a damaged chunk of a tensor split between threads") {
        const fs::path damaged = "atomic_threads/chunk";
        fs::copy_file(file, damaged);
        damage::flip(damaged, "long", 11 * (1 << 20) + 77);
        const auto threaded = restore_failure(file, damaged, ckpt::strict, count, rows, long_rows);
        const auto serial = restore_failure(file, damaged, ckpt::single_threaded, count, rows, long_rows);
        CHECK(threaded.unchanged);
        CHECK(threaded.entry == "long");
        CHECK_THAT(threaded.what, Catch::Contains("chunk 11 "));
        CHECK(threaded.what == serial.what);
    }
    SECTION("a bool byte that is neither 0 nor 1, after the large blocks") {
        const fs::path damaged = "atomic_threads/bool";
        fs::copy_file(file, damaged);
        std::string bytes(8192, '\0');
        bytes[4000] = '\2';
        damage::rewrite(damaged, "mask", bytes);
        const auto threaded = restore_failure(file, damaged, ckpt::strict, count, rows, long_rows);
        CHECK(threaded.unchanged);
        CHECK(threaded.entry == "mask");
        CHECK_THAT(threaded.what, Catch::Contains("neither 0 nor 1"));
    }
    SECTION("a damaged block before entries that fail in the walk: the block's error, as in order") {
        const fs::path damaged = "atomic_threads/walk";
        fs::copy_file(file, damaged);
        damage::flip(damaged, "w/3", 5);
        // A mismatch later (the file has an int64 scalar, the object is a vector) ...
        std::vector<Eigen::MatrixXf> ws2(count, Eigen::MatrixXf::Constant(rows, 1, 2.0f));
        Eigen::VectorXd long2 = Eigen::VectorXd::Constant(long_rows, 3.0);
        Eigen::Matrix<bool, Eigen::Dynamic, 1> mask2;
        std::vector<int> step_as_vector{1, 2};
        ckpt::checkpoint ck{ckpt::track("w", ws2), ckpt::track("long", long2), ckpt::track("mask", mask2),
                            ckpt::track("step", step_as_vector)};
        CHECK_THROWS_MATCHES(ck.restore(damaged), ckpt::corrupt_error,
                             Catch::Predicate<ckpt::corrupt_error>([](const auto& e) { return e.entry() == "w/3"; }));
        // ... or a small block the walk reads itself, damaged too: the walk throws at "step" first.
        damage::flip(damaged, "step", 0);
        const auto threaded = restore_failure(file, damaged, ckpt::strict, count, rows, long_rows);
        CHECK(threaded.unchanged);
        CHECK(threaded.entry == "w/3");
        for (const auto& w : ws2) CHECK((w.array() == 2.0f).all());
        CHECK((long2.array() == 3.0).all());
        CHECK(step_as_vector == std::vector<int>{1, 2});
    }
}
