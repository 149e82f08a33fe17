// checkpoint_manager::best_checkpoint: the kept checkpoint that is best by a metric.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>

TEST_CASE("best_checkpoint finds the lowest or highest value of a metric among kept checkpoints", "[manager]") {
    std::filesystem::remove_all("manager_best");
    std::int64_t step = 0;
    ckpt::checkpoint ck{ckpt::track("step", step)};
    ckpt::checkpoint_manager mgr{ck, "manager_best", ckpt::keep_last(4)};
    CHECK(!mgr.best_checkpoint("val_loss"));

    const double losses[] = {0.9, 0.3, std::numeric_limits<double>::quiet_NaN(), 0.5};
    for (int i = 0; i < 4; ++i) {
        ckpt::save_options o;
        o.metrics["val_loss"] = losses[i];
        o.metrics["accuracy"] = 0.1 * i;
        mgr.save(i + 1, o);
    }
    mgr.save(5);  // no metrics: never the best

    const auto lowest = mgr.best_checkpoint("val_loss", ckpt::minimize);
    REQUIRE(lowest);
    CHECK(ckpt::reader(*lowest).metadata().step == 2);
    const auto highest = mgr.best_checkpoint("val_loss", ckpt::maximize);
    REQUIRE(highest);
    CHECK(ckpt::reader(*highest).metadata().step == 4);  // 0.9 was rotated out; NaN is passed over
    CHECK(ckpt::reader(*mgr.best_checkpoint("accuracy", ckpt::maximize)).metadata().step == 4);
    CHECK(!mgr.best_checkpoint("bleu"));
}
