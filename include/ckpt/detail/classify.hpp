#pragma once
// Moved to ckpt/detail/kinds/classify.hpp (issue 21): this forwarding header goes once its includers
// use the new path.
#include <ckpt/detail/kinds/classify.hpp>
