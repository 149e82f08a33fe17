// safetensors, streamed: the header, with every offset, comes from the index before any tensor is
// read; column-major tensors are transposed on the way, tile by tile when large.

#include "safetensors.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>

#include "text.hpp"

namespace ckpt::tool {
namespace {

/// A column-major block written row-major into out[base, base + e.length), tile by tile, reading
/// only a tile (about 1 MiB) at a time. All axes but the last fuse into one, "a", contiguous in the
/// source: the source is an a-by-last column-major matrix. In the output each a is a contiguous
/// row of `last` elements, at the row-major rank of a's indices. A tile is read one contiguous run
/// per column (one run in all when a tile spans every a), transposed, and written a row at a time.
/// `first`, `second`: scratch buffers, kept from one tensor to the next (fewer allocations).
void write_transposed(block_source& in, const entry_info& e, output& out, std::uint64_t base,
                      std::vector<char>& first_buffer, std::vector<char>& second_buffer) {
    const std::size_t rank = e.shape.rank(), esize = dtype_size(e.dtype);
    const std::uint64_t last = e.shape[rank - 1], n = e.shape.elements();
    if (n == 0) return;
    // A short last axis makes short output rows, scattered when rank > 2: write bands of axis 0
    // instead, contiguous in the output, when a band of at least 16 indices fits in a tile.
    const std::uint64_t slice = n / e.shape[0], band = (block_source::chunk / esize) / slice;
    if (rank > 2 && last * esize < 4096 && band >= 16) {
        std::vector<char>& source = first_buffer;
        std::vector<char>& ordered = second_buffer;
        source.resize(std::max(source.size(), static_cast<std::size_t>(band * slice * esize)));
        ordered.resize(source.size());
        for (std::uint64_t first = 0; first < e.shape[0]; first += band) {
            ckpt::shape part = e.shape;
            part[0] = std::min(band, e.shape[0] - first);
            // Column-major, the band is part[0] contiguous elements for each index of the other axes.
            for (std::uint64_t rest = 0; rest < slice; ++rest)
                in.read(e, (first + rest * e.shape[0]) * esize, source.data() + rest * part[0] * esize,
                        static_cast<std::size_t>(part[0] * esize));
            ckpt::convert_element_order(source.data(), ordered.data(), part, esize, true);
            out.write_at(base + first * slice * esize, ordered.data(),
                         static_cast<std::size_t>(part[0] * slice * esize));
        }
        return;
    }
    const std::uint64_t fused = n / last;
    // The output row of fused index a: a's indices (column-major, axis 0 fastest) ranked row-major.
    auto output_row = [&](std::uint64_t a) {
        std::uint64_t index[shape::max_rank];
        for (std::size_t k = 0; k + 1 < rank; ++k) {
            index[k] = a % e.shape[k];
            a /= e.shape[k];
        }
        std::uint64_t row = 0;
        for (std::size_t k = 0; k + 1 < rank; ++k) row = row * e.shape[k] + index[k];
        return row;
    };
    const std::uint64_t rows = std::min<std::uint64_t>(fused, 512);
    const std::uint64_t cols =
        std::min<std::uint64_t>(last, std::max<std::uint64_t>(1, (block_source::chunk / esize) / rows));
    std::vector<char>& tile = first_buffer;
    std::vector<char>& transposed = second_buffer;
    tile.resize(std::max(tile.size(), static_cast<std::size_t>(rows * cols * esize)));
    transposed.resize(tile.size());
    for (std::uint64_t r0 = 0; r0 < fused; r0 += rows) {
        const std::uint64_t nr = std::min(rows, fused - r0);
        for (std::uint64_t c0 = 0; c0 < last; c0 += cols) {
            const std::uint64_t nc = std::min(cols, last - c0);
            // tile[j][i] = element (r0 + i, c0 + j)
            if (nr == fused) {
                in.read(e, c0 * fused * esize, tile.data(), static_cast<std::size_t>(nr * nc * esize));
            } else {
                for (std::uint64_t j = 0; j < nc; ++j)
                    in.read(e, (r0 + (c0 + j) * fused) * esize, tile.data() + j * nr * esize,
                            static_cast<std::size_t>(nr * esize));
            }
            for (std::uint64_t i = 0; i < nr; ++i)
                for (std::uint64_t j = 0; j < nc; ++j)
                    std::memcpy(transposed.data() + (i * nc + j) * esize, tile.data() + (j * nr + i) * esize, esize);
            for (std::uint64_t i = 0; i < nr;) {  // rows whose output rows are adjacent go in one write
                const std::uint64_t row = output_row(r0 + i);
                std::uint64_t k = 1;
                if (nc == last)
                    while (i + k < nr && output_row(r0 + i + k) == row + k) ++k;
                out.write_at(base + (row * last + c0) * esize, transposed.data() + i * nc * esize,
                             static_cast<std::size_t>(k * nc * esize));
                i += k;
            }
        }
    }
}

}  // namespace

void write_safetensors(const std::filesystem::path& out_path, ckpt::reader& r, const std::vector<export_item>& items,
                       const std::map<std::string, std::string>& metadata, progress& bar) {
    std::vector<ckpt::safetensors_tensor> layout;
    for (const auto& item : items)
        layout.push_back({item.name, item.entry->dtype, item.entry->shape, item.entry->path});
    // A metadata string that is not UTF-8 (ckpt's metadata may hold any bytes) goes in as JSON
    // would read its bytes escaped one by one: each as the character of that number.
    std::map<std::string, std::string> utf8_metadata;
    for (const auto& [key, value] : metadata) utf8_metadata.emplace(as_utf8(key), as_utf8(value));
    const std::string header = ckpt::safetensors_header(layout, utf8_metadata, out_path);
    // Streamed in the file's order, each tensor where the layout put it.
    std::vector<std::size_t> order(items.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return layout[a].offset < layout[b].offset; });
    output out(out_path);
    block_source in(r);
    std::vector<char> first, second;  // scratch for transpositions
    out.write(header);
    for (const std::size_t i : order) {
        const entry_info& e = *items[i].entry;
        if (!e.column_major || e.shape.rank() < 2) {
            in.stream(e, [&](const char* data, std::size_t n) {
                out.write({data, n});
                bar.advance(n);
            });
        } else if (e.length <= block_source::chunk) {  // small: reordered in memory
            const auto n = static_cast<std::size_t>(e.length);
            first.resize(std::max(first.size(), n));
            second.resize(first.size());
            r.read_bytes(e, first.data());
            ckpt::convert_element_order(first.data(), second.data(), e.shape, dtype_size(e.dtype), true);
            out.write({second.data(), n});
            bar.advance(e.length);
        } else {  // large: checked in one pass, then transposed tile by tile
            r.verify(e);
            write_transposed(in, e, out, out.reserve(e.length), first, second);
            bar.advance(e.length);
        }
    }
    out.commit();
}

}  // namespace ckpt::tool
