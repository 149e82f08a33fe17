#pragma once
// A synchronous sharded save, collective over a communicator (docs/distributed.md): the ranks
// agree on rank 0's name; every rank walks its objects; the ranks exchange the block descriptions
// and each derives the same plan; rank 0 makes the temporary directory; every rank writes and
// fsyncs its file there; then the commit (commit_save, shared with the asynchronous save): the
// outcomes and checksums exchanged, replicas compared, rank 0 writes the manifest and renames the
// directory into place. A failure anywhere becomes, on every rank, the same typed error naming the
// failing rank, and the temporary directory is removed.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include <cstdio>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <ckpt/detail/format/sharded_manifest.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/format/layout.hpp>
#include <ckpt/detail/format/writer.hpp>
#include <ckpt/detail/io/descriptor.hpp>
#include <ckpt/detail/io/durable_directories.hpp>
#include <ckpt/detail/io/fault_injection.hpp>
#include <ckpt/detail/io/temp_names.hpp>
#include <ckpt/metadata.hpp>
#include <ckpt/mpi/detail/communicator.hpp>
#include <ckpt/mpi/detail/failure.hpp>
#include <ckpt/mpi/detail/rank_file.hpp>
#include <ckpt/mpi/detail/save_plan.hpp>
#include <ckpt/mpi/detail/sinks.hpp>
#include <ckpt/mpi/track.hpp>
#include <ckpt/warning.hpp>

