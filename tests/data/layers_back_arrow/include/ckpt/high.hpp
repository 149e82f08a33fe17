#pragma once
#include <ckpt/detail/low.hpp>
