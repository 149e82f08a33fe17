// Saves and restores the same training state with ckpt and with its peers, in one run, and prints
// medians and ratios to raw I/O. Every writer ends with fsync, as ckpt does, so all pay for
// durability; restores read files that are warm in the page cache and end with the values in the
// program's own Eigen matrices.
//
//   bench_checkpoint [--reps N] [--dir DIR] [--quick] [--csv FILE] [--state TEXT]
// --state runs only the states whose label contains TEXT (e.g. "16 tensors", "100k").

#include <ckpt/ckpt.hpp>
#include <ckpt/detail/hash.hpp>  // XXH3 of hand-made blocks

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cereal/archives/binary.hpp>

#ifdef CKPT_BENCH_HAVE_BOOST_SERIALIZATION
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/binary_object.hpp>
#endif
#ifdef CKPT_BENCH_HAVE_HDF5
#include <hdf5.h>
#endif
#ifdef CKPT_BENCH_HAVE_TORCH
#include <torch/serialize.h>
#include <torch/torch.h>
#endif

namespace {

using clock_type = std::chrono::steady_clock;
using tensors = std::vector<Eigen::MatrixXf>;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const auto n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::size_t state_bytes(const tensors& t) {
    std::size_t n = 0;
    for (const auto& m : t) n += static_cast<std::size_t>(m.size()) * sizeof(float);
    return n;
}

void fsync_path(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0 || ::fsync(fd) != 0) throw std::runtime_error("fsync " + path);
    ::close(fd);
}

// Peak resident memory since the last reset, from /proc (Linux): VmHWM, reset through clear_refs.
long read_status_kb(const char* key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::strlen(key)));
    return -1;
}
bool reset_peak_rss() {
    std::ofstream out("/proc/self/clear_refs");
    out << "5";
    return static_cast<bool>(out);
}

struct method {
    std::string name;
    std::function<void(const tensors&, const std::string&)> save;
    std::function<void(tensors&, const std::string&)> load;
};

// ---- raw I/O: the limit of this machine --------------------------------------------------------
void raw_save(const tensors& t, const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot create " + path);
    for (const auto& m : t) std::fwrite(m.data(), sizeof(float), static_cast<std::size_t>(m.size()), f);
    std::fflush(f);
    ::fsync(::fileno(f));
    std::fclose(f);
}
void raw_load(tensors& t, const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error("cannot open " + path);
    for (auto& m : t)
        if (std::fread(m.data(), sizeof(float), static_cast<std::size_t>(m.size()), f) !=
            static_cast<std::size_t>(m.size()))
            throw std::runtime_error("short read");
    std::fclose(f);
}

// ---- hand-written cereal ------------------------------------------------------------------------
void cereal_save(const tensors& t, const std::string& path) {
    {
        std::ofstream os(path, std::ios::binary);
        cereal::BinaryOutputArchive ar(os);
        ar(static_cast<std::uint64_t>(t.size()));
        for (const auto& m : t) {
            ar(static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols()));
            ar(cereal::binary_data(m.data(), static_cast<std::size_t>(m.size()) * sizeof(float)));
        }
    }
    fsync_path(path);
}
void cereal_load(tensors& t, const std::string& path) {
    std::ifstream is(path, std::ios::binary);
    cereal::BinaryInputArchive ar(is);
    std::uint64_t n = 0;
    ar(n);
    t.resize(n);
    for (auto& m : t) {
        std::int64_t r = 0, c = 0;
        ar(r, c);
        m.resize(r, c);
        ar(cereal::binary_data(m.data(), static_cast<std::size_t>(m.size()) * sizeof(float)));
    }
}

#ifdef CKPT_BENCH_HAVE_BOOST_SERIALIZATION
void boost_save(const tensors& t, const std::string& path) {
    {
        std::ofstream os(path, std::ios::binary);
        boost::archive::binary_oarchive ar(os);
        const std::uint64_t n = t.size();
        ar << n;
        for (const auto& m : t) {
            const std::int64_t r = m.rows(), c = m.cols();
            ar << r << c;
            ar << boost::serialization::make_binary_object(const_cast<float*>(m.data()),
                                                           static_cast<std::size_t>(m.size()) * sizeof(float));
        }
    }
    fsync_path(path);
}
void boost_load(tensors& t, const std::string& path) {
    std::ifstream is(path, std::ios::binary);
    boost::archive::binary_iarchive ar(is);
    std::uint64_t n = 0;
    ar >> n;
    t.resize(n);
    for (auto& m : t) {
        std::int64_t r = 0, c = 0;
        ar >> r >> c;
        m.resize(r, c);
        auto blob =
            boost::serialization::make_binary_object(m.data(), static_cast<std::size_t>(m.size()) * sizeof(float));
        ar >> blob;
    }
}
#endif

