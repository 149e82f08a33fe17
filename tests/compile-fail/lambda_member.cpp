// A lambda inside an unannotated aggregate: reported as a function object, naming the closure's holder.
// expect: ckpt: a function object (std::function, lambda) cannot be checkpointed
// expect: CKPT_SKIP(field)
// expect: holder
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

template <class F>
struct holder {
    float scale;
    F callback;
};

int main() {
    auto f = [](float x) { return x; };
    holder<decltype(f)> h{1.0f, f};
    ckpt::checkpoint ck{ckpt::track("h", h)};
    (void)ck;
}
