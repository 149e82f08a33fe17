// Tracking a const object: one message saying that a checkpoint needs a mutable object.
// expect: ckpt: a checkpoint needs a mutable object
// expect: ckpt::reader
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

int main() {
    const Eigen::MatrixXf weights = Eigen::MatrixXf::Zero(2, 2);
    ckpt::checkpoint ck{ckpt::track("weights", weights)};
    (void)ck;
}