#ifdef CKPT_BENCH_HAVE_HDF5
void hdf5_save(const tensors& t, const std::string& path) {
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    for (std::size_t i = 0; i < t.size(); ++i) {
        const hsize_t dims[2] = {static_cast<hsize_t>(t[i].cols()), static_cast<hsize_t>(t[i].rows())};
        const hid_t space = H5Screate_simple(2, dims, nullptr);
        const hid_t set = H5Dcreate2(file, ("t" + std::to_string(i)).c_str(), H5T_NATIVE_FLOAT, space, H5P_DEFAULT,
                                     H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t[i].data());
        H5Dclose(set);
        H5Sclose(space);
    }
    H5Fclose(file);
    fsync_path(path);
}
void hdf5_load(tensors& t, const std::string& path) {
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    for (std::size_t i = 0; i < t.size(); ++i) {
        const hid_t set = H5Dopen2(file, ("t" + std::to_string(i)).c_str(), H5P_DEFAULT);
        H5Dread(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t[i].data());
        H5Dclose(set);
    }
    H5Fclose(file);
}
#endif

#ifdef CKPT_BENCH_HAVE_TORCH
void torch_save(const tensors& t, const std::string& path) {
    std::vector<torch::Tensor> list;
    list.reserve(t.size());
    for (const auto& m : t)
        list.push_back(torch::from_blob(const_cast<float*>(m.data()), {m.cols(), m.rows()}, torch::kFloat32));
    torch::save(list, path);
    fsync_path(path);
}
void torch_load(tensors& t, const std::string& path) {
    std::vector<torch::Tensor> list;
    torch::load(list, path);
    for (std::size_t i = 0; i < t.size(); ++i)
        std::memcpy(t[i].data(), list[i].data_ptr<float>(), static_cast<std::size_t>(t[i].size()) * sizeof(float));
}
#endif

// ---- ckpt ---------------------------------------------------------------------------------------
void ckpt_save(const tensors& t, const std::string& path) {
    ckpt::checkpoint ck{ckpt::track("weights", const_cast<tensors&>(t))};
    ck.write(path);
}
void ckpt_load(tensors& t, const std::string& path) {
    ckpt::checkpoint ck{ckpt::track("weights", t)};
    ck.restore(path);
}

struct result {
    std::string state, method;
    double save_s = 0, load_s = 0, save_ratio = 0, load_ratio = 0, extra_peak_mib = -1;
};

tensors make_state(std::size_t count, Eigen::Index rows, Eigen::Index cols) {
    tensors t(count);
    for (auto& m : t) m = Eigen::MatrixXf::Random(rows, cols);
    return t;
}

std::vector<result> run_state(const std::string& label, tensors& state, const std::vector<method>& methods, int reps,
                              const std::string& dir) {
    std::vector<result> out;
    tensors sink = state;  // restore target, same shapes
    for (const auto& m : methods) {
        const std::string path = dir + "/method" + std::to_string(&m - methods.data());
        std::vector<double> save_times, load_times;
        long extra_peak_kb = -1;
        for (int r = 0; r < reps; ++r) {
            std::remove(path.c_str());
            const long rss_before = read_status_kb("VmRSS:");
            const bool peak_reset = reset_peak_rss();
            auto t0 = clock_type::now();
            m.save(state, path);
            save_times.push_back(seconds_since(t0));
            if (peak_reset) extra_peak_kb = std::max(extra_peak_kb, read_status_kb("VmHWM:") - rss_before);
            t0 = clock_type::now();
            m.load(sink, path);
            load_times.push_back(seconds_since(t0));
        }
        for (std::size_t i = 0; i < state.size(); ++i)
            if (sink[i] != state[i]) throw std::runtime_error(m.name + " restored different values");
        for (auto& s : sink) s.setZero();
        std::remove(path.c_str());
        result r;
        r.state = label;
        r.method = m.name;
        r.save_s = median(save_times);
        r.load_s = median(load_times);
        r.extra_peak_mib = extra_peak_kb < 0 ? -1 : extra_peak_kb / 1024.0;
        out.push_back(r);
    }
    const auto& raw = out.front();
    for (auto& r : out) {
        r.save_ratio = raw.save_s / r.save_s;  // throughput relative to raw: 1.0 = as fast
        r.load_ratio = raw.load_s / r.load_s;
    }
    return out;
}

