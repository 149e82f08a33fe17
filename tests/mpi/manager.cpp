// checkpoint_manager and interrupt_guard over a ckpt::mpi::checkpoint, driven by manager.cmake and
// kill_manager.sh through mpirun: one scenario per invocation, every rank checks, and any failed
// check aborts the whole job (so no rank waits forever in a collective and ctest sees a non-zero
// exit).
//
//   manager rotate <dir>              saves with keep_last and a name template; identical views; reopen, restore
//   manager errors <dir>              the leader's errors are thrown on every rank, typed
//   manager fallback <dir>            restore_or_initialize passes over damaged sharded checkpoints alike
//   manager stale <dir>               the leader's open removes the temporary directories no save holds
//   manager async <dir> [multiple]    the manager's asynchronous mode: the leader records in the background,
//                                     every rank has its records at the next save or wait; its errors too
//   manager signal <dir> <rank> <step> <before|after|high>
//                                     SIGUSR1 raised in one rank only: every rank saves one step and stops
//                                     (high: a real-time signal above those the first combine carries)
//   manager signal-wait <dir> <sig>   a loop that an outside signal stops: kill -USR1 of one rank, or
//                                     SIGTERM to mpirun, which forwards it to every rank (signal_manager.sh)
//   manager loop <dir> <steps> [async]  restore_or_initialize, then save_if_due in a loop (killed by
//                                     kill_manager.sh); async: the manager's asynchronous mode
//   manager resize <dir> <save|restore>  save on N ranks, then restore_or_initialize(partial) on M; save_every
//                                     after a checkpoint recorded with a clock an hour ahead
//   manager check <dir>               after a kill: the state lists whole checkpoints, the latest restores,
//                                     no temporaries remain

#include <ckpt/ckpt.hpp>
#include <ckpt/mpi.hpp>

#include "support.hpp"

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

constexpr Eigen::Index big_len = 150000;  // 1.2 MiB: more than one chunk
constexpr Eigen::Index shard_rows = 12;

// The training state at a step: every value a function of the step (and the rank for per-rank
// state and shard blocks), so a restore can be checked against the step it reports.
struct state {
    Eigen::VectorXd big;
    std::int64_t step = -1;
    std::vector<std::int64_t> mine;  // per rank
    Eigen::VectorXf block;           // this rank's rows of a [shard_rows * size] tensor
};

void fill(state& s, std::int64_t step) {
    s.step = step;
    s.big.resize(big_len);
    for (Eigen::Index i = 0; i < big_len; ++i) s.big(i) = static_cast<double>(step) * 1e6 + static_cast<double>(i);
    s.mine = {world_rank, step, step * 7 + world_rank};
    s.block.resize(shard_rows);
    for (Eigen::Index i = 0; i < shard_rows; ++i)
        s.block(i) = static_cast<float>(step * 1000 + world_rank * shard_rows + i);
}

void scramble(state& s) {
    s.big.setConstant(big_len, -1.0);
    s.step = -1;
    s.mine.clear();
    s.block.setConstant(shard_rows, -1.f);
}

void check_state(const state& s, std::int64_t step) {
    state want;
    fill(want, step);
    CHECK(s.step == step, "step %lld, expected %lld", static_cast<long long>(s.step), static_cast<long long>(step));
    CHECK(s.big.size() == want.big.size() && s.big == want.big, "the replicated vector differs from step %lld's",
          static_cast<long long>(step));
    CHECK(s.mine == want.mine, "the per-rank state differs from step %lld's", static_cast<long long>(step));
    CHECK(s.block.size() == want.block.size() && s.block == want.block, "the shard block differs from step %lld's",
          static_cast<long long>(step));
}

auto make_checkpoint(state& s) {
    const auto n = static_cast<std::uint64_t>(world_size), r = static_cast<std::uint64_t>(world_rank);
    return ckpt::mpi::checkpoint{
        MPI_COMM_WORLD, ckpt::track("big", s.big), ckpt::track("step", s.step), ckpt::track_per_rank("mine", s.mine),
        ckpt::track_shard("block", s.block, ckpt::shape{shard_rows * n}, ckpt::shape{shard_rows * r})};
}

