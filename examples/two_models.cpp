// Seed 003, example 3: two models in one checkpoint. Also: listing a checkpoint's entries and
// reading one tensor without the model types, and a partial restore of just one of the models.

#include <ckpt/ckpt.hpp>

#include <cstdio>

#include "example_args.hpp"
#include "mlp_fields.hpp"

int main(int argc, char** argv) {
    const auto dir = demo::checkpoint_dir(argc, argv, "two_models_ckpts");
    demo::mlp generator, discriminator;
    demo::adam g_opt, d_opt;
    demo::init_model(generator, g_opt, 21);
    demo::init_model(discriminator, d_opt, 22);
    ckpt::checkpoint ck{ckpt::track("generator", generator), ckpt::track("discriminator", discriminator)};
    if (auto latest = ckpt::latest_checkpoint(dir)) {
        ck.restore(*latest).assert_consumed();
        std::printf("restored both models from %s\n", latest->c_str());
    }
    generator.out.bias.array() += 0.5f;  // "training"
    const auto path = ck.save(dir / "gan");
    std::printf("saved %s:\n", path.c_str());

    ckpt::reader reader(path);
    for (const auto& e : reader.entries())
        std::printf("  %-24s %-8s %s\n", e.path.c_str(), ckpt::dtype_name(e.dtype), e.shape.to_string().c_str());
    const auto bias = reader.read<Eigen::VectorXf>("generator/out/bias");
    if (bias != generator.out.bias) demo::fail("reading one tensor by path gives the saved values");

    // Only the generator, from a checkpoint that holds both: the rest of the file stays unused.
    demo::mlp generator_only;
    ckpt::checkpoint just_generator{ckpt::track("generator", generator_only)};
    const auto status = just_generator.restore(path, ckpt::partial);
    std::printf("partial restore of the generator: %zu entries of the file left unused (the discriminator)\n",
                status.unused().size());
    if (generator_only.hidden.kernel != generator.hidden.kernel || status.unused().size() != 4)
        demo::fail("the partial restore took the generator and only it");
    return 0;
}
