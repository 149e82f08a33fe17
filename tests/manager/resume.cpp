// Opening a manager's directory to resume or to evaluate: opening never rotates (the policies
// apply at the next save), restore_or_initialize takes a restore mode, and a read-only directory
// can be restored from (saving into it fails clearly).

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include "../support/files.hpp"
#include "../support/models.hpp"
#include "../support/process.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

using ckpt_test::fresh;
using ckpt_test::names;

using model = ckpt_test::small_model;

ckpt::detail::manager_point crash_at;
void crash(ckpt::detail::manager_point p) {
    if (p == crash_at) ::_exit(9);
}

// Saves steps 1 to 3 under keep_last(2), then dies (kill -9 alike) at `where` in the save of step 4.
int save_then_crash(const fs::path& dir, ckpt::detail::manager_point where) {
    return ckpt_test::in_child([&] {
        model m;
        ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
        for (m.step = 1; m.step <= 3; ++m.step) mgr.save(m.step);
        crash_at = where;
        ckpt::detail::manager_test_hook = crash;
        mgr.save(m.step);
        return 1;
    });
}

}  // namespace

TEST_CASE("opening a manager never deletes a checkpoint: the policies apply at the next save", "[manager][crash]") {
    using point = ckpt::detail::manager_point;
    // Killed after writing step 4 (not yet recorded), or after recording it (not yet rotated).
    for (const auto where : {point::written, point::recorded}) {
        DYNAMIC_SECTION("killed after step " << static_cast<int>(where)) {
            const auto dir = fresh("manager_resume_open_" + std::to_string(static_cast<int>(where)));
            REQUIRE(save_then_crash(dir, where) == 9);
            model m;
            ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
            {
                // An evaluation script, or a resumed run before its first save: one too many
                // checkpoints is kept (before the fix, a crash before the record made the open
                // rotate).
                ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
                CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-2", "ckpt-3", "ckpt-4"});
                CHECK(fs::exists(dir / "ckpt-2"));
                CHECK(*mgr.restore_or_initialize() == dir / "ckpt-4");
                CHECK(m.step == 4);
            }
            const auto on_disk = ckpt::read_manager_records(dir);  // the open recorded what it found
            REQUIRE(on_disk);
            CHECK(on_disk->size() == 3);
            ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
            m.step = 5;
            mgr.save(5);  // the next save rotates
            CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-4", "ckpt-5"});
            CHECK_FALSE(fs::exists(dir / "ckpt-2"));
            CHECK_FALSE(fs::exists(dir / "ckpt-3"));
        }
    }
}

TEST_CASE("restore_or_initialize with a restore mode", "[manager]") {
    const auto dir = fresh("manager_resume_mode");
    model m;
    m.step = 7;
    {
        ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
        ckpt::checkpoint_manager mgr{ck, dir};
        bool initialized = false;
        CHECK_FALSE(mgr.restore_or_initialize([&] { initialized = true; }, ckpt::partial));
        CHECK(initialized);  // nothing to restore: init, whatever the mode
        mgr.save(7);
    }
    // The program now tracks one more object than the checkpoint holds.
    model back;
    std::int64_t epoch = 3;
    ckpt::checkpoint ck{ckpt::track("weights", back.weights), ckpt::track("step", back.step),
                        ckpt::track("epoch", epoch)};
    ckpt::checkpoint_manager mgr{ck, dir};
    CHECK_THROWS_AS(mgr.restore_or_initialize(), ckpt::mismatch_error);  // strict, as before
    CHECK(back.step == 0);
    bool initialized = false;
    CHECK(*mgr.restore_or_initialize([&] { initialized = true; }, ckpt::partial) == dir / "ckpt-7");
    CHECK_FALSE(initialized);
    CHECK(back.step == 7);
    CHECK(back.weights == m.weights);
    CHECK(epoch == 3);  // not in the checkpoint: left as it was
    back.step = 0;
    CHECK(*mgr.restore_or_initialize(ckpt::partial | ckpt::single_threaded) == dir / "ckpt-7");
    CHECK(back.step == 7);
}

TEST_CASE("a read-only checkpoint directory: restore works without the lock, saving fails clearly",
          "[manager][faults]") {
    const auto dir = fs::absolute(fresh("manager_resume_read_only"));
    fs::create_directories(dir);
    const bool root = ::geteuid() == 0;
    if (!root) WARN("not root: no read-only mount, the directory is made read-only with chmod instead");
    const int status = ckpt_test::in_child([&] {
        if (root) {
            const auto why = ckpt_test::mount_private_tmpfs(dir.string(), "size=4m");
            if (!why.empty()) {
                std::fprintf(stderr, "%s\n", why.c_str());
                return 20;
            }
        }
        model m;
        ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
        {
            ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
            for (m.step = 1; m.step <= 3; ++m.step) mgr.save(m.step);
        }
        const Eigen::MatrixXf saved = m.weights;
        if (root) {
            if (!ckpt_test::remount_tmpfs(dir.string(), true, "")) return 21;
        } else {
            fs::permissions(dir / ".ckpt-lock", fs::perms::owner_read);
            fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
        }
        m.step = 0;
        m.weights.setZero();
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(1)};  // before the fix: EROFS on the lock
        if (!mgr.read_only()) return 22;
        if (names(mgr.checkpoints()) != std::vector<std::string>{"ckpt-2", "ckpt-3"}) return 23;
        if (mgr.restore_or_initialize([] { std::_Exit(24); }) != dir / "ckpt-3") return 25;
        if (m.step != 3 || m.weights != saved) return 26;
        try {
            mgr.save(4);
            return 27;
        } catch (const ckpt::io_error& e) {
            if (e.code() != std::errc::read_only_file_system) return 28;
            if (std::string(e.what()).find("read-only") == std::string::npos) return 29;
        }
        return 0;
    });
    if (!root) fs::permissions(dir, fs::perms::owner_all);
    CHECK(status == 0);
}

TEST_CASE("a read-only directory: save_if_due throws as save does, and nothing was changed", "[manager][faults]") {
    const auto dir = fs::absolute(fresh("manager_resume_read_only_due"));
    fs::create_directories(dir);
    const bool root = ::geteuid() == 0;
    if (!root) WARN("not root: no read-only mount, the directory is made read-only with chmod instead");
    const int status = ckpt_test::in_child([&] {
        if (root && !ckpt_test::mount_private_tmpfs(dir.string(), "size=4m").empty()) return 20;
        model m;
        ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
        {
            ckpt::checkpoint_manager mgr{ck, dir};
            mgr.save(1);
        }
        if (root) {
            if (!ckpt_test::remount_tmpfs(dir.string(), true, "")) return 21;
        } else {
            fs::permissions(dir / ".ckpt-lock", fs::perms::owner_read);
            fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
        }
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::save_every_n_steps(1)};
        try {
            mgr.save_if_due(2);
            return 22;
        } catch (const ckpt::io_error& e) {
            if (std::string(e.what()).find("read-only") == std::string::npos) return 23;
        }
        std::size_t files = 0;
        for (const auto& e : fs::directory_iterator(dir)) files += e.path().empty() ? 0 : 1;
        return files == 3 ? 0 : 24;  // ckpt-1, the state file, the lock file
    });
    if (!root) fs::permissions(dir, fs::perms::owner_all);
    CHECK(status == 0);
}