// Async: how long the training thread is blocked per save, against a memcpy of the same bytes.
// Also the cost of one XXH3 pass over the state: what ckpt's checksums add to a save or restore.
// Also under a memory budget of half the state (set_async_memory_budget): the caller is blocked
// for the write of the first half, and the copies kept are half the state.
struct async_result {
    std::string state;
    double memcpy_s, memcpy_n_s, blocked_s, total_s, hash_s;
    double half_blocked_s, half_total_s, half_kept_fraction;
};
// N threads (the machine's hardware threads) run body(i) for every i in [0, count), each taking the
// next i: the raw baselines' parallel loop, plain std::threads, nothing of ckpt's.
std::size_t machine_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : n;
}
template <class Body>
void on_threads(std::size_t count, Body body) {
    std::atomic<std::size_t> next{0};
    auto work = [&] {
        for (std::size_t i; (i = next.fetch_add(1)) < count;) body(i);
    };
    std::vector<std::thread> helpers;
    for (std::size_t t = 1; t < machine_threads(); ++t) helpers.emplace_back(work);
    work();
    for (auto& h : helpers) h.join();
}

// Pieces of at most 4 MiB: what the N-thread baselines share out.
struct piece {
    const char* from;
    std::size_t to, length;
};
std::vector<piece> pieces_of(const tensors& state) {
    std::vector<piece> out;
    std::size_t at = 0;
    for (const auto& m : state) {
        const auto bytes = static_cast<std::size_t>(m.size()) * sizeof(float);
        const auto* from = reinterpret_cast<const char*>(m.data());
        for (std::size_t k = 0; k < bytes; k += std::size_t{4} << 20)
            out.push_back({from + k, at + k, std::min(std::size_t{4} << 20, bytes - k)});
        at += bytes;
    }
    return out;
}

async_result run_async(const std::string& label, tensors& state, int reps, const std::string& dir) {
    std::vector<char> copy(state_bytes(state));
    std::vector<double> memcpy_times, memcpy_n_times, blocked, total, hashing;
    const auto pieces = pieces_of(state);
    ckpt::checkpoint ck{ckpt::track("weights", state)};
    ckpt::checkpoint half{ckpt::track("weights", state)};
    half.set_async_memory_budget(copy.size() / 2);
    std::vector<double> half_blocked, half_total;
    for (int r = 0; r < reps + 1; ++r) {  // the first round grows the snapshot buffer: not counted
        auto t0 = clock_type::now();
        std::size_t at = 0;
        for (const auto& m : state) {
            std::memcpy(copy.data() + at, m.data(), static_cast<std::size_t>(m.size()) * sizeof(float));
            at += static_cast<std::size_t>(m.size()) * sizeof(float);
        }
        const double mc = seconds_since(t0);
        t0 = clock_type::now();
        on_threads(pieces.size(),
                   [&](std::size_t i) { std::memcpy(copy.data() + pieces[i].to, pieces[i].from, pieces[i].length); });
        const double mc_n = seconds_since(t0);
        t0 = clock_type::now();
        std::uint64_t digests = 0;
        for (const auto& m : state)
            digests += ckpt::detail::hash64(m.data(), static_cast<std::size_t>(m.size()) * sizeof(float));
        const double h = seconds_since(t0);
        if (digests == 42) std::puts("");  // keeps the hashing from being optimised away
        t0 = clock_type::now();
        ck.write_async(dir + "/async");
        const double b = seconds_since(t0);
        ck.wait();
        const double all = seconds_since(t0);
        t0 = clock_type::now();
        half.write_async(dir + "/async");
        const double hb = seconds_since(t0);
        half.wait();
        const double ha = seconds_since(t0);
        if (r > 0) {
            half_blocked.push_back(hb);
            half_total.push_back(ha);
            memcpy_times.push_back(mc);
            memcpy_n_times.push_back(mc_n);
            hashing.push_back(h);
            blocked.push_back(b);
            total.push_back(all);
        }
    }
    std::remove((dir + "/async").c_str());
    return {label,
            median(memcpy_times),
            median(memcpy_n_times),
            median(blocked),
            median(total),
            median(hashing),
            median(half_blocked),
            median(half_total),
            double(half.async_memory()) / double(copy.size())};
}

