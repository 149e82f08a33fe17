// Seed 002: save "only upon a performance improvement", the way users know from Keras's
// save_best_only and Lightning's save_top_k: keep the 2 best checkpoints by validation loss, and the
// latest, then restore the best one.

#include <ckpt/ckpt.hpp>

#include <cmath>
#include <cstdio>

#include "example_args.hpp"
#include "mlp_fields.hpp"

namespace {
float validation_loss(const demo::mlp& model, const demo::dataset& data) {
    const Eigen::MatrixXf logits = demo::logits_of(model, data.x);
    double loss = 0;
    for (Eigen::Index s = 0; s < logits.cols(); ++s) {
        const float top = logits.col(s).maxCoeff();
        const double sum = (logits.col(s).array() - top).exp().sum();
        loss += std::log(sum) - (logits(data.label[static_cast<std::size_t>(s)], s) - top);
    }
    return static_cast<float>(loss / static_cast<double>(logits.cols()));
}
}  // namespace

int main(int argc, char** argv) {
    const auto dir = demo::checkpoint_dir(argc, argv, "keep_best_ckpts");
    const demo::dataset train = demo::make_dataset(8, 1024), validation = demo::make_dataset(8, 1024);
    demo::mlp model;
    demo::adam optimizer;
    demo::data_cursor cursor;
    std::mt19937_64 rng(8);
    std::int64_t epoch = 0;
    optimizer.lr = 2e-2f;  // large on purpose: the validation loss goes up and down
    ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("optimizer", optimizer), ckpt::track("epoch", epoch),
                        ckpt::track("data", cursor), ckpt::track("rng", rng)};
    ckpt::checkpoint_manager manager{ck, dir, ckpt::keep_best(2, "val_loss", ckpt::minimize), ckpt::keep_last(1)};
    manager.restore_or_initialize([&] {
        demo::init_model(model, optimizer, 8);
        optimizer.lr = 2e-2f;
    });

    for (int i = 0; i < 12; ++i) {
        for (int batch = 0; batch < 8; ++batch) demo::train_step(model, optimizer, train, cursor, rng);
        ++epoch;
        ckpt::save_options o;
        o.step = epoch;
        o.metrics["val_loss"] = validation_loss(model, validation);
        manager.save(o);
        std::printf("epoch %2lld val_loss %.4f\n", static_cast<long long>(epoch), o.metrics["val_loss"]);
    }
    std::printf("kept:\n");
    const ckpt::checkpoint_record* best = nullptr;
    for (const auto& r : manager.records()) {
        std::printf("  %s val_loss %.4f\n", r.name.c_str(), r.metrics.at("val_loss"));
    }
    const auto records = manager.records();
    for (const auto& r : records)
        if (!best || r.metrics.at("val_loss") < best->metrics.at("val_loss")) best = &r;
    if (records.size() > 3) demo::fail("the two best and the latest are kept, nothing else");
    ck.restore(best->path).assert_consumed();
    const float restored = validation_loss(model, validation);
    std::printf("restored the best, %s: val_loss %.4f\n", best->name.c_str(), restored);
    if (std::abs(restored - best->metrics.at("val_loss")) > 1e-6)
        demo::fail("the restored model has the recorded validation loss");
    return 0;
}