// Every rank's `text` is rank 0's.
void check_same_on_all(const std::string& text, const char* what) {
    unsigned long long n = text.size();
    MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    std::string zero = text;
    zero.resize(n);
    MPI_Bcast(zero.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD);
    int differs = zero != text ? 1 : 0, any = 0;
    MPI_Allreduce(&differs, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    CHECK(!differs, "%s differs from rank 0's:\n  here:   %s\n  rank 0: %s", what, text.c_str(), zero.c_str());
    CHECK(!any, "%s differs between ranks (see the rank that says so)", what);
}

std::string view(const ckpt::checkpoint_manager& mgr) {
    std::string out;
    for (const auto& r : mgr.records())
        out += std::to_string(r.number) + " " + r.name + " " + (r.step ? std::to_string(*r.step) : "-") + " " +
               std::to_string(r.wall_time.time_since_epoch().count()) + "; ";
    const auto latest = mgr.latest_checkpoint();
    out += "latest " + (latest ? latest->string() : std::string("none"));
    const auto best = mgr.best_checkpoint("loss");
    out += " best " + (best ? best->string() : std::string("none"));
    return out;
}

std::vector<std::string> names_on_disk(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + " ";
    return s;
}

int rotate(const fs::path& dir) {
    state s;
    auto ck = make_checkpoint(s);
    {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(2), ckpt::name_template("step_{step:04d}")};
        CHECK(mgr.restore_or_initialize() == std::nullopt, "a fresh directory restored something");
        for (std::int64_t step = 1; step <= 6; ++step) {
            fill(s, step);
            ckpt::save_options o;
            o.metrics["loss"] = static_cast<double>((step * 37) % 11);
            const auto p = mgr.save(step, o);
            CHECK(p.filename() == ckpt::detail::fill_template("step_{step:04d}", step, {}, {}), "saved to %s",
                  p.c_str());
            check_same_on_all(view(mgr), "the manager's records after a save");
        }
        const auto kept = mgr.checkpoints();
        CHECK(kept.size() == 2 && kept[0].filename() == "step_0005" && kept[1].filename() == "step_0006", "kept: %s",
              view(mgr).c_str());
        // The same step again replaces the sharded directory.
        fill(s, 6);
        mgr.save(6);
        CHECK(mgr.checkpoints().size() == 2, "after saving step 6 again: %s", view(mgr).c_str());
        check_same_on_all(view(mgr), "the records after saving a step again");
        MPI_Barrier(MPI_COMM_WORLD);
        if (world_rank == 0) {
            const auto on_disk = joined(names_on_disk(dir));
            CHECK(on_disk == ".ckpt-lock ckpt-state step_0005 step_0006 ", "on disk: %s", on_disk.c_str());
        }
    }
    {
        // Reopened, with intervals: one manager per rank again, and the same view on each.
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(3), ckpt::name_template("step_{step:04d}"),
                                     ckpt::save_every_n_steps(4)};
        check_same_on_all(view(mgr), "the records after reopening");
        scramble(s);
        const auto restored = mgr.restore_or_initialize([] { CHECK(false, "initialised instead of restoring"); });
        CHECK(restored && restored->filename() == "step_0006", "restored %s", restored ? restored->c_str() : "nothing");
        check_state(s, 6);
        std::string saved;
        for (std::int64_t step = 7; step <= 16; ++step) {
            fill(s, step);
            // Rank size-1 forces step 9 (the others do not); the leader's interval then gives 13.
            const bool force = world_rank == world_size - 1 && step == 9;
            if (auto p = mgr.save_if_due(step, force)) saved += p->filename().string() + " ";
        }
        CHECK(saved == "step_0009 step_0013 ", "save_if_due saved: %s", saved.c_str());
        CHECK(!mgr.save_if_due(13, true), "saved step 13 twice");
        check_same_on_all(view(mgr) + " saved " + saved, "the records after save_if_due");
    }
    {
        // A wall-time interval is measured by the leader alone: ranks that reach their calls at
        // different moments (here each rank sleeps its own time per step) still save the same steps.
        ckpt::checkpoint_manager mgr{ck, dir.string() + "-timed", ckpt::save_every(std::chrono::milliseconds(50))};
        std::string saved;
        for (std::int64_t step = 1; step <= 12; ++step) {
            fill(s, step);
            std::this_thread::sleep_for(std::chrono::milliseconds(5 + 15 * ((world_rank + step) % 3)));
            if (auto p = mgr.save_if_due(step)) saved += p->filename().string() + " ";
        }
        CHECK(!saved.empty(), "no save in 12 steps of 5 to 35 ms with a 50 ms interval");
        check_same_on_all(view(mgr) + " saved " + saved, "the saves by wall time");
    }
    {
        // A prefix, numbers without steps (the leader's), and best_checkpoint by a metric.
        ckpt::checkpoint_manager mgr{ck, dir.string() + "-prefixed", ckpt::prefix("model"), ckpt::keep_last(2)};
        for (int i = 0; i < 3; ++i) {
            fill(s, 100 + i);
            ckpt::save_options o;
            o.metrics["loss"] = i == 1 ? 0.5 : 1.0;
            mgr.save(o);
        }
        const auto kept = mgr.checkpoints();
        CHECK(kept.size() == 2 && kept[0].filename() == "model-2" && kept[1].filename() == "model-3", "%s",
              view(mgr).c_str());
        CHECK(mgr.best_checkpoint("loss") && mgr.best_checkpoint("loss")->filename() == "model-2", "%s",
              view(mgr).c_str());
        check_same_on_all(view(mgr), "the records with a prefix");
    }
    if (world_rank == 0) std::printf("rotate: ok on %d ranks\n", world_size);
    return 0;
}

