#pragma once
// foreign_bridge: how the foreign-file code reaches a checkpoint's protected walks (under its lock),
// shared by the restore from and the write to foreign files.

#include <filesystem>
#include <mutex>

#include <ckpt/any_checkpoint.hpp>
#include <ckpt/detail/restore/staged_reads.hpp>
#include <ckpt/detail/restore/walker.hpp>
#include <ckpt/detail/save/save_walk.hpp>
#include <ckpt/restore_mode.hpp>
#include <ckpt/restore_status.hpp>

namespace ckpt::detail {

/// Reaches the protected walks of a checkpoint, under its lock, as its own restore and write do.
class foreign_bridge {
public:
    static restore_status restore(any_checkpoint& ck, restore_source& source, const std::filesystem::path& file,
                                  restore_mode mode) {
        std::lock_guard lock(ck.mutex_);
        ck.wait_for_worker();
        return ck.do_restore_source(source, file, mode);
    }
    template <class Body>
    static void locked(any_checkpoint& ck, Body&& body) {
        std::lock_guard lock(ck.mutex_);
        ck.wait_for_worker();
        body();
    }
    static void save_walk(any_checkpoint& ck, block_sink& sink) { ck.do_save_walk(sink); }
};

}  // namespace ckpt::detail
