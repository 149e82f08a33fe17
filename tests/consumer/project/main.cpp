#include <ckpt/ckpt.hpp>

#include <cstdint>
#include <iostream>

int main() {
    std::int64_t step = 42;
    Eigen::MatrixXf weights = Eigen::MatrixXf::Random(3, 4);
    ckpt::checkpoint ck{ckpt::track("step", step), ckpt::track("weights", weights)};
    const auto path = ck.write("consumer.ckpt");

    std::int64_t restored = 0;
    Eigen::MatrixXf restored_weights;
    ckpt::checkpoint back{ckpt::track("step", restored), ckpt::track("weights", restored_weights)};
    back.restore(path).assert_consumed();
    if (restored_weights != weights) return 1;
    std::cout << "restored step " << restored << "\n";
    return restored == 42 ? 0 : 1;
}
