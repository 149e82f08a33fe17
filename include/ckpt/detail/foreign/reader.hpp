#pragma once
// What every foreign format's reader shares: the list of tensors it found, a name lookup, a streaming
// read of one tensor's bytes, and the checked arithmetic that keeps a crafted file's numbers honest.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <ckpt/dtype.hpp>
#include <ckpt/error.hpp>
#include <ckpt/detail/format/entry_codec.hpp>
#include <ckpt/detail/io/descriptor.hpp>
#include <ckpt/detail/io/read_write.hpp>

namespace ckpt {

/// One tensor of a foreign file, as the file describes it (listed by ckpt::foreign_file::tensors()).
struct foreign_tensor {
    /// Its name in the file: "model.layers.0.mlp.up_proj.weight".
    std::string name;
    /// Element type.
    ckpt::dtype dtype = ckpt::dtype::float32;
    /// Logical shape, outermost first (numpy's and PyTorch's order).
    ckpt::shape shape;
    /// True when the bytes are in Fortran (column-major) order: npy/npz written from a Fortran array.
    bool fortran_order = false;
    /// Length of its bytes: elements * dtype size.
    std::uint64_t bytes = 0;
};

}  // namespace ckpt

namespace ckpt::detail {

/// a + b <= limit, without overflow.
inline bool fits_within(std::uint64_t a, std::uint64_t b, std::uint64_t limit) noexcept {
    return a <= limit && b <= limit - a;
}

/// The consumer of a streamed tensor: `consume(bytes, n)` once per piece, in order.
using byte_consumer = std::function<void(const void*, std::size_t)>;

/// One foreign file (or sharded model) opened and checked: its tensors, and their bytes on request.
class foreign_reader {
public:
    virtual ~foreign_reader() = default;

    std::filesystem::path path;
    std::string format;
    std::vector<foreign_tensor> tensors;
    std::vector<std::pair<std::string, std::string>> metadata;

    const foreign_tensor* find(std::string_view name) const {
        const auto it = index_.find(std::string(name));
        return it == index_.end() ? nullptr : &tensors[it->second];
    }
    std::size_t index_of(const foreign_tensor& t) const noexcept {
        return static_cast<std::size_t>(&t - tensors.data());
    }

    /// Hands tensor i's bytes to `consume` in pieces of at most `chunk` bytes. Throws corrupt_error
    /// when the bytes are not there (a truncated or damaged member).
    virtual void stream(std::size_t i, const byte_consumer& consume, std::size_t chunk) const = 0;

protected:
    /// Indexes the names once the tensors are listed; a name twice is a damaged file.
    void index_names() {
        index_.reserve(tensors.size());
        for (std::size_t i = 0; i < tensors.size(); ++i)
            if (!index_.emplace(tensors[i].name, i).second)
                throw corrupt_error("tensor '" + tensors[i].name + "' appears twice", path);
    }

private:
    std::unordered_map<std::string, std::size_t> index_;
};

/// A whole file opened for positional reads, its size known.
struct read_only_file {
    explicit read_only_file(const std::filesystem::path& p)
        : path(p), fd(open_for_reading(p)), size(file_size(fd.get(), p)) {}
    void read(void* dest, std::size_t n, std::uint64_t offset) const { pread_all(fd.get(), dest, n, offset, path); }

    std::filesystem::path path;
    file_descriptor fd;
    std::uint64_t size;
};

/// Streams [offset, offset + length) of `file` to `consume` in pieces of at most `chunk` bytes.
inline void stream_range(const read_only_file& file, std::uint64_t offset, std::uint64_t length,
                         const byte_consumer& consume, std::size_t chunk) {
    if (chunk == 0) chunk = std::size_t{1} << 20;
    std::vector<char> buffer(static_cast<std::size_t>(std::min<std::uint64_t>(length, chunk)));
    while (length > 0) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(length, buffer.size()));
        file.read(buffer.data(), n, offset);
        consume(buffer.data(), n);
        offset += n;
        length -= n;
    }
}

}  // namespace ckpt::detail
