// A container of raw pointers: the element is reported, not cereal's failure inside std::vector.
// expect: ckpt: a raw pointer cannot be checkpointed
// expect: std::vector<float
// first-error: ckpt:
#include <ckpt/ckpt.hpp>

int main() {
    std::vector<float*> views;
    ckpt::checkpoint ck{ckpt::track("views", views)};
    (void)ck;
}
