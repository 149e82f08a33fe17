#pragma once
// Scratch memory for the reads of a checkpoint file that cannot go straight into their destination
// (file_reader::read_part, read_large, read_chunks): one per thread that reads, aligned to a block.

#include <cstddef>
#include <cstdint>
#include <memory>

#include <ckpt/detail/format/layout.hpp>

namespace ckpt::detail {

class read_buffer {
public:
    // Sized for the largest request so far: at most max(chunk, the file's chunk size), and a
    // block longer than the file's chunk size exists only in a file that large.
    char* get(std::size_t size) {
        if (size_ < size) {
            data_.reset(new char[size + block_alignment]);
            size_ = size;
        }
        const auto at = reinterpret_cast<std::uintptr_t>(data_.get());
        return data_.get() + (align_up(at) - at);
    }

private:
    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
};

}  // namespace ckpt::detail