// Runs `f`, which must throw E on every rank, with `text` in its message.
template <class E, class F>
void expect_everywhere(F&& f, const std::string& text, const char* what, bool from_leader = true) {
    std::string caught = "nothing";
    bool typed = false;
    try {
        f();
    } catch (const E& e) {
        typed = true;
        caught = e.what();
    } catch (const std::exception& e) {
        caught = std::string("another type: ") + e.what();
    }
    CHECK(typed && caught.find(text) != std::string::npos, "%s: expected '%s', caught %s", what, text.c_str(),
          caught.c_str());
    CHECK(!from_leader || caught.find("rank 0 of ") != std::string::npos,
          "%s: the message does not name the leader: %s", what, caught.c_str());
    check_same_on_all(caught, what);
}

int errors(const fs::path& dir) {
    state s;
    auto ck = make_checkpoint(s);
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        fill(s, 1);
        mgr.save(1);
        // A second manager of the same directory: the leader cannot lock it; every rank throws.
        expect_everywhere<ckpt::error>(
            [&] {
                ckpt::checkpoint_manager again{ck, dir};
            },
            "another checkpoint_manager", "a directory another manager holds");
        // The directory still works for the first one.
        fill(s, 2);
        mgr.save(2);
        CHECK(mgr.checkpoints().size() == 2, "%s", view(mgr).c_str());
    }
    // A path that is a file: the leader's io_error, on every rank as an io_error.
    if (world_rank == 0) std::ofstream(dir.string() + "-file") << "not a directory";
    MPI_Barrier(MPI_COMM_WORLD);
    expect_everywhere<ckpt::io_error>(
        [&] {
            ckpt::checkpoint_manager m{ck, dir.string() + "-file"};
        },
        "not a directory", "a directory that is a file");
    // A foreign directory where the next checkpoint would go: refused on every rank.
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        if (world_rank == 0) fs::create_directory(dir / "ckpt-3");
        MPI_Barrier(MPI_COMM_WORLD);
        fill(s, 3);
        expect_everywhere<ckpt::error>([&] { mgr.save(3); }, "did not write", "a foreign directory of the name");
        check_same_on_all(view(mgr), "the records after a refused save");
        fill(s, 4);
        mgr.save(4);  // and the manager goes on
        check_same_on_all(view(mgr), "the records after the next save");
    }
    if (world_rank == 0) std::printf("errors: ok on %d ranks\n", world_size);
    return 0;
}

}  // namespace

