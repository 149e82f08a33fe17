#pragma once
// Moved to ckpt/detail/reflect/map_macro.hpp (issue 21): this forwarding header goes once its
// includers use the new path.
#include <ckpt/detail/reflect/map_macro.hpp>
