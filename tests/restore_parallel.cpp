// The parallel restore (issue 22): reads on several threads; every block verified before the first
// object changes, then landed in place on the pool's threads; a failed read on one thread surfaces on the caller with
// nothing changed; a file truncated by another process mid-restore gives a typed error, never a
// crash; two checkpoints restore at once; a landing that fails after the verification says what
// state the objects are in.

#include <ckpt/ckpt.hpp>
#include <ckpt/testing.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct hooks_reset {
    ~hooks_reset() {
        ckpt::testing::io_fault_injector = nullptr;
        ckpt::set_max_threads(0);
    }
};

// 40 MiB of 1 MiB tensors and one of 16 MiB (split into parts of whole chunks between threads).
struct big_state {
    std::vector<Eigen::MatrixXf> ws;
    Eigen::VectorXd long_one;
    std::int64_t step = 0;

    explicit big_state(float fill) : ws(40, Eigen::MatrixXf::Constant(262144, 1, fill)), long_one(2 << 20) {
        long_one.setConstant(static_cast<double>(fill));
    }
    auto checkpoint() {
        return ckpt::checkpoint{ckpt::track("w", ws), ckpt::track("long", long_one), ckpt::track("step", step)};
    }
    bool holds(float fill) const {
        for (const auto& w : ws)
            if (!(w.array() == fill).all()) return false;
        return (long_one.array() == static_cast<double>(fill)).all();
    }
};

fs::path saved_file(const fs::path& dir) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    big_state saved(0.0f);
    for (std::size_t i = 0; i < saved.ws.size(); ++i) saved.ws[i].setConstant(static_cast<float>(i + 1));
    for (Eigen::Index i = 0; i < saved.long_one.size(); ++i) saved.long_one[i] = static_cast<double>(i) * 0.5;
    saved.step = 7;
    return saved.checkpoint().write(dir / "ckpt");
}

bool holds_saved(const big_state& s) {
    for (std::size_t i = 0; i < s.ws.size(); ++i)
        if (!(s.ws[i].array() == static_cast<float>(i + 1)).all()) return false;
    for (Eigen::Index i = 0; i < s.long_one.size(); ++i)
        if (s.long_one[i] != static_cast<double>(i) * 0.5) return false;
    return s.step == 7;
}

// The reads (pread, preadv) a restore of `file` makes in `mode`.
std::atomic<int> reads{0};
int count_reads(ckpt::testing::io_op op, const fs::path&) {
    if (op == ckpt::testing::io_op::read) reads.fetch_add(1);
    return 0;
}

// The threads that made a restore's reads.
std::mutex readers_mutex;
std::set<std::thread::id> readers;
int note_reader(ckpt::testing::io_op op, const fs::path&) {
    if (op == ckpt::testing::io_op::read) {
        const std::lock_guard<std::mutex> lock(readers_mutex);
        readers.insert(std::this_thread::get_id());
    }
    return 0;
}

// How many threads read in a restore of `file` into `ck` (up to `rounds` restores, until several did).
template <class Checkpoint>
std::size_t reading_threads(Checkpoint& ck, const fs::path& file, ckpt::restore_mode mode, int rounds) {
    readers.clear();
    ckpt::testing::io_fault_injector = note_reader;
    // The pool's threads join a restore as they wake: on a loaded machine the caller may read
    // every part of one restore alone, so a few are allowed before "several" fails.
    for (int round = 0; round < rounds && readers.size() < 2; ++round) ck.restore(file, mode);
    ckpt::testing::io_fault_injector = nullptr;
    return readers.size();
}

}  // namespace

TEST_CASE("a restore reads on several of the pool's threads, and on the caller's alone when single-threaded",
          "[restore]") {
    hooks_reset reset;
    const auto file = saved_file("parallel_readers");
    big_state s(-1.0f);
    auto ck = s.checkpoint();
    ckpt::set_max_threads(4);
    CHECK(reading_threads(ck, file, ckpt::strict, 20) >= 2);
    CHECK(reading_threads(ck, file, ckpt::in_place, 20) >= 2);
    CHECK(reading_threads(ck, file, ckpt::single_threaded, 1) == 1);
    CHECK(readers.count(std::this_thread::get_id()) == 1);
    ckpt::set_max_threads(1);
    CHECK(reading_threads(ck, file, ckpt::strict, 1) == 1);
    CHECK(holds_saved(s));
}

