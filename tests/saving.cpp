// The calls that save, as docs/guide.md's "Saving" section shows them: a checkpoint's save, save_as
// and write (names and the save counter), the manager's save and save_if_due(step, force, options)
// with metrics filling a name template, and the save schedule after a resume, counted from the
// latest checkpoint.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::vector<std::string> file_names(const ckpt::checkpoint_manager& mgr) {
    std::vector<std::string> names;
    for (const auto& p : mgr.checkpoints()) names.push_back(p.filename().string());
    return names;
}

std::vector<std::int64_t> steps(const ckpt::checkpoint_manager& mgr) {
    std::vector<std::int64_t> s;
    for (const auto& r : mgr.records()) s.push_back(r.step.value_or(-1));
    return s;
}

}  // namespace

TEST_CASE("save numbers its files, save_as names one exactly, write leaves the save counter", "[saving]") {
    fs::remove_all("saving");
    Eigen::VectorXf w = Eigen::VectorXf::Zero(3);
    ckpt::checkpoint ck{ckpt::track("w", w)};

    const auto first = ck.save("saving/run/ckpt");  // counts a save, named by the new count
    CHECK(first == fs::path("saving/run/ckpt-1"));
    const auto best = ck.save_as("saving/run/best");  // counts a save, exactly this name
    CHECK(best == fs::path("saving/run/best"));
    CHECK(ck.save_counter() == 2);
    ckpt::save_options o;
    o.step = 1000;
    o.metrics["loss"] = 0.25;
    o.strings["git"] = "1a2b3c";
    const auto final_file = ck.write("saving/export/final", o);  // exactly this name, no count
    CHECK(final_file == fs::path("saving/export/final"));
    CHECK(ck.save_counter() == 2);
    CHECK(ck.save("saving/run/ckpt") == fs::path("saving/run/ckpt-3"));

    // What a save records, read back without the model's types.
    const auto m = ckpt::reader(final_file).metadata();
    CHECK(m.save_counter == 2);
    CHECK(m.step == 1000);
    CHECK(m.metrics.at("loss") == 0.25);
    CHECK(m.strings.at("git") == "1a2b3c");

    // A new run saving to the same prefix never overwrites an earlier run's file.
    ckpt::checkpoint again{ckpt::track("w", w)};
    const auto next = again.save("saving/run/ckpt");
    CHECK(next != first);
    CHECK(fs::exists(first));
    CHECK(ckpt::reader(first).metadata().save_counter == 1);
}

TEST_CASE("the manager's save and save_if_due(step, force, options), metrics filling a name template", "[saving]") {
    fs::remove_all("named");
    Eigen::VectorXf w = Eigen::VectorXf::Zero(3);
    ckpt::checkpoint ck{ckpt::track("w", w)};
    ckpt::checkpoint_manager mgr{ck, "named", ckpt::name_template("epoch_{epoch:03d}-val_loss_{val_loss:.3f}"),
                                 ckpt::save_every_n_steps(5)};
    const int epochs = 12;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
        ckpt::save_options o;
        o.metrics["val_loss"] = 1.0 / epoch;
        mgr.save_if_due(epoch, epoch == epochs, o);  // due every 5 epochs; forced at the last
    }
    CHECK(file_names(mgr) ==
          std::vector<std::string>{"epoch_005-val_loss_0.200", "epoch_010-val_loss_0.100", "epoch_012-val_loss_0.083"});
    CHECK_FALSE(mgr.save_if_due(epochs, true).has_value());  // never twice for one step

    // save() saves now, whatever the schedule.
    ckpt::save_options o;
    o.metrics["val_loss"] = 0.05;
    CHECK(mgr.save(13, o).filename() == "epoch_013-val_loss_0.050");
}

TEST_CASE("after a resume the save schedule counts from the latest checkpoint", "[saving]") {
    fs::remove_all("resumed");
    std::int64_t step = 0;
    {
        ckpt::checkpoint ck{ckpt::track("step", step)};
        ckpt::checkpoint_manager mgr{ck, "resumed", ckpt::save_every_n_steps(100)};
        for (step = 1; step <= 250; ++step) mgr.save_if_due(step, step == 250);  // stopped at 250
        CHECK(steps(mgr) == std::vector<std::int64_t>{100, 200, 250});
    }
    ckpt::checkpoint ck{ckpt::track("step", step)};
    ckpt::checkpoint_manager mgr{ck, "resumed", ckpt::save_every_n_steps(100)};
    mgr.restore_or_initialize();
    CHECK(step == 250);
    CHECK_FALSE(mgr.is_due(300));  // 50 steps after the latest checkpoint, not a multiple of 100
    for (++step; step <= 400; ++step) mgr.save_if_due(step);
    CHECK(steps(mgr) == std::vector<std::int64_t>{100, 200, 250, 350});
}
