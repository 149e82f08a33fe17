#pragma once
// Moved: the sharded format lives in ckpt/detail/format/sharded_manifest.hpp and sharded_reader.hpp.
#include <ckpt/detail/format/sharded_reader.hpp>
