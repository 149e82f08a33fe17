#pragma once
// Fixtures for the foreign-file tests (tests/foreign_*.cpp): files written by numpy itself, through
// Debian's /usr/bin/python3 (a python3 earlier on PATH may lack numpy).

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <catch2/catch.hpp>

namespace ckpt_test {

/// Runs a Python script with numpy imported as np; fails the test when it fails.
inline void numpy(const std::string& script) {
    // A file per process: ctest runs the test cases of one executable at once, in one directory.
    const std::filesystem::path file = "numpy_fixture_" + std::to_string(::getpid()) + ".py";
    std::ofstream(file) << "import numpy as np\n" << script << "\n";
    const int rc = std::system(("/usr/bin/python3 " + file.string()).c_str());
    std::filesystem::remove(file);
    REQUIRE(rc == 0);
}

/// Python that writes `np.savez` (or savez_compressed) of every dtype numpy shares with ckpt, ranks
/// 0 to 4 and an empty tensor: element i (in C order) is i % 100 (i % 2 for bools).
inline std::string every_dtype_arrays() {
    return R"(
def arrays(order='C'):
    out = {}
    shapes = {'r0': (), 'r1': (5,), 'r2': (3, 4), 'r3': (2, 3, 4), 'r4': (2, 1, 3, 2), 'empty': (0, 3)}
    for dt in ['f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'b1', 'c8', 'c16']:
        for name, shape in shapes.items():
            n = int(np.prod(shape))
            v = (np.arange(n) % (2 if dt == 'b1' else 100)).astype(dt).reshape(shape)
            out[dt + '_' + name] = np.asarray(v, order=order)
    return out
)";
}

}  // namespace ckpt_test