namespace {

std::vector<std::string> warnings;

// The largest rank file of a sharded checkpoint: it holds the big replicated block.
fs::path largest_rank_file(const fs::path& ckpt_dir) {
    fs::path best;
    std::uintmax_t size = 0;
    for (const auto& e : fs::directory_iterator(ckpt_dir))
        if (e.path().filename().string().rfind("rank-", 0) == 0 && e.file_size() > size) {
            size = e.file_size();
            best = e.path();
        }
    return best;
}

void flip_middle_byte(const fs::path& file) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = fs::file_size(file);
    f.seekg(static_cast<std::streamoff>(size / 2));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x20);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.write(&c, 1);
}

int fallback(const fs::path& dir) {
    ckpt::set_warning_handler([](const ckpt::warning& w) {
        if (w.kind == ckpt::warning_kind::skipped_checkpoint) warnings.push_back(w.message);
    });
    state s;
    auto ck = make_checkpoint(s);
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        for (std::int64_t step = 1; step <= 5; ++step) {
            fill(s, step);
            mgr.save(step);
        }
    }
    // Damage: ckpt-5 loses its manifest, ckpt-4 the file of the last rank, ckpt-3 a byte in a block.
    if (world_rank == 0) {
        fs::remove(dir / "ckpt-5" / ckpt::detail::sharded_manifest_name);
        const auto last = "rank-" + std::to_string(world_size - 1);
        bool removed = false;
        for (const auto& e : fs::directory_iterator(dir / "ckpt-4"))
            if (e.path().filename().string().rfind(last, 0) == 0) removed = fs::remove(e.path());
        CHECK(removed, "no file of rank %d in ckpt-4", world_size - 1);
        flip_middle_byte(largest_rank_file(dir / "ckpt-3"));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        check_same_on_all(view(mgr), "the records of the damaged directory");
        CHECK(mgr.checkpoints().size() == 5, "a damaged checkpoint left the list: %s", view(mgr).c_str());
        scramble(s);
        const auto restored = mgr.restore_or_initialize([] { CHECK(false, "initialised"); });
        CHECK(restored && restored->filename() == "ckpt-2", "restored %s", restored ? restored->c_str() : "nothing");
        check_state(s, 2);
        CHECK(warnings.size() == 3, "%zu warnings", warnings.size());
        std::string all;
        for (const auto& w : warnings) all += w + "\n";
        check_same_on_all(all, "the warnings of the fallback");
        CHECK(warnings[0].find("ckpt-5") != std::string::npos && warnings[1].find("ckpt-4") != std::string::npos &&
                  warnings[2].find("ckpt-3") != std::string::npos && warnings[2].find("damaged") != std::string::npos,
              "warnings:\n%s", all.c_str());
        // Training goes on from step 2: the damaged ones are replaced as their steps come again.
        for (std::int64_t step = 3; step <= 5; ++step) {
            fill(s, step);
            mgr.save(step);
        }
        check_same_on_all(view(mgr), "the records after saving over the damaged ones");
    }
    warnings.clear();
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        scramble(s);
        const auto restored = mgr.restore_or_initialize();
        CHECK(restored && restored->filename() == "ckpt-5" && warnings.empty(), "restored %s with %zu warnings",
              restored ? restored->c_str() : "nothing", warnings.size());
        check_state(s, 5);
    }
    // Every checkpoint damaged: the last error is thrown, on every rank alike.
    if (world_rank == 0)
        for (const auto& e : fs::directory_iterator(dir))
            if (fs::is_directory(e.path())) fs::remove(e.path() / ckpt::detail::sharded_manifest_name);
    MPI_Barrier(MPI_COMM_WORLD);
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        std::string caught = "nothing";
        try {
            mgr.restore_or_initialize([] { CHECK(false, "initialised over damaged checkpoints"); });
        } catch (const ckpt::io_error& e) {
            caught = e.what();
        }
        CHECK(caught.find("ckpt-1") != std::string::npos, "caught %s", caught.c_str());
        check_same_on_all(caught, "the error when every checkpoint is damaged");
    }
    if (world_rank == 0) std::printf("fallback: ok on %d ranks\n", world_size);
    return 0;
}

