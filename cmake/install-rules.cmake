# Installs the headers, the ckpt::ckpt target and a package config so that
# find_package(ckpt CONFIG) works, with a version file that does not depend on the architecture.
include(CMakePackageConfigHelpers)

install(DIRECTORY include/ckpt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS ckpt EXPORT ckptTargets)
set(ckpt_config_dir ${CMAKE_INSTALL_DATADIR}/cmake/ckpt)
install(EXPORT ckptTargets NAMESPACE ckpt:: DESTINATION ${ckpt_config_dir})
if(TARGET ckpt_mpi)
  # A separate export: ckptConfig.cmake loads it only when MPI is found on the consumer's side.
  install(TARGETS ckpt_mpi EXPORT ckptMpiTargets)
  install(EXPORT ckptMpiTargets NAMESPACE ckpt:: DESTINATION ${ckpt_config_dir})
endif()
if(TARGET ckpt_foreign)
  # Likewise: loaded when nlohmann_json and ZLIB are found on the consumer's side.
  install(TARGETS ckpt_foreign EXPORT ckptForeignTargets)
  install(EXPORT ckptForeignTargets NAMESPACE ckpt:: DESTINATION ${ckpt_config_dir})
endif()

if(TARGET ckpt_compiled)
  # The compiled mode's library: a separate export, loaded by ckptConfig.cmake when installed.
  install(TARGETS ckpt_compiled EXPORT ckptCompiledTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT ckptCompiledTargets NAMESPACE ckpt:: DESTINATION ${ckpt_config_dir})
  configure_file(cmake/ckpt-compiled.pc.in ${PROJECT_BINARY_DIR}/ckpt-compiled.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/ckpt-compiled.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()

configure_package_config_file(cmake/ckptConfig.cmake.in ${PROJECT_BINARY_DIR}/ckptConfig.cmake
                              INSTALL_DESTINATION ${ckpt_config_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ckptConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/ckptConfig.cmake ${PROJECT_BINARY_DIR}/ckptConfigVersion.cmake
              cmake/FindxxHash.cmake
        DESTINATION ${ckpt_config_dir})

# For other build systems: ckpt.pc beside ckpt-compiled.pc in <libdir>/pkgconfig. Header-only, ckpt.pc
# could live in share/pkgconfig, but then the two would be in different directories and a
# PKG_CONFIG_PATH naming one of them would find only one.
configure_file(cmake/ckpt.pc.in ${PROJECT_BINARY_DIR}/ckpt.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ckpt.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
