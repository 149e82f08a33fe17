// Trust on the save side (issue 12): a manager never adopts or deletes a file it did not name; a
// save either makes a file that restores or throws; a full disk, a failed thread start or a
// restart with the same process id never wedges later saves; files and directories the library
// creates are durable and never reached through a symbolic link; one checkpoint object may be
// saved from several threads.

#include <ckpt/ckpt.hpp>

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

using ckpt_test::names;

using model = ckpt_test::small_model;

fs::path fresh(const std::string& dir) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

bool has_temp_files(const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir))
        if (ckpt::detail::is_temp_name(e.path())) return true;
    return false;
}

std::int64_t restored_step(const fs::path& file) {
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ck.restore(file).assert_consumed();
    return m.step;
}

using ckpt_test::in_child;

ckpt::save_options at_step(std::int64_t step) {
    ckpt::save_options o;
    o.step = step;
    return o;
}

struct hooks_reset {
    ~hooks_reset() {
        ckpt::detail::io_fault_injector = nullptr;
        ckpt::detail::manager_test_hook = nullptr;
        ckpt::detail::background_worker::thread_start_injector = nullptr;
    }
};

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

// ---- 2.: nothing the reader would refuse is ever saved -----------------------------------------

TEST_CASE("an entry path over the format's limit is refused at save time, naming it", "[trust][writer]") {
    const auto dir = fresh("trust_long_path");
    std::map<std::string, Eigen::VectorXf> heads;
    heads[std::string(4094, 'k')] = Eigen::VectorXf::Ones(3);
    heads["short"] = Eigen::VectorXf::Ones(2);
    ckpt::checkpoint ck{ckpt::track("heads", heads)};
    auto refused = [&](auto&& save) {
        try {
            save();
            return false;
        } catch (const ckpt::error& e) {
            CHECK_THAT(e.what(), Catch::Contains("4100 bytes") && Catch::Contains("4096"));
            CHECK(e.entry().rfind("heads/kkkk", 0) == 0);
            return true;
        }
    };
    CHECK(refused([&] { ck.save(dir / "ckpt"); }));
    CHECK(refused([&] { ck.write(dir / "exact"); }));
    CHECK(refused([&] { ck.save_async(dir / "ckpt"); }));  // on the caller's thread, before any file
    ck.wait();
    {
        ckpt::checkpoint_manager mgr{ck, dir / "managed", ckpt::keep_last(1)};
        CHECK(refused([&] { mgr.save(1); }));
        CHECK(mgr.checkpoints().empty());
    }
    CHECK_FALSE(fs::exists(dir / "ckpt-1"));
    CHECK_FALSE(fs::exists(dir / "exact"));
    CHECK_FALSE(has_temp_files(dir));
    CHECK_FALSE(has_temp_files(dir / "managed"));
    CHECK(ck.save_counter() == 0);

    // At the limit exactly it saves, and restores.
    heads.clear();
    heads[std::string(4096 - 6, 'k')] = Eigen::VectorXf::Ones(3);
    const auto saved = ck.save(dir / "ckpt");
    heads.clear();
    ck.restore(saved).assert_consumed();
    CHECK(heads.begin()->first.size() == 4090);
    const ckpt::reader r(saved);
    CHECK(r.entries().size() == 2);
}

TEST_CASE("a distribution whose state would not read back is refused at save time", "[trust][writer]") {
    const auto dir = fresh("trust_text_state");
    std::normal_distribution<double> noise(0.0, std::numeric_limits<double>::infinity());
    ckpt::checkpoint ck{ckpt::track("noise", noise)};
    CHECK_THROWS_WITH(ck.save(dir / "ckpt"), Catch::Contains("entry 'noise'") && Catch::Contains("does not read back"));
    CHECK_FALSE(fs::exists(dir / "ckpt-1"));
    CHECK_FALSE(has_temp_files(dir));
    noise = std::normal_distribution<double>(0.0, 2.0);
    const auto file = ck.save(dir / "ckpt");
    noise = std::normal_distribution<double>(5.0, 1.0);
    ck.restore(file).assert_consumed();
    CHECK(noise.stddev() == 2.0);
}