// Restore modes against a raw read of the same bytes, warm and cold. Cold: the file's pages are
// dropped with posix_fadvise(DONTNEED) before each run, so every method reads from the device.
//
// The baseline ("raw pread of the same bytes") preads each entry's block, in the file's order, into
// its own destination: one page-aligned buffer laid out as the file, so each block lands at the
// same offset within its page as in the file (64-byte aligned, in step with the page cache's
// copy). Why not into the restored matrices, as this benchmark once did: their storage is whatever
// the previous method left (glibc's allocations sit 16 bytes past a page, out of step with the
// file; some are fresh pages, some huge pages), and the same 4096 warm reads measured anywhere
// from 0.025 to 0.144 s that way. That old baseline is still printed, named for what it is.
// The buffer is written and then read into once before anything is timed: on this VM the first
// time the kernel copies into a page costs as much as the copy itself several times over, even
// when user code wrote the page before (benchmarks/results/restore_modes.md, 2026-12-04 top section).
//
// Two kinds of run:
// - repeated: one process restores again and again. "ckpt default" keeps one checkpoint object,
//   which keeps the storage its restores replace from its second restore on, so its third and
//   later restores stage into spares; "new checkpoint each time" builds a checkpoint per restore,
//   so it has no spares and stages into whatever the allocator hands out.
// - first: every method, the raw read included, in a freshly started process of its own (this
//   program run again), which builds the state (touching its pages as a model's initialisation
//   would) and then reads once, the methods in a new order each repetition.
//   The raw read there goes to a buffer new to the process, as a program's first read does: it
//   pays for faulting its pages in, as a staged restore does for its staging memory.
// Minor page faults are counted per restore (getrusage): fresh pages are what staging costs.
struct restore_mode_result {
    std::string state, cache, method;
    double seconds = 0, ratio = 0, extra_peak_mib = -1, faults = 0, low = 0, high = 0, limit_ratio = 0;
};

long minor_faults() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

double quantile(std::vector<double> v, double q) {  // linear between the nearest ranks
    std::sort(v.begin(), v.end());
    const double at = q * static_cast<double>(v.size() - 1);
    const auto i = static_cast<std::size_t>(at);
    return i + 1 < v.size() ? v[i] + (at - static_cast<double>(i)) * (v[i + 1] - v[i]) : v[i];
}

using block_list_type = std::vector<std::pair<std::uint64_t, std::uint64_t>>;  // offset, length per tensor

block_list_type block_list(const std::string& path, std::size_t count) {
    block_list_type blocks;
    ckpt::reader r(path);
    for (std::size_t i = 0; i < count; ++i) {
        const auto* e = r.find("weights/" + std::to_string(i));
        if (!e) throw std::runtime_error("no entry " + std::to_string(i));
        blocks.emplace_back(e->offset, e->length);
    }
    return blocks;
}

void pread_block(int fd, char* dest, std::uint64_t offset, std::uint64_t length) {
    for (std::uint64_t done = 0; done < length;) {
        const auto n = ::pread(fd, dest + done, length - done, static_cast<off_t>(offset + done));
        if (n <= 0) throw std::runtime_error("short read");
        done += static_cast<std::uint64_t>(n);
    }
}

// The destination of the raw read: page-aligned, laid out as the file (block i at its file offset).
struct raw_buffer {
    char* data = nullptr;
    explicit raw_buffer(const block_list_type& blocks) {
        const std::uint64_t end = blocks.empty() ? 4096 : blocks.back().first + blocks.back().second;
        const auto size = static_cast<std::size_t>((end + 4095) / 4096 * 4096);
        data = static_cast<char*>(std::aligned_alloc(4096, size));
        if (!data) throw std::bad_alloc();
    }
    raw_buffer(const raw_buffer&) = delete;
    raw_buffer& operator=(const raw_buffer&) = delete;
    ~raw_buffer() { std::free(data); }
};

// The baseline: each block, in the file's order, into its place in `into` (a raw_buffer).
void raw_pread(char* into, const std::string& path, const block_list_type& blocks) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    for (const auto& b : blocks) pread_block(fd, into + b.first, b.first, b.second);
    ::close(fd);
}

// The same blocks in parts of at most 4 MiB, read by the machine's hardware threads.
void raw_pread_threads(char* into, const std::string& path, const block_list_type& blocks) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    block_list_type parts;
    for (const auto& b : blocks)
        for (std::uint64_t k = 0; k < b.second; k += std::uint64_t{4} << 20)
            parts.emplace_back(b.first + k, std::min(std::uint64_t{4} << 20, b.second - k));
    on_threads(parts.size(),
               [&](std::size_t i) { pread_block(fd, into + parts[i].first, parts[i].first, parts[i].second); });
    ::close(fd);
}

