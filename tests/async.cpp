// Asynchronous saves: a background thread that cannot start is reported and wedges nothing
// (issue 12, item 4), one checkpoint saved from several threads takes turns (item 13), the copies
// are taken on several threads and, under a memory budget, of what fits only (issue 22).

#include <ckpt/ckpt.hpp>
#include <ckpt/testing.hpp>

#include <catch2/catch.hpp>

#include "support/files.hpp"
#include "support/models.hpp"
#include "support/process.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

using model = ckpt_test::small_model;

fs::path fresh(const std::string& dir) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

std::int64_t restored_step(const fs::path& file) {
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ck.restore(file).assert_consumed();
    return m.step;
}

struct hooks_reset {
    ~hooks_reset() {
        ckpt::detail::io_fault_injector = nullptr;
        ckpt::detail::manager_test_hook = nullptr;
        ckpt::testing::thread_start_injector = nullptr;
    }
};

}  // namespace

// ---- 4.: a background thread that cannot start -------------------------------------------------

TEST_CASE("a failed thread start is reported and wedges nothing", "[trust][async]") {
    const auto dir = fresh("trust_thread_start");
    hooks_reset reset;
    model m;
    m.step = 5;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ckpt::testing::thread_start_injector = [] { return EAGAIN; };
    try {
        ck.save_async(dir / "ckpt");
        FAIL("the save should have failed");
    } catch (const ckpt::error& e) {
        CHECK_THAT(e.what(), Catch::Contains("background thread") && Catch::Contains("trust_thread_start/ckpt-1"));
    }
    CHECK_FALSE(ck.save_in_progress());
    ck.wait();  // returns at once: no job is recorded as in flight
    CHECK(ck.save_counter() == 0);
    CHECK_FALSE(fs::exists(dir / "ckpt-1"));
    {
        ckpt::checkpoint_manager mgr{ck, dir / "managed", ckpt::asynchronous};
        CHECK_THROWS_AS(mgr.save_if_due(1), ckpt::error);
        CHECK(mgr.checkpoints().empty());
    }  // the destructors return too
    ckpt::testing::thread_start_injector = nullptr;
    CHECK(ck.save(dir / "ckpt") == dir / "ckpt-1");  // synchronous saves were never affected
    CHECK(ck.save_async(dir / "ckpt") == dir / "ckpt-2");
    ck.wait();
    CHECK(restored_step(dir / "ckpt-2") == 5);
}

// ---- 13.: one checkpoint saved from several threads -------------------------------------------

TEST_CASE("saves from several threads through one checkpoint take turns", "[trust][async]") {
    const auto dir = fresh("trust_threads");
    Eigen::VectorXf weights = Eigen::VectorXf::LinSpaced(4096, 0, 1);
    std::int64_t step = 3;
    ckpt::checkpoint ck{ckpt::track("weights", weights), ckpt::track("step", step)};
    constexpr int per_thread = 40;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            const auto prefix = dir / ("t" + std::to_string(t));
            for (int i = 0; i < per_thread; ++i) {
                if (i % 2)
                    ck.save_async(prefix);
                else
                    ck.save(prefix);
            }
            ck.wait();
        });
    for (auto& t : threads) t.join();
    ck.wait();
    CHECK(ck.save_counter() >= 4 * per_thread);
    std::set<std::uint64_t> counters;
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        ckpt::reader r(e.path());
        r.verify();
        counters.insert(r.metadata().save_counter);
        ++files;
        Eigen::VectorXf back;
        std::int64_t back_step = 0;
        ckpt::checkpoint restore{ckpt::track("weights", back), ckpt::track("step", back_step)};
        restore.restore(e.path()).assert_consumed();
        CHECK(back == weights);
        CHECK(back_step == 3);
    }
    CHECK(files == 4 * per_thread);
    CHECK(counters.size() == files);  // no two saves took the same number
}