TEST_CASE("a default restore lands every block in place with 1, 2 and many threads", "[restore]") {
    hooks_reset reset;
    const auto file = saved_file("parallel_sound");
    for (const std::size_t threads : {1, 2, 16}) {
        ckpt::set_max_threads(threads);
        big_state s(-1.0f);
        std::vector<const float*> storage;
        for (const auto& w : s.ws) storage.push_back(w.data());
        const double* const long_storage = s.long_one.data();
        auto ck = s.checkpoint();
        ck.restore(file).assert_consumed();
        CHECK(holds_saved(s));
        bool same_storage = s.long_one.data() == long_storage;
        for (std::size_t i = 0; i < s.ws.size(); ++i) same_storage = same_storage && s.ws[i].data() == storage[i];
        CHECK(same_storage);
        // Again, and single-threaded, into the same storage.
        s.ws[3].setZero();
        ck.restore(file, ckpt::single_threaded);
        CHECK(holds_saved(s));
    }
}

TEST_CASE("a read that fails on one of the restore's threads surfaces on the caller, nothing changed", "[restore]") {
    hooks_reset reset;
    const auto file = saved_file("parallel_read_fault");
    ckpt::set_max_threads(4);
    for (const int nth : {1, 5, 12, 30}) {
        big_state s(-1.0f);
        auto ck = s.checkpoint();
        static std::atomic<int> countdown;
        countdown = nth;
        ckpt::testing::io_fault_injector = [](ckpt::testing::io_op op, const fs::path&) {
            return op == ckpt::testing::io_op::read && countdown.fetch_sub(1) == 1 ? EIO : 0;
        };
        try {
            ck.restore(file);
            FAIL("the restore should have failed");
        } catch (const ckpt::io_error& e) {
            CHECK(e.code() == std::errc::io_error);
            CHECK(e.file() == file);
        }
        ckpt::testing::io_fault_injector = nullptr;
        CHECK(s.holds(-1.0f));
        CHECK(s.step == 0);
        ck.restore(file);
        CHECK(holds_saved(s));
    }
}

TEST_CASE("a restore into empty containers reads their new tensors on the pool, and a failed read leaves them empty",
          "[restore]") {
    // A program that builds its model from the checkpoint: the vector takes the file's 40 tensors,
    // read after the walk, on several threads, before it is swapped in.
    hooks_reset reset;
    fs::remove_all("parallel_empty");
    fs::create_directories("parallel_empty");
    std::vector<Eigen::MatrixXf> saved(40);
    for (std::size_t i = 0; i < saved.size(); ++i) saved[i] = Eigen::MatrixXf::Constant(262144, 1, float(i + 1));
    const fs::path file = ckpt::checkpoint{ckpt::track("w", saved)}.write("parallel_empty/ckpt");
    for (const std::size_t threads : {1, 2, 16}) {
        ckpt::set_max_threads(threads);
        std::vector<Eigen::MatrixXf> ws;
        ckpt::checkpoint ck{ckpt::track("w", ws)};
        ck.restore(file).assert_consumed();
        CHECK(ws == saved);
    }
    ckpt::set_max_threads(4);
    {
        std::vector<Eigen::MatrixXf> ws;
        ckpt::checkpoint ck{ckpt::track("w", ws)};
        std::size_t most = 0;
        for (int round = 0; round < 20 && most < 2; ++round) {
            ws.clear();
            most = std::max(most, reading_threads(ck, file, ckpt::strict, 1));
        }
        CHECK(most >= 2);
        CHECK(ws == saved);
    }
    for (const int nth : {3, 12, 30}) {
        std::vector<Eigen::MatrixXf> ws;
        ckpt::checkpoint ck{ckpt::track("w", ws)};
        static std::atomic<int> countdown;
        countdown = nth;
        ckpt::testing::io_fault_injector = [](ckpt::testing::io_op op, const fs::path&) {
            return op == ckpt::testing::io_op::read && countdown.fetch_sub(1) == 1 ? EIO : 0;
        };
        CHECK_THROWS_AS(ck.restore(file), ckpt::io_error);
        ckpt::testing::io_fault_injector = nullptr;
        CHECK(ws.empty());
        ck.restore(file);
        CHECK(ws == saved);
    }
}

