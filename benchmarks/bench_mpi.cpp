// ckpt::mpi::checkpoint against the ways MPI programs save today, on the ranks mpirun gives it:
// run by benchmarks/run_mpi.sh with 1, 2 and 4 ranks (and 3 for the resharding restore).
//
//   mpirun -n 4 bench_mpi --dir DIR --csv FILE [--reps N] [--mib 256] [--keep DIR]
//                         [--parts interrupt,io,async] [--states replicated,sharded] [--thread-multiple]
//                         [--save-only]
//   mpirun -n 3 bench_mpi --dir DIR --csv FILE --reshard DIR   (restores what --keep left, on 3 ranks)
//
// States: a replicated model (16 equal Eigen matrices, the same on every rank) and one sharded
// tensor split by rows (this rank's rows in a row-major Eigen matrix), each of --mib MiB in all.
// Save methods, every one ending durable (fsync'd data and, for ckpt, directories):
//   ckpt        ckpt::mpi::checkpoint::save (temp directory, a file per rank, manifest, rename).
//   raw         the limit: each rank write()s the bytes ckpt gives it (its replicated blocks, its
//               shard) to its own file and fsyncs it. No index, no checksums, no commit.
//   rank0       what naive code does: rank 0 writes everything to one file (a sharded tensor is
//               first gathered to it with MPI_Gatherv) and fsyncs it.
//   hdf5        parallel HDF5 (H5Pset_fapl_mpio): one shared file, one dataset per tensor, each rank
//               writing its hyperslab (replicated: its rows of every dataset) with a collective
//               H5Dwrite; H5Fflush(GLOBAL) (the MPI-IO driver calls MPI_File_sync, an fsync on every
//               rank) and H5Fclose, then rank 0 fsyncs the file once more, since H5Fclose writes
//               metadata after the last flush.
// Restores end with the values in the program's matrices: ckpt restore; raw read of the same
// bytes (replicated: every rank reads every matrix; sharded: each its rows); HDF5 collective
// H5Dread; and "staged", the raw reads into fresh tensors (with the huge-page hint ckpt gives its
// own) moved in plus one checksum pass (the floor of a checked, staged restore, which is what
// ckpt's is). "warm": the files as the save left them in the page cache; "cold": every file of
// the method dropped from this machine's page cache with posix_fadvise(DONTNEED) first (the
// virtual disk's host may still cache it).
// --parts async: time blocked in save_async (and in a wait() 2 s later) against a memcpy of the
// rank's state, unbounded and under a memory budget of half the rank's state; --thread-multiple
// initializes MPI with MPI_THREAD_MULTIPLE. --parts interrupt: one MPI_Allreduce of an int per
// training step of examples/mlp_training.hpp.
// Each repetition runs every method in turn, in an order rotated per repetition; figures are
// medians over the repetitions, time from a barrier before to a barrier after, on rank 0.

#include <ckpt/mpi.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#ifdef CKPT_BENCH_HAVE_PHDF5
#include <hdf5.h>
#endif

#include "../examples/mlp_training.hpp"

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using rows_f = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

int g_rank = 0, g_size = 1, g_thread = MPI_THREAD_SINGLE;
std::string g_csv;

double now() { return std::chrono::duration<double>(clock_type::now().time_since_epoch()).count(); }

// --save-only: the save methods alone, no restores (to compare saves with more repetitions).
bool g_save_only = false;

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void check(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error(what);
}

// Seconds from a barrier before `f` to a barrier after it: the time of the slowest rank.
template <class F>
double timed(F&& f) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = now();
    f();
    MPI_Barrier(MPI_COMM_WORLD);
    double t = now() - t0;
    MPI_Bcast(&t, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    return t;
}

// ---- raw POSIX I/O ---------------------------------------------------------------------------

int open_or_throw(const fs::path& p, int flags) {
    const int fd = ::open(p.c_str(), flags | O_CLOEXEC, 0644);
    check(fd >= 0, "cannot open " + p.string() + ": " + std::strerror(errno));
    return fd;
}
void write_all(int fd, const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n) {
        const ssize_t k = ::write(fd, p, n);
        check(k > 0 || errno == EINTR, "write failed");
        if (k > 0) p += k, n -= static_cast<std::size_t>(k);
    }
}
void pread_all(int fd, void* data, std::size_t n, off_t at) {
    char* p = static_cast<char*>(data);
    while (n) {
        const ssize_t k = ::pread(fd, p, n, at);
        check(k > 0 || (k < 0 && errno == EINTR), "short read");
        if (k > 0) p += k, n -= static_cast<std::size_t>(k), at += k;
    }
}
void close_synced(int fd) {
    check(::fsync(fd) == 0, "fsync failed");
    ::close(fd);
}
// Drops every regular file under `p` (or `p` itself) from the page cache; they are clean (fsync'd).
void drop_cache(const fs::path& p) {
    auto drop = [](const fs::path& f) {
        const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        ::fdatasync(fd);
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    };
    if (fs::is_directory(p)) {
        for (const auto& e : fs::recursive_directory_iterator(p))
            if (e.is_regular_file()) drop(e.path());
    } else {
        drop(p);
    }
}

// ---- the states --------------------------------------------------------------------------------

