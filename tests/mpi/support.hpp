#pragma once
// What the MPI test programs share: the rank of this process and the size of the job, a CHECK
// that ends the whole job (a failed rank must not leave the others waiting in a collective), and
// deterministic values from (seed, tag, index), any bit pattern but NaN-free.

#include <mpi.h>

#include <cstdint>
#include <cstdio>

namespace {

int world_rank = 0, world_size = 1;

#define CHECK(cond, ...)                                                                                   \
    do {                                                                                                   \
        if (!(cond)) {                                                                                     \
            std::fprintf(stderr, "rank %d: check failed at line %d: %s\n  ", world_rank, __LINE__, #cond); \
            std::fprintf(stderr, __VA_ARGS__);                                                             \
            std::fprintf(stderr, "\n");                                                                    \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                                  \
        }                                                                                                  \
    } while (0)

inline std::uint64_t mix(std::uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}
inline float fval(std::uint64_t seed, std::uint64_t tag, std::uint64_t i) {
    return static_cast<float>(mix(seed * 1000003 + tag * 7919 + i) % 100000) / 7.0f - 5000.f;
}
inline double dval(std::uint64_t seed, std::uint64_t tag, std::uint64_t i) {
    return static_cast<double>(mix(seed * 999983 + tag * 104729 + i)) / 3.0;
}

}  // namespace
