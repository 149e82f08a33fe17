# Runs one scenario of tests/mpi/sharded.cpp through mpirun in a fresh WORK_DIR.
#   matrix:     save on N ranks, then restore that checkpoint on M ranks, for N, M in 1..4
#   failure, divergent, tiling: one run each
#   kill:       KILLS rounds of a 3-rank save loop with one rank killed by SIGKILL at a random
#               moment, each followed by a restore of the latest committed checkpoint on 2 ranks
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
function(mpi np)
  execute_process(COMMAND ${MPIEXEC} --oversubscribe -np ${np} ${PROGRAM} ${ARGN} WORKING_DIRECTORY ${WORK_DIR}
                  RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 120)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): mpirun -np ${np} ${ARGN}\n${out}")
  endif()
  message(STATUS "np ${np} ${ARGN}: ok ${out}")
endfunction()

if(SCENARIO STREQUAL "matrix")
  foreach(n RANGE 1 4)
    math(EXPR seed "${n} * 11 + 5")
    mpi(${n} save saved-on-${n} ${seed})
    foreach(m RANGE 1 4)
      mpi(${m} restore saved-on-${n}/ckpt-1 ${seed} ${n})
    endforeach()
  endforeach()
elseif(SCENARIO STREQUAL "failure")
  mpi(3 failure run)
  mpi(1 failure run1)
elseif(SCENARIO STREQUAL "divergent")
  mpi(3 divergent run)
elseif(SCENARIO STREQUAL "tiling")
  mpi(3 tiling)
elseif(SCENARIO STREQUAL "kill")
  find_program(BASH bash REQUIRED)
  execute_process(COMMAND ${BASH} ${CMAKE_CURRENT_LIST_DIR}/kill_save.sh ${MPIEXEC} ${PROGRAM} ${KILLS}
                  WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 280)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "kill test failed (${result}):\n${out}")
  endif()
  message(STATUS "${out}")
else()
  message(FATAL_ERROR "unknown SCENARIO '${SCENARIO}'")
endif()
