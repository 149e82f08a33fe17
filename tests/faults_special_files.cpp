// Special files where checkpoints are expected. A file the library publishes (save_as/write, a
// tool's output, the manager's state) replaces only an absent path or a regular file: a FIFO or
// a device node at the target is refused, never replaced by a regular file. And nothing that
// reads or scans blocks on a FIFO planted in a checkpoint directory: it is not a checkpoint.
// Every node here is made privately in the test's own directory (never the real /dev/null).

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include "support/process.hpp"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
    fs::remove_all(name);
    fs::create_directories(name);
    return name;
}

bool still_fifo(const fs::path& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

bool still_char_device(const fs::path& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
}

bool has_temp_files(const fs::path& dir) {
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (ckpt::detail::is_temp_name(e.path())) return true;
    return false;
}

// Runs `body` in a child that an alarm kills after 20 s: a regression that blocks fails the test
// (128 + SIGALRM) instead of hanging the suite.
template <class F>
int within_20s(F&& body) {
    return ckpt_test::in_child([&] {
        ::alarm(20);
        return body();
    });
}

#ifdef CKPT_TOOL
// The tool's exit status, run in a child with the same alarm; stdout and stderr go to `log`.
int tool(const std::vector<std::string>& args, const fs::path& log) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::alarm(20);  // kept across exec
        const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(out, 1);
        ::dup2(out, 2);
        std::vector<char*> argv{const_cast<char*>(CKPT_TOOL)};
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(CKPT_TOOL, argv.data());
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
#endif

struct state {
    std::vector<float> weights{1.0f, 2.0f, 3.0f};
    std::int64_t step = 7;
};

}  // namespace

TEST_CASE("write refuses to replace a FIFO, a device node or a directory, and replaces a regular file",
          "[faults][special]") {
    const auto dir = fresh_dir("special_targets");
    state s;
    ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};

    SECTION("a FIFO stays a FIFO") {
        REQUIRE(::mkfifo((dir / "out").c_str(), 0644) == 0);
        REQUIRE_THROWS_WITH(ck.write(dir / "out"),
                            Catch::Contains("refusing to replace a FIFO") && Catch::Contains((dir / "out").string()));
        CHECK(still_fifo(dir / "out"));
        CHECK_FALSE(has_temp_files(dir));
    }
    SECTION("a character device (a private copy of /dev/null's numbers) stays a device") {
        // As root a save_as("-o /dev/null") replaced /dev/null itself; the tests run as root in CI.
        const int made = ::mknod((dir / "null").c_str(), S_IFCHR | 0666, makedev(1, 3));
        if (made != 0) {
            // Without CAP_MKNOD (an unprivileged run) the same rule is shown by a FIFO above.
            CHECK(errno == EPERM);
            return;
        }
        REQUIRE_THROWS_AS(ck.write(dir / "null"), ckpt::io_error);
        REQUIRE_THROWS_WITH(ck.write(dir / "null"), Catch::Contains("character device"));
        CHECK(still_char_device(dir / "null"));
    }
    SECTION("a symbolic link to a FIFO: neither the link nor the FIFO is replaced") {
        REQUIRE(::mkfifo((dir / "fifo").c_str(), 0644) == 0);
        fs::create_symlink("fifo", dir / "link");
        REQUIRE_THROWS_WITH(ck.write(dir / "link"), Catch::Contains("a symbolic link to a FIFO"));
        CHECK(fs::is_symlink(dir / "link"));
        CHECK(still_fifo(dir / "fifo"));
    }
    SECTION("a directory") {
        fs::create_directories(dir / "sub");
        REQUIRE_THROWS_WITH(ck.write(dir / "sub"), Catch::Contains("refusing to replace a directory"));
        CHECK(fs::is_directory(dir / "sub"));
    }
    SECTION("an existing regular file is replaced, as documented") {
        { std::ofstream(dir / "old") << "an older file"; }
        ck.write(dir / "old");
        state t;
        t.step = 0;
        ckpt::checkpoint back{ckpt::track("weights", t.weights), ckpt::track("step", t.step)};
        back.restore(dir / "old").assert_consumed();
        CHECK(t.step == 7);
    }
}