// Temporary directories in the managed directory: a sharded save's and a deletion's that died
// (nothing holds them) are removed by the leader's open; one a live save holds (an flock, as
// ckpt/mpi.hpp's saves take) is left alone.
int stale(const fs::path& dir) {
    state s;
    auto ck = make_checkpoint(s);
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        fill(s, 1);
        mgr.save(1);
    }
    const fs::path dead = dir / "ckpt-2.ckpt-tmp.999999.2", deleting = dir / "ckpt-0.ckpt-tmp.deleting.999999.x.0",
                   held = dir / "ckpt-3.ckpt-tmp.999998.3";
    ckpt::detail::file_descriptor hold;
    if (world_rank == 0) {
        for (const auto& d : {dead, deleting, held}) {
            fs::create_directory(d);
            std::ofstream(d / "rank-0") << "partial";
        }
        fs::copy(dir / "ckpt-1", deleting / "copy", fs::copy_options::recursive);
        hold = ckpt::detail::hold_directory(held);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        check_same_on_all(view(mgr), "the records");
        CHECK(mgr.checkpoints().size() == 1, "%s", view(mgr).c_str());
        if (world_rank == 0) {
            const auto on_disk = joined(names_on_disk(dir));
            CHECK(on_disk == ".ckpt-lock ckpt-1 ckpt-3.ckpt-tmp.999998.3 ckpt-state ", "after the open: %s",
                  on_disk.c_str());
        }
    }
    if (world_rank == 0) hold.close();
    MPI_Barrier(MPI_COMM_WORLD);
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        if (world_rank == 0) {
            const auto on_disk = joined(names_on_disk(dir));
            CHECK(on_disk == ".ckpt-lock ckpt-1 ckpt-state ", "once no save holds it: %s", on_disk.c_str());
        }
    }
    if (world_rank == 0) std::printf("stale: ok on %d ranks\n", world_size);
    return 0;
}

// The asynchronous mode (with MPI_THREAD_MULTIPLE the commit and the leader's recording run on the
// background thread, otherwise at the next save or wait on the caller's): every rank has the
// leader's records after wait(), the same saves are made, a failure of the leader's recording is
// thrown on every rank at the next wait, and the latest restores.
int async_mode(const fs::path& dir) {
    state s;
    auto ck = make_checkpoint(s);
    std::string saved;
    {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::asynchronous, ckpt::keep_last(2), ckpt::save_every_n_steps(2)};
        for (std::int64_t step = 1; step <= 9; ++step) {
            fill(s, step);
            if (auto p = mgr.save_if_due(step)) saved += p->filename().string() + " ";
        }
        mgr.wait();
        CHECK(saved == "ckpt-2 ckpt-4 ckpt-6 ckpt-8 ", "saved %s", saved.c_str());
        CHECK(mgr.checkpoints().size() == 2 && mgr.checkpoints().back().filename() == "ckpt-8", "%s",
              view(mgr).c_str());
        check_same_on_all(view(mgr), "the records after wait()");

        // The leader's recording fails (after the commit): every rank throws at the next wait.
        if (world_rank == 0)
            ckpt::detail::manager_test_hook = [](ckpt::detail::manager_point p) {
                if (p == ckpt::detail::manager_point::written) throw ckpt::io_error("injected recording failure", "x");
            };
        fill(s, 10);
        mgr.save_async(ckpt::save_options{10, {}, {}});
        expect_everywhere<ckpt::io_error>([&] { mgr.wait(); }, "injected recording failure",
                                          "a failure of the leader's recording");
        ckpt::detail::manager_test_hook = nullptr;
        check_same_on_all(view(mgr), "the records after the failed recording");
        fill(s, 12);
        mgr.save_if_due(12, true);
        fill(s, 14);
        mgr.save(14);  // a synchronous save in between: the asynchronous one is recorded first
        check_same_on_all(view(mgr), "the records after a synchronous save");
        CHECK(mgr.checkpoints().back().filename() == "ckpt-14", "%s", view(mgr).c_str());
    }
    {
        // Reopened: the latest restores on every rank (ckpt-10, written but never recorded, is
        // older than the latest record: it stays unlisted, as in one process).
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::asynchronous, ckpt::keep_last(2)};
        check_same_on_all(view(mgr), "the records after reopening");
        scramble(s);
        const auto restored = mgr.restore_or_initialize();
        CHECK(restored && restored->filename() == "ckpt-14", "restored %s", restored ? restored->c_str() : "nothing");
        check_state(s, 14);
    }
    if (world_rank == 0) std::printf("async: ok on %d ranks, saved %s\n", world_size, saved.c_str());
    return 0;
}

