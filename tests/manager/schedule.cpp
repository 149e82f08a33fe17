// When save_if_due saves: a save still being written counts toward the interval, and a clock
// that was ahead when the latest checkpoint was saved does not stop time-based saves.

#include <ckpt/ckpt.hpp>
#include <ckpt/testing.hpp>

#include <catch2/catch.hpp>

#include "../support/files.hpp"
#include "../support/models.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

using ckpt_test::fresh;

using model = ckpt_test::small_model;

// The training loop's step, seen by the background thread.
std::atomic<std::int64_t> loop_step{0};

// Holds the first asynchronous save (of step 25) on its background thread, before the rename that
// publishes its file, until the loop has gone two steps past step 25: the save is still
// "in flight" while the loop decides about the next steps, as it is for a large model. Held there,
// not at a manager_point: those run under the manager's lock, which is_due takes, so the loop
// would wait for the save and see it recorded. Only the first: the loop reaches the next due step
// long before a later save is written and waits there for it (one save in flight). The bound of
// 10 s keeps a loop that waits for the first save instead, which is the defect, from hanging.
std::atomic<bool> first_save_held{false};
std::thread::id loop_thread;

int hold_until_loop_moves_on(ckpt::testing::io_op op, const fs::path& path) {
    if (op != ckpt::testing::io_op::rename || std::this_thread::get_id() == loop_thread ||
        path.filename().string().rfind("ckpt-", 0) != 0 || first_save_held.exchange(true))
        return 0;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (loop_step.load() < 27 && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return 0;
}

struct hook_reset {
    ~hook_reset() {
        ckpt::testing::io_fault_injector = nullptr;
        first_save_held = false;
    }
};

}  // namespace

TEST_CASE("save_if_due in asynchronous mode: a save in flight counts toward the interval", "[manager][async]") {
    const auto dir = fresh("manager_schedule_async");
    hook_reset reset;
    loop_thread = std::this_thread::get_id();
    ckpt::testing::io_fault_injector = hold_until_loop_moves_on;
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::save_every_n_steps(25), ckpt::asynchronous};
    std::vector<std::int64_t> saved;
    for (m.step = 1; m.step < 100; ++m.step) {
        loop_step = m.step;
        if (mgr.save_if_due(m.step)) saved.push_back(m.step);
        if (m.step == 25) CHECK_FALSE(mgr.is_due(26));  // the save of step 25 is still being written
    }
    loop_step = 1000;
    mgr.wait();
    CHECK(saved == std::vector<std::int64_t>{25, 50, 75});  // before the fix: 25 26 50 51 75 76
    std::vector<std::int64_t> recorded;
    for (const auto& r : mgr.records()) recorded.push_back(r.step.value_or(-1));
    CHECK(recorded == std::vector<std::int64_t>{25, 50, 75});
}

TEST_CASE("save_every: a checkpoint saved while the clock was ahead does not stop time-based saves", "[manager]") {
    const auto dir = fresh("manager_schedule_skew");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        mgr.save(10);
    }
    // The run that saved step 10 ran on a node whose clock was an hour ahead: its record says so.
    auto state = ckpt::detail::read_state_file(dir);
    REQUIRE(state);
    state->records.back().wall_time += std::chrono::hours(1);
    {
        const std::string text = ckpt::detail::encode_state(*state);
        std::ofstream(dir / ckpt::detail::manager_state_name, std::ios::binary | std::ios::trunc) << text;
    }

    // Resumed on a node with a correct clock: the interval counts, at the least, from the open.
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::save_every(std::chrono::milliseconds(5))};
    REQUIRE(mgr.records().size() == 1);  // the state file was taken as written
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(mgr.is_due(11));  // before the fix: not due until the clock passes the record's time
    REQUIRE(mgr.save_if_due(11));
    // From a save of this process on, the interval is measured on the monotonic clock.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(mgr.save_if_due(12));
}

TEST_CASE("save_every: a long interval is not due right after a save", "[manager]") {
    const auto dir = fresh("manager_schedule_long");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::save_every(std::chrono::hours(1))};
    CHECK_FALSE(mgr.is_due(1));  // counted from the manager's opening
    mgr.save(1);
    CHECK_FALSE(mgr.is_due(2));
    CHECK(mgr.is_due(2, true));
}
