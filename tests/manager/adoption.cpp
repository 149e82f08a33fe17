// What a manager adopts and deletes (issue 12, items 1 and 6): never a file it did not name, and
// with a name template exactly the files the template names, including one a crash left unrecorded.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include "../support/files.hpp"
#include "../support/models.hpp"
#include "../support/process.hpp"

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

using ckpt_test::names;

using model = ckpt_test::small_model;

using ckpt_test::in_child;

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

ckpt::save_options at_step(std::int64_t step) {
    ckpt::save_options o;
    o.step = step;
    return o;
}

}  // namespace

// ---- 1. and 6.: what a manager adopts and deletes ----------------------------------------------

TEST_CASE("a manager never adopts or deletes a checkpoint it did not name", "[trust][manager]") {
    const auto dir = fresh("trust_foreign");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ck.write(dir / "pretrained");          // before any manager: no state file yet
    ck.write(dir / "ckpt-final");          // the prefix, but not its numbering
    ck.write(dir / "ckpt-9", at_step(4));  // numbered, but not by its step
    {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
        CHECK(mgr.checkpoints().empty());
        mgr.save();
        mgr.save();
        mgr.save();
        CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-2", "ckpt-3"});
    }
    CHECK(fs::exists(dir / "pretrained"));
    CHECK(fs::exists(dir / "ckpt-final"));
    CHECK(fs::exists(dir / "ckpt-9"));

    SECTION("the state file lost later: rebuilt from our files only") {
        fs::remove(dir / "ckpt-state");
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(1)};
        // Rebuilt; the policy applies at the next save (opening never deletes).
        CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-2", "ckpt-3"});
        mgr.save();
        mgr.save();
        CHECK(fs::exists(dir / "pretrained"));
        CHECK(fs::exists(dir / "ckpt-final"));
        CHECK(fs::exists(dir / "ckpt-9"));
        CHECK(names(mgr.checkpoints()).size() == 1);
    }
    SECTION("a numbered save moves past a file of that name it did not record") {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(1)};
        ck.write(dir / "ckpt-4", at_step(77));
        CHECK(mgr.save().filename() == "ckpt-5");
        CHECK(ckpt::reader(dir / "ckpt-4").metadata().step == 77);
    }
    SECTION("a save named by its step never replaces a file it did not write") {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(1)};
        const auto before = fs::last_write_time(dir / "ckpt-9");
        CHECK_THROWS_WITH(mgr.save(9), Catch::Contains("ckpt-9") && Catch::Contains("did not write"));
        CHECK(fs::last_write_time(dir / "ckpt-9") == before);
        CHECK(ckpt::reader(dir / "ckpt-9").metadata().step == 4);
    }
}

TEST_CASE("a manager with a name template adopts exactly the files its template names", "[trust][manager]") {
    const auto dir = fresh("trust_template_adopt");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    const auto tmpl = ckpt::name_template("step_{step:06d}-loss_{loss:.2f}");
    ckpt::save_options o;
    o.step = 3;
    o.metrics["loss"] = 0.5;
    ck.write(dir / "step_000003-loss_0.50", o);  // what the template makes of its own metadata: ours
    ck.write(dir / "step_000004-loss_0.50", o);  // its step is 3: not made by the template
    ck.write(dir / "step_000005", o);            // another template
    ckpt::checkpoint_manager mgr{ck, dir, tmpl, ckpt::keep_last(1)};
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"step_000003-loss_0.50"});
    o.step = 6;
    mgr.save(o);
    o.step = 7;
    mgr.save(o);
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"step_000007-loss_0.50"});
    CHECK_FALSE(fs::exists(dir / "step_000003-loss_0.50"));
    CHECK(fs::exists(dir / "step_000004-loss_0.50"));
    CHECK(fs::exists(dir / "step_000005"));
}

TEST_CASE("a crash between writing and recording under a name template: the file is adopted",
          "[trust][manager][crash]") {
    const fs::path dir = "trust_template_crash";
    fs::remove_all(dir);
    const int status = in_child([&] {
        model m;
        ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2), ckpt::name_template("step_{step:06d}")};
        for (m.step = 1; m.step <= 2; ++m.step) mgr.save(m.step);
        ckpt::detail::manager_test_hook = [](ckpt::detail::manager_point p) {
            if (p == ckpt::detail::manager_point::written) ::_exit(9);
        };
        mgr.save(m.step);  // step 3: dies before recording it
        return 1;
    });
    REQUIRE(status == 9);
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2), ckpt::name_template("step_{step:06d}")};
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"step_000001", "step_000002", "step_000003"});
    CHECK(fs::exists(dir / "step_000001"));  // adopted; opening never deletes, the next save rotates
    CHECK(restored_step(*mgr.latest_checkpoint()) == 3);
    mgr.save(4);
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"step_000003", "step_000004"});
    CHECK_FALSE(fs::exists(dir / "step_000001"));
}
