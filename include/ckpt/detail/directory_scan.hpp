#pragma once
// Moved to ckpt/detail/manager/scan.hpp; this forwarding header goes once its includers follow.
#include <ckpt/detail/manager/scan.hpp>
