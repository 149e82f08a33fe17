# Runs one scenario of tests/mpi/async.cpp through mpirun in a fresh WORK_DIR: on 2, 3 and 4 ranks
# (roundtrip; the others on 2 and 4, divergent from 2 so that rank 1 exists), each with MPI
# initialised for MPI_THREAD_MULTIPLE, SINGLE and FUNNELED. Under ThreadSanitizer, Open MPI's own
# races are suppressed (SUPPRESSIONS: libmpi and libopen-pal only, never ckpt).
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(ENV{TSAN_OPTIONS} "suppressions=${SUPPRESSIONS} halt_on_error=1 $ENV{TSAN_OPTIONS}")
if(SCENARIO STREQUAL "roundtrip")
  set(ranks 2 3 4)
else()
  set(ranks 2 4)
endif()
foreach(np IN LISTS ranks)
  foreach(level multiple single funneled)
    set(dir ${SCENARIO}-${np}-${level})
    execute_process(COMMAND ${MPIEXEC} --oversubscribe -np ${np} ${PROGRAM} --thread=${level} ${SCENARIO} ${dir}
                    WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out TIMEOUT 120)
    if(NOT result EQUAL 0)
      message(FATAL_ERROR "failed (${result}): mpirun -np ${np} --thread=${level} ${SCENARIO} ${dir}\n${out}")
    endif()
    message(STATUS "np ${np} --thread=${level} ${SCENARIO}: ok ${out}")
  endforeach()
endforeach()