TEST_CASE("a landing that fails after every block checked out says the objects are partly restored", "[restore]") {
    hooks_reset reset;
    const auto file = saved_file("parallel_landing");
    // One thread, so that the reads come in a fixed order: the check pass's, then the landings'.
    // A restore in place without verification makes only the landings' reads, so the default
    // restore makes more; its last read lands the last block, after every block checked out.
    std::int64_t reads_to_last = 0;
    {
        big_state s(-1.0f);
        auto ck = s.checkpoint();
        reads = 0;
        ckpt::testing::io_fault_injector = count_reads;
        ck.restore(file, ckpt::in_place | ckpt::single_threaded);
        const std::int64_t reads_in_place = reads.load();
        reads = 0;
        ck.restore(file, ckpt::single_threaded);
        ckpt::testing::io_fault_injector = nullptr;
        reads_to_last = reads.load();
        REQUIRE(reads_to_last > reads_in_place);
    }
    static std::atomic<std::int64_t> countdown;
    SECTION("a read error") {
        big_state s(-1.0f);
        auto ck = s.checkpoint();
        countdown = reads_to_last;
        ckpt::testing::io_fault_injector = [](ckpt::testing::io_op op, const fs::path&) {
            return op == ckpt::testing::io_op::read && countdown.fetch_sub(1) == 1 ? EIO : 0;
        };
        try {
            ck.restore(file, ckpt::single_threaded);
            FAIL("the restore should have failed");
        } catch (const ckpt::io_error& e) {
            CHECK(e.code() == std::errc::io_error);
            CHECK_THAT(e.what(), Catch::Contains("some of which now hold"));
            CHECK(e.file() == file);
        }
    }
    SECTION("the file truncated between the check and the landing") {
        const fs::path copy = "parallel_landing/copy";
        fs::copy_file(file, copy);
        big_state s(-1.0f);
        auto ck = s.checkpoint();
        countdown = reads_to_last;
        ckpt::testing::io_fault_injector = [](ckpt::testing::io_op op, const fs::path& p) {
            if (op == ckpt::testing::io_op::read && countdown.fetch_sub(1) == 1) fs::resize_file(p, 4096);
            return 0;
        };
        try {
            ck.restore(copy, ckpt::single_threaded);
            FAIL("the restore should have failed");
        } catch (const ckpt::corrupt_error& e) {
            CHECK_THAT(e.what(), Catch::Contains("some of which now hold"));
            CHECK_THAT(e.what(), Catch::Contains("ended early"));
            CHECK(e.file() == copy);
        }
    }
}