float value_at(std::uint64_t i) { return static_cast<float>((i * 2654435761u) % 1000003u) * 1e-3f; }

struct replicated_state {
    std::vector<Eigen::MatrixXf> m;  // 16 square matrices, the same on every rank
    std::uint64_t bytes() const { return m.size() * static_cast<std::uint64_t>(m[0].size()) * sizeof(float); }
};
replicated_state make_replicated(std::uint64_t mib) {
    replicated_state s;
    const auto side = static_cast<Eigen::Index>(std::llround(std::sqrt(double(mib << 20) / 16 / sizeof(float))));
    s.m.resize(16);
    for (std::size_t k = 0; k < 16; ++k) {
        s.m[k].resize(side, side);
        for (Eigen::Index i = 0; i < s.m[k].size(); ++i)
            s.m[k].data()[i] = value_at(k * static_cast<std::uint64_t>(s.m[k].size()) + static_cast<std::uint64_t>(i));
    }
    return s;
}
// The rank that writes replicated matrix k: ckpt's own rule (largest first, to the least loaded
// rank, ties to the lowest) gives equal blocks round robin.
int owner_of(std::size_t k, int ranks) { return static_cast<int>(k % static_cast<std::size_t>(ranks)); }

struct sharded_state {
    Eigen::Index rows = 0, cols = 0, lo = 0;  // global shape; this rank's first row
    rows_f block;                             // this rank's rows
    std::uint64_t global_bytes() const { return static_cast<std::uint64_t>(rows * cols) * sizeof(float); }
};
Eigen::Index first_row(Eigen::Index rows, int r, int ranks) { return rows * r / ranks; }
sharded_state make_sharded(std::uint64_t mib, int rank, int ranks) {
    sharded_state s;
    s.cols = 4096;
    s.rows = static_cast<Eigen::Index>((mib << 20) / sizeof(float) / 4096);
    s.lo = first_row(s.rows, rank, ranks);
    s.block.resize(first_row(s.rows, rank + 1, ranks) - s.lo, s.cols);
    for (Eigen::Index i = 0; i < s.block.size(); ++i)
        s.block.data()[i] = value_at(static_cast<std::uint64_t>(s.lo * s.cols + i));
    return s;
}
bool sharded_ok(const sharded_state& s) {
    for (Eigen::Index i = 0; i < s.block.size(); i += 997)
        if (s.block.data()[i] != value_at(static_cast<std::uint64_t>(s.lo * s.cols + i))) return false;
    return s.block.size() == 0 || s.block.data()[s.block.size() - 1] ==
                                      value_at(static_cast<std::uint64_t>(s.lo * s.cols + s.block.size() - 1));
}
bool replicated_ok(const replicated_state& s) {
    for (std::size_t k = 0; k < s.m.size(); ++k)
        for (Eigen::Index i = 0; i < s.m[k].size(); i += 997)
            if (s.m[k].data()[i] !=
                value_at(k * static_cast<std::uint64_t>(s.m[k].size()) + static_cast<std::uint64_t>(i)))
                return false;
    return true;
}
void scramble(replicated_state& s) {
    for (auto& m : s.m) m.setZero();
}
void scramble(sharded_state& s) { s.block.setZero(); }
bool all_ranks(bool ok) {
    int in = ok ? 1 : 0, out = 0;
    MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return out == 1;
}

// ---- raw: the limit, and rank 0 writing everything --------------------------------------------

fs::path rank_file(const fs::path& dir, int r) { return dir / ("rank-" + std::to_string(r)); }

void raw_save(const replicated_state& s, const fs::path& dir) {
    if (g_rank == 0) fs::create_directories(dir);
    MPI_Barrier(MPI_COMM_WORLD);
    const int fd = open_or_throw(rank_file(dir, g_rank), O_WRONLY | O_CREAT | O_TRUNC);
    for (std::size_t k = 0; k < s.m.size(); ++k)
        if (owner_of(k, g_size) == g_rank)
            write_all(fd, s.m[k].data(), static_cast<std::size_t>(s.m[k].size()) * sizeof(float));
    close_synced(fd);
}
void raw_restore(replicated_state& s, const fs::path& dir) {
    std::vector<int> fds(static_cast<std::size_t>(g_size));
    std::vector<off_t> at(static_cast<std::size_t>(g_size), 0);
    for (int r = 0; r < g_size; ++r) fds[static_cast<std::size_t>(r)] = open_or_throw(rank_file(dir, r), O_RDONLY);
    for (std::size_t k = 0; k < s.m.size(); ++k) {
        const auto r = static_cast<std::size_t>(owner_of(k, g_size));
        const auto n = static_cast<std::size_t>(s.m[k].size()) * sizeof(float);
        pread_all(fds[r], s.m[k].data(), n, at[r]);
        at[r] += static_cast<off_t>(n);
    }
    for (int fd : fds) ::close(fd);
}
void raw_save(const sharded_state& s, const fs::path& dir) {
    if (g_rank == 0) fs::create_directories(dir);
    MPI_Barrier(MPI_COMM_WORLD);
    const int fd = open_or_throw(rank_file(dir, g_rank), O_WRONLY | O_CREAT | O_TRUNC);
    write_all(fd, s.block.data(), static_cast<std::size_t>(s.block.size()) * sizeof(float));
    close_synced(fd);
}
// Reads this rank's rows from files of `saved_ranks` row blocks: the bytes it needs, no more.
void raw_restore(sharded_state& s, const fs::path& dir, int saved_ranks) {
    const Eigen::Index hi = s.lo + s.block.rows();
    for (int r = 0; r < saved_ranks; ++r) {
        const Eigen::Index a = std::max(s.lo, first_row(s.rows, r, saved_ranks)),
                           b = std::min(hi, first_row(s.rows, r + 1, saved_ranks));
        if (a >= b) continue;
        const int fd = open_or_throw(rank_file(dir, r), O_RDONLY);
        const auto row_bytes = static_cast<std::size_t>(s.cols) * sizeof(float);
        pread_all(fd, s.block.data() + (a - s.lo) * s.cols, static_cast<std::size_t>(b - a) * row_bytes,
                  static_cast<off_t>(a - first_row(s.rows, r, saved_ranks)) * static_cast<off_t>(row_bytes));
        ::close(fd);
    }
}