namespace ckpt::mpi::detail {

/// Where a save to `file` writes until its commit: a name that marks it temporary to every scan,
/// made unique by rank 0's process id and the save's number.
inline std::filesystem::path temp_directory(const std::filesystem::path& file, std::uint64_t counter,
                                            std::uint64_t pid = static_cast<std::uint64_t>(::getpid())) {
    auto temp = file;
    temp += std::string(ckpt::detail::temp_marker) + std::to_string(pid) + "." + std::to_string(counter);
    return temp;
}

/// After a failed save every rank returns only once the temporary directory is gone.
inline void discard(const std::filesystem::path& temp, const communicator& c) {
    if (c.rank() == 0) {
        std::error_code ec;
        std::filesystem::remove_all(temp, ec);
    }
    c.barrier();
}

/// Rank 0: makes the temporary directory `temp` of a save to `file` and holds it until the save
/// returns, so that a manager's cleanup leaves it alone.
inline ckpt::detail::file_descriptor make_temp_directory(const std::filesystem::path& file,
                                                         const std::filesystem::path& temp) {
    namespace fs = std::filesystem;
    if (fs::exists(file)) throw io_error("a checkpoint of this name already exists", file);
    ckpt::detail::create_parent_directories(file);
    std::error_code ec;
    fs::remove_all(temp, ec);
    return ckpt::detail::make_held_directory(temp);
}

/// Rank 0: the manifest, then the rename that makes the checkpoint exist, then the fsync that
/// makes it durable (a failure after the rename removes it: not known durable, not a checkpoint).
inline void commit_directory(const std::filesystem::path& temp, const std::filesystem::path& file,
                             const ckpt::detail::sharded_manifest& layout, const save_options& options,
                             std::uint64_t counter, std::chrono::system_clock::time_point when) {
    namespace cd = ckpt::detail;
    const std::string body = cd::encode_manifest(layout);
    cd::file_writer manifest(temp / cd::sharded_manifest_name);
    manifest.block(cd::sharded_manifest_entry, entry_kind::tensor, dtype::uint8, shape{body.size()}, false, body.data(),
                   body.size());
    manifest.finish(options, counter, when);
    if (std::filesystem::exists(file)) throw io_error("a checkpoint of this name already exists", file);
    if (cd::injected_failure(cd::io_op::rename, file) || ::rename(temp.c_str(), file.c_str()) != 0)
        throw io_error("cannot rename the temporary directory into place", file, cd::last_error());
    try {
        cd::fsync_directory(file.parent_path());
    } catch (...) {
        std::error_code ec;
        std::filesystem::remove_all(file, ec);
        throw;
    }
}

/// The commit of a save, collective over `c`: the outcomes of the writes and the checksums of
/// every rank (`blocks`, this rank's; `all`, every rank's descriptions, whose checksums this
/// fills in) in one allgather; a failed write anywhere, or (by default) diverged replicas,
/// refuse it on every rank and remove the temporary directory; else rank 0 writes the manifest
/// and renames, and the ranks agree on that. `held`: rank 0's hold on the temporary directory.
inline void commit_save(const communicator& c, std::vector<std::vector<planned_block>>& all,
                        const std::vector<planned_block>& blocks, const failure& outcome,
                        const std::filesystem::path& temp, const std::filesystem::path& file, divergence policy,
                        const save_options& options, std::uint64_t counter, std::chrono::system_clock::time_point when,
                        ckpt::detail::file_descriptor& held) {
    namespace cd = ckpt::detail;
    const int world = c.size();
    cd::index_builder out;
    encode_failure(out, outcome);
    out.u64(blocks.size());
    for (const auto& b : blocks) out.u64(b.checksum);
    const auto gathered = c.allgather(out.bytes());
    failure agreed;
    try {
        for (int r = 0; r < world; ++r) {
            cd::index_parser in(gathered[cd::to_size(r)], file);
            const failure f = decode_failure(in);
            auto& theirs = all[cd::to_size(r)];
            if (in.u64() != theirs.size()) throw error("internal: the ranks' block counts changed during a save");
            for (auto& b : theirs) b.checksum = in.u64();
            if (f && !agreed) agreed = blame(f, r, world, "while writing its file of the checkpoint");
        }
    } catch (...) {
        agreed = capture();  // the same on every rank: every rank parses the same bytes
    }
    if (agreed) {
        discard(temp, c);
        raise(agreed, file);
    }
    save_layout layout;
    try {
        layout = plan_save(all, policy, file);
    } catch (...) {
        discard(temp, c);  // diverged replicas: refused alike on every rank
        throw;
    }
    if (!layout.warning.empty() && c.rank() == 0) ckpt::detail::warn(warning_kind::diverged_replicas, layout.warning);
    failure mine;
    if (c.rank() == 0) {
        try {
            commit_directory(temp, file, layout.manifest, options, counter, when);
        } catch (...) {
            mine = capture();
        }
    }
    held.close();
    if (auto f = c.agree(mine, "to commit the checkpoint")) {
        discard(temp, c);
        raise(f, file);
    }
}

/// A synchronous save to `file`, collective over `c`: `walk` walks this rank's tracked objects into
/// the sink. See the top of this header.
inline void save_collectively(const communicator& c, const std::filesystem::path& file, const save_options& options,
                              std::uint64_t counter, divergence policy, const std::function<void(plan_sink&)>& walk) {
    namespace cd = ckpt::detail;
    namespace fs = std::filesystem;
    const int me = c.rank();

    // Rank 0's name, number and time are the save's; a rank that chose another name (no shared
    // file system, or a directory changed under the job) makes every rank refuse.
    cd::index_builder chosen;
    chosen.text(file.string());
    chosen.u64(counter);
    chosen.u64(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count()));
    chosen.text(temp_directory(file, counter).string());
    const std::string agreed = c.broadcast(chosen.bytes(), 0);
    cd::index_parser in(agreed, file);
    const fs::path name = in.text("file");
    const std::uint64_t agreed_counter = in.u64();
    const auto when =
        std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(static_cast<std::int64_t>(in.u64()))));
    const fs::path temp = in.text("temporary directory");
    failure mine;
    if (name != file || agreed_counter != counter)
        mine = {failure::generic,
                {},
                "it would save to '" + file.string() + "' (save " + std::to_string(counter) + "), rank 0 to '" +
                    name.string() + "' (save " + std::to_string(agreed_counter) + ")"};
    if (auto f = c.agree(mine, "to agree on the checkpoint's name")) raise(f, file);

    // Walk; exchange descriptions; every rank derives the same plan of which rank writes which
    // replicated block (from the sizes: the checksums come with the writes, and the replicas
    // are compared at the commit).
    plan_sink sink;
    try {
        walk(sink);
    } catch (...) {
        mine = capture();
    }
    if (auto f = c.agree(mine, "while walking its tracked objects")) raise(f, file);
    std::vector<std::vector<planned_block>> all;
    for (const auto& bytes : c.allgather(encode_descriptions(sink.blocks))) all.push_back(decode_descriptions(bytes));
    const std::vector<std::uint32_t> owner = plan_save(all, divergence::off, file).owner;

    cd::file_descriptor held;
    if (me == 0) {
        try {
            held = make_temp_directory(file, temp);
        } catch (...) {
            mine = capture();
        }
    }
    if (auto f = c.agree(mine, "to create the checkpoint's temporary directory")) raise(f, file);

    // Phase one: every rank writes and fsyncs its own file, hashing each block once.
    try {
        cd::file_writer writer(temp / cd::rank_file_name(static_cast<std::uint64_t>(me)));
        write_blocks(writer, sink.blocks, rank_part_of(sink.blocks, owner, static_cast<std::uint32_t>(me), policy));
        writer.finish(options, counter, when);
    } catch (...) {
        mine = capture();
    }

    // Phase two: outcomes and checksums exchanged, replicas compared, then rank 0 commits.
    // Until the rename, nothing under a final name exists.
    commit_save(c, all, sink.blocks, mine, temp, file, policy, options, counter, when, held);
}

}  // namespace ckpt::mpi::detail
