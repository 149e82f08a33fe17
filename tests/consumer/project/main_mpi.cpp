// A user's MPI program: ckpt::mpi found through find_package(ckpt COMPONENTS mpi).
#include <ckpt/ckpt.hpp>
#include <ckpt/mpi.hpp>

#include <cstdint>
#include <iostream>

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    std::int64_t step = 42, restored = 0;
    ckpt::mpi::checkpoint ck{MPI_COMM_WORLD, ckpt::track("step", step)};
    const auto path = ck.save("mpi-run/ckpt");
    ckpt::mpi::checkpoint back{MPI_COMM_WORLD, ckpt::track("step", restored)};
    back.restore(path).assert_consumed();
    if (rank == 0) std::cout << "restored step " << restored << " from " << path.string() << "\n";
    MPI_Finalize();
    return restored == 42 ? 0 : 1;
}