TEST_CASE("a FIFO in place of a manager's state file is never replaced, and nothing blocks on it",
          "[faults][special]") {
    const auto dir = fresh_dir("special_state");
    REQUIRE(::mkfifo((dir / "ckpt-state").c_str(), 0644) == 0);
    CHECK(within_20s([&] {
              state s;
              ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
              try {
                  ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(3)};
                  mgr.save(1);
              } catch (const ckpt::io_error& e) {
                  const std::string what = e.what();
                  return what.find("refusing to replace a FIFO") != std::string::npos &&
                                 what.find("ckpt-state") != std::string::npos
                             ? 0
                             : 2;
              }
              return 1;
          }) == 0);
    CHECK(still_fifo(dir / "ckpt-state"));
}

TEST_CASE("atomic_output (the tool's export) refuses a FIFO", "[faults][special]") {
    const auto dir = fresh_dir("special_output");
    REQUIRE(::mkfifo((dir / "out.npz").c_str(), 0644) == 0);
    REQUIRE_THROWS_WITH(ckpt::atomic_output(dir / "out.npz"), Catch::Contains("FIFO"));
    CHECK(still_fifo(dir / "out.npz"));
}

#ifdef CKPT_TOOL
TEST_CASE("ckpt export -o FIFO fails and leaves the FIFO", "[faults][special][tool]") {
    const auto dir = fresh_dir("special_export");
    state s;
    ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
    ck.write(dir / "ck");
    REQUIRE(::mkfifo((dir / "out.npz").c_str(), 0644) == 0);
    const int status =
        tool({"export", (dir / "ck").string(), "--format", "npz", "-o", (dir / "out.npz").string()}, dir / "log");
    CHECK(status == 2);
    CHECK_THAT(slurp(dir / "log"), Catch::Contains("refusing to replace a FIFO"));
    CHECK(still_fifo(dir / "out.npz"));
}
#endif

TEST_CASE("a FIFO where a checkpoint is expected is not a checkpoint, and nothing blocks on it", "[faults][special]") {
    const auto dir = fresh_dir("special_scan");
    state s;
    ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("step", s.step)};
    {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(3)};
        mgr.save(1);
    }
    fs::remove(dir / "ckpt-state");  // so that every reader below scans the directory
    // A sharded checkpoint's directory with a FIFO for a manifest, newer than the real one; and a
    // FIFO named like a checkpoint file.
    fs::create_directories(dir / "ckpt-5");
    REQUIRE(::mkfifo((dir / "ckpt-5" / "manifest").c_str(), 0644) == 0);
    REQUIRE(::mkfifo((dir / "ckpt-6").c_str(), 0644) == 0);

    SECTION("reading it throws format_error") {
        CHECK(within_20s([&] {
                  try {
                      ckpt::reader r(dir / "ckpt-5" / "manifest");
                  } catch (const ckpt::format_error& e) {
                      return std::string(e.what()).find("a FIFO, not a checkpoint file") != std::string::npos ? 0 : 2;
                  }
                  return 1;
              }) == 0);
    }
    SECTION("latest_checkpoint skips it") {
        CHECK(within_20s([&] {
                  const auto latest = ckpt::latest_checkpoint(dir);
                  return latest && latest->filename() == "ckpt-1" ? 0 : 1;
              }) == 0);
    }
    SECTION("a manager opens the directory and restores the real checkpoint") {
        CHECK(within_20s([&] {
                  state t;
                  t.step = 0;
                  ckpt::checkpoint back{ckpt::track("weights", t.weights), ckpt::track("step", t.step)};
                  ckpt::checkpoint_manager mgr{back, dir, ckpt::keep_last(3)};
                  mgr.restore_or_initialize([] {});
                  return t.step == 7 ? 0 : 1;
              }) == 0);
    }
#ifdef CKPT_TOOL
    SECTION("ckpt ls and ckpt verify return") {
        CHECK(tool({"ls", dir.string()}, dir / "ls.log") == 0);
        CHECK_THAT(slurp(dir / "ls.log"), Catch::Contains("ckpt-1"));
        const int verified = tool({"verify", (dir / "ckpt-5").string()}, dir / "verify.log");
        CHECK(verified != 0);
        CHECK(verified < 128);  // not killed by the alarm
    }
#endif
}