TEST_CASE("an asynchronous save copies the tensors as they were at the call, on 1, 2 and many threads", "[async]") {
    const auto dir = fresh("async_parallel_copy");
    struct reset_limit {
        ~reset_limit() { ckpt::set_max_threads(0); }
    } reset;
    // 40 MiB in tensors of 1 MiB, one of 16 MiB (split between threads), small ones and a scalar.
    std::vector<Eigen::MatrixXf> ws(40, Eigen::MatrixXf(262144, 1));
    Eigen::VectorXd long_one(2 << 20);
    std::vector<Eigen::Vector3f> small(100);
    std::int64_t step = 0;
    ckpt::checkpoint ck{ckpt::track("w", ws), ckpt::track("long", long_one), ckpt::track("small", small),
                        ckpt::track("step", step)};
    for (const std::size_t threads : {1, 2, 16}) {
        ckpt::set_max_threads(threads);
        const float base = static_cast<float>(threads);
        for (std::size_t i = 0; i < ws.size(); ++i) ws[i].setConstant(base + static_cast<float>(i));
        for (Eigen::Index i = 0; i < long_one.size(); ++i) long_one[i] = static_cast<double>(i) + base;
        for (auto& v : small) v.setConstant(base);
        step = static_cast<std::int64_t>(threads);
        const auto file = ck.save_async(dir / ("t" + std::to_string(threads)));
        // The snapshot is taken: the objects may change at once.
        for (auto& w : ws) w.setZero();
        long_one.setZero();
        small[7].setZero();
        step = -1;
        ck.wait();

        std::vector<Eigen::MatrixXf> ws2(40, Eigen::MatrixXf::Zero(262144, 1));
        Eigen::VectorXd long2 = Eigen::VectorXd::Zero(2 << 20);
        std::vector<Eigen::Vector3f> small2(100, Eigen::Vector3f::Zero());
        std::int64_t step2 = 0;
        ckpt::checkpoint back{ckpt::track("w", ws2), ckpt::track("long", long2), ckpt::track("small", small2),
                              ckpt::track("step", step2)};
        back.restore(file).assert_consumed();
        bool exact = step2 == static_cast<std::int64_t>(threads);
        for (std::size_t i = 0; i < ws2.size(); ++i)
            exact = exact && (ws2[i].array() == base + static_cast<float>(i)).all();
        for (Eigen::Index i = 0; i < long2.size(); ++i) exact = exact && long2[i] == static_cast<double>(i) + base;
        for (const auto& v : small2) exact = exact && (v.array() == base).all();
        CHECK(exact);
    }
}

// ---- a memory budget for the copies (issue 22) -------------------------------------------------

namespace {

// 8 tensors of 1 MiB, one of 4 MiB (four checksum chunks) and 100 small ones, in that file order,
// and a counter: the line a budget draws can fall between tensors, inside a chunk or on one.
struct budget_state {
    std::vector<Eigen::MatrixXf> ws = std::vector<Eigen::MatrixXf>(8, Eigen::MatrixXf(262144, 1));
    Eigen::VectorXf long_one = Eigen::VectorXf(1 << 20);
    std::vector<Eigen::Vector3f> small = std::vector<Eigen::Vector3f>(100);
    std::int64_t step = 0;

    static constexpr std::size_t tensor_bytes = (8 << 20) + (4 << 20) + 100 * 12;

    void fill(float base) {
        for (std::size_t i = 0; i < ws.size(); ++i) ws[i].setConstant(base + static_cast<float>(i));
        for (Eigen::Index i = 0; i < long_one.size(); ++i) long_one[i] = base + static_cast<float>(i % 1000);
        for (auto& v : small) v.setConstant(base);
        step = static_cast<std::int64_t>(base);
    }
    bool holds(float base) const {
        bool exact = step == static_cast<std::int64_t>(base);
        for (std::size_t i = 0; i < ws.size(); ++i)
            exact = exact && (ws[i].array() == base + static_cast<float>(i)).all();
        for (Eigen::Index i = 0; i < long_one.size(); ++i)
            exact = exact && long_one[i] == base + static_cast<float>(i % 1000);
        for (const auto& v : small) exact = exact && (v.array() == base).all();
        return exact;
    }
    auto checkpoint() {
        return ckpt::checkpoint{ckpt::track("w", ws), ckpt::track("long", long_one), ckpt::track("small", small),
                                ckpt::track("step", step)};
    }
};

std::vector<std::pair<std::string, std::uint64_t>> checksums(const fs::path& file) {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    const ckpt::reader r(file);
    for (const auto& e : r.entries()) out.emplace_back(e.path, e.checksum);
    return out;
}

bool no_temporaries(const fs::path& dir) {
    for (const auto& f : fs::directory_iterator(dir))
        if (ckpt::detail::is_temp_name(f.path())) return false;
    return true;
}

}  // namespace

