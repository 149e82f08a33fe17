#pragma once
// Moved to ckpt/detail/format/entry_codec.hpp (issue 21): this forwarding header goes once its includers
// use the new path.
#include <ckpt/detail/format/entry_codec.hpp>