// SIGUSR1 (or, with `high`, SIGRTMAX - 1) raised in one rank only, before or after its
// save_if_due of `at`: every rank saves the same step (`at`, or the next when after) and leaves
// the loop after it.
int signal_one(const fs::path& dir, int signal_rank, std::int64_t at, const std::string& when) {
    const bool before = when != "after";
    const int sig = when == "high" ? SIGRTMAX - 1 : SIGUSR1;
    state s;
    auto ck = make_checkpoint(s);
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::save_every_n_steps(1000)};
    // Half the runs share the guard from the start, the others when first given to save_if_due.
    auto guard =
        when == "before"
            ? std::make_unique<ckpt::interrupt_guard>(ck.coordination(), std::initializer_list<int>{SIGTERM, SIGUSR1})
            : std::make_unique<ckpt::interrupt_guard>(std::initializer_list<int>{SIGTERM, SIGUSR1, sig});
    std::int64_t step = 0;
    const std::int64_t steps = 100;
    for (; step < steps && !guard->requested(); ++step) {
        fill(s, step);
        if (before && world_rank == signal_rank && step == at) std::raise(sig);
        mgr.save_if_due(step, *guard);
        if (!before && world_rank == signal_rank && step == at) {
            std::raise(sig);
            CHECK(!guard->requested(), "one rank sees a request the others have not agreed on");
        }
    }
    const std::int64_t want = before ? at : at + 1;
    CHECK(step == want + 1, "left the loop before step %lld, expected %lld", static_cast<long long>(step),
          static_cast<long long>(want + 1));
    CHECK(guard->signal() == sig, "the guard says signal %d, expected %d", guard->signal(), sig);
    CHECK(mgr.checkpoints().size() == 1 && mgr.records().back().step == want, "%s", view(mgr).c_str());
    check_same_on_all(view(mgr) + " stopped before " + std::to_string(step), "where the ranks stopped");
    if (world_rank == 0)
        std::printf("signal: ok on %d ranks, saved step %lld\n", world_size, static_cast<long long>(want));
    return 0;
}