TEST_CASE("the writer's checks mirror every rule of the reader's index", "[trust][writer]") {
    using ckpt::detail::unreadable_entry;
    using kind = ckpt::entry_kind;
    const ckpt::shape scalar{};
    CHECK(unreadable_entry("a/b", kind::tensor, ckpt::dtype::float32, ckpt::shape{2}, 8).empty());
    CHECK_FALSE(unreadable_entry("", kind::tensor, ckpt::dtype::float32, scalar, 4).empty());
    CHECK_FALSE(unreadable_entry("a//b", kind::tensor, ckpt::dtype::float32, scalar, 4).empty());
    CHECK_FALSE(unreadable_entry("a/../b", kind::tensor, ckpt::dtype::float32, scalar, 4).empty());
    CHECK_FALSE(unreadable_entry(std::string("a\0b", 3), kind::tensor, ckpt::dtype::float32, scalar, 4).empty());
    CHECK_FALSE(unreadable_entry(std::string(4097, 'a'), kind::tensor, ckpt::dtype::float32, scalar, 4).empty());
    // A zero-sized tensor whose other dimensions overflow 64 bits when multiplied: the reader refuses it.
    CHECK_FALSE(
        unreadable_entry("t", kind::tensor, ckpt::dtype::float32, ckpt::shape{1ull << 40, 1ull << 40, 0}, 0).empty());
    CHECK_FALSE(unreadable_entry("t", kind::tensor, ckpt::dtype::float32, ckpt::shape{3}, 8).empty());
    CHECK_FALSE(unreadable_entry("t", kind::tensor, ckpt::dtype::bytes, ckpt::shape{3}, 3).empty());
    CHECK_FALSE(unreadable_entry("s", kind::serialized, ckpt::dtype::bytes, ckpt::shape{4}, 3).empty());
    CHECK_FALSE(unreadable_entry("s", kind::sequence, ckpt::dtype::bytes, ckpt::shape{4}, 1).empty());
    CHECK_FALSE(unreadable_entry("m", kind::mapping, ckpt::dtype::bytes, ckpt::shape{4}, 15).empty());
    CHECK_FALSE(unreadable_entry("p", kind::sparse, ckpt::dtype::float32, ckpt::shape{4}, 8).empty());
}

// ---- 3.: a full disk at the state file ---------------------------------------------------------

namespace {

// Fills the file system of `dir` with empty files until exactly `left` inodes remain free.
int fill_inodes(const fs::path& dir, unsigned long left, int& made) {
    struct statvfs st {};
    for (;;) {
        if (::statvfs(dir.c_str(), &st) != 0) return 40;
        if (st.f_favail <= left) return st.f_favail == left ? 0 : 41;
        std::ofstream f(dir / ("filler-" + std::to_string(made++)));
        if (!f) return 42;
    }
}
void free_inodes(const fs::path& dir, int& made, int count) {
    for (int i = 0; i < count && made > 0; ++i) fs::remove(dir / ("filler-" + std::to_string(--made)));
}

}  // namespace

