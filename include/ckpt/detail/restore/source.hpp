#pragma once
// Where a restore takes its entries from: the restore_source interface, its adapter over any
// Source type (restore_source_of), and describe(), an entry in the words of a mismatch message.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/format/file_reader.hpp>
#include <ckpt/metadata.hpp>

namespace ckpt::detail {

/// Where a restore takes its entries from, as the walk sees it: a file_reader, or a sharded
/// checkpoint's pieces (detail/format/sharded_reader.hpp). An interface, not a template parameter of the
/// walk: the walk is instantiated once per tracked type rather than once per type and source, which
/// halved what a translation unit tracking a model compiles. The virtual call per entry is nothing
/// next to the read it leads to.
class restore_source {
public:
    virtual ~restore_source() = default;
    virtual const std::filesystem::path& path() const noexcept = 0;
    virtual const std::vector<entry_info>& entries() const noexcept = 0;
    virtual const entry_info* find(std::string_view path) const = 0;
    virtual std::size_t index_of(const entry_info& e) const noexcept = 0;
    /// The block of `e` into `dest` (e.length bytes), checked.
    virtual void read_block(const entry_info& e, void* dest) = 0;
    virtual std::string read_block(const entry_info& e) = 0;
    virtual void verify_block(const entry_info& e) = 0;
    /// True when read_part may be called from several threads at once (a file_reader's may).
    virtual bool reads_in_parallel() const noexcept { return false; }
    /// file_reader::read_part and part_size; only called when reads_in_parallel().
    virtual void read_part(const entry_info& e, std::uint64_t lo, std::uint64_t hi, char* dest,
                           file_reader::read_buffer& buffer) const;
    virtual std::uint64_t part_size(const entry_info& e) const noexcept;
    /// file_reader::small_span, read_span and check_small (runs of small blocks read at once); only
    /// called when reads_in_parallel(). A source whose small_span is 0 reads every block on its own.
    virtual std::uint64_t small_span(const entry_info& e) const noexcept;
    virtual const char* read_span(std::uint64_t lo, std::uint64_t hi, file_reader::read_buffer& buffer) const;
    virtual void check_small(const entry_info& e, const char* bytes) const;
};

/// A Source with find, index_of, entries, path, read_block and verify_block, as a restore_source.
template <class Source>
class restore_source_of : public restore_source {
public:
    explicit restore_source_of(Source& s) : source_(s) {}
    const std::filesystem::path& path() const noexcept override { return source_.path(); }
    const std::vector<entry_info>& entries() const noexcept override { return source_.entries(); }
    const entry_info* find(std::string_view path) const override { return source_.find(path); }
    std::size_t index_of(const entry_info& e) const noexcept override { return source_.index_of(e); }
    void read_block(const entry_info& e, void* dest) override { source_.read_block(e, dest); }
    std::string read_block(const entry_info& e) override { return source_.read_block(e); }
    void verify_block(const entry_info& e) override { source_.verify_block(e); }
    bool reads_in_parallel() const noexcept override { return std::is_same_v<Source, file_reader>; }
    void read_part(const entry_info& e, std::uint64_t lo, std::uint64_t hi, char* dest,
                   file_reader::read_buffer& buffer) const override {
        if constexpr (std::is_same_v<Source, file_reader>) source_.read_part(e, lo, hi, dest, buffer);
        (void)e, (void)lo, (void)hi, (void)dest, (void)buffer;
    }
    std::uint64_t part_size(const entry_info& e) const noexcept override {
        if constexpr (std::is_same_v<Source, file_reader>) return source_.part_size(e);
        (void)e;
        return 0;
    }
    std::uint64_t small_span(const entry_info& e) const noexcept override {
        if constexpr (std::is_same_v<Source, file_reader>) return source_.small_span(e);
        (void)e;
        return 0;
    }
    const char* read_span(std::uint64_t lo, std::uint64_t hi, file_reader::read_buffer& buffer) const override {
        if constexpr (std::is_same_v<Source, file_reader>) return source_.read_span(lo, hi, buffer);
        (void)lo, (void)hi, (void)buffer;
        return nullptr;
    }
    void check_small(const entry_info& e, const char* bytes) const override {
        if constexpr (std::is_same_v<Source, file_reader>) source_.check_small(e, bytes);
        (void)e, (void)bytes;
    }

private:
    Source& source_;
};

/// An entry in the words of a mismatch message: "f32 [2,3]", "a map of 4 elements".
CKPT_INLINE std::string describe(const entry_info& e);

}  // namespace ckpt::detail

#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE void restore_source::read_part(const entry_info& e, std::uint64_t lo, std::uint64_t hi, char* dest,
                                           file_reader::read_buffer& buffer) const {
    (void)e, (void)lo, (void)hi, (void)dest, (void)buffer;
}

CKPT_INLINE std::uint64_t restore_source::part_size(const entry_info& e) const noexcept {
    (void)e;
    return 0;
}

CKPT_INLINE std::uint64_t restore_source::small_span(const entry_info& e) const noexcept {
    (void)e;
    return 0;
}

CKPT_INLINE const char* restore_source::read_span(std::uint64_t lo, std::uint64_t hi,
                                                  file_reader::read_buffer& buffer) const {
    (void)lo, (void)hi, (void)buffer;
    return nullptr;
}

CKPT_INLINE void restore_source::check_small(const entry_info& e, const char* bytes) const { (void)e, (void)bytes; }

CKPT_INLINE std::string describe(const entry_info& e) {
    switch (e.kind) {
        case entry_kind::tensor:
            return std::string(dtype_name(e.dtype)) + " " + e.shape.to_string();
        case entry_kind::sparse:
            return std::string("sparse ") + dtype_name(e.dtype) + " " + e.shape.to_string();
        case entry_kind::sequence:
            return "a sequence of " + std::to_string(e.shape[0]) + " elements";
        case entry_kind::mapping:
            return "a map of " + std::to_string(e.shape[0]) + " elements";
        case entry_kind::serialized:
            return "a serialized value of " + std::to_string(e.length) + " bytes";
        case entry_kind::text:
            return "a random engine or distribution state";
    }
    return "an unknown entry";
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
