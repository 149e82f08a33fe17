// Writes tests/data/<dir>/fixture.ckpt with the state of fixture_state.hpp, in the format version of
// the ckpt it is built against. The committed fixtures were written by:
//   v1/fixture.ckpt: commit b968dcc (format version 1)
//   v2/fixture.ckpt: branch format-v2 (format version 2, 1 MiB chunks)
// Build and run from the repository root:
//   g++ -std=c++17 -O1 -I include -I /usr/include/eigen3 tests/data/make_fixtures.cpp -o make_fixtures
//   ./make_fixtures tests/data/v2/fixture.ckpt

#include "fixture_state.hpp"

#include <iostream>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: make_fixtures OUTPUT.ckpt\n";
        return 2;
    }
    auto s = ckpt_fixture::expected();
    ckpt_fixture::with_checkpoint(s, [&](auto& ck) { return ck.write(argv[1], ckpt_fixture::expected_options()); });
    return 0;
}
