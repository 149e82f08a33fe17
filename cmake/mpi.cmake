# ckpt::mpi: sharded checkpoints across MPI ranks (include/ckpt/mpi.hpp). Optional: present when
# MPI is found, and nothing else in ckpt needs it. Open MPI's deprecated C++ bindings are left
# out of the MPI target (MPI_CXX_SKIP_MPICXX): ckpt uses the C API only.
option(CKPT_WITH_MPI "Provide the ckpt::mpi target when MPI is found" ON)
if(CKPT_WITH_MPI)
  if(NOT DEFINED MPI_CXX_SKIP_MPICXX)
    set(MPI_CXX_SKIP_MPICXX ON)
  endif()
  find_package(MPI COMPONENTS CXX)
endif()
if(CKPT_WITH_MPI AND MPI_CXX_FOUND)
  add_library(ckpt_mpi INTERFACE)
  add_library(ckpt::mpi ALIAS ckpt_mpi)
  set_target_properties(ckpt_mpi PROPERTIES EXPORT_NAME mpi)
  target_link_libraries(ckpt_mpi INTERFACE ckpt::ckpt MPI::MPI_CXX)
  set(CKPT_HAS_MPI ON)
else()
  set(CKPT_HAS_MPI OFF)
endif()