// The file mapped, and its blocks copied out by the machine's hardware threads (as safetensors'
// mmap and torch's multi-threaded copy do); mapped and unmapped in each call.
void raw_memcpy_mapped(char* into, const std::string& path, const block_list_type& blocks) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    const auto size = static_cast<std::size_t>(blocks.back().first + blocks.back().second);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (map == MAP_FAILED) throw std::runtime_error("cannot map " + path);
    const char* from = static_cast<const char*>(map);
    block_list_type parts;
    for (const auto& b : blocks)
        for (std::uint64_t k = 0; k < b.second; k += std::uint64_t{4} << 20)
            parts.emplace_back(b.first + k, std::min(std::uint64_t{4} << 20, b.second - k));
    on_threads(parts.size(), [&](std::size_t i) {
        std::memcpy(into + parts[i].first, from + parts[i].first, static_cast<std::size_t>(parts[i].second));
    });
    ::munmap(map, size);
}

// The old baseline: each block into the matrix it belongs to, whatever storage that has.
void raw_pread_into_matrices(tensors& sink, const std::string& path, const block_list_type& blocks) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    for (std::size_t i = 0; i < sink.size(); ++i)
        pread_block(fd, reinterpret_cast<char*>(sink[i].data()), blocks[i].first, blocks[i].second);
    ::close(fd);
}

bool same_bytes(const char* raw, const tensors& state, const block_list_type& blocks) {
    for (std::size_t i = 0; i < state.size(); ++i)
        if (std::memcmp(raw + blocks[i].first, state[i].data(), static_cast<std::size_t>(blocks[i].second)) != 0)
            return false;
    return true;
}

// Methods of the repeated runs, in the order of mode_names; the first is the baseline.
// Methods 0, 2 and 3 are the raw limits: the warm limit is the fastest of the three, the cold limit
// the faster of 0 and 2 (a mapping of a cold file is no raw read).
const char* const mode_names[] = {"raw pread of the same bytes (aligned buffer, read into before)",
                                  "raw pread into the matrices (old baseline: storage the last method left)",
                                  "raw pread, N threads (N = hardware threads)",
                                  "raw memcpy from a mapping of the file, N threads",
                                  "ckpt default (verified, then landed in place)",
                                  "ckpt default, ckpt::single_threaded",
                                  "ckpt default, new checkpoint each time",
                                  "ckpt::in_place",
                                  "ckpt::in_place | ckpt::verify_first"};
// Methods of the first-restore children; the first is the baseline.
// 0 and 6 are the raw limits: the first-restore limit is the faster of the two.
const char* const first_names[] = {"raw pread of the same bytes into new memory",
                                   "raw pread into the initialised matrices",
                                   "ckpt default (verified, then landed in place)",
                                   "ckpt default, ckpt::single_threaded",
                                   "ckpt::in_place",
                                   "ckpt::in_place | ckpt::verify_first",
                                   "raw pread, N threads, into new memory",
                                   "ckpt default into an empty vector (new matrices, new memory)"};
constexpr int first_count = 8;

// The child of a "first restore" run: builds the state, reads once with method m (first_names),
// prints "seconds faults".
int first_restore_child(const std::string& path, std::size_t count, Eigen::Index rows, Eigen::Index cols, int m) {
    tensors sink = make_state(count, rows, cols);  // initialised, as a model is before it resumes
    const auto blocks = block_list(path, count);
    std::optional<raw_buffer> fresh;
    if (m == 0 || m == 6) fresh.emplace(blocks);  // allocated, not touched: new memory, as a first read finds it
    if (m == 7) sink.clear();                     // a program that builds its model from the checkpoint
    const long f0 = minor_faults();
    const auto t0 = clock_type::now();
    if (m == 0) {
        raw_pread(fresh->data, path, blocks);
    } else if (m == 6) {
        raw_pread_threads(fresh->data, path, blocks);
    } else if (m == 1) {
        raw_pread_into_matrices(sink, path, blocks);
    } else {
        ckpt::checkpoint ck{ckpt::track("weights", sink)};
        ck.restore(path, m == 3   ? ckpt::single_threaded
                         : m == 4 ? ckpt::in_place
                         : m == 5 ? ckpt::in_place | ckpt::verify_first
                                  : ckpt::strict);
    }
    const double t = seconds_since(t0);
    const long f = minor_faults() - f0;
    // Checked after the clock stops: every method must have read the same bytes.
    const tensors expected = [&] {
        tensors e;
        ckpt::checkpoint ck{ckpt::track("weights", e)};
        ck.restore(path);
        return e;
    }();
    if (m == 0 || m == 6 ? !same_bytes(fresh->data, expected, blocks) : sink != expected)
        throw std::runtime_error("first restore: different values");
    std::printf("%.6f %ld\n", t, f);
    return 0;
}

