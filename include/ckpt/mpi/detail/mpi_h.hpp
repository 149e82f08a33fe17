#pragma once
// <mpi.h>, included the one way ckpt includes it.

// Open MPI's mpi.h pulls in its deprecated C++ bindings, which trip -Wcast-function-type; CMake's
// MPI targets include it as a system header, this covers direct compiler calls.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wcast-function-type"
#endif
#include <mpi.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
