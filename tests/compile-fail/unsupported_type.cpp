// Tracking something that is neither a tensor, a struct of checkpointable fields, nor
// cereal-serializable says what to do instead.
// expect: ckpt: this type cannot be checkpointed
// expect: std::thread
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

#include <thread>

int main() {
    std::thread worker;
    ckpt::checkpoint ck{ckpt::track("worker", worker)};
    (void)ck;
}