TEST_CASE("a full disk at the state file: the manager converges once there is room", "[trust][manager][faults]") {
    const auto dir = fs::absolute(fresh("trust_full_state"));
    const int status = in_child([&] {
        // A private tmpfs with few inodes: the checkpoint takes the last one, the state file's
        // temporary finds none (ENOSPC), exactly as a nearly full disk does.
        if (::unshare(CLONE_NEWNS) != 0) return 20;
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 21;
        if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=16m,nr_inodes=200") != 0) return 22;
        model m;
        ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
        int made = 0;
        {
            // With a policy to apply: rotating frees what recording needs, and the save succeeds.
            fs::create_directories(dir / "rotating");
            ckpt::checkpoint_manager mgr{ck, dir / "rotating", ckpt::keep_last(1)};
            mgr.save(1);
            if (int rc = fill_inodes(dir, 1, made)) return rc;
            m.step = 2;
            mgr.save(2);  // before the fix: ENOSPC, and every later save too
            if (names(mgr.checkpoints()) != std::vector<std::string>{"ckpt-2"}) return 23;
            if (fs::exists(dir / "rotating" / "ckpt-1")) return 24;
            const auto on_disk = ckpt::read_manager_records(dir / "rotating");
            if (!on_disk || on_disk->size() != 1 || on_disk->back().name != "ckpt-2") return 36;
        }
        free_inodes(dir, made, made);
        {
            // Nothing to rotate: the save reports that its checkpoint was written; the next save,
            // once there is room, records both.
            fs::create_directories(dir / "keeping");
            ckpt::checkpoint_manager mgr{ck, dir / "keeping"};
            mgr.save(1);
            if (int rc = fill_inodes(dir, 1, made)) return rc;
            m.step = 2;
            try {
                mgr.save(2);
                return 25;
            } catch (const ckpt::io_error& e) {
                if (e.code().value() != ENOSPC) return 26;
                if (std::string(e.what()).find("checkpoint itself was written") == std::string::npos) return 27;
            }
            if (restored_step(dir / "keeping" / "ckpt-2") != 2) return 28;
            free_inodes(dir, made, 4);
            m.step = 3;
            mgr.save(3);
            if (names(mgr.checkpoints()) != std::vector<std::string>{"ckpt-1", "ckpt-2", "ckpt-3"}) return 29;
            const auto on_disk = ckpt::read_manager_records(dir / "keeping");
            if (!on_disk || on_disk->size() != 3) return 30;

            // Failing again, then the manager goes away: the next one records it and applies its policies.
            if (int rc = fill_inodes(dir, 1, made)) return rc;
            m.step = 4;
            try {
                mgr.save(4);
                return 31;
            } catch (const ckpt::io_error&) {}
        }
        {
            // Reopened while the disk is still full and there is nothing to rotate: it opens (a
            // restarted training can restore), and lists what is on disk.
            ckpt::checkpoint_manager full{ck, dir / "keeping"};
            if (names(full.checkpoints()) != std::vector<std::string>{"ckpt-1", "ckpt-2", "ckpt-3", "ckpt-4"})
                return 37;
            m.step = 0;
            if (full.restore_or_initialize() != dir / "keeping" / "ckpt-4" || m.step != 4) return 38;
        }
        free_inodes(dir, made, 4);
        // The next manager records it at the open, and applies its policies at its first save
        // (opening never deletes).
        ckpt::checkpoint_manager reopened{ck, dir / "keeping", ckpt::keep_last(2)};
        if (names(reopened.checkpoints()) != std::vector<std::string>{"ckpt-1", "ckpt-2", "ckpt-3", "ckpt-4"})
            return 32;
        m.step = 5;
        reopened.save(5);
        if (names(reopened.checkpoints()) != std::vector<std::string>{"ckpt-4", "ckpt-5"}) return 32;
        if (fs::exists(dir / "keeping" / "ckpt-1") || fs::exists(dir / "keeping" / "ckpt-3")) return 33;
        const auto on_disk = ckpt::read_manager_records(dir / "keeping");
        if (!on_disk || on_disk->size() != 2) return 34;
        return has_temp_files(dir / "keeping") ? 35 : 0;
    });
    CHECK(status == 0);
}

