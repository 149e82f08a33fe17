// A std::variant of CKPT_FIELDS structs: ckpt stores a variant as one cereal value, which these
// alternatives have no form for. Say so, and what to write instead, not cereal's static_asserts.
// expect: ckpt: a std::variant is stored as one cereal value
// expect: one std::optional per alternative
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

#include <variant>

namespace user {
struct sgd {
    float lr = 0.1f;
};
CKPT_FIELDS(sgd, lr)
struct adam {
    float lr = 1e-3f;
    Eigen::VectorXf m, v;
};
CKPT_FIELDS(adam, lr, m, v)
}  // namespace user

int main() {
    std::variant<user::sgd, user::adam> optimizer;
    ckpt::checkpoint ck{ckpt::track("optimizer", optimizer)};
    (void)ck;
}
