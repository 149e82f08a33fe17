#pragma once
// Moved to ckpt/detail/manager/naming.hpp; this forwarding header goes once its includers follow.
#include <ckpt/detail/manager/naming.hpp>