std::vector<restore_mode_result> run_restore_modes(const std::string& label, tensors& state, int reps,
                                                   const std::string& dir, const std::string& self) {
    const std::string path = dir + "/restore_modes";
    std::remove(path.c_str());
    ckpt_save(state, path);
    const auto blocks = block_list(path, state.size());
    tensors sink = state;
    for (auto& m : sink) m.setZero();
    raw_buffer raw(blocks);
    {
        const auto size = static_cast<std::size_t>(blocks.back().first + blocks.back().second);
        std::memset(raw.data, 0, size);  // mapped, then read into once: see above
        raw_pread(raw.data, path, blocks);
    }
    auto drop_cache = [&] {
        const int fd = ::open(path.c_str(), O_RDONLY);
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    };
    ckpt::checkpoint kept{ckpt::track("weights", sink)};         // restores again and again: uses its spares
    ckpt::checkpoint kept_single{ckpt::track("weights", sink)};  // the same, reading on the calling thread only
    auto fresh_checkpoint = [&](ckpt::restore_mode mode) {
        return [&, mode] {
            ckpt::checkpoint ck{ckpt::track("weights", sink)};
            ck.restore(path, mode);
        };
    };
    const std::vector<std::function<void()>> methods = {
        [&] { raw_pread(raw.data, path, blocks); },
        [&] { raw_pread_into_matrices(sink, path, blocks); },
        [&] { raw_pread_threads(raw.data, path, blocks); },
        [&] { raw_memcpy_mapped(raw.data, path, blocks); },
        [&] { kept.restore(path); },
        [&] { kept_single.restore(path, ckpt::single_threaded); },
        fresh_checkpoint(ckpt::strict),
        fresh_checkpoint(ckpt::in_place),
        fresh_checkpoint(ckpt::in_place | ckpt::verify_first),
    };
    std::vector<restore_mode_result> out;
    for (const bool cold : {false, true}) {
        std::vector<std::vector<double>> times(methods.size()), faults(methods.size());
        std::vector<long> peaks(methods.size(), -1);
        for (int r = 0; r < reps + 1; ++r) {  // round 0 warms the cache and the allocator: not counted
            for (std::size_t m = 0; m < methods.size(); ++m) {  // interleaved, so drift hits all alike
                if (cold) drop_cache();
                const long rss_before = read_status_kb("VmRSS:");
                const bool peak_reset = reset_peak_rss();
                const long f0 = minor_faults();
                const auto t0 = clock_type::now();
                methods[m]();
                const double t = seconds_since(t0);
                const long f = minor_faults() - f0;
                if (r > 0) {  // round 0 is not counted; round 1 is the kept checkpoint's second restore
                    if (peak_reset) peaks[m] = std::max(peaks[m], read_status_kb("VmHWM:") - rss_before);
                    times[m].push_back(t);
                    faults[m].push_back(static_cast<double>(f));
                }
            }
        }
        for (std::size_t i = 0; i < state.size(); ++i)
            if (sink[i] != state[i]) throw std::runtime_error("restore modes: different values");
        if (!same_bytes(raw.data, state, blocks)) throw std::runtime_error("restore modes: raw read differs");
        const double base = median(times[0]);
        const double limit =
            cold ? std::min(base, median(times[2])) : std::min({base, median(times[2]), median(times[3])});
        for (std::size_t m = 0; m < methods.size(); ++m)
            out.push_back({label, cold ? "cold" : "warm", mode_names[m], median(times[m]), base / median(times[m]),
                           peaks[m] < 0 ? -1 : peaks[m] / 1024.0, median(faults[m]), quantile(times[m], 0.25),
                           quantile(times[m], 0.75), limit / median(times[m])});
    }
    // First restores: one fresh process per read, the methods shuffled per repetition;
    // the file stays warm.
    if (!self.empty()) {
        const std::size_t count = state.size();
        const auto rows = state.front().rows(), cols = state.front().cols();
        std::vector<std::vector<double>> times(first_count), faults(first_count);
        std::mt19937 shuffle(12345);  // the same orders every run
        std::vector<int> order(first_count);
        for (int j = 0; j < first_count; ++j) order[static_cast<std::size_t>(j)] = j;
        for (int r = 0; r < reps; ++r) {
            // A new order each repetition: rotating one order kept every method after the same one,
            // and a child's time depends on what the child before it freed (the first read of 16
            // tensors measured 0.13 s or 0.3-0.46 s by turns, in each of three methods).
            std::shuffle(order.begin(), order.end(), shuffle);
            for (int j = 0; j < first_count; ++j) {
                const int k = order[static_cast<std::size_t>(j)];
                const std::string command = "'" + self + "' --first-restore-child '" + path + "' " +
                                            std::to_string(count) + " " + std::to_string(rows) + " " +
                                            std::to_string(cols) + " " + std::to_string(k);
                std::FILE* p = ::popen(command.c_str(), "r");
                double t = 0, f = 0;
                if (!p || std::fscanf(p, "%lf %lf", &t, &f) != 2 || ::pclose(p) != 0)
                    throw std::runtime_error("first-restore child failed: " + command);
                times[static_cast<std::size_t>(k)].push_back(t);
                faults[static_cast<std::size_t>(k)].push_back(f);
            }
        }
        const double base = median(times[0]);
        const double limit = std::min(base, median(times[6]));
        for (std::size_t k = 0; k < first_count; ++k)
            out.push_back({label, "warm, first read of a new process", first_names[k], median(times[k]),
                           base / median(times[k]), -1, median(faults[k]), quantile(times[k], 0.25),
                           quantile(times[k], 0.75), limit / median(times[k])});
    }
    std::remove(path.c_str());
    return out;
}

