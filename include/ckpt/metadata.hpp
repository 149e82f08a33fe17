#pragma once
// What a checkpoint file says about itself besides its entries.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <ckpt/dtype.hpp>

namespace ckpt {

/// Given at save time: `ckpt::save_options o; o.step = 1200; o.metrics["val_loss"] = 0.31; ck.save("run/ckpt", o);`
struct save_options {
    /// The step (TensorFlow's checkpoint_number) to record and name the file by: `o.step = 100;`
    std::optional<std::int64_t> step;
    /// Numbers to record, e.g. for keep_best: `o.metrics["val_loss"] = 0.25;`
    std::map<std::string, double> metrics;
    /// Strings to record: `o.strings["git"] = "1a2b3c";`
    std::map<std::string, std::string> strings;
};

/// Read back from a file, without the model types: `ckpt::reader("run/ckpt-3").metadata().step`
struct metadata {
    std::uint64_t save_counter = 0;                   ///< 1 for the first save, as TensorFlow's save_counter
    std::chrono::system_clock::time_point wall_time;  ///< when the save was taken
    /// The training step given at save time: `ckpt::reader(p).metadata().step.value_or(0)`
    std::optional<std::int64_t> step;
    /// Numbers given at save time: `o.metrics["val_loss"] = 0.25;`
    std::map<std::string, double> metrics;
    /// Strings given at save time: `o.strings["git"] = "1a2b3c";`
    std::map<std::string, std::string> strings;
};

/// How an entry's bytes are to be read. The numeric values are part of the file format.
enum class entry_kind : std::uint8_t {
    tensor = 0,      // raw elements of `dtype`, `shape`, row- or column-major
    sparse = 1,      // compressed sparse matrix, see docs/format.md
    serialized = 2,  // cereal binary bytes of one value
    text = 3,        // operator<< text of a random engine or distribution
    sequence = 4,    // a std::vector/std::array whose elements are entries "<path>/<i>"; shape [n], no bytes
    mapping = 5,     // a map whose elements are entries "<path>/<key>"; bytes list the keys
};

/// The kind's name as the tool prints it: `ckpt::entry_kind_name(e.kind)`
constexpr const char* entry_kind_name(entry_kind k) noexcept {
    switch (k) {
        case entry_kind::tensor:
            return "tensor";
        case entry_kind::sparse:
            return "sparse";
        case entry_kind::serialized:
            return "serialized";
        case entry_kind::text:
            return "text";
        case entry_kind::sequence:
            return "sequence";
        case entry_kind::mapping:
            return "mapping";
    }
    return "unknown";
}

/// One entry of a checkpoint's index.
struct entry_info {
    /// The entry's path: "model/hidden/kernel".
    std::string path;  // "model/hidden/kernel"
    /// How the entry's bytes are to be read.
    entry_kind kind = entry_kind::tensor;
    /// The element type of a tensor or sparse entry; bytes otherwise.
    ckpt::dtype dtype = ckpt::dtype::bytes;
    /// The logical shape; the element or byte count of other entries.
    ckpt::shape shape;
    bool column_major = false;   ///< element order of a rank >= 2 tensor
    std::uint64_t offset = 0;    ///< of the block, from the start of the file; a multiple of 64
    std::uint64_t length = 0;    ///< of the block in bytes
    std::uint64_t checksum = 0;  ///< XXH3-64 of the block
};

}  // namespace ckpt
