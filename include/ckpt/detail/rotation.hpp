#pragma once
// Moved to ckpt/detail/manager/rotation.hpp and schedule.hpp; this forwarding header goes once its includers follow.
#include <ckpt/detail/manager/rotation.hpp>
#include <ckpt/detail/manager/schedule.hpp>