// The floor of a checked, staged restore (what ckpt::mpi::checkpoint::restore does, so that a
// failure on any rank leaves every object as it was): the same raw reads, but into freshly
// allocated tensors that are then moved in, plus one checksum pass over the bytes read.
volatile std::uint64_t g_hash_sink = 0;
// A block's checksum as ckpt's save computes it (ckpt::detail::block_checksum: chunks of the
// default size, hashed on the threads a save uses).
std::uint64_t block_checksum(const void* data, std::size_t size) {
    std::vector<std::uint64_t> sums;
    return ckpt::detail::block_checksum(data, size, ckpt::detail::default_chunk_size, sums, ckpt::max_threads());
}

// The fresh tensors get the hint ckpt gives its staged tensors (ckpt::detail::advise_fresh_buffer:
// huge pages for 4 MiB and more), so that this stays the floor of what ckpt does.
void staged_restore(replicated_state& s, const fs::path& dir) {
    std::vector<Eigen::MatrixXf> old(s.m.size());
    for (std::size_t k = 0; k < s.m.size(); ++k) {
        old[k].resize(s.m[k].rows(), s.m[k].cols());
        ckpt::detail::advise_fresh_buffer(old[k].data(), static_cast<std::size_t>(old[k].size()) * sizeof(float));
        old[k].swap(s.m[k]);  // s.m[k] is now fresh memory; the old tensor is freed at the end
    }
    raw_restore(s, dir);
    for (const auto& m : s.m)
        g_hash_sink = g_hash_sink ^ block_checksum(m.data(), static_cast<std::size_t>(m.size()) * sizeof(float));
}
void staged_restore(sharded_state& s, const fs::path& dir, int saved_ranks) {
    rows_f old(s.block.rows(), s.block.cols());
    ckpt::detail::advise_fresh_buffer(old.data(), static_cast<std::size_t>(old.size()) * sizeof(float));
    old.swap(s.block);
    raw_restore(s, dir, saved_ranks);
    g_hash_sink =
        g_hash_sink ^ block_checksum(s.block.data(), static_cast<std::size_t>(s.block.size()) * sizeof(float));
}

void rank0_save(const replicated_state& s, const fs::path& file) {
    if (g_rank != 0) return;
    fs::create_directories(file.parent_path());
    const int fd = open_or_throw(file, O_WRONLY | O_CREAT | O_TRUNC);
    for (const auto& m : s.m) write_all(fd, m.data(), static_cast<std::size_t>(m.size()) * sizeof(float));
    close_synced(fd);
}
void rank0_save(const sharded_state& s, const fs::path& file, std::vector<float>& gathered) {
    std::vector<int> counts(static_cast<std::size_t>(g_size)), displs(static_cast<std::size_t>(g_size));
    for (int r = 0; r < g_size; ++r) {
        counts[static_cast<std::size_t>(r)] =
            static_cast<int>((first_row(s.rows, r + 1, g_size) - first_row(s.rows, r, g_size)) * s.cols);
        displs[static_cast<std::size_t>(r)] = static_cast<int>(first_row(s.rows, r, g_size) * s.cols);
    }
    if (g_rank == 0) gathered.resize(static_cast<std::size_t>(s.rows * s.cols));
    MPI_Gatherv(s.block.data(), static_cast<int>(s.block.size()), MPI_FLOAT, gathered.data(), counts.data(),
                displs.data(), MPI_FLOAT, 0, MPI_COMM_WORLD);
    if (g_rank != 0) return;
    fs::create_directories(file.parent_path());
    const int fd = open_or_throw(file, O_WRONLY | O_CREAT | O_TRUNC);
    write_all(fd, gathered.data(), gathered.size() * sizeof(float));
    close_synced(fd);
}

// ---- parallel HDF5 -------------------------------------------------------------------------------

