#pragma once
// The one include: `#include <ckpt/ckpt.hpp>`.

#include <ckpt/version.hpp>
#include <ckpt/error.hpp>
#include <ckpt/threads.hpp>
#include <ckpt/dtype.hpp>
#include <ckpt/metadata.hpp>
#include <ckpt/fields.hpp>
#include <ckpt/leaf.hpp>
#include <ckpt/eigen.hpp>
#include <ckpt/async.hpp>
#include <ckpt/coordination.hpp>
#include <ckpt/checkpoint.hpp>
#include <ckpt/reader.hpp>
#include <ckpt/policy.hpp>
#include <ckpt/manager.hpp>
#include <ckpt/interrupt.hpp>
#include <ckpt/warning.hpp>
#include <ckpt/inspection.hpp>
#include <ckpt/safetensors.hpp>

/// Checkpoints for C++ training code: ckpt::checkpoint names the objects of a training state,
/// ckpt::checkpoint_manager keeps a directory of them, ckpt::reader reads a file without the types.
/// `ckpt::checkpoint ck{ckpt::track("model", model)}; ck.restore(ck.save("run/ckpt"));`
namespace ckpt {}
