// ckpt::checkpoint_manager: naming, continuity across restarts, the state file, ownership, locking.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include "../support/files.hpp"
#include "../support/models.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

using ckpt_test::fresh;
using ckpt_test::names;

using model = ckpt_test::small_model;

}  // namespace

TEST_CASE("a manager numbers checkpoints, keeps the last n, and knows the latest", "[manager]") {
    const auto dir = fresh("manager_basic");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(3)};
    CHECK_FALSE(mgr.latest_checkpoint());
    for (int i = 0; i < 5; ++i) mgr.save();
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-3", "ckpt-4", "ckpt-5"});
    CHECK(*mgr.latest_checkpoint() == dir / "ckpt-5");
    CHECK(*ckpt::latest_checkpoint(dir) == dir / "ckpt-5");
    CHECK_FALSE(fs::exists(dir / "ckpt-1"));
    CHECK(ck.save_counter() == 5);
}

TEST_CASE("names: by step, with a prefix, from a template", "[manager]") {
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    SECTION("the step number, like TensorFlow's checkpoint_number") {
        ckpt::checkpoint_manager mgr{ck, fresh("manager_names_step"), ckpt::prefix("model")};
        CHECK(mgr.save(1200).filename() == "model-1200");
    }
    SECTION("a Keras-style template filled from the step and the metrics") {
        ckpt::checkpoint_manager mgr{ck, fresh("manager_names_template"),
                                     ckpt::name_template("epoch_{epoch:03d}-val_loss_{val_loss:.3f}")};
        ckpt::save_options o;
        o.step = 7;
        o.metrics["val_loss"] = 0.12345;
        CHECK(mgr.save(o).filename() == "epoch_007-val_loss_0.123");
        o.metrics.clear();
        CHECK_THROWS_WITH(mgr.save(o), Catch::Contains("{val_loss}") && Catch::Contains("no value"));
    }
    SECTION("a template that would leave the directory is refused") {
        ckpt::checkpoint_manager mgr{ck, fresh("manager_names_escape"), ckpt::name_template("../{step}")};
        CHECK_THROWS_WITH(mgr.save(3), Catch::Contains("not a plain file name"));
    }
}

TEST_CASE("a new manager continues an existing directory", "[manager]") {
    const auto dir = fresh("manager_restart");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
        ckpt::save_options o;
        o.metrics["loss"] = 1.5;
        o.strings["note"] = "first run";
        mgr.save(o);
        mgr.save();
    }
    model other;
    ckpt::checkpoint ck2{ckpt::track("weights", other.weights), ckpt::track("step", other.step)};
    ckpt::checkpoint_manager mgr{ck2, dir, ckpt::keep_last(1)};
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-1", "ckpt-2"});
    CHECK(mgr.records().front().metrics.at("loss") == 1.5);
    CHECK(mgr.records().front().strings.at("note") == "first run");
    CHECK(mgr.save().filename() == "ckpt-3");                               // numbering continues
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-3"});  // its policy applies to the old ones
}

TEST_CASE("restore_or_initialize restores the latest or initializes", "[manager]") {
    const auto dir = fresh("manager_restore_or_init");
    model m;
    m.step = 41;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    bool initialized = false;
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        CHECK_FALSE(mgr.restore_or_initialize([&] { initialized = true; }));
        CHECK(initialized);
        mgr.save();
        m.step = 42;
        mgr.save();
    }
    model back;
    back.weights.resize(0, 0);
    ckpt::checkpoint ck2{ckpt::track("weights", back.weights), ckpt::track("step", back.step)};
    ckpt::checkpoint_manager mgr{ck2, dir};
    initialized = false;
    CHECK(*mgr.restore_or_initialize([&] { initialized = true; }) == dir / "ckpt-2");
    CHECK_FALSE(initialized);
    CHECK(back.step == 42);
    CHECK(back.weights == m.weights);

    SECTION("a damaged latest checkpoint: the one before it is restored") {
        std::fstream f(dir / "ckpt-2", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(200);
        f.put('\x7f');
        f.close();
        back.step = 0;
        CHECK(*mgr.restore_or_initialize() == dir / "ckpt-1");
        CHECK(back.step == 41);
    }
}