#ifdef CKPT_BENCH_HAVE_PHDF5
void h5(herr_t e, const char* what) { check(e >= 0, std::string("HDF5: ") + what); }
hid_t h5id(hid_t id, const char* what) {
    check(id >= 0, std::string("HDF5: ") + what);
    return id;
}
hid_t mpio_fapl() {
    const hid_t fapl = h5id(H5Pcreate(H5P_FILE_ACCESS), "fapl");
    h5(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL), "H5Pset_fapl_mpio");
    return fapl;
}
hid_t collective_dxpl() {
    const hid_t dxpl = h5id(H5Pcreate(H5P_DATASET_XFER), "dxpl");
    h5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio");
    return dxpl;
}
// One dataset [rows, cols] of floats; this rank transfers rows [lo, lo + n) from/to `data`
// (n == 0: an empty selection, still part of the collective call).
void h5_rows(hid_t file, const char* name, bool create, hsize_t rows, hsize_t cols, hsize_t lo, hsize_t n, void* data,
             hid_t dxpl) {
    const hsize_t dims[2] = {rows, cols};
    hid_t d;
    if (create) {
        const hid_t space = h5id(H5Screate_simple(2, dims, nullptr), "space");
        const hid_t dcpl = h5id(H5Pcreate(H5P_DATASET_CREATE), "dcpl");
        // HDF5 at its best: no fill values written before the data.
        h5(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "fill time");
        h5(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY), "alloc time");
        d = h5id(H5Dcreate2(file, name, H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), "H5Dcreate2");
        H5Pclose(dcpl);
        H5Sclose(space);
    } else {
        d = h5id(H5Dopen2(file, name, H5P_DEFAULT), "H5Dopen2");
    }
    const hid_t fspace = h5id(H5Dget_space(d), "file space");
    const hsize_t start[2] = {lo, 0}, count[2] = {std::max<hsize_t>(n, 1), cols};
    const hid_t mspace = h5id(H5Screate_simple(2, count, nullptr), "memory space");
    if (n) {
        h5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr), "hyperslab");
    } else {
        H5Sselect_none(fspace);
        H5Sselect_none(mspace);
    }
    if (create)
        h5(H5Dwrite(d, H5T_NATIVE_FLOAT, mspace, fspace, dxpl, data), "H5Dwrite");
    else
        h5(H5Dread(d, H5T_NATIVE_FLOAT, mspace, fspace, dxpl, data), "H5Dread");
    H5Sclose(mspace);
    H5Sclose(fspace);
    H5Dclose(d);
}
void h5_fsync_after_close(const fs::path& file) {
    if (g_rank == 0) close_synced(open_or_throw(file, O_RDONLY));
}
// A replicated matrix (column-major, side x side) is the dataset [side, side] of its columns; each
// rank writes its share of the columns of every matrix.
void hdf5_save(const replicated_state& s, const fs::path& file) {
    const hid_t fapl = mpio_fapl(), dxpl = collective_dxpl();
    const hid_t f = h5id(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), "H5Fcreate");
    for (std::size_t k = 0; k < s.m.size(); ++k) {
        const auto side = static_cast<hsize_t>(s.m[k].rows());
        const hsize_t lo = side * static_cast<hsize_t>(g_rank) / static_cast<hsize_t>(g_size),
                      hi = side * static_cast<hsize_t>(g_rank + 1) / static_cast<hsize_t>(g_size);
        const std::string name = "m" + std::to_string(k);
        h5_rows(f, name.c_str(), true, side, side, lo, hi - lo, const_cast<float*>(s.m[k].data()) + lo * side, dxpl);
    }
    h5(H5Fflush(f, H5F_SCOPE_GLOBAL), "H5Fflush");
    h5(H5Fclose(f), "H5Fclose");
    H5Pclose(dxpl);
    H5Pclose(fapl);
    h5_fsync_after_close(file);
}
void hdf5_restore(replicated_state& s, const fs::path& file) {
    const hid_t fapl = mpio_fapl(), dxpl = collective_dxpl();
    const hid_t f = h5id(H5Fopen(file.c_str(), H5F_ACC_RDONLY, fapl), "H5Fopen");
    for (std::size_t k = 0; k < s.m.size(); ++k) {
        const auto side = static_cast<hsize_t>(s.m[k].rows());
        const std::string name = "m" + std::to_string(k);
        h5_rows(f, name.c_str(), false, side, side, 0, side, s.m[k].data(), dxpl);  // every rank reads it all
    }
    h5(H5Fclose(f), "H5Fclose");
    H5Pclose(dxpl);
    H5Pclose(fapl);
}
void hdf5_save(const sharded_state& s, const fs::path& file) {
    const hid_t fapl = mpio_fapl(), dxpl = collective_dxpl();
    const hid_t f = h5id(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), "H5Fcreate");
    h5_rows(f, "t", true, static_cast<hsize_t>(s.rows), static_cast<hsize_t>(s.cols), static_cast<hsize_t>(s.lo),
            static_cast<hsize_t>(s.block.rows()), const_cast<float*>(s.block.data()), dxpl);
    h5(H5Fflush(f, H5F_SCOPE_GLOBAL), "H5Fflush");
    h5(H5Fclose(f), "H5Fclose");
    H5Pclose(dxpl);
    H5Pclose(fapl);
    h5_fsync_after_close(file);
}
void hdf5_restore(sharded_state& s, const fs::path& file) {
    const hid_t fapl = mpio_fapl(), dxpl = collective_dxpl();
    const hid_t f = h5id(H5Fopen(file.c_str(), H5F_ACC_RDONLY, fapl), "H5Fopen");
    h5_rows(f, "t", false, static_cast<hsize_t>(s.rows), static_cast<hsize_t>(s.cols), static_cast<hsize_t>(s.lo),
            static_cast<hsize_t>(s.block.rows()), s.block.data(), dxpl);
    h5(H5Fclose(f), "H5Fclose");
    H5Pclose(dxpl);
    H5Pclose(fapl);
}
constexpr bool have_hdf5 = true;
#else
template <class S>
void hdf5_save(const S&, const fs::path&) {}
template <class S>
void hdf5_restore(S&, const fs::path&) {}
constexpr bool have_hdf5 = false;
#endif

