// Compile-time benchmark: the baseline of compile_time_include.cpp, what a user includes anyway.
#include <Eigen/Dense>
#include <cereal/archives/binary.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cereal/types/map.hpp>
