// A user's translation unit: one checkpoint saved, restored, read and managed. Compiled once
// header-only and once in compiled mode; check_symbols.cmake compares the code each defines.
#include <ckpt/ckpt.hpp>

int probe_round_trip(const char* dir) {
    int step = 42;
    ckpt::checkpoint ck{ckpt::track("step", step)};
    ckpt::checkpoint_manager manager{ck, dir, ckpt::keep_last(2)};
    const auto file = manager.save();
    step = 0;
    ck.restore(file).assert_consumed();
    ckpt::reader r(file);
    return r.contains("step") ? step : -1;
}
