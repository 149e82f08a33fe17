// Layers held through pointers to a polymorphic base: which derived class each one is cannot be
// reflected at compile time, nor recreated by a restore. Say so, and what to do.
// expect: ckpt: a polymorphic class cannot be checkpointed through a pointer to its base
// expect: concrete type
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

#include <memory>
#include <vector>

namespace user {
struct layer {
    virtual ~layer() = default;
    virtual Eigen::VectorXf forward(const Eigen::VectorXf& x) = 0;
};
struct dense : layer {
    Eigen::MatrixXf w;
    Eigen::VectorXf forward(const Eigen::VectorXf& x) override { return w * x; }
};
}  // namespace user

int main() {
    std::vector<std::unique_ptr<user::layer>> layers;
    layers.push_back(std::make_unique<user::dense>());
    ckpt::checkpoint ck{ckpt::track("layers", layers)};
    (void)ck;
}
