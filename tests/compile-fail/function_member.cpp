// A std::function member: the advice is CKPT_SKIP, which applies, not an annotation.
// expect: ckpt: a std::function member cannot be checkpointed
// expect: CKPT_SKIP(field)
// expect: ckpt_field_on_step
// expect: user::trainer
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

#include <functional>

namespace user {
struct trainer {
    std::int64_t step = 0;
    std::function<void(int)> on_step;
};
CKPT_FIELDS(trainer, step, on_step)
}  // namespace user

int main() {}
