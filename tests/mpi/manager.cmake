# Runs one scenario of tests/mpi/manager.cpp through mpirun in a fresh WORK_DIR.
#   rotate, fallback, stale: on 1, 2, 3 and 4 ranks; errors: on 2, 3 and 4; async: on 2, 3 and 4,
#             with MPI_THREAD_SINGLE and MPI_THREAD_MULTIPLE
#   signal:   SIGUSR1 raised in one rank (each rank in turn, before and after its save_if_due), then
#             sent from outside (kill -USR1) to one rank of a running 3-rank loop, and SIGTERM to its
#             mpirun (signal_manager.sh)
#   kill:     KILLS rounds of kill_manager.sh
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

if(SCENARIO STREQUAL "rotate" OR SCENARIO STREQUAL "fallback" OR SCENARIO STREQUAL "stale")
  # One rank too: a manager over a sharded checkpoint of one process (no coordinator) rotates,
  # replaces and falls back over directories the same way.
  foreach(np IN ITEMS 1 2 3 4)
    mpi(${np} ${SCENARIO} run-${np})
  endforeach()
elseif(SCENARIO STREQUAL "async")
  # MPI_THREAD_SINGLE (the commit and the leader's recording at the next save or wait, on the
  # caller's thread) and MPI_THREAD_MULTIPLE (both on the background thread).
  foreach(np IN ITEMS 2 3 4)
    mpi(${np} async single-${np})
    mpi(${np} async multiple-${np} multiple)
  endforeach()
elseif(SCENARIO STREQUAL "resize")
  mpi(3 resize run save)
  mpi(2 resize run restore)
elseif(SCENARIO STREQUAL "errors")
  foreach(np IN ITEMS 2 3 4)
    mpi(${np} ${SCENARIO} run-${np})
  endforeach()
elseif(SCENARIO STREQUAL "signal")
  foreach(np IN ITEMS 2 3)
    math(EXPR last "${np} - 1")
    foreach(rank RANGE ${last})
      math(EXPR at "${rank} * 3 + 2")
      mpi(${np} signal before-${np}-${rank} ${rank} ${at} before)
      mpi(${np} signal after-${np}-${rank} ${rank} ${at} after)
    endforeach()
  endforeach()
  mpi(3 signal high-3 2 4 high)
  find_program(BASH bash REQUIRED)
  execute_process(COMMAND ${BASH} ${CMAKE_CURRENT_LIST_DIR}/signal_manager.sh ${MPIEXEC} ${PROGRAM}
                  WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 200)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "outside signal test failed (${result}):\n${out}")
  endif()
  message(STATUS "${out}")
elseif(SCENARIO STREQUAL "kill")
  find_program(BASH bash REQUIRED)
  execute_process(COMMAND ${BASH} ${CMAKE_CURRENT_LIST_DIR}/kill_manager.sh ${MPIEXEC} ${PROGRAM} ${KILLS}
                  WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 280)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "kill test failed (${result}):\n${out}")
  endif()
  message(STATUS "${out}")
else()
  message(FATAL_ERROR "unknown SCENARIO '${SCENARIO}'")
endif()
