# Every dependency comes from the system (Debian packages), found the usual way; nothing is
# downloaded. ckptConfig.cmake repeats these through find_dependency.
include(GNUInstallDirs)
find_package(Boost 1.81 REQUIRED)  # Boost.PFR is header-only and first shipped in 1.75; 1.81 is Debian's
find_package(cereal CONFIG REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(xxHash REQUIRED)
find_package(Threads REQUIRED)
