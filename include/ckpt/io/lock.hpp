#pragma once
// Forwarding header: the manager's directory lock now lives in detail/io/directory_lock.hpp.
#include <ckpt/detail/io/directory_lock.hpp>
