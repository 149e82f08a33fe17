// The flagship example as a child process: interrupted by signals and by kill -9 at several points
// (also in the middle of a save), then rerun with the same command, it must end with the same
// final_digest as a run that was never interrupted. The test follows the child through its output
// instead of sleeping, so a loaded machine only makes it slower.

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

struct outcome {
    std::string output;
    int exit_code = -1;  // when it exited
    int signal = 0;      // when a signal killed it
};

/// Runs train_resume with `args`; once a line starting with `trigger` appears, sends `sig` (if any).
outcome run(std::vector<std::string> args, const std::string& trigger = "", int sig = 0) {
    args.insert(args.begin(), CKPT_TRAIN_RESUME);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    pid_t pid = 0;
    REQUIRE(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);

    outcome o;
    std::FILE* out = ::fdopen(pipe_fds[0], "r");
    char line[512];
    bool sent = false;
    while (std::fgets(line, sizeof line, out)) {
        o.output += line;
        if (!sent && sig && std::string(line).rfind(trigger, 0) == 0) {
            ::kill(pid, sig);
            sent = true;
        }
    }
    std::fclose(out);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) o.signal = WTERMSIG(status);
    if (sig) REQUIRE(sent);
    return o;
}

std::string digest_of(const outcome& o) {
    const auto at = o.output.find("final_digest=");
    REQUIRE(at != std::string::npos);
    return o.output.substr(at + 13, 16);
}

std::vector<std::string> command(const std::string& dir, bool async = false) {
    std::vector<std::string> a{"--dir", dir,      "--steps", "600",           "--save-every",
                               "50",    "--keep", "2",       "--print-every", "25"};
    if (async) a.push_back("--async");
    return a;
}

std::vector<std::string> slowed(std::vector<std::string> a) {
    a.push_back("--sleep-ms-per-step");
    a.push_back("1");
    return a;
}

const std::string& reference_digest() {
    static const std::string digest = [] {
        // Test cases run in parallel processes in one directory: each makes its own reference.
        const std::string dir = "resume_reference_" + std::to_string(::getpid());
        std::filesystem::remove_all(dir);
        const auto o = run(command(dir));
        REQUIRE(o.exit_code == 0);
        CHECK_THAT(o.output, Catch::Contains("starting from scratch"));
        return digest_of(o);
    }();
    return digest;
}

}  // namespace

TEST_CASE("a run interrupted by a signal saves at a step boundary and resumes to the same digest", "[resume]") {
    const struct {
        int sig;
        const char* name;
        const char* at;
        bool async;
    } cases[] = {
        {SIGTERM, "SIGTERM", "step 100 ", false},
        {SIGINT, "SIGINT", "step 275 ", false},
        {SIGUSR1, "SIGUSR1", "step 450 ", false},
        {SIGTERM, "SIGTERM", "step 200 ", true},
    };
    for (const auto& c : cases) {
        DYNAMIC_SECTION(c.name << " after " << c.at << (c.async ? " with asynchronous saves" : "")) {
            const std::string dir = std::string("resume_signal_") + c.name + (c.async ? "_async" : "");
            std::filesystem::remove_all(dir);
            const auto stopped = run(slowed(command(dir, c.async)), c.at, c.sig);
            CHECK(stopped.exit_code == 75);
            CHECK_THAT(stopped.output, Catch::Contains("interrupted at step") && Catch::Contains("; saved "));
            const auto resumed = run(command(dir, c.async));
            CHECK(resumed.exit_code == 0);
            CHECK_THAT(resumed.output, Catch::Contains("resumed from"));
            CHECK(digest_of(resumed) == reference_digest());
        }
    }
}

TEST_CASE("a run killed with SIGKILL resumes from its last complete checkpoint to the same digest", "[resume]") {
    for (const char* at : {"step 25 ", "step 150 ", "step 400 ", "step 575 "}) {
        for (bool async : {false, true}) {
            DYNAMIC_SECTION("killed after " << at << (async ? " with asynchronous saves" : "")) {
                const std::string dir = std::string("resume_kill_") + (at + 5) + (async ? "async" : "");
                std::filesystem::remove_all(dir);
                const auto killed = run(slowed(command(dir, async)), at, SIGKILL);
                CHECK(killed.signal == SIGKILL);
                const auto resumed = run(command(dir, async));
                CHECK(resumed.exit_code == 0);
                CHECK(digest_of(resumed) == reference_digest());
            }
        }
    }
}

TEST_CASE("a run killed in the middle of writing a checkpoint resumes from the one before", "[resume]") {
    for (const char* n : {"1", "3", "7"}) {
        DYNAMIC_SECTION("killed during save " << n) {
            const std::string dir = std::string("resume_crash_in_save_") + n;
            std::filesystem::remove_all(dir);
            auto args = command(dir);
            args.push_back("--crash-during-save");
            args.push_back(n);
            const auto crashed = run(args);
            CHECK(crashed.signal == SIGKILL);
            bool temp_left = false;
            for (const auto& e : std::filesystem::directory_iterator(dir))
                temp_left = temp_left || e.path().filename().string().find(".ckpt-tmp.") != std::string::npos;
            CHECK(temp_left);  // the crash really happened mid-write

            const auto resumed = run(command(dir));
            CHECK(resumed.exit_code == 0);
            CHECK(digest_of(resumed) == reference_digest());
            for (const auto& e : std::filesystem::directory_iterator(dir))
                CHECK(e.path().filename().string().find(".ckpt-tmp.") == std::string::npos);  // cleaned up
        }
    }
}

TEST_CASE("interrupted again and again, a run still ends where an uninterrupted one does", "[resume]") {
    const std::string dir = "resume_repeated";
    std::filesystem::remove_all(dir);
    CHECK(run(slowed(command(dir)), "step 100 ", SIGTERM).exit_code == 75);
    CHECK(run(slowed(command(dir)), "step 225 ", SIGKILL).signal == SIGKILL);
    CHECK(run(slowed(command(dir)), "step 350 ", SIGINT).exit_code == 75);
    const auto finished = run(command(dir));
    CHECK(finished.exit_code == 0);
    CHECK(digest_of(finished) == reference_digest());
    // Run again when already finished: it restores the final state and prints the same digest.
    CHECK(digest_of(run(command(dir))) == reference_digest());
}