void print_restore_modes(const std::vector<restore_mode_result>& results, int reps) {
    std::printf(
        "\n| state | page cache | restore | time (s) | quartiles (s) | vs raw pread | vs limit | minor faults per "
        "restore | extra peak RSS during the restore (MiB) |\n");
    std::printf("|---|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& r : results) {
        char peak[32] = "n/a";
        if (r.extra_peak_mib >= 0) std::snprintf(peak, sizeof peak, "%.1f", r.extra_peak_mib);
        std::printf("| %s | %s | %s | %.4f | %.4f-%.4f | %.2fx | %.2fx | %.0f | %s |\n", r.state.c_str(),
                    r.cache.c_str(), r.method.c_str(), r.seconds, r.low, r.high, r.ratio, r.limit_ratio, r.faults,
                    peak);
    }
    std::printf(
        "\nrestore modes: N = %zu hardware threads; medians of %d runs and their quartiles; \"vs limit\" is "
        "throughput relative to the machine's limit in the same run: warm, the fastest of the raw pread, the "
        "N-thread raw pread and the N-thread memcpy from a mapping; cold, the faster of the two raw preads; first "
        "read, the faster of the raw pread and the N-thread raw pread into new memory. \"vs raw pread\" is throughput "
        "relative to the "
        "first row of the same state and cache: preading the same blocks of the same file, in order, into an aligned "
        "buffer laid out as the file (repeated runs: read into before; first reads: new to the process), in the same "
        "run (1.00x = as fast). Warm and cold: repeated restores in one process, methods interleaved. First read: a "
        "new process per read, the methods in a new (shuffled) order each repetition. \"ckpt default\" restores into "
        "matrices of the file's shapes: every block verified, then read into the matrices in place; \"into an empty "
        "vector\" builds a new vector of the file's matrices in new memory, which the tracked vector then takes\n",
        machine_threads(), reps);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 7 && std::string(argv[1]) == "--first-restore-child")
        return first_restore_child(argv[2], std::stoul(argv[3]), std::stol(argv[4]), std::stol(argv[5]),
                                   std::stoi(argv[6]));
    int reps = 5;
    bool quick = false;
    bool restore_only = false;
    std::string dir = "bench_tmp", csv, only_state;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--reps" && i + 1 < argc)
            reps = std::stoi(argv[++i]);
        else if (a == "--dir" && i + 1 < argc)
            dir = argv[++i];
        else if (a == "--csv" && i + 1 < argc)
            csv = argv[++i];
        else if (a == "--quick")
            quick = true;
        else if (a == "--state" && i + 1 < argc)
            only_state = argv[++i];
        else if (a == "--restore-modes")
            restore_only = true;
        else {
            std::cerr << "usage: bench_checkpoint [--reps N] [--dir DIR] [--quick] [--csv FILE] [--state TEXT] "
                         "[--restore-modes]\n";
            return 2;
        }
    }
    std::filesystem::create_directories(dir);
    Eigen::setNbThreads(1);

    std::vector<method> methods = {{"raw fwrite/fread", raw_save, raw_load},
                                   {"ckpt", ckpt_save, ckpt_load},
                                   {"cereal (hand-written)", cereal_save, cereal_load}};
