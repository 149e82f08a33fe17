#pragma once
// Asynchronous saves (any_checkpoint::save_async and friends). The caller's thread only takes a
// snapshot (ckpt/detail/save/snapshot.hpp): tensor bytes copied and opaque leaves encoded into a
// buffer that is reused from one save to the next. A background thread
// (ckpt/detail/async/background_worker.hpp) then checksums, writes, fsyncs and renames. At most one
// save is in flight; the next waits for it. Errors from the background are kept and rethrown by the
// next save or by wait().

#include <ckpt/detail/async/background_worker.hpp>
#include <ckpt/detail/save/snapshot.hpp>