// Steps of ~20 ms until an outside signal (kill -USR1 of one rank's pid, or SIGTERM to mpirun,
// signal_manager.sh) stops every rank at one step. Each rank writes its pid to <dir>.pid-<rank>.
int signal_wait(const fs::path& dir, int expected) {
    state s;
    auto ck = make_checkpoint(s);
    ckpt::interrupt_guard guard{ck.coordination(), {SIGTERM, SIGUSR1}};
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::save_every_n_steps(1000)};
    std::ofstream(dir.string() + ".pid-" + std::to_string(world_rank)) << ::getpid() << "\n";
    std::int64_t step = 0;
    const std::int64_t steps = 3000;  // a minute: the signal comes long before
    for (; step < steps && !guard.requested(); ++step) {
        fill(s, step);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        mgr.save_if_due(step, guard);
    }
    CHECK(step < steps && guard.signal() == expected, "not stopped by signal %d (step %lld, signal %d)", expected,
          static_cast<long long>(step), guard.signal());
    CHECK(mgr.checkpoints().size() == 1 && mgr.records().back().step == step - 1, "%s", view(mgr).c_str());
    check_same_on_all(view(mgr) + " stopped before " + std::to_string(step), "where the ranks stopped");
    scramble(s);
    mgr.restore_or_initialize();
    check_state(s, step - 1);
    if (world_rank == 0)
        std::printf("signal-wait: ok on %d ranks, signal %d, stopped after step %lld\n", world_size, expected,
                    static_cast<long long>(step - 1));
    return 0;
}

// The loop that kill_manager.sh kills: resumes from the latest checkpoint and saves every other
// step, keeping three.
int loop(const fs::path& dir, std::int64_t steps, bool async) {
    state s;
    scramble(s);  // the shard block gets its shape
    auto ck = make_checkpoint(s);
    auto run = [&](auto... options) {
        ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(3), ckpt::save_every_n_steps(2), options...};
        std::int64_t step = 0;
        if (mgr.restore_or_initialize()) {
            check_state(s, s.step);
            step = s.step + 1;
        }
        for (const std::int64_t end = step + steps; step < end; ++step) {
            fill(s, step);
            mgr.save_if_due(step);
        }
        mgr.wait();
    };
    if (async)
        run(ckpt::asynchronous);
    else
        run();
    return 0;
}

// After a kill: the state file (read before any manager opens the directory) lists only whole
// checkpoints, each restores on every rank, the latest through restore_or_initialize without a
// warning; no temporary file or directory remains once a manager opened the directory.
int check(const fs::path& dir) {
    ckpt::set_warning_handler([](const ckpt::warning& w) { warnings.push_back(w.message); });
    state s;
    auto ck = make_checkpoint(s);
    const auto listed = ckpt::read_manager_records(dir);
    CHECK(listed && !listed->empty(), "no state file, or an empty one");
    std::string names;
    for (const auto& r : *listed) {
        scramble(s);
        ck.restore(r.path);  // throws (the same on every rank) unless whole
        CHECK(r.step && s.step == *r.step, "%s has step %lld", r.path.c_str(), static_cast<long long>(s.step));
        check_state(s, s.step);
        names += r.name + " ";
    }
    MPI_Barrier(MPI_COMM_WORLD);
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::keep_last(3), ckpt::save_every_n_steps(2)};
    check_same_on_all(view(mgr), "the records after a kill");
    scramble(s);
    const auto restored = mgr.restore_or_initialize();
    CHECK(restored && *restored == *mgr.latest_checkpoint(), "restored %s", restored ? restored->c_str() : "nothing");
    check_state(s, s.step);
    CHECK(warnings.empty(), "warnings: %s", warnings.empty() ? "" : warnings.front().c_str());
    if (world_rank == 0) {
        const auto on_disk = names_on_disk(dir);
        for (const auto& n : on_disk)
            CHECK(n.find(ckpt::detail::temp_marker) == std::string::npos, "a temporary remains: %s (%s)", n.c_str(),
                  joined(on_disk).c_str());
        std::printf("listed %s; restored %s\n", names.c_str(), restored->filename().c_str());
    }
    return 0;
}