#ifdef CKPT_BENCH_HAVE_BOOST_SERIALIZATION
    methods.push_back({"Boost.Serialization", boost_save, boost_load});
#else
    std::cout << "note: Boost.Serialization not found, skipped\n";
#endif
#ifdef CKPT_BENCH_HAVE_HDF5
    methods.push_back({"HDF5", hdf5_save, hdf5_load});
#else
    std::cout << "note: HDF5 not found, skipped\n";
#endif
#ifdef CKPT_BENCH_HAVE_TORCH
    methods.push_back({"libtorch torch::save/load", torch_save, torch_load});
#else
    std::cout << "note: libtorch not found, skipped\n";
#endif

    const Eigen::Index scale = quick ? 4 : 1;  // --quick: 1/16 of the bytes, for a smoke run
    struct state_spec {
        std::string label;
        std::size_t count;
        Eigen::Index rows, cols;
    };
    const std::string size = quick ? "16 MiB" : "256 MiB";
    const std::vector<state_spec> specs = {
        {size + " as 16 tensors", 16, 2048 / scale, 2048 / scale},
        {size + " as 4096 tensors", 4096, 128 / scale, 128 / scale},
        {quick ? "10k tensors of 16 floats" : "100k tensors of 16 floats", quick ? 10000u : 100000u, 4, 4},
    };

    std::vector<result> results;
    std::vector<async_result> async_results;
    std::vector<restore_mode_result> mode_results;
    for (const auto& s : specs) {
        if (s.label.find(only_state) == std::string::npos) continue;
        tensors state = make_state(s.count, s.rows, s.cols);
        std::cerr << "running: " << s.label << " (" << state_bytes(state) / (1 << 20) << " MiB)\n";
        if (!restore_only) {
            auto r = run_state(s.label, state, methods, reps, dir);
            results.insert(results.end(), r.begin(), r.end());
            async_results.push_back(run_async(s.label, state, reps, dir));
        }
        auto m = run_restore_modes(s.label, state, reps, dir, std::filesystem::read_symlink("/proc/self/exe").string());
        mode_results.insert(mode_results.end(), m.begin(), m.end());
    }
    if (restore_only) {
        print_restore_modes(mode_results, reps);
        std::filesystem::remove_all(dir);
        return 0;
    }

    std::printf(
        "| state | method | save (s) | save vs raw | restore (s) | restore vs raw | extra peak RSS in save (MiB) |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|\n");
    for (const auto& r : results)
        std::printf("| %s | %s | %.4f | %.2fx | %.4f | %.2fx | %.1f |\n", r.state.c_str(), r.method.c_str(), r.save_s,
                    r.save_ratio, r.load_s, r.load_ratio, r.extra_peak_mib);
    std::printf(
        "\n| state | memcpy of state, 1 thread (s) | memcpy, %zu threads (s) | ckpt async: blocked (s) | blocked / "
        "snapshot limit (the faster memcpy) | async save until durable (s) | XXH3 of state (s) |\n",
        machine_threads());
    std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& a : async_results)
        std::printf("| %s | %.4f | %.4f | %.4f | %.2fx | %.4f | %.4f |\n", a.state.c_str(), a.memcpy_s, a.memcpy_n_s,
                    a.blocked_s, a.blocked_s / std::min(a.memcpy_s, a.memcpy_n_s), a.total_s, a.hash_s);
    std::printf(
        "\n| state | async under a budget of half the state: blocked (s) | until durable (s) | copies kept / state | "
        "unbounded: blocked (s) | until durable (s) |\n");
    std::printf("|---|---:|---:|---:|---:|---:|\n");
    for (const auto& a : async_results)
        std::printf("| %s | %.4f | %.4f | %.2f | %.4f | %.4f |\n", a.state.c_str(), a.half_blocked_s, a.half_total_s,
                    a.half_kept_fraction, a.blocked_s, a.total_s);
    print_restore_modes(mode_results, reps);
    std::printf(
        "\nmedians of %d repetitions; \"vs raw\" is throughput relative to raw fwrite/fread measured in the same run "
        "(1.00x = as fast)\n",
        reps);

    if (!csv.empty()) {
        std::ofstream out(csv);
        out << "state,method,save_s,load_s,save_ratio,load_ratio,extra_peak_mib\n";
        for (const auto& r : results)
            out << '"' << r.state << "\",\"" << r.method << "\"," << r.save_s << ',' << r.load_s << ',' << r.save_ratio
                << ',' << r.load_ratio << ',' << r.extra_peak_mib << '\n';
    }
    std::filesystem::remove_all(dir);
    return 0;
}
