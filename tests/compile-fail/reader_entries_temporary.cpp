// entries() of a temporary reader would dangle in a range-for: refused on rvalues.
// expect: deleted
// expect: entries
#include <ckpt/ckpt.hpp>

int main() {
    std::size_t n = 0;
    for (const auto& e : ckpt::reader("model.ckpt").entries()) n += e.path.size();
    return static_cast<int>(n);
}
