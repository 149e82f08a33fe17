#pragma once
// Moved to ckpt/detail/save/save_walk.hpp (issue 21): this forwarding header goes once its includers
// use the new path.
#include <ckpt/detail/save/save_walk.hpp>