TEST_CASE("save_if_due: step and time intervals, forced saves, never the same step twice", "[manager]") {
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ckpt::checkpoint_manager mgr{ck, fresh("manager_due"), ckpt::save_every_n_steps(10)};
    std::vector<std::int64_t> saved;
    for (std::int64_t step = 1; step <= 35; ++step)
        if (mgr.save_if_due(step)) saved.push_back(step);
    CHECK(saved == std::vector<std::int64_t>{10, 20, 30});
    CHECK(mgr.save_if_due(33, true));        // forced
    CHECK_FALSE(mgr.save_if_due(33, true));  // the same step again: a no-op
    CHECK_FALSE(mgr.save_if_due(34));
    CHECK(mgr.save_if_due(43));

    ckpt::checkpoint_manager timed{ck, fresh("manager_due_time"), ckpt::save_every(std::chrono::hours(1))};
    CHECK_FALSE(timed.save_if_due(1));
    CHECK(timed.save_if_due(2, true));
    CHECK_FALSE(timed.save_if_due(3));
}

TEST_CASE("asynchronous saves through the manager are recorded and rotated in the background", "[manager][async]") {
    const auto dir = fresh("manager_async");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2), ckpt::asynchronous};
    for (std::int64_t step = 1; step <= 6; ++step) {
        m.step = step;
        mgr.save_if_due(step);
    }
    mgr.wait();
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-5", "ckpt-6"});
    std::int64_t back = 0;
    Eigen::MatrixXf w;
    ckpt::checkpoint ck2{ckpt::track("weights", w), ckpt::track("step", back)};
    ck2.restore(dir / "ckpt-6");
    CHECK(back == 6);
}

TEST_CASE("the state file: relative names, rebuilt when missing or damaged", "[manager]") {
    const auto dir = fresh("manager_state");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(5)};
        for (int i = 1; i <= 3; ++i) {
            ckpt::save_options o;
            o.step = 100 * i;
            o.metrics["loss"] = 1.0 / i;
            mgr.save(o);
        }
    }
    SECTION("a moved directory still works") {
        fs::remove_all("manager_state_moved");
        fs::rename(dir, "manager_state_moved");
        ckpt::checkpoint_manager mgr{ck, "manager_state_moved"};
        CHECK(*mgr.latest_checkpoint() == fs::path("manager_state_moved") / "ckpt-300");
    }
    SECTION("missing: rebuilt from the checkpoints' own metadata") {
        fs::remove(dir / "ckpt-state");
        ckpt::checkpoint_manager mgr{ck, dir};
        REQUIRE(mgr.records().size() == 3);
        CHECK(mgr.records().back().name == "ckpt-300");
        CHECK(*mgr.records().back().step == 300);
        CHECK(mgr.records().back().metrics.at("loss") == Approx(1.0 / 3));
        CHECK(fs::exists(dir / "ckpt-state"));
    }
    SECTION("damaged: rebuilt too") {
        std::ofstream(dir / "ckpt-state", std::ios::app) << "garbage\n";
        ckpt::checkpoint_manager mgr{ck, dir};
        CHECK(mgr.records().size() == 3);
    }
    SECTION("a state file naming files outside the directory is not trusted") {
        std::ofstream(dir / "ckpt-state")
            << "ckpt-manager-state 1\nnext_number 9\ncheckpoint 1 ../outside - 0 0 0 0\nend 0000000000000000\n";
        std::ofstream("manager_state_outside") << "precious";
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(1)};
        mgr.save();
        CHECK(fs::exists("manager_state_outside"));
        for (const auto& r : mgr.records()) CHECK(r.path.parent_path() == dir);
    }
}

