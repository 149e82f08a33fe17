// CKPT_FIELDS must list the fields in declaration order.
// expect: ckpt: CKPT_FIELDS must name the fields in declaration order
#include <ckpt/ckpt.hpp>

struct adam_state {
    float lr;
    std::vector<Eigen::MatrixXf> moments;
};
CKPT_FIELDS(adam_state, moments, lr)

int main() {}