TEST_CASE("under a memory budget an asynchronous save copies only the last bytes and writes the same file", "[async]") {
    const auto dir = fresh("async_budget");
    struct reset_limit {
        ~reset_limit() { ckpt::set_max_threads(0); }
    } reset;
    budget_state s;
    auto ck = s.checkpoint();
    constexpr std::size_t all = budget_state::tensor_bytes, mib = std::size_t{1} << 20;
    CHECK_FALSE(ck.async_memory_budget());

    // Unbounded first: the copies hold the whole state.
    s.fill(1);
    ck.save_async(dir / "unbounded");
    ck.wait();
    CHECK(ck.async_memory() >= all);

    struct budget_case {
        std::size_t bytes, threads;
    };
    // The line: before everything, inside a checksum chunk of the long tensor, on a chunk boundary
    // of it, between two tensors, inside the small ones, after everything.
    const std::vector<budget_case> cases = {{0, 1},
                                            {all - (8 * mib + mib + mib / 2 + 4), 2},
                                            {all - (8 * mib + 2 * mib), 16},
                                            {all - 3 * mib, 1},
                                            {all - (12 * mib + 50 * 12 + 4), 2},
                                            {all, 1},
                                            {all + 1, 1}};
    float base = 2;
    for (const auto& c : cases) {
        CAPTURE(c.bytes, c.threads);
        ckpt::set_max_threads(c.threads);
        ck.set_async_memory_budget(c.bytes);
        CHECK(ck.async_memory_budget() == c.bytes);
        s.fill(base);
        const auto sync = ck.write(dir / ("sync-" + std::to_string(c.bytes)));
        const auto file = ck.write_async(dir / ("async-" + std::to_string(c.bytes)));
        s.fill(-1);  // the save has what it needs: the objects may change at once
        ck.wait();
        CHECK(ck.async_memory() <= std::min(c.bytes, all) + 4096);  // 4 KiB: the counter's encoding, a margin

        CHECK(checksums(file) == checksums(sync));
        budget_state back;
        back.fill(0);
        auto restorer = back.checkpoint();
        restorer.restore(file).assert_consumed();
        CHECK(back.holds(base));
        base += 1;
    }

    // Unbounded again: the copies grow back.
    ck.set_async_memory_budget(std::nullopt);
    s.fill(base);
    ck.write_async(dir / "unbounded-again");
    ck.wait();
    CHECK(ck.async_memory() >= all);
    CHECK(no_temporaries(dir));
}

TEST_CASE("under a memory budget a failed write on either side loses nothing and wedges nothing", "[async][trust]") {
    const auto dir = fresh("async_budget_faults");
    hooks_reset reset;
    budget_state s;
    auto ck = s.checkpoint();
    ck.set_async_memory_budget(std::size_t{2} << 20);
    s.fill(1);
    const auto first = ck.save_async(dir / "ckpt");
    ck.wait();
    REQUIRE(ck.save_counter() == 1);

    // The caller's side: the write of what does not fit fails in save_async itself.
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path&) {
        return op == ckpt::detail::io_op::write ? ENOSPC : 0;
    };
    s.fill(2);
    CHECK_THROWS_AS(ck.save_async(dir / "ckpt"), ckpt::error);
    ckpt::detail::io_fault_injector = nullptr;
    CHECK_FALSE(ck.save_in_progress());
    CHECK(ck.save_counter() == 1);
    CHECK_FALSE(fs::exists(dir / "ckpt-2"));
    CHECK(no_temporaries(dir));

    // The background's side: the fsync of the file begun on the caller's thread fails.
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path&) {
        return op == ckpt::detail::io_op::fsync ? EIO : 0;
    };
    const auto failed = ck.save_async(dir / "ckpt");
    s.fill(3);
    CHECK_THROWS_AS(ck.wait(), ckpt::error);
    ckpt::detail::io_fault_injector = nullptr;
    CHECK_FALSE(fs::exists(failed));
    CHECK(ck.save_counter() == 1);
    CHECK(no_temporaries(dir));

    // Nothing is wedged: the next save is whole, and the first is untouched.
    const auto next = ck.save_async(dir / "ckpt");
    ck.wait();
    CHECK(next == dir / "ckpt-2");
    for (const auto& [file, base] : {std::pair{first, 1.0f}, std::pair{next, 3.0f}}) {
        budget_state back;
        auto restorer = back.checkpoint();
        restorer.restore(file).assert_consumed();
        CHECK(back.holds(base));
    }
}

// A checkpoint whose own do_start_async copies the whole state says so, and is refused a budget.
class unbounded_checkpoint : public ckpt::checkpoint<Eigen::VectorXf> {
public:
    using ckpt::checkpoint<Eigen::VectorXf>::checkpoint;

private:
    bool bounds_async_memory() const noexcept override { return false; }
};

TEST_CASE("a checkpoint whose asynchronous saves cannot keep to a memory budget refuses one", "[async]") {
    Eigen::VectorXf v = Eigen::VectorXf::Ones(16);
    unbounded_checkpoint ck{ckpt::track("v", v)};
    CHECK_THROWS_WITH(ck.set_async_memory_budget(std::size_t{1} << 20),
                      Catch::Contains("cannot keep to a memory budget"));
    CHECK_FALSE(ck.async_memory_budget());
    CHECK_NOTHROW(ck.set_async_memory_budget(std::nullopt));  // unbounded stays allowed
}
