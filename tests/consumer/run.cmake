# Builds and runs tests/consumer/project against ckpt: installed (MODE=find_package, and
# find_package_mpi / find_package_no_mpi for the MPI component, find_package_compiled for the
# compiled mode's ckpt::ckpt_compiled, and ckpt-compiled.pc), added as a subdirectory
# (MODE=add_subdirectory), fetched from the local checkout (MODE=fetchcontent), or, for other build
# systems, compiled by hand with the flags of `pkg-config --cflags --libs ckpt` against an installed
# prefix (MODE=pkg_config). STANDARD is the C++ standard (17 by default).
# The installed modes share one install per build tree: MODE=install configures the sources with the
# compiled mode's library, builds and installs them into PREFIX once (a ctest fixture), and the
# others find the package there.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGV}\n${out}")
  endif()
endfunction()
if(NOT STANDARD)
  set(STANDARD 17)
endif()
# Compiles the consumer by hand with the flags of `pkg-config --cflags --libs <package>` from the prefix.
function(build_with_pkg_config package program)
  find_program(PKG_CONFIG NAMES pkg-config pkgconf REQUIRED)
  file(GLOB_RECURSE pc_files ${PREFIX}/*/${package}.pc)
  if(NOT pc_files)
    message(FATAL_ERROR "the install put no ${package}.pc under ${PREFIX}")
  endif()
  list(GET pc_files 0 pc_file)
  get_filename_component(pc_dir ${pc_file} DIRECTORY)
  set(ENV{PKG_CONFIG_PATH} ${pc_dir})
  execute_process(COMMAND ${PKG_CONFIG} --cflags --libs ${package} RESULT_VARIABLE result OUTPUT_VARIABLE flags
                  ERROR_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT result EQUAL 0 OR NOT flags MATCHES "-I${PREFIX}/include")
    message(FATAL_ERROR "pkg-config --cflags --libs ${package} failed or lacks the prefix (${result}): ${flags}")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  file(MAKE_DIRECTORY ${WORK_DIR}/build)
  run(${COMPILER} -std=c++${STANDARD} -Wall -Wextra -Werror ${CKPT_SOURCE_DIR}/tests/consumer/project/main.cpp
      -o ${program} ${flags})
endfunction()
# Release where the compiler sees ckpt's headers as a user's own code (add_subdirectory: not SYSTEM),
# because g++ warns about some things only when it optimizes; the other modes test how ckpt is
# found, linked and run, which no optimization changes, and build in half the time without it.
if(MODE STREQUAL "add_subdirectory")
  set(build_type Release)
else()
  set(build_type "")
endif()
set(args -DCMAKE_CXX_COMPILER=${COMPILER} -DCMAKE_BUILD_TYPE=${build_type} -DCMAKE_CXX_STANDARD=${STANDARD})
set(program ${WORK_DIR}/build/consumer)
# find_package_mpi: with `COMPONENTS mpi`, the MPI program built and run on 2 ranks;
# find_package_no_mpi: MPI not found on the consumer's side, ckpt::ckpt alone.
set(extra)
if(MODE STREQUAL "find_package_mpi")
  set(extra -DCONSUMER_MPI=ON)
elseif(MODE STREQUAL "find_package_no_mpi")
  set(extra -DCONSUMER_NO_MPI=ON -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON)
elseif(MODE STREQUAL "find_package_compiled")
  set(extra -DCONSUMER_COMPILED=ON)
endif()
if(MODE STREQUAL "install")
  # Headers, package files and the compiled mode's library (built first), from a fresh configuration;
  # unoptimized like the modes that use it (the install test then takes 10 s instead of 23 s).
  file(REMOVE_RECURSE ${PREFIX})
  run(${CMAKE_COMMAND} -S ${CKPT_SOURCE_DIR} -B ${WORK_DIR}/ckpt-build -DCKPT_BUILD_TESTS=OFF -DCKPT_BUILD_EXAMPLES=OFF
      -DCKPT_BUILD_TOOLS=OFF -DCKPT_INSTALL=ON -DCKPT_BUILD_COMPILED=ON -DCMAKE_CXX_COMPILER=${COMPILER}
      -DCMAKE_BUILD_TYPE= -DCMAKE_INSTALL_PREFIX=${PREFIX})
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/ckpt-build)
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/ckpt-build)
  message(STATUS "installed into ${PREFIX}")
  return()
endif()
if(MODE MATCHES "^find_package")
  run(${CMAKE_COMMAND} -S ${CKPT_SOURCE_DIR}/tests/consumer/project -B ${WORK_DIR}/build ${args}
      -DCMAKE_PREFIX_PATH=${PREFIX} -DCONSUMER_MODE=find_package ${extra})
elseif(MODE STREQUAL "pkg_config")
  build_with_pkg_config(ckpt ${program})
else()
  run(${CMAKE_COMMAND} -S ${CKPT_SOURCE_DIR}/tests/consumer/project -B ${WORK_DIR}/build ${args}
      -DCONSUMER_MODE=${MODE} -DCKPT_DIR=${CKPT_SOURCE_DIR})
endif()
if(NOT MODE STREQUAL "pkg_config")
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
endif()
set(programs ${program})
if(MODE STREQUAL "find_package_compiled")
  # The same installed library for other build systems: ckpt-compiled.pc.
  build_with_pkg_config(ckpt-compiled ${program}_pkg_config)
  list(APPEND programs ${program}_pkg_config)
  # ckpt.pc and ckpt-compiled.pc in one directory: one PKG_CONFIG_PATH finds both.
  file(GLOB_RECURSE pc_files ${PREFIX}/*/ckpt.pc ${PREFIX}/*/ckpt-compiled.pc)
  set(pc_dirs)
  foreach(pc IN LISTS pc_files)
    get_filename_component(dir ${pc} DIRECTORY)
    list(APPEND pc_dirs ${dir})
  endforeach()
  list(REMOVE_DUPLICATES pc_dirs)
  list(LENGTH pc_files pc_count)
  list(LENGTH pc_dirs dir_count)
  if(NOT pc_count EQUAL 2 OR NOT dir_count EQUAL 1)
    message(FATAL_ERROR "ckpt.pc and ckpt-compiled.pc are not installed side by side: ${pc_files}")
  endif()
endif()
foreach(p IN LISTS programs)
  execute_process(COMMAND ${p} WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE result OUTPUT_VARIABLE out)
  if(NOT result EQUAL 0 OR NOT out MATCHES "restored step 42")
    message(FATAL_ERROR "the consumer ${p} failed (${result}): ${out}")
  endif()
  message(STATUS "${MODE}, C++${STANDARD}, ${p}: ${out}")
endforeach()
if(MODE STREQUAL "find_package_mpi")
  execute_process(COMMAND ${MPIEXEC} --oversubscribe -np 2 ${WORK_DIR}/build/consumer_mpi WORKING_DIRECTORY ${WORK_DIR}
                  RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0 OR NOT out MATCHES "restored step 42")
    message(FATAL_ERROR "the MPI consumer failed (${result}): ${out}${err}")
  endif()
  message(STATUS "${MODE}: ${out}")
endif()