TEST_CASE("an asynchronous save whose record fails keeps its number, and the next save converges",
          "[trust][manager][async]") {
    const auto dir = fresh("trust_async_record");
    hooks_reset reset;
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2)};
    mgr.save(1);
    static std::atomic<bool> fail_state{false};
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path& p) {
        return fail_state && op == ckpt::detail::io_op::create && p.filename().string().rfind("ckpt-state", 0) == 0
                   ? ENOSPC
                   : 0;
    };
    fail_state = true;
    mgr.save_async(at_step(2));
    CHECK_THROWS_WITH(mgr.wait(), Catch::Contains("checkpoint itself was written") && Catch::Contains("ckpt-2"));
    CHECK(ck.save_counter() == 2);  // the file holds save 2: the number is not given out again
    fail_state = false;
    mgr.save(3);
    CHECK(names(mgr.checkpoints()) == std::vector<std::string>{"ckpt-2", "ckpt-3"});
    CHECK(ckpt::reader(dir / "ckpt-3").metadata().save_counter == 3);
    CHECK(ckpt::read_manager_records(dir)->size() == 2);
}

// ---- 4.: a background thread that cannot start -------------------------------------------------

TEST_CASE("a failed thread start is reported and wedges nothing", "[trust][async]") {
    const auto dir = fresh("trust_thread_start");
    hooks_reset reset;
    model m;
    m.step = 5;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ckpt::detail::background_worker::thread_start_injector = [] { return EAGAIN; };
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
    ckpt::detail::background_worker::thread_start_injector = nullptr;
    CHECK(ck.save(dir / "ckpt") == dir / "ckpt-1");  // synchronous saves were never affected
    CHECK(ck.save_async(dir / "ckpt") == dir / "ckpt-2");
    ck.wait();
    CHECK(restored_step(dir / "ckpt-2") == 5);
}

// ---- 5.: temporary names after a restart with the same process id -------------------------------

TEST_CASE("a stale temporary of a dead process with our id neither blocks nor outlives a save", "[trust][io]") {
    const auto dir = fresh("trust_stale_temp");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    // What an earlier incarnation with our PID left when it was killed mid-save (the names the
    // old scheme, <pid>.<counter>, would give our next saves).
    const std::string pid = std::to_string(::getpid());
    for (int i = 0; i < 64; ++i) std::ofstream(dir / ("ckpt-1.ckpt-tmp." + pid + "." + std::to_string(i))) << "half";
    std::ofstream(dir / ("ckpt-7.ckpt-tmp.1.0")) << "half";             // another dead writer of our prefix
    std::ofstream(dir / ("other-1.ckpt-tmp." + pid + ".0")) << "half";  // not our prefix: not ours to remove
    // A live writer's temporary (it holds the lock on it): left alone.
    ckpt::detail::file_descriptor live(::open((dir / "ckpt-3.ckpt-tmp.12345.0").c_str(), O_WRONLY | O_CREAT, 0644));
    REQUIRE(::flock(live.get(), LOCK_EX) == 0);

    CHECK(ck.save(dir / "ckpt") == dir / "ckpt-1");
    CHECK(restored_step(dir / "ckpt-1") == 0);
    std::set<std::string> left;
    for (const auto& e : fs::directory_iterator(dir))
        if (ckpt::detail::is_temp_name(e.path())) left.insert(e.path().filename().string());
    CHECK(left == std::set<std::string>{"ckpt-3.ckpt-tmp.12345.0", "other-1.ckpt-tmp." + pid + ".0"});
}

TEST_CASE("a temporary name that exists is passed over", "[trust][io]") {
    const auto dir = fresh("trust_temp_collision");
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    // Every name this process will try next, taken (as by a racing writer of the same final name).
    hooks_reset reset;
    static std::vector<fs::path> tried;
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path& p) {
        if (op == ckpt::detail::io_op::create) {
            tried.push_back(p);
            if (tried.size() <= 3) std::ofstream(p) << "taken";  // then open(O_EXCL) finds it
        }
        return 0;
    };
    ck.save_as(dir / "exact");
    ckpt::detail::io_fault_injector = nullptr;
    REQUIRE(tried.size() == 4);
    CHECK(std::set<fs::path>(tried.begin(), tried.end()).size() == 4);
    CHECK(restored_step(dir / "exact") == 0);
}

