#pragma once
// Forwarding header: the restore side of the walk now lives in detail/restore/ (plan.hpp explains it).
#include <ckpt/detail/restore/staged_reads.hpp>
#include <ckpt/detail/restore/walker.hpp>
