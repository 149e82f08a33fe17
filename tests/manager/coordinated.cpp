// checkpoint_manager and interrupt_guard with a coordinator, in one process: the leader of a
// pretend two-process job whose other process is quiet (tests/mpi/manager.cpp runs the real thing
// over MPI). And save_if_due(step, guard) of a one-process manager, which is
// save_if_due(step, guard.requested()).

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// Rank 0 of two: shares its own bytes, combines with a quiet other rank, and records what it
// was asked to agree on (rethrowing its own error, as the real one does for the lowest rank).
struct quiet_pair final : ckpt::coordinator {
    int rank() const noexcept override { return 0; }
    int size() const noexcept override { return 2; }
    std::string share(std::string bytes) override {
        ++shares;
        return bytes;
    }
    std::uint64_t combine(std::uint64_t mine) override {
        ++combines;
        return mine;
    }
    void agree(std::exception_ptr mine, const std::string& during, const fs::path&) override {
        agreed.push_back(during);
        if (mine) std::rethrow_exception(mine);
    }
    int shares = 0, combines = 0;
    std::vector<std::string> agreed;
};

struct coordinated_checkpoint : ckpt::checkpoint<int> {
    explicit coordinated_checkpoint(int& x) : ckpt::checkpoint<int>(ckpt::track("x", x)) {}
    ckpt::coordinator* coordination() noexcept override { return &pair; }
    quiet_pair pair;
};

fs::path fresh(const char* name) {
    fs::remove_all(name);
    return name;
}

}  // namespace

TEST_CASE("save_if_due(step, guard) of a one-process manager saves and stops at the signal's step") {
    int x = 0;
    ckpt::checkpoint ck{ckpt::track("x", x)};
    ckpt::checkpoint_manager mgr{ck, fresh("guard_one"), ckpt::save_every_n_steps(100)};
    ckpt::interrupt_guard guard{nullptr, {SIGUSR1}};  // a null coordinator: an ordinary guard
    std::int64_t step = 1;
    for (; step < 50 && !guard.requested(); ++step) {
        x = static_cast<int>(step);
        if (step == 7) std::raise(SIGUSR1);
        mgr.save_if_due(step, guard);
    }
    CHECK(step == 8);
    CHECK(guard.signal() == SIGUSR1);
    REQUIRE(mgr.records().size() == 1);
    CHECK(mgr.records().back().step == 7);
    guard.clear();
    CHECK_FALSE(guard.requested());
}

TEST_CASE("a coordinated manager: the save_if_due decision is one combine, and saves share the state") {
    int x = 0;
    coordinated_checkpoint ck(x);
    ckpt::checkpoint_manager mgr{ck, fresh("coordinated"), ckpt::keep_last(2), ckpt::save_every_n_steps(3)};
    CHECK(ck.pair.shares == 1);  // the open
    std::vector<std::int64_t> saved;
    for (std::int64_t step = 1; step <= 10; ++step)
        if (mgr.save_if_due(step, step == 4)) saved.push_back(step);
    CHECK(saved == std::vector<std::int64_t>{3, 4, 7, 10});
    CHECK(ck.pair.combines == 10);
    CHECK(ck.pair.shares == 1 + 2 * 4);  // each save: its name, then the recorded state
    CHECK(!mgr.save_if_due(10, true));   // never twice for a step, forced or not
    REQUIRE(mgr.checkpoints().size() == 2);
    CHECK(mgr.checkpoints().back().filename() == "ckpt-10");
}

TEST_CASE("a shared guard reports the request agreed at the last save_if_due, not its own signal") {
    int x = 0;
    coordinated_checkpoint ck(x);
    ckpt::checkpoint_manager mgr{ck, fresh("coordinated_guard"), ckpt::save_every_n_steps(100)};

    SECTION("shared from its construction") {
        ckpt::interrupt_guard guard{ck.coordination(), {SIGUSR1}};
        std::raise(SIGUSR1);
        CHECK_FALSE(guard.requested());  // not agreed yet: the other rank would not know
        CHECK(guard.signal() == 0);
        CHECK(mgr.save_if_due(5, guard));  // agreed here: every rank saves this step
        CHECK(guard.requested());
        CHECK(guard.signal() == SIGUSR1);
        guard.clear();
        CHECK_FALSE(guard.requested());
        CHECK_FALSE(mgr.save_if_due(6, guard));
    }
    SECTION("shared once given to save_if_due") {
        ckpt::interrupt_guard guard{SIGUSR1};
        CHECK_FALSE(mgr.save_if_due(1, guard));
        std::raise(SIGUSR1);  // after the call: seen at the next one
        CHECK_FALSE(guard.requested());
        CHECK(mgr.save_if_due(2, guard));
        CHECK(guard.signal() == SIGUSR1);
        REQUIRE(mgr.records().size() == 1);
        CHECK(mgr.records().back().step == 2);
    }
}

TEST_CASE("a coordinated manager's errors go through coordinator::agree") {
    int x = 0;
    coordinated_checkpoint ck(x);
    const auto dir = fresh("coordinated_errors");
    ckpt::checkpoint_manager first{ck, dir};
    CHECK_THROWS_WITH((ckpt::checkpoint_manager{ck, dir}), Catch::Contains("another checkpoint_manager"));
    REQUIRE(!ck.pair.agreed.empty());
    CHECK(ck.pair.agreed.back() == "to open the checkpoint directory");
}

TEST_CASE("a coordinated manager's asynchronous saves: the leader records in the background, the others at wait") {
    int x = 0;
    coordinated_checkpoint ck(x);
    ckpt::checkpoint_manager mgr{ck, fresh("coordinated_async"), ckpt::asynchronous, ckpt::save_every_n_steps(2)};
    std::vector<std::int64_t> saved;
    for (std::int64_t step = 1; step <= 6; ++step)
        if (mgr.save_if_due(step)) saved.push_back(step);
    CHECK(saved == std::vector<std::int64_t>{2, 4, 6});  // counted from the save in flight
    const int shares = ck.pair.shares;
    mgr.wait();
    CHECK(ck.pair.shares == shares + 1);  // the state, once
    mgr.wait();
    CHECK(ck.pair.shares == shares + 1);  // nothing new: no collective
    CHECK(mgr.checkpoints().size() == 3);

    // The leader's recording fails in the background: thrown at the next wait, through agree.
    ckpt::detail::manager_test_hook = [](ckpt::detail::manager_point p) {
        if (p == ckpt::detail::manager_point::written) throw ckpt::io_error("injected", "x");
    };
    mgr.save_async(ckpt::save_options{8, {}, {}});
    CHECK_THROWS_AS(mgr.wait(), ckpt::io_error);
    ckpt::detail::manager_test_hook = nullptr;
    CHECK(ck.pair.agreed.back() == "to record the last asynchronous checkpoint");
    CHECK(mgr.checkpoints().size() == 3);
    mgr.save(10);
    CHECK(mgr.checkpoints().back().filename() == "ckpt-10");
}