TEST_CASE("without a state file, latest_checkpoint is the newest sound file, ties broken by save counter",
          "[manager]") {
    const auto dir = fresh("manager_latest_scan");
    std::int64_t step = 0;
    ckpt::checkpoint ck{ckpt::track("step", step)};
    for (int i = 0; i < 10; ++i) ck.save(dir / "ckpt");  // ckpt-1 ... ckpt-10, no manager
    // Give ckpt-9 and ckpt-10 the same wall time: the save counter decides, not the name's order.
    auto set_wall_time = [](const fs::path& file, std::int64_t ns) {
        char raw[ckpt::detail::header_size];
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        f.read(raw, sizeof raw);
        auto h = ckpt::detail::decode_header(raw, fs::file_size(file), file);
        h.wall_time_ns = ns;
        ckpt::detail::encode_header(h, raw);
        f.seekp(0);
        f.write(raw, sizeof raw);
    };
    const std::int64_t late = ckpt::detail::to_ns(std::chrono::system_clock::now()) + 1'000'000'000;
    set_wall_time(dir / "ckpt-9", late);
    set_wall_time(dir / "ckpt-10", late);
    CHECK(*ckpt::latest_checkpoint(dir) == dir / "ckpt-10");

    // A damaged index (the file's last byte is the index's): passed over for the newest that reads.
    std::string bytes;
    {
        std::ifstream in(dir / "ckpt-10", std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    bytes[bytes.size() - 1] = static_cast<char>(bytes.back() ^ 0x01);
    std::ofstream(dir / "ckpt-10", std::ios::binary) << bytes;
    CHECK(*ckpt::latest_checkpoint(dir) == dir / "ckpt-9");
}

TEST_CASE("a manager deletes only checkpoints it recorded, and removes a crash's temporary files", "[manager]") {
    const auto dir = fresh("manager_ownership");
    fs::create_directories(dir);
    std::ofstream(dir / "notes.txt") << "mine";
    std::ofstream(dir / "ckpt-1.ckpt-tmp.123.0") << "half a checkpoint";
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(1)};
    CHECK_FALSE(fs::exists(dir / "ckpt-1.ckpt-tmp.123.0"));
    ck.write(dir / "by-hand");  // a checkpoint the manager did not make
    for (int i = 0; i < 3; ++i) mgr.save();
    CHECK(fs::exists(dir / "notes.txt"));
    CHECK(fs::exists(dir / "by-hand"));
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-3"});
}

TEST_CASE("two managers on one directory are refused, in one process and across processes", "[manager]") {
    const auto dir = fresh("manager_lock");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    {
        ckpt::checkpoint_manager first{ck, dir};
        CHECK_THROWS_WITH((ckpt::checkpoint_manager{ck, dir}),
                          Catch::Contains("another checkpoint_manager") && Catch::Contains("manager_lock"));
        const pid_t pid = ::fork();
        if (pid == 0) {
            try {
                ckpt::checkpoint_manager second{ck, dir};
                ::_exit(1);
            } catch (const ckpt::error&) {
                ::_exit(0);
            }
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    }
    ckpt::checkpoint_manager again{ck, dir};  // the lock went with the first manager
    CHECK(again.checkpoints().empty());
}

TEST_CASE("bad directories give clear errors", "[manager]") {
    fresh("manager_bad");
    fs::create_directories("manager_bad");
    std::ofstream("manager_bad/file") << "x";
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    CHECK_THROWS_WITH((ckpt::checkpoint_manager{ck, "manager_bad/file"}),
                      Catch::Contains("manager_bad/file") && Catch::Contains("not a directory"));
    CHECK_THROWS_AS((ckpt::checkpoint_manager{ck, "manager_bad/file/sub"}), ckpt::io_error);
    fs::create_directories("manager_bad/state_is_dir/ckpt-state");
    // The state file cannot be written where a directory stands: said at once, naming it.
    CHECK_THROWS_WITH((ckpt::checkpoint_manager{ck, "manager_bad/state_is_dir"}),
                      Catch::Contains("state_is_dir/ckpt-state"));
}

TEST_CASE("a manager whose directory is removed or replaced under it", "[manager][faults]") {
    const auto dir = fresh("manager_vanishing");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
    mgr.save(1);
    fs::remove_all(dir);
    std::ofstream(dir) << "a file where the directory was";
    try {
        mgr.save(2);
        FAIL("the save should have failed");
    } catch (const ckpt::io_error& e) {
        CHECK_THAT(e.what(), Catch::Contains("manager_vanishing"));
    }
    fs::remove(dir);  // the cause is gone: the manager carries on
    CHECK(mgr.save(3) == dir / "ckpt-3");
    m.step = 0;
    ckpt::checkpoint_manager reopened_elsewhere{ck, "manager_vanishing_check"};
    CHECK(ckpt::reader(dir / "ckpt-3").metadata().step == 3);
    CHECK(*ckpt::latest_checkpoint(dir) == dir / "ckpt-3");
}
