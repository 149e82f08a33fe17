// Compile-time benchmark: a checkpoint of one int, the fixed cost of instantiating a checkpoint.
#include <ckpt/ckpt.hpp>
void save_network(int& x) {
    ckpt::checkpoint ck{ckpt::track("model", x)};
    ck.write("network.ckpt");
    ck.restore("network.ckpt");
}
