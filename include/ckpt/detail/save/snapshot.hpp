#pragma once
// The second sink of a save walk (save_walk.hpp), beside detail/format/writer.hpp's file_writer: an
// asynchronous save (async.hpp) takes a snapshot on the caller's thread -- tensor bytes copied and
// opaque leaves encoded into buffers reused from one save to the next -- and the background thread
// writes it to a file later. The walk only notes where each tensor's bytes are (the objects' own
// storage, which stays put while the caller is in the save); finish() then copies them all at once,
// on the threads of ckpt/threads.hpp, into one buffer sized once. Under a memory budget
// (any_checkpoint::set_async_memory_budget) finish() copies only the last `budget` bytes of the
// tensors: it begins the file itself and writes everything ahead of them from the objects' memory,
// on the caller's thread, and write() goes on where it stopped.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/writer.hpp>
#include <ckpt/detail/parallel/thread_pool.hpp>

namespace ckpt::detail {

/// The tracked state at one moment, owned: what a save walk produced, ready to be written later.
/// A sink for save_walker, like file_writer.
class snapshot {
public:
    /// Empties the snapshot for a save to `file` (named in errors).
    void clear(const std::filesystem::path& file);

    /// A tensor's bytes are copied by finish(): `data` must stay valid and unchanged until then.
    /// Other blocks (scratch memory of the walk) are copied now.
    void block(std::string_view path, entry_kind kind, dtype type, const shape& dims, bool column_major,
               const void* data, std::size_t size);

    static constexpr std::size_t no_budget = std::numeric_limits<std::size_t>::max();

    /// Copies the tensors' bytes: from 16 MiB on, on up to ckpt::max_threads() threads (at least
    /// 4 MiB each), large tensors split between them. When they come to more than `budget` bytes,
    /// only the last `budget` bytes (in file order) are copied: the file is begun here and every
    /// block ahead of them written now, straight from the objects' memory (a tensor across the
    /// line in part), hashed on the same threads. Throws what the writes throw.
    void finish(std::size_t budget = no_budget);

    /// Writes the snapshot as a checkpoint file (the rest of it, after a finish() under a budget),
    /// hashing on the calling thread only; runs on the background thread.
    void write(const save_options& options, std::uint64_t counter, std::chrono::system_clock::time_point when);

    /// Drops a file begun by finish() that will not be written: its temporary file goes.
    void discard() noexcept { begun_.reset(); }

    /// The memory kept from one save to the next: the tensors' copies and the encoded values.
    std::size_t memory() const noexcept { return capacity_ + other_bytes_.capacity(); }

private:
    struct record {
        std::size_t path_offset, path_length;
        entry_kind kind;
        dtype type;
        bool column_major;
        shape dims;
        bool tensor;  // bytes in bytes_ (else in other_bytes_)
        std::size_t offset, length;
        const char* source;  // a tensor's bytes in its object, until finish() has copied them
    };

    // Under a budget: begins the file and writes the blocks ahead of the first copied byte.
    void write_ahead();
    // Where the bytes of record `r` from its byte `at` on are kept.
    const char* copied(const record& r, std::size_t at) const {
        return r.tensor ? bytes_.get() + (r.offset + at - ahead_) : other_bytes_.data() + r.offset + at;
    }

    std::filesystem::path file_;
    std::vector<record> records_;
    std::string paths_;
    std::string other_bytes_;
    std::vector<copy_part> parts_;
    std::size_t tensor_bytes_ = 0;
    std::unique_ptr<char[]> bytes_;  // the tensor bytes from ahead_ on
    std::size_t capacity_ = 0;
    // Under a budget: the tensor bytes finish() wrote, the file it began, and the first record not
    // written whole (its first `ahead_ - offset` bytes are, when it is the tensor across the line).
    std::size_t ahead_ = 0;
    std::unique_ptr<file_writer> begun_;
    std::size_t resume_record_ = 0;
};

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void snapshot::clear(const std::filesystem::path& file) {
    file_ = file;
    records_.clear();
    paths_.clear();
    other_bytes_.clear();
    tensor_bytes_ = 0;
    ahead_ = 0;
    begun_.reset();
    resume_record_ = 0;
}

CKPT_INLINE void snapshot::block(std::string_view path, entry_kind kind, dtype type, const shape& dims,
                                 bool column_major, const void* data, std::size_t size) {
    // Refused here, on the caller's thread, before a file is created.
    check_writable_entry(path, kind, type, dims, size, records_.size(), file_);
    const bool tensor = kind == entry_kind::tensor;
    records_.push_back({paths_.size(), path.size(), kind, type, column_major, dims, tensor,
                        tensor ? tensor_bytes_ : other_bytes_.size(), size,
                        tensor && size ? static_cast<const char*>(data) : ""});
    paths_.append(path);
    if (tensor)
        tensor_bytes_ += size;
    else
        other_bytes_.append(static_cast<const char*>(data), size);
}

CKPT_INLINE void snapshot::finish(std::size_t budget) {
    ahead_ = tensor_bytes_ > budget ? tensor_bytes_ - budget : 0;
    if (ahead_) write_ahead();
    const std::size_t copied_bytes = tensor_bytes_ - ahead_;
    reserve_copy_storage(bytes_, capacity_, copied_bytes, budget);  // once grown, allocates nothing
    // The bytes from ahead_ on, large tensors cut in parts for the threads.
    parts_.clear();
    for (const record& r : records_) {
        if (!r.tensor || r.length == 0 || r.offset + r.length <= ahead_) continue;
        const std::size_t first = r.offset < ahead_ ? ahead_ - r.offset : 0;
        add_copy(parts_, r.source + first, bytes_.get() + (r.offset + first - ahead_), r.length - first);
    }
    parallel_copy(parts_, copied_bytes);
}

CKPT_INLINE void snapshot::write_ahead() {
    begun_ = std::make_unique<file_writer>(file_);
    std::size_t i = 0;
    for (; i < records_.size(); ++i) {
        const record& r = records_[i];
        const char* from = r.tensor ? r.source : other_bytes_.data() + r.offset;
        const std::string_view path = std::string_view(paths_).substr(r.path_offset, r.path_length);
        if (r.tensor && r.offset + r.length > ahead_) {
            if (r.offset < ahead_) {  // across the line: its head now, its tail from the copy
                begun_->begin_block(path, r.kind, r.type, r.dims, r.column_major, r.length);
                begun_->block_bytes(from, ahead_ - r.offset);
            }
            break;
        }
        begun_->block(path, r.kind, r.type, r.dims, r.column_major, from, r.length);
    }
    resume_record_ = i;
}

CKPT_INLINE void snapshot::write(const save_options& options, std::uint64_t counter,
                                 std::chrono::system_clock::time_point when) {
    struct closes {  // and a failed write's temporary file goes
        std::unique_ptr<file_writer>& writer;
        ~closes() { writer.reset(); }
    } closing{begun_};
    if (!begun_) begun_ = std::make_unique<file_writer>(file_);
    file_writer& writer = *begun_;
    writer.hash_on_one_thread();
    std::size_t i = resume_record_;
    if (i < records_.size() && records_[i].tensor && records_[i].offset < ahead_) {  // the tensor across the line
        const record& r = records_[i++];
        writer.block_bytes(copied(r, ahead_ - r.offset), r.offset + r.length - ahead_);
        writer.end_block();
    }
    for (; i < records_.size(); ++i) {
        const record& r = records_[i];
        writer.block(std::string_view(paths_).substr(r.path_offset, r.path_length), r.kind, r.type, r.dims,
                     r.column_major, copied(r, 0), r.length);
    }
    writer.finish(options, counter, when);
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
