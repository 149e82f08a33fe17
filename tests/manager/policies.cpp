// Rotation as a property: long seeded sequences of saves with random policies, steps, metrics,
// repeated steps and manager restarts, checked after every save against a plain model of the rules.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <optional>
#include <random>

namespace fs = std::filesystem;

namespace {

struct reference_record {
    std::string name;
    std::int64_t step;
    std::optional<double> loss;
};

struct policies {
    std::optional<std::size_t> last;
    std::optional<std::int64_t> every_n_steps;
    std::optional<std::size_t> best;
    ckpt::direction better = ckpt::minimize;
    ckpt::if_metric_missing missing = ckpt::if_metric_missing::drop;
};

// The rules, written as plainly as possible.
std::vector<reference_record> survivors(const std::vector<reference_record>& rs, const policies& p) {
    const bool any = p.last || p.every_n_steps || p.best;
    std::vector<bool> keep(rs.size(), !any);
    for (std::size_t i = 0; i < rs.size(); ++i) {
        if (i + 1 == rs.size()) keep[i] = true;
        if (p.last && rs.size() - i <= *p.last) keep[i] = true;
        if (p.every_n_steps && rs[i].step % *p.every_n_steps == 0) keep[i] = true;
        if (p.best && !rs[i].loss && p.missing == ckpt::if_metric_missing::keep) keep[i] = true;
        if (p.best && rs[i].loss) {
            std::size_t better = 0;
            for (std::size_t j = 0; j < rs.size(); ++j) {
                if (!rs[j].loss || j == i) continue;
                const double a = *rs[j].loss, b = *rs[i].loss;
                const bool j_better = p.better == ckpt::minimize ? a < b : a > b;
                if (j_better || (a == b && j > i)) ++better;
            }
            if (better < *p.best) keep[i] = true;
        }
    }
    std::vector<reference_record> out;
    for (std::size_t i = 0; i < rs.size(); ++i)
        if (keep[i]) out.push_back(rs[i]);
    return out;
}

template <class... Extra>
std::unique_ptr<ckpt::checkpoint_manager> open_manager(ckpt::any_checkpoint& ck, const fs::path& dir,
                                                       const policies& p) {
    // Every combination of present and absent policies, spelled out for the variadic constructor.
    auto with_best = [&](auto... rest) {
        if (p.best)
            return std::make_unique<ckpt::checkpoint_manager>(
                ck, dir, ckpt::keep_best(*p.best, "loss", p.better, p.missing), rest...);
        return std::make_unique<ckpt::checkpoint_manager>(ck, dir, rest...);
    };
    auto with_steps = [&](auto... rest) {
        if (p.every_n_steps) return with_best(ckpt::keep_every_n_steps(*p.every_n_steps), rest...);
        return with_best(rest...);
    };
    if (p.last) return with_steps(ckpt::keep_last(*p.last));
    return with_steps();
}

}  // namespace

TEST_CASE("the surviving checkpoints always match the rules", "[manager][policies]") {
    std::mt19937_64 rng(20261124);
    Eigen::VectorXf weights = Eigen::VectorXf::Random(4);
    std::int64_t step = 0;
    ckpt::checkpoint ck{ckpt::track("weights", weights), ckpt::track("step", step)};
    for (int trial = 0; trial < 40; ++trial) {
        const fs::path dir = "manager_policies_" + std::to_string(trial);
        fs::remove_all(dir);
        policies p;
        if (rng() % 2) p.last = 1 + rng() % 4;
        if (rng() % 3 == 0) p.every_n_steps = 2 + static_cast<std::int64_t>(rng() % 5);
        if (rng() % 2) p.best = 1 + rng() % 3;
        p.better = rng() % 2 ? ckpt::minimize : ckpt::maximize;
        p.missing = rng() % 2 ? ckpt::if_metric_missing::keep : ckpt::if_metric_missing::drop;
        INFO("trial " << trial << ": last " << p.last.value_or(0) << ", every " << p.every_n_steps.value_or(0)
                      << ", best " << p.best.value_or(0) << (p.better == ckpt::minimize ? " min" : " max")
                      << (p.missing == ckpt::if_metric_missing::keep ? " keep-missing" : " drop-missing"));

        auto mgr = open_manager(ck, dir, p);
        std::vector<reference_record> model;
        step = 0;
        for (int op = 0; op < 40; ++op) {
            if (rng() % 10 == 0) {  // a restart: a new manager on the same directory
                mgr.reset();
                mgr = open_manager(ck, dir, p);
            }
            if (rng() % 8 != 0 || step == 0)
                step += 1 + static_cast<std::int64_t>(rng() % 4);  // else: the same step again
            ckpt::save_options o;
            std::optional<double> loss;
            if (rng() % 5 != 0) o.metrics["loss"] = *(loss = std::uniform_real_distribution<double>(0, 10)(rng));
            mgr->save(step, o);

            const std::string name = "ckpt-" + std::to_string(step);
            model.erase(std::remove_if(model.begin(), model.end(), [&](const auto& r) { return r.name == name; }),
                        model.end());
            model.push_back({name, step, loss});
            model = survivors(model, p);

            std::vector<std::string> expected, actual, on_disk;
            for (const auto& r : model) expected.push_back(r.name);
            for (const auto& path : mgr->checkpoints()) actual.push_back(path.filename().string());
            for (const auto& e : fs::directory_iterator(dir)) {
                const auto n = e.path().filename().string();
                if (n != "ckpt-state" && n != ".ckpt-lock") on_disk.push_back(n);
            }
            std::sort(on_disk.begin(), on_disk.end());
            auto sorted_expected = expected;
            std::sort(sorted_expected.begin(), sorted_expected.end());
            INFO("after saving step " << step);
            REQUIRE(actual == expected);
            REQUIRE(on_disk == sorted_expected);
        }
    }
}

TEST_CASE("keep_every preserves one checkpoint per interval for good", "[manager][policies]") {
    Eigen::VectorXf weights = Eigen::VectorXf::Random(4);
    ckpt::checkpoint ck{ckpt::track("weights", weights)};
    fs::remove_all("manager_keep_every");
    {
        ckpt::checkpoint_manager mgr{ck, "manager_keep_every", ckpt::keep_last(1),
                                     ckpt::keep_every(std::chrono::nanoseconds(0))};
        for (int i = 0; i < 4; ++i) mgr.save();
        // The first only sets the anchor and is rotated away; every later one is at least 0 ns
        // after the one preserved before it.
        CHECK(mgr.checkpoints().size() == 3);
        for (const auto& r : mgr.records()) CHECK(r.preserved);
    }
    ckpt::checkpoint_manager reopened{ck, "manager_keep_every", ckpt::keep_last(1),
                                      ckpt::keep_every(std::chrono::hours(1))};
    reopened.save();
    CHECK(reopened.checkpoints().size() == 4);  // 2..4 stay preserved across a restart; 5 is the latest
    fs::remove_all("manager_keep_every_hourly");
    ckpt::checkpoint_manager hourly{ck, "manager_keep_every_hourly", ckpt::keep_last(1),
                                    ckpt::keep_every(std::chrono::hours(1))};
    for (int i = 0; i < 4; ++i) hourly.save();
    CHECK(hourly.checkpoints().size() == 1);
}