TEST_CASE("a file truncated and rewritten by another process during restores gives typed errors, never a crash",
          "[restore]") {
    hooks_reset reset;
    const auto file = saved_file("parallel_truncated");
    const fs::path target = "parallel_truncated/target";
    fs::copy_file(file, target);
    std::string bytes;
    {
        std::ifstream in(file, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    ckpt::set_max_threads(4);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // Shrinks the file at varying lengths and writes it back whole, over and over, for 3 s.
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        for (std::uint64_t k = 1; std::chrono::steady_clock::now() < until; ++k) {
            const int fd = ::open(target.c_str(), O_WRONLY);
            if (fd < 0) ::_exit(2);
            if (::ftruncate(fd, static_cast<off_t>((k * 7919 * 4096) % bytes.size())) != 0) ::_exit(3);
            ::usleep(static_cast<useconds_t>(200 + k % 5 * 300));
            for (std::size_t done = 0; done < bytes.size();) {
                const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
                if (n <= 0) ::_exit(4);
                done += static_cast<std::size_t>(n);
            }
            ::close(fd);
            ::usleep(static_cast<useconds_t>(100 + k % 3 * 500));
        }
        ::_exit(0);
    }
    int failures = 0, successes = 0, other = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
    while (std::chrono::steady_clock::now() < until) {
        big_state s(-1.0f);
        auto ck = s.checkpoint();
        try {
            ck.restore(target);
            ++successes;
            CHECK(holds_saved(s));
        } catch (const ckpt::error&) {
            ++failures;
        } catch (...) {
            ++other;
        }
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(other == 0);
    CHECK(failures + successes > 0);
    // The file whole again: it restores.
    big_state s(-1.0f);
    auto ck = s.checkpoint();
    ck.restore(target);
    CHECK(holds_saved(s));
}

TEST_CASE("two checkpoints restore at once on two threads, sharing the pool", "[restore]") {
    hooks_reset reset;
    const auto file = saved_file("parallel_two");
    ckpt::set_max_threads(4);
    std::atomic<int> exact{0};
    auto restore_five_times = [&] {
        big_state s(-1.0f);
        auto ck = s.checkpoint();
        for (int i = 0; i < 5; ++i) {
            s.ws[static_cast<std::size_t>(i)].setZero();
            ck.restore(file);
            if (holds_saved(s)) exact.fetch_add(1);
        }
    };
    std::thread other(restore_five_times);
    restore_five_times();
    other.join();
    CHECK(exact.load() == 10);
}

namespace {

// 2000 tensors of 16 floats: every block far under a page, read in runs of blocks that follow one
// another in the file, landed in place.
using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr std::size_t small_count = 2000;

fs::path saved_small_file(const fs::path& dir) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::vector<Eigen::MatrixXf> saved(small_count, Eigen::MatrixXf(4, 4));
    for (std::size_t i = 0; i < small_count; ++i)
        for (Eigen::Index k = 0; k < 16; ++k) saved[i](k % 4, k / 4) = static_cast<float>(i * 16 + k);
    return ckpt::checkpoint{ckpt::track("m", saved)}.write(dir / "ckpt");
}

template <class Matrix>
bool holds_small_saved(const std::vector<Matrix>& m) {
    for (std::size_t i = 0; i < m.size(); ++i)
        for (Eigen::Index k = 0; k < 16; ++k)
            if (m[i](k % 4, k / 4) != static_cast<float>(i * 16 + k)) return false;
    return m.size() == small_count;
}

template <class Matrix>
bool holds_only(const std::vector<Matrix>& m, float fill) {
    for (const auto& x : m)
        if (!(x.array() == fill).all()) return false;
    return true;
}

}  // namespace

TEST_CASE("small tensors that follow one another are read in runs and landed in place", "[restore]") {
    hooks_reset reset;
    const auto file = saved_small_file("parallel_small");
    for (const std::size_t threads : {1, 2, 16})
        for (const auto mode :
             {ckpt::strict, ckpt::in_place, ckpt::in_place | ckpt::verify_first, ckpt::single_threaded}) {
            CAPTURE(threads, static_cast<unsigned>(mode));
            ckpt::set_max_threads(threads);
            std::vector<Eigen::MatrixXf> m(small_count, Eigen::MatrixXf::Constant(4, 4, -1.0f));
            std::vector<const float*> storage;
            for (const auto& x : m) storage.push_back(x.data());
            auto ck = ckpt::checkpoint{ckpt::track("m", m)};
            reads = 0;
            ckpt::testing::io_fault_injector = count_reads;
            ck.restore(file, mode).assert_consumed();
            ckpt::testing::io_fault_injector = nullptr;
            CHECK(holds_small_saved(m));
            bool same_storage = true;
            for (std::size_t i = 0; i < m.size(); ++i) same_storage = same_storage && m[i].data() == storage[i];
            CHECK(same_storage);
            // 125 KiB of blocks: a few reads for the index, the check and the landing, not one per block.
            CHECK(reads.load() < 20);
        }
    SECTION("into objects of the other storage order, reordered while landing") {
        std::vector<row_major> m(small_count, row_major::Constant(4, 4, -1.0f));
        ckpt::checkpoint{ckpt::track("m", m)}.restore(file).assert_consumed();
        CHECK(holds_small_saved(m));
    }
}

TEST_CASE("a damaged small block in the middle of a run names its entry and changes nothing", "[restore]") {
    hooks_reset reset;
    const auto file = saved_small_file("parallel_small_damaged");
    const auto e = *ckpt::reader(file).find("m/1234");
    {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(static_cast<std::streamoff>(e.offset + 9));
        const char c = static_cast<char>(f.get() ^ 0x10);
        f.seekp(static_cast<std::streamoff>(e.offset + 9));
        f.put(c);
    }
    for (const std::size_t threads : {1, 2, 16})
        for (const auto mode : {ckpt::strict, ckpt::in_place | ckpt::verify_first, ckpt::single_threaded}) {
            CAPTURE(threads, static_cast<unsigned>(mode));
            ckpt::set_max_threads(threads);
            std::vector<Eigen::MatrixXf> m(small_count, Eigen::MatrixXf::Constant(4, 4, -1.0f));
            try {
                ckpt::checkpoint{ckpt::track("m", m)}.restore(file, mode);
                FAIL("the restore should have failed");
            } catch (const ckpt::corrupt_error& x) {
                CHECK(x.entry() == "m/1234");
                CHECK(x.file() == file);
                CHECK_THAT(x.what(), Catch::Contains("checksum"));
            }
            CHECK(holds_only(m, -1.0f));
        }
}

TEST_CASE("a file truncated between the check and the landing of a run of small blocks says so", "[restore]") {
    hooks_reset reset;
    const auto file = saved_small_file("parallel_small_truncated");
    // One thread: the check pass reads first, then the landing (counted as in the test above).
    std::int64_t landing_reads = 0, all_reads = 0;
    {
        std::vector<Eigen::MatrixXf> m(small_count, Eigen::MatrixXf::Constant(4, 4, -1.0f));
        auto ck = ckpt::checkpoint{ckpt::track("m", m)};
        reads = 0;
        ckpt::testing::io_fault_injector = count_reads;
        ck.restore(file, ckpt::in_place | ckpt::single_threaded);
        landing_reads = reads.load() - 2;  // the header and the index
        reads = 0;
        ck.restore(file, ckpt::single_threaded);
        all_reads = reads.load();
        ckpt::testing::io_fault_injector = nullptr;
        REQUIRE(landing_reads >= 1);
        REQUIRE(all_reads > landing_reads + 2);
    }
    const fs::path copy = "parallel_small_truncated/copy";
    fs::copy_file(file, copy);
    static std::atomic<std::int64_t> countdown;
    countdown = all_reads - landing_reads + 1;
    std::vector<Eigen::MatrixXf> m(small_count, Eigen::MatrixXf::Constant(4, 4, -1.0f));
    const std::uint64_t middle = ckpt::reader(file).find("m/1000")->offset;
    static std::uint64_t cut;
    cut = middle;
    ckpt::testing::io_fault_injector = [](ckpt::testing::io_op op, const fs::path& p) {
        if (op == ckpt::testing::io_op::read && countdown.fetch_sub(1) == 1) fs::resize_file(p, cut);
        return 0;
    };
    try {
        ckpt::checkpoint{ckpt::track("m", m)}.restore(copy, ckpt::single_threaded);
        FAIL("the restore should have failed");
    } catch (const ckpt::corrupt_error& x) {
        CHECK_THAT(x.what(), Catch::Contains("some of which now hold"));
        CHECK_THAT(x.what(), Catch::Contains("ended early"));
        CHECK(x.file() == copy);
    }
}
