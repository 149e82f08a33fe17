// Crash consistency under kill -9. A child process saves in a loop through a checkpoint_manager
// (synchronous and asynchronous saves, default names and a name template, alternating by round,
// each naming in a directory of its own) and is killed with SIGKILL at a
// seeded random moment. After every kill the parent checks that:
//   - the state file parses, and lists no temporary file;
//   - every listed checkpoint restores, checksums valid, and holds a consistent state;
//   - the count respects the policy (keep_last(3), plus at most one not yet rotated away);
//   - a new manager opens the directory, cleans up, adopts a checkpoint written but not recorded
//     (no file of its naming is left neither listed nor deleted), and continues with a new save.
//
//   crash_soak [--kills N] [--seed S] [--dir DIR]     (CI runs 40 kills; a full run is --kills 300)

#include <ckpt/ckpt.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct state {
    Eigen::MatrixXf weights = Eigen::MatrixXf::Zero(256, 256);  // 256 KiB: a save takes a moment
    std::vector<std::string> log;                               // an opaque leaf that grows
    std::int64_t step = 0;
};

template <class F>
auto with_checkpoint(state& s, F&& f) {
    ckpt::checkpoint ck{ckpt::track("weights", s.weights), ckpt::track("log", s.log), ckpt::track("step", s.step)};
    return f(ck);
}

// The manager of a round: default names ("ckpt-<step>") or a name template ("step_<step>").
template <class F>
void with_manager(ckpt::any_checkpoint& ck, const fs::path& dir, bool templated, bool async, F&& f) {
    const auto tmpl = ckpt::name_template("step_{step:06d}");
    if (templated && async) {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(3), tmpl, ckpt::asynchronous};
        f(mgr);
    } else if (templated) {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(3), tmpl};
        f(mgr);
    } else if (async) {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(3), ckpt::asynchronous};
        f(mgr);
    } else {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(3)};
        f(mgr);
    }
}

[[noreturn]] void child(const fs::path& dir, bool templated, bool async) {
    state s;
    with_checkpoint(s, [&](auto& ck) {
        with_manager(ck, dir, templated, async, [&](ckpt::checkpoint_manager& mgr) {
            mgr.restore_or_initialize();
            for (;;) {
                ++s.step;
                s.weights.setConstant(static_cast<float>(s.step));  // the content must match the step
                s.log.push_back("step " + std::to_string(s.step));
                if (s.log.size() > 50) s.log.erase(s.log.begin());
                mgr.save_if_due(s.step);
            }
        });
        return 0;
    });
    ::_exit(0);
}

int failures = 0;
void expect(bool ok, const std::string& what) {
    if (!ok) {
        ++failures;
        std::fprintf(stderr, "FAILED: %s\n", what.c_str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    int kills = 40;
    std::uint64_t seed = 1;
    fs::path dir = "crash_soak_dir";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--kills")
            kills = std::atoi(argv[i + 1]);
        else if (a == "--seed")
            seed = std::strtoull(argv[i + 1], nullptr, 10);
        else if (a == "--dir")
            dir = argv[i + 1];
    }
    fs::remove_all(dir);
    std::mt19937_64 rng(seed);
    std::int64_t last_step = 0;
    int killed_during_save_window = 0;
    // Half the rounds in a directory of default names, half in one of a name template: a crash
    // between writing and recording must leave a file the next manager adopts under either.
    std::int64_t last_steps[2] = {0, 0};
    for (int round = 0; round < kills; ++round) {
        const bool templated = round % 2 == 1;
        const bool async = round % 4 >= 2;
        const fs::path where = dir / (templated ? "template" : "default");
        std::int64_t& last = last_steps[templated];
        fs::create_directories(where);
        const pid_t pid = ::fork();
        if (pid == 0) child(where, templated, async);
        ::usleep(static_cast<useconds_t>(2000 + rng() % 40000));  // 2 to 42 ms: before, during or between saves
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        const std::string label = "round " + std::to_string(round) + (templated ? " (template)" : " (default)");
        expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, label + ": the child was killed");

        for (const auto& e : fs::directory_iterator(where))
            killed_during_save_window += e.path().filename().string().find(".ckpt-tmp.") != std::string::npos;
        const auto records = ckpt::read_manager_records(where);
        expect(records.has_value() || last == 0, label + ": the state file parses");
        if (records) {
            // keep_last(3) plus at most two a crash kept from rotation: one recorded but not yet
            // rotated, one written but not yet recorded (adopted at the next open).
            expect(records->size() <= 5,
                   label + ": at most keep_last(3) + 2 checkpoints, found " + std::to_string(records->size()));
            for (const auto& r : *records) {
                expect(r.name.find(".ckpt-tmp.") == std::string::npos, "a temporary file is listed: " + r.name);
                try {
                    ckpt::reader(r.path).verify();
                    state s;
                    with_checkpoint(s, [&](auto& ck) { return ck.restore(r.path).assert_consumed(); });
                    expect(s.weights.minCoeff() == static_cast<float>(s.step) &&
                               s.weights.maxCoeff() == static_cast<float>(s.step),
                           r.name + ": weights match the step");
                    expect(!s.log.empty() && s.log.back() == "step " + std::to_string(s.step),
                           r.name + ": log matches the step");
                } catch (const ckpt::error& e) {
                    expect(false, std::string("a listed checkpoint does not load: ") + e.what());
                }
            }
        }
        // A new manager opens the directory (removing temporary files, adopting a checkpoint
        // written but not recorded) and continues.
        state s;
        with_checkpoint(s, [&](auto& ck) {
            with_manager(ck, where, templated, false, [&](ckpt::checkpoint_manager& mgr) {
                if (mgr.restore_or_initialize()) {
                    expect(s.step >= last, label + ": the latest step does not go back");
                    last = s.step;
                }
                const auto listed = mgr.checkpoints();
                for (const auto& e : fs::directory_iterator(where)) {
                    const auto name = e.path().filename().string();
                    expect(name.find(".ckpt-tmp.") == std::string::npos, label + ": temporary file left after open");
                    if (name.rfind(templated ? "step_" : "ckpt-", 0) == 0 && name != "ckpt-state")
                        expect(std::find(listed.begin(), listed.end(), e.path()) != listed.end(),
                               label + ": " + name + " is neither listed nor deleted (orphaned)");
                }
                // It continues: one more save, and the policy holds again.
                ++s.step;
                s.weights.setConstant(static_cast<float>(s.step));
                s.log.push_back("step " + std::to_string(s.step));
                const auto saved = mgr.save(s.step);
                expect(*mgr.latest_checkpoint() == saved, label + ": the new save is the latest");
                expect(mgr.checkpoints().size() <= 3, label + ": keep_last(3) holds after a save");
                last = s.step;
            });
            return 0;
        });
        last_step = std::max(last_steps[0], last_steps[1]);
    }
    std::printf("crash_soak: %d kills (%d in the middle of a write), last step reached %lld, %d failures\n", kills,
                killed_during_save_window, static_cast<long long>(last_step), failures);
    std::printf("%d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
    return failures ? 1 : 0;
}
