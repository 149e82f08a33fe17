#pragma once
#include <ckpt/high.hpp>