// Resuming on another number of ranks: `resize <dir> save` on N ranks, then `resize <dir> restore`
// on M: a strict restore_or_initialize throws on every rank; restore_or_initialize(init,
// ckpt::partial) restores the replicated state, leaves the per-rank state as it is and does not
// initialise. Then a checkpoint recorded by a node whose clock was an hour ahead: save_every still
// saves, on every rank, once its interval has passed since the open.
int resize(const fs::path& dir, const std::string& phase) {
    state s;
    ckpt::mpi::checkpoint ck{MPI_COMM_WORLD, ckpt::track("big", s.big), ckpt::track("step", s.step),
                             ckpt::track_per_rank("mine", s.mine)};
    if (phase == "save") {
        fill(s, 5);
        ckpt::checkpoint_manager mgr{ck, dir};
        mgr.save(5);
        return 0;
    }
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        scramble(s);
        s.mine = {-7};
        expect_everywhere<ckpt::mismatch_error>([&] { mgr.restore_or_initialize(); }, "per-rank state was saved by",
                                                "a strict restore on another number of ranks", false);
        bool initialized = false;
        const auto restored = mgr.restore_or_initialize([&] { initialized = true; }, ckpt::partial);
        CHECK(restored && restored->filename() == "ckpt-5" && !initialized, "restored %s",
              restored ? restored->c_str() : "nothing");
        state want;
        fill(want, 5);
        CHECK(s.step == 5 && s.big == want.big, "the replicated state was not restored");
        CHECK(s.mine == std::vector<std::int64_t>{-7}, "the per-rank state was changed");
    }
    if (world_rank == 0) {
        auto st = ckpt::detail::read_state_file(dir);
        CHECK(st && !st->records.empty(), "no state file");
        st->records.back().wall_time += std::chrono::hours(1);
        std::ofstream(dir / ckpt::detail::manager_state_name, std::ios::binary | std::ios::trunc)
            << ckpt::detail::encode_state(*st);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    ckpt::checkpoint_manager mgr{ck, dir, ckpt::save_every(std::chrono::milliseconds(5))};
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    fill(s, 6);
    const auto saved = mgr.save_if_due(6);
    CHECK(saved && saved->filename() == "ckpt-6", "a clock that was ahead stopped save_every: saved %s",
          saved ? saved->c_str() : "nothing");
    check_same_on_all(view(mgr), "the records after the save");
    if (world_rank == 0) std::printf("resize: ok on %d ranks\n", world_size);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // "multiple" last: MPI_THREAD_MULTIPLE (asynchronous commits on the background thread).
    if (argc > 1 && std::string(argv[argc - 1]) == "multiple") {
        int provided = 0;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
        if (provided != MPI_THREAD_MULTIPLE) std::fprintf(stderr, "MPI_THREAD_MULTIPLE not provided\n");
    } else {
        MPI_Init(&argc, &argv);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    int rc = 2;
    try {
        const std::string mode = argc > 1 ? argv[1] : "";
        if (mode == "rotate" && argc == 3)
            rc = rotate(argv[2]);
        else if (mode == "errors" && argc == 3)
            rc = errors(argv[2]);
        else if (mode == "fallback" && argc == 3)
            rc = fallback(argv[2]);
        else if (mode == "signal" && argc == 6)
            rc = signal_one(argv[2], std::atoi(argv[3]), std::atoll(argv[4]), argv[5]);
        else if (mode == "async" && (argc == 3 || argc == 4))
            rc = async_mode(argv[2]);
        else if (mode == "stale" && argc == 3)
            rc = stale(argv[2]);
        else if (mode == "signal-wait" && argc == 4)
            rc = signal_wait(argv[2], std::atoi(argv[3]));
        else if (mode == "loop" && (argc == 4 || argc == 5))
            rc = loop(argv[2], std::atoll(argv[3]), argc == 5 && std::string(argv[4]) == "async");
        else if (mode == "resize" && argc == 4)
            rc = resize(argv[2], argv[3]);
        else if (mode == "check" && argc == 3)
            rc = check(argv[2]);
        else if (world_rank == 0)
            std::fprintf(stderr, "usage: see the top of tests/mpi/manager.cpp\n");
    } catch (const std::exception& e) {
        CHECK(false, "unexpected exception: %s", e.what());
    }
    MPI_Finalize();
    return rc;
}
