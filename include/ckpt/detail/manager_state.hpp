#pragma once
// Moved to ckpt/detail/manager/state_file.hpp; this forwarding header goes once its includers follow.
#include <ckpt/detail/manager/state_file.hpp>