// ---- reporting -----------------------------------------------------------------------------------

// One CSV row (rank 0): section, state, ranks, method, median seconds, MiB/s, baseline, ratio to it.
void report(const std::string& section, const std::string& state, const std::string& method, double seconds,
            double bytes, const std::string& baseline, double baseline_seconds) {
    if (g_rank != 0) return;
    const double mibps = bytes > 0 && seconds > 0 ? bytes / double(1 << 20) / seconds : 0;
    const double ratio = baseline_seconds > 0 && seconds > 0 ? baseline_seconds / seconds : 0;
    std::printf("%-10s %-11s n=%d %-16s %10.4f s %9.0f MiB/s  %.2fx %s\n", section.c_str(), state.c_str(), g_size,
                method.c_str(), seconds, mibps, ratio, baseline.c_str());
    std::fflush(stdout);
    std::ofstream out(g_csv, std::ios::app);
    out << section << ',' << state << ',' << g_size << ',' << method << ',' << seconds << ',' << mibps << ','
        << baseline << ',' << ratio << '\n';
}

void remove_on_rank0(const fs::path& p) {
    if (g_rank == 0) {
        std::error_code ec;
        fs::remove_all(p, ec);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}
void drop_on_rank0(const fs::path& p) {
    if (g_rank == 0) drop_cache(p);
    MPI_Barrier(MPI_COMM_WORLD);
}

// ---- save and restore, interleaved -----------------------------------------------------------------

struct times {
    std::map<std::string, std::vector<double>> t;
    void add(const std::string& k, double s) { t[k].push_back(s); }
    double med(const std::string& k) const {
        auto it = t.find(k);
        return it == t.end() ? 0 : median(it->second);
    }
};

template <class State, class Track>
void run_state(const std::string& label, State& s, double save_bytes, double restore_bytes, const fs::path& dir,
               int reps, Track&& make_checkpoint) {
    auto ck = make_checkpoint(s);
    std::vector<std::string> methods = {"ckpt", "raw", "rank0"};
    if (have_hdf5) methods.push_back("hdf5");
    times tm;
    std::vector<float> gathered;
    bool verified = true;
    for (int rep = -1; rep < reps; ++rep) {  // rep -1: a warm-up, not counted
        for (std::size_t i = 0; i < methods.size(); ++i) {
            const std::string& m = methods[(i + static_cast<std::size_t>(rep + 1)) % methods.size()];
            const fs::path out = dir / (label + "-" + m);
            remove_on_rank0(out);
            fs::path saved = out;
            double ts = 0;
            if (m == "ckpt")
                ts = timed([&] { saved = ck.save(out / "ckpt"); });
            else if (m == "raw")
                ts = timed([&] { raw_save(s, out); });
            else if (m == "rank0")
                ts = timed([&] {
                    if constexpr (std::is_same_v<State, sharded_state>)
                        rank0_save(s, out / "all", gathered);
                    else
                        rank0_save(s, out / "all");
                });
            else {
                if (g_rank == 0) fs::create_directories(out);
                MPI_Barrier(MPI_COMM_WORLD);
                saved = out / "state.h5";
                ts = timed([&] { hdf5_save(s, saved); });
            }
            if (rep >= 0) tm.add("save " + m, ts);
            const std::vector<std::string> variants = m == "rank0" || g_save_only ? std::vector<std::string>{}
                                                      : m == "raw" ? std::vector<std::string>{"raw", "staged"}
                                                                   : std::vector<std::string>{m};
            for (const auto& v : variants) {
                for (const char* temp : {"warm", "cold"}) {
                    if (std::strcmp(temp, "cold") == 0) drop_on_rank0(out);
                    scramble(s);
                    double tr = 0;
                    if (v == "ckpt")
                        tr = timed([&] { ck.restore(saved); });
                    else if (v == "staged")
                        tr = timed([&] {
                            if constexpr (std::is_same_v<State, sharded_state>)
                                staged_restore(s, out, g_size);
                            else
                                staged_restore(s, out);
                        });
                    else if (v == "raw")
                        tr = timed([&] {
                            if constexpr (std::is_same_v<State, sharded_state>)
                                raw_restore(s, out, g_size);
                            else
                                raw_restore(s, out);
                        });
                    else
                        tr = timed([&] { hdf5_restore(s, saved); });
                    bool ok;
                    if constexpr (std::is_same_v<State, sharded_state>)
                        ok = sharded_ok(s);
                    else
                        ok = replicated_ok(s);
                    if (!all_ranks(ok)) {
                        verified = false;
                        if (g_rank == 0)
                            std::fprintf(stderr, "%s: %s restored wrong values\n", label.c_str(), v.c_str());
                    }
                    if (rep >= 0) tm.add(std::string("restore ") + temp + " " + v, tr);
                }
            }
            remove_on_rank0(out);
        }
        // Where a save's time goes: the checksums of every block each rank tracks, replicas included,
        // all ranks at once (what ckpt's save computes, each block once, to compare the replicas;
        // under divergence::off only the blocks the rank writes).
        const double th = timed([&] {
            std::uint64_t sink = 0;
            if constexpr (std::is_same_v<State, sharded_state>)
                sink ^= block_checksum(s.block.data(), static_cast<std::size_t>(s.block.size()) * sizeof(float));
            else
                for (const auto& m : s.m)
                    sink ^= block_checksum(m.data(), static_cast<std::size_t>(m.size()) * sizeof(float));
            volatile std::uint64_t keep = sink;
            (void)keep;
        });
        if (rep >= 0) tm.add("hash", th);
    }
    check(verified, label + ": a restore gave wrong values");
    const double raw_save_s = tm.med("save raw");
    for (const auto& m : methods) report("save", label, m, tm.med("save " + m), save_bytes, "raw", raw_save_s);
    report("diagnose", label, "hash tracked", tm.med("hash"), save_bytes, "raw", raw_save_s);
    for (const char* temp : {"warm", "cold"}) {
        const double raw_s = tm.med(std::string("restore ") + temp + " raw");
        for (const std::string m : {"ckpt", "raw", "staged", "hdf5"})
            if (have_hdf5 || m != "hdf5")
                report(std::string("restore-") + temp, label, m, tm.med(std::string("restore ") + temp + " " + m),
                       restore_bytes, "raw", raw_s);
    }
}

// ---- resharding: a 4-rank save restored on another number of ranks ---------------------------------

void keep_for_reshard(std::uint64_t mib, const fs::path& keep) {
    sharded_state s = make_sharded(mib, g_rank, g_size);
    remove_on_rank0(keep);
    if (g_rank == 0) fs::create_directories(keep);
    MPI_Barrier(MPI_COMM_WORLD);
    ckpt::mpi::checkpoint ck{MPI_COMM_WORLD,
                             ckpt::track_shard("t", s.block, ckpt::shape{std::uint64_t(s.rows), std::uint64_t(s.cols)},
                                               ckpt::shape{std::uint64_t(s.lo), 0})};
    const auto p = ck.save(keep / "ckpt");
    raw_save(s, keep / "raw");
    if (g_rank == 0) {
        std::ofstream(keep / "info") << g_size << ' ' << p.filename().string() << '\n';
        std::printf("kept a %d-rank sharded checkpoint in %s\n", g_size, keep.c_str());
    }
}

void run_reshard(std::uint64_t mib, const fs::path& keep, int reps) {
    int saved_ranks = 0;
    std::string name;
    std::ifstream(keep / "info") >> saved_ranks >> name;
    check(saved_ranks > 0, "no kept checkpoint in " + keep.string() + ": run with --keep first");
    sharded_state s = make_sharded(mib, g_rank, g_size);
    ckpt::mpi::checkpoint ck{MPI_COMM_WORLD,
                             ckpt::track_shard("t", s.block, ckpt::shape{std::uint64_t(s.rows), std::uint64_t(s.cols)},
                                               ckpt::shape{std::uint64_t(s.lo), 0})};
    times tm;
    const std::vector<std::string> methods = {"ckpt", "raw", "staged"};
    for (int rep = -1; rep < reps; ++rep)
        for (const char* temp : {"warm", "cold"})
            for (std::size_t i = 0; i < methods.size(); ++i) {
                const std::string& m = methods[(i + static_cast<std::size_t>(rep + 1)) % methods.size()];
                if (std::strcmp(temp, "cold") == 0) drop_on_rank0(keep);
                auto restore = [&] {
                    if (m == "ckpt")
                        ck.restore(keep / name);
                    else if (m == "staged")
                        staged_restore(s, keep / "raw", saved_ranks);
                    else
                        raw_restore(s, keep / "raw", saved_ranks);
                };
                if (std::strcmp(temp, "warm") == 0) restore();  // warm: the files read once before
                scramble(s);
                const double t = timed(restore);
                check(all_ranks(sharded_ok(s)), "reshard: " + m + " restored wrong values");
                if (rep >= 0) tm.add(std::string(temp) + " " + m, t);
            }
    const std::string label = "sharded " + std::to_string(saved_ranks) + "->" + std::to_string(g_size);
    for (const char* temp : {"warm", "cold"})
        for (const auto& m : methods)
            report(std::string("reshard-") + temp, label, m, tm.med(std::string(temp) + " " + m),
                   double(s.global_bytes()), "raw", tm.med(std::string(temp) + " raw"));
}

// ---- asynchronous saves: time blocked in save_async against a memcpy of the rank's state ------------

template <class State, class Make>
void run_async(const std::string& label, State& s, const fs::path& dir, int reps, Make&& make_checkpoint) {
    auto ck = make_checkpoint(s);
    std::vector<char> copy;
    std::size_t bytes = 0;
    if constexpr (std::is_same_v<State, sharded_state>)
        bytes = static_cast<std::size_t>(s.block.size()) * sizeof(float);
    else
        bytes = static_cast<std::size_t>(s.bytes());
    copy.assign(bytes, 1);  // touched: the copy's pages exist, as a snapshot's would after the first save
    auto memcpy_state = [&] {
        if constexpr (std::is_same_v<State, sharded_state>) {
            std::memcpy(copy.data(), s.block.data(), bytes);
        } else {
            std::size_t at = 0;
            for (const auto& m : s.m) {
                const auto n = static_cast<std::size_t>(m.size()) * sizeof(float);
                std::memcpy(copy.data() + at, m.data(), n);
                at += n;
            }
        }
    };
    // Blocked time: the slowest rank's time inside the call (no barrier after it: that is the point).
    // A call that throws still joins the reduction, so no rank is left waiting in a collective.
    std::string why;
    auto blocked = [&](auto&& f) {
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = now();
        int failed = 0;
        try {
            f();
        } catch (const std::exception& e) {
            failed = 1;
            why = e.what();
        }
        double t[2] = {now() - t0, double(failed)}, worst[2] = {0, 0};
        MPI_Allreduce(t, worst, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (worst[1] > 0 && why.empty()) why = "failed on another rank";
        return worst[0];
    };
    // The same saves by a checkpoint whose copies may hold half of the rank's state: the caller
    // then waits while the other half is written (set_async_memory_budget).
    auto budgeted = make_checkpoint(s);
    budgeted.set_async_memory_budget(bytes / 2);
    std::vector<double> t_async, t_copy, t_wait, t_budget, t_budget_wait, kept;
    const fs::path out = dir / (label + "-async");
    for (int rep = -1; rep < reps && why.empty(); ++rep) {
        remove_on_rank0(out);
        const double tc = blocked(memcpy_state);
        const double ta = blocked([&] { ck.save_async(out / "ckpt"); });
        if (!why.empty()) break;
        // Training would go on here; by the next save the background write is long done. What
        // wait() then costs the caller is the part of the save left to its thread: nothing more
        // under MPI_THREAD_MULTIPLE, the commit under lower thread levels.
        std::this_thread::sleep_for(std::chrono::seconds(2));
        const double tw = blocked([&] { ck.wait(); });
        if (!why.empty()) break;
        remove_on_rank0(out);
        const double tb = blocked([&] { budgeted.save_async(out / "ckpt"); });
        if (!why.empty()) break;
        std::this_thread::sleep_for(std::chrono::seconds(2));
        const double tbw = blocked([&] { budgeted.wait(); });
        if (!why.empty()) break;
        // The copies the budgeted checkpoint keeps, as a share of the rank's state: the largest of any rank.
        double share = double(budgeted.async_memory()) / double(bytes), largest = 0;
        MPI_Allreduce(&share, &largest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (rep >= 0) {
            t_copy.push_back(tc);
            t_async.push_back(ta);
            t_wait.push_back(tw);
            t_budget.push_back(tb);
            t_budget_wait.push_back(tbw);
            kept.push_back(largest);
        }
    }
    remove_on_rank0(out);
    const std::string section = g_thread == MPI_THREAD_MULTIPLE ? "async-multiple" : "async-single";
    if (!why.empty()) {
        if (g_rank == 0) {
            std::printf("%s %-11s n=%d not available: %s\n", section.c_str(), label.c_str(), g_size, why.c_str());
            std::ofstream(g_csv, std::ios::app)
                << section << ',' << label << ',' << g_size << ",not available,0,0,memcpy,0\n";
        }
        return;
    }
    report(section, label, "memcpy", median(t_copy), double(bytes), "memcpy", median(t_copy));
    report(section, label, "save_async", median(t_async), double(bytes), "memcpy", median(t_copy));
    report(section, label, "wait", median(t_wait), double(bytes), "memcpy", median(t_copy));
    report(section, label, "save_async budget", median(t_budget), double(bytes), "memcpy", median(t_copy));
    report(section, label, "wait budget", median(t_budget_wait), double(bytes), "memcpy", median(t_copy));
    // Not a time: the share of the state the budgeted checkpoint's copies hold (the seconds column).
    report(section, label, "kept budget", median(kept), 0, "state", 0);
}

// ---- the interrupt check: one MPI_Allreduce of an int per step ---------------------------------------

void run_interrupt(int reps) {
    demo::dataset data = demo::make_dataset(42 + static_cast<std::uint64_t>(g_rank));
    demo::mlp model;
    demo::adam opt;
    demo::init_model(model, opt, 7);
    demo::data_cursor cursor;
    std::mt19937_64 rng(11 + static_cast<std::uint64_t>(g_rank));
    // The data-parallel flagship averages its gradients with one MPI_Allreduce per step: a buffer
    // of the model's parameter count stands in for them (train_step updates in place).
    const auto params = static_cast<std::size_t>(model.hidden.kernel.size() + model.hidden.bias.size() +
                                                 model.out.kernel.size() + model.out.bias.size());
    std::vector<float> grads(params, 0.5f), summed(params);
    const int steps = 2000;
    auto step = [&] {
        demo::train_step(model, opt, data, cursor, rng);
        MPI_Allreduce(grads.data(), summed.data(), static_cast<int>(params), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    };
    auto per_step = [&](auto&& body) {
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = now();
        for (int i = 0; i < steps; ++i) body();
        double t = (now() - t0) / steps;
        MPI_Bcast(&t, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
        return t;
    };
    int flag = 0, any = 0;
    MPI_Request pending = MPI_REQUEST_NULL;
    std::vector<double> plain, checked, overlapped, alone, bare_step;
    for (int rep = -1; rep < reps; ++rep) {
        const double a = per_step([&] { demo::train_step(model, opt, data, cursor, rng); });
        const double b = per_step(step);
        const double c = per_step([&] {
            step();
            MPI_Allreduce(&flag, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        });
        // Non-blocking: the check of step n completes during step n + 1 (decisions one step late).
        const double d = per_step([&] {
            step();
            MPI_Wait(&pending, MPI_STATUS_IGNORE);
            MPI_Iallreduce(&flag, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &pending);
        });
        MPI_Wait(&pending, MPI_STATUS_IGNORE);
        const double e = per_step([&] { MPI_Allreduce(&flag, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD); });
        if (rep < 0) continue;
        bare_step.push_back(a);
        plain.push_back(b);
        checked.push_back(c);
        overlapped.push_back(d);
        alone.push_back(e);
    }
    const double step_s = median(plain);
    report("interrupt", "mlp step", "train_step only", median(bare_step), 0, "step", step_s);
    report("interrupt", "mlp step", "step", step_s, 0, "step", step_s);
    report("interrupt", "mlp step", "step+allreduce", median(checked), 0, "step", step_s);
    report("interrupt", "mlp step", "step+iallreduce", median(overlapped), 0, "step", step_s);
    report("interrupt", "mlp step", "allreduce alone", median(alone), 0, "step", step_s);
}

}  // namespace

int main(int argc, char** argv) {
    // --thread-multiple: what asynchronous saves over MPI need to leave the caller's thread alone.
    bool multiple = false;
    for (int i = 1; i < argc; ++i) multiple = multiple || std::strcmp(argv[i], "--thread-multiple") == 0;
    MPI_Init_thread(&argc, &argv, multiple ? MPI_THREAD_MULTIPLE : MPI_THREAD_SINGLE, &g_thread);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    int status = 0;
    try {
        fs::path dir = "bench-mpi-scratch", keep, reshard;
        int reps = 5;
        std::uint64_t mib = 256;
        std::string parts = "interrupt,io,async", states = "replicated,sharded";
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            auto next = [&]() -> std::string {
                check(i + 1 < argc, a + " needs a value");
                return argv[++i];
            };
            if (a == "--dir")
                dir = next();
            else if (a == "--csv")
                g_csv = next();
            else if (a == "--reps")
                reps = std::stoi(next());
            else if (a == "--mib")
                mib = std::stoull(next());
            else if (a == "--keep")
                keep = next();
            else if (a == "--reshard")
                reshard = next();
            else if (a == "--parts")
                parts = next();
            else if (a == "--save-only")
                g_save_only = true;
            else if (a == "--thread-multiple")
                continue;
            else if (a == "--states")
                states = next();
            else
                throw std::runtime_error("unknown option " + a);
        }
        if (g_csv.empty()) g_csv = (dir / "results.csv").string();
        if (g_rank == 0) fs::create_directories(dir);
        MPI_Barrier(MPI_COMM_WORLD);
        auto wanted = [&](const char* part) {
            return parts.find(part) != std::string::npos || states.find(part) != std::string::npos;
        };

        if (!reshard.empty()) {
            run_reshard(mib, reshard, reps);
        } else {
            if (wanted("interrupt")) run_interrupt(reps);
            const auto make_rep = [](replicated_state& s) {
                return ckpt::mpi::checkpoint{MPI_COMM_WORLD, ckpt::track("model", s.m)};
            };
            const auto make_shard = [](sharded_state& s) {
                return ckpt::mpi::checkpoint{
                    MPI_COMM_WORLD,
                    ckpt::track_shard("t", s.block, ckpt::shape{std::uint64_t(s.rows), std::uint64_t(s.cols)},
                                      ckpt::shape{std::uint64_t(s.lo), 0})};
            };
            if (wanted("replicated")) {
                replicated_state s = make_replicated(mib);
                if (wanted("io"))
                    run_state("replicated", s, double(s.bytes()), double(s.bytes()) * g_size, dir, reps, make_rep);
                if (wanted("async")) run_async("replicated", s, dir, reps, make_rep);
            }
            if (wanted("sharded")) {
                sharded_state s = make_sharded(mib, g_rank, g_size);
                if (wanted("io"))
                    run_state("sharded", s, double(s.global_bytes()), double(s.global_bytes()), dir, reps, make_shard);
                if (wanted("async")) run_async("sharded", s, dir, reps, make_shard);
            }
            if (!keep.empty()) keep_for_reshard(mib, keep);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_mpi (rank %d): %s\n", g_rank, e.what());
        status = 1;
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Finalize();
    return status;
}