TEST_CASE("two processes saving under one prefix never replace each other's checkpoint", "[trust][io]") {
    const auto dir = fresh("trust_prefix_race");
    model m;
    m.step = 42;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    // The other process takes ckpt-1 between this save's look for a free number and its rename.
    hooks_reset reset;
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path& p) {
        if (op == ckpt::detail::io_op::rename && p.filename() == "ckpt-1" && !fs::exists(p)) {
            model other;
            other.step = 7;
            ckpt::checkpoint theirs{ckpt::track("weights", other.weights), ckpt::track("step", other.step)};
            ckpt::detail::io_fault_injector = nullptr;  // their save is not intercepted
            theirs.write(p);
        }
        return 0;
    };
    CHECK(ck.save(dir / "ckpt") == dir / "ckpt-2");
    ckpt::detail::io_fault_injector = nullptr;
    CHECK(restored_step(dir / "ckpt-1") == 7);   // theirs, untouched
    CHECK(restored_step(dir / "ckpt-2") == 42);  // ours, under the next number, counted as such
    CHECK(ck.save_counter() == 2);
    CHECK(ckpt::reader(dir / "ckpt-2").metadata().save_counter == 2);
    CHECK_FALSE(has_temp_files(dir));
}

// ---- 7.: a vector of an empty struct -------------------------------------------------------------

namespace {
struct tag {};
struct with_tags {
    std::vector<tag> tags;
    std::vector<std::array<tag, 2>> pairs;
    Eigen::VectorXf v;
};
CKPT_FIELDS(with_tags, tags, pairs, v)
}  // namespace

TEST_CASE("a vector of an empty struct saves and restores", "[trust][restore]") {
    const auto dir = fresh("trust_empty_struct");
    with_tags s;
    s.tags.resize(100);  // more elements than the file has entries
    s.pairs.resize(3);
    s.v = Eigen::VectorXf::Ones(2);
    ckpt::checkpoint ck{ckpt::track("s", s)};
    const auto file = ck.save(dir / "ckpt");
    with_tags back;
    ckpt::checkpoint ck2{ckpt::track("s", back)};
    ck2.restore(file).assert_consumed();
    CHECK(back.tags.size() == 100);
    CHECK(back.pairs.size() == 3);
    CHECK(back.v == s.v);
}

// ---- 11. and 12.: what the library creates ----------------------------------------------------

TEST_CASE("the lock file is never created through a symbolic link", "[trust][io]") {
    const auto dir = fresh("trust_lock_symlink");
    fs::remove("trust_lock_symlink_target");
    fs::create_symlink(fs::absolute("trust_lock_symlink_target"), dir / ".ckpt-lock");  // dangling
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    CHECK_THROWS_AS((ckpt::checkpoint_manager{ck, dir}), ckpt::io_error);
    CHECK_FALSE(fs::exists("trust_lock_symlink_target"));
}

TEST_CASE("new directories are fsynced into their parents", "[trust][io]") {
    fs::remove_all("trust_new_dirs");
    hooks_reset reset;
    static std::vector<fs::path> synced;
    synced.clear();
    ckpt::detail::io_fault_injector = [](ckpt::detail::io_op op, const fs::path& p) {
        if (op == ckpt::detail::io_op::fsync_directory) synced.push_back(p);
        return 0;
    };
    model m;
    ckpt::checkpoint ck{ckpt::track("weights", m.weights), ckpt::track("step", m.step)};
    ck.save(fs::path("trust_new_dirs") / "a" / "b" / "ckpt");
    const std::set<fs::path> got(synced.begin(), synced.end());
    for (const fs::path p : {".", "trust_new_dirs", "trust_new_dirs/a", "trust_new_dirs/a/b"}) {
        INFO(p);
        CHECK(got.count(p) == 1);
    }
    synced.clear();
    { ckpt::checkpoint_manager mgr{ck, fs::path("trust_new_dirs") / "managed" / "run"}; }
    CHECK(std::count(synced.begin(), synced.end(), fs::path("trust_new_dirs")) == 1);
    CHECK(std::count(synced.begin(), synced.end(), fs::path("trust_new_dirs/managed")) == 1);
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
