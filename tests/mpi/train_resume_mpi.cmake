# The flagship example over MPI (examples/train_resume_mpi.cpp) interrupted by signals and kill -9
# and resumed with the same command: tests/mpi/train_resume_mpi.sh, one scenario per test.
# Included by tests/mpi/CMakeLists.txt, whose mpi_env it uses.
if(TARGET train_resume_mpi)
  find_program(BASH bash REQUIRED)
  function(ckpt_flagship_test name scenario)
    add_test(NAME "mpi flagship: ${name}"
             COMMAND ${BASH} ${CMAKE_CURRENT_SOURCE_DIR}/train_resume_mpi.sh ${MPIEXEC_EXECUTABLE}
                     $<TARGET_FILE:train_resume_mpi> ${CMAKE_CURRENT_BINARY_DIR}/work-flagship/${scenario} ${scenario} ${ARGN})
    set_tests_properties("mpi flagship: ${name}" PROPERTIES LABELS "mpi" ENVIRONMENT "${mpi_env}" TIMEOUT 300 ${mpi_schedule})
  endfunction()
  ckpt_flagship_test("SIGTERM to mpirun, SIGUSR1 and SIGTERM to one rank, resumed to the same digest (4 ranks)" signals)
  ckpt_flagship_test("kill -9 of a rank, also in the middle of a save, resumed to the same digest (4 ranks)" kills)
  ckpt_flagship_test("asynchronous saves: signal, kill -9, a kill in a background write, resumed to the same digest" async)
  ckpt_flagship_test("uneven rows: interrupted, killed in a save, resumed to the same digest (3 ranks)" uneven)
  ckpt_flagship_test("a 4-rank checkpoint resumed on 2 ranks restores the global state it saved" resize
                     $<$<TARGET_EXISTS:ckpt_tool>:$<TARGET_FILE:ckpt_tool>>)
  if(TARGET train_resume)
    ckpt_flagship_test("on 1 rank the same digest as train_resume" serial $<TARGET_FILE:train_resume>)
  endif()
endif()
