# Builds and runs tests/consumer/project against ckpt, either installed (MODE=find_package) or
# added as a subdirectory (MODE=add_subdirectory).
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGV}\n${out}")
  endif()
endfunction()
set(args -DCMAKE_CXX_COMPILER=${COMPILER} -DCMAKE_BUILD_TYPE=Release)
# find_package_mpi: with `COMPONENTS mpi`, the MPI program built and run on 2 ranks;
# find_package_no_mpi: MPI not found on the consumer's side, ckpt::ckpt alone.
set(extra)
if(MODE STREQUAL "find_package_mpi")
  set(extra -DCONSUMER_MPI=ON)
elseif(MODE STREQUAL "find_package_no_mpi")
  set(extra -DCONSUMER_NO_MPI=ON -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON)
endif()
if(MODE MATCHES "^find_package")
  # Install a fresh configuration of the sources (headers and package files only).
  run(${CMAKE_COMMAND} -S ${CKPT_SOURCE_DIR} -B ${WORK_DIR}/ckpt-build -DCKPT_BUILD_TESTS=OFF -DCKPT_BUILD_EXAMPLES=OFF
      -DCKPT_BUILD_TOOLS=OFF -DCKPT_INSTALL=ON -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/ckpt-build)
  run(${CMAKE_COMMAND} -S ${CKPT_SOURCE_DIR}/tests/consumer/project -B ${WORK_DIR}/build ${args}
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCONSUMER_MODE=find_package ${extra})
else()
  run(${CMAKE_COMMAND} -S ${CKPT_SOURCE_DIR}/tests/consumer/project -B ${WORK_DIR}/build ${args}
      -DCONSUMER_MODE=add_subdirectory -DCKPT_DIR=${CKPT_SOURCE_DIR})
endif()
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
execute_process(COMMAND ${WORK_DIR}/build/consumer WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE result OUTPUT_VARIABLE out)
if(NOT result EQUAL 0 OR NOT out MATCHES "restored step 42")
  message(FATAL_ERROR "the consumer failed (${result}): ${out}")
endif()
message(STATUS "${MODE}: ${out}")
if(MODE STREQUAL "find_package_mpi")
  execute_process(COMMAND ${MPIEXEC} --oversubscribe -np 2 ${WORK_DIR}/build/consumer_mpi WORKING_DIRECTORY ${WORK_DIR}
                  RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0 OR NOT out MATCHES "restored step 42")
    message(FATAL_ERROR "the MPI consumer failed (${result}): ${out}${err}")
  endif()
  message(STATUS "${MODE}: ${out}")
endif()
