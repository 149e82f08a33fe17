#pragma once
// A failure as it travels between ranks: what any rank caught, carried so that every rank raises
// the same ckpt error (of the same type, naming the failing rank).

#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <system_error>

#include <ckpt/error.hpp>
#include <ckpt/detail/format/layout.hpp>

namespace ckpt::mpi::detail {

/// A failure as it travels between ranks.
struct failure {
    enum kind_t : int { none = 0, generic = 1, io = 2, format = 3, corrupt = 4, mismatch = 5 } kind = none;
    std::string entry;
    std::string what;
    int code = 0;  // an io_error's errno, so that `e.code()` survives the trip (a full disk is told apart)
    explicit operator bool() const noexcept { return kind != none; }
};

/// The exception in flight as a failure: `catch (...) { f = capture(); }`
inline failure capture() {
    try {
        throw;
    } catch (const mismatch_error& e) {
        return {failure::mismatch, e.entry(), e.what()};
    } catch (const corrupt_error& e) {
        return {failure::corrupt, e.entry(), e.what()};
    } catch (const format_error& e) {
        return {failure::format, e.entry(), e.what()};
    } catch (const io_error& e) {
        // raise() rebuilds the io_error with its code, which appends the code's message again.
        std::string what = e.what();
        const std::string reason = e.code() ? ": " + e.code().message() : std::string();
        if (!reason.empty() && what.size() >= reason.size() &&
            what.compare(what.size() - reason.size(), reason.size(), reason) == 0)
            what.resize(what.size() - reason.size());
        return {failure::io, e.entry(), what, e.code() ? e.code().value() : 0};
    } catch (const error& e) {
        return {failure::generic, e.entry(), e.what()};
    } catch (const std::exception& e) {
        return {failure::generic, {}, e.what()};
    } catch (...) {
        return {failure::generic, {}, "an unknown exception"};
    }
}

[[noreturn]] inline void raise(const failure& f, const std::filesystem::path& file) {
    switch (f.kind) {
        case failure::io:
            throw io_error(f.what, file,
                           f.code != 0 ? std::error_code(f.code, std::generic_category()) : std::error_code());
        case failure::format:
            throw format_error(f.what, file, f.entry);
        case failure::corrupt:
            throw corrupt_error(f.what, file, f.entry);
        case failure::mismatch:
            throw mismatch_error(f.what, file, f.entry);
        default:
            throw error(f.what, file, f.entry);
    }
}

/// The one wire form of a failure, in every exchange that carries one.
inline void encode_failure(ckpt::detail::index_builder& out, const failure& f) {
    out.u8(static_cast<std::uint8_t>(f.kind));
    out.text(f.entry);
    out.text(f.what);
    out.u64(static_cast<std::uint64_t>(f.code));
}

inline failure decode_failure(ckpt::detail::index_parser& in) {
    failure f;
    f.kind = static_cast<failure::kind_t>(in.u8());
    f.entry = in.text("entry");
    f.what = in.text("message");
    f.code = static_cast<int>(in.u64());
    return f;
}

/// `f` as every rank reports it: "rank 2 of 4 failed <during>: <what>" (`during` may be empty when
/// `what` already says it).
inline failure blame(failure f, int rank, int world, const std::string& during) {
    f.what = "rank " + std::to_string(rank) + " of " + std::to_string(world) + " failed " +
             (during.empty() ? f.what : during + ": " + f.what);
    return f;
}

}  // namespace ckpt::mpi::detail
