// One of two translation units that both include ckpt.hpp: linking them together proves the
// header-only library defines nothing twice (inline variables, functions, templates only).
#include <ckpt/ckpt.hpp>

#include <filesystem>

struct layer {
    Eigen::MatrixXf kernel;
    Eigen::VectorXf bias;
};
CKPT_FIELDS(layer, kernel, bias)

std::filesystem::path save_layer(const std::filesystem::path& file) {
    layer l{Eigen::MatrixXf::Constant(2, 3, 1.5f), Eigen::VectorXf::Constant(3, -1.0f)};
    ckpt::checkpoint ck{ckpt::track("layer", l)};
    return ck.write(file);
}
