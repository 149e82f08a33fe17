#pragma once
// The restore side of the walk. One pass over the tracked objects checks everything and produces a
// plan; executing the plan is the only thing that changes them. The check pass finds every entry,
// compares kinds, dtypes, shapes, sizes and keys, reads every block it uses into staging storage
// (checking checksum, padding and the bytes of bools) and decodes every opaque value (cereal
// types, move-only ones too, engines and distributions) into a staged value. The plan then only
// moves or swaps staged values into the tracked objects, which does not fail. So a restore that
// fails, for any reason, leaves every tracked object as it was.
//
// Staging costs no extra copy: a block is read once, into memory that becomes the object's storage
// by a swap (dynamic Eigen objects, std::vector, sparse matrices). Fixed-size objects are copied
// from staging, which is cheap because they are small. Containers that take their size from the
// file (an empty std::vector or std::map of structures) are built whole and swapped in; their
// elements are restored straight into the new container ("direct"): nobody sees it before the swap.
//
// Staging memory is recycled: the storage a restore swaps out of the objects is kept (a
// spare_storage, owned by the checkpoint, from its second restore on) and the next restore stages
// the same tensors into it. Why: memory nobody touched yet costs a page fault per page on first
// write, and on our machines that costs more than the read itself (about 2.5 us per 4 KiB page in
// a VM, against under 1 us to copy it from the page cache; benchmarks/results/restore_modes.md); a
// restore into pages an earlier one already faulted runs at the speed of an in-place read. The
// first restore of a process has no spares and pays for its pages.
//
// In in_place mode plain (non-bool) tensor blocks are not staged: the plan reads them into the
// objects when it runs. Half the memory, but a damaged tensor block is then found after earlier
// objects changed (unless the blocks are verified first).

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <locale>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include <ckpt/detail/config.hpp>
#include <ckpt/detail/archive.hpp>
#include <ckpt/detail/classify.hpp>
#include <ckpt/detail/keys.hpp>
#include <ckpt/detail/suggest.hpp>
#include <ckpt/format/file_reader.hpp>

namespace ckpt::detail {

struct restore_problem {
    std::string path;
    std::string what;
};

/// Tensor storage kept from one restore for the next (see the top of this file). Slot i holds
/// what the i-th staged tensor of the last restore swapped out of its object; a restore that
/// visits the same objects in the same order finds the storage of the same shape in the same slot.
/// Holds at most as much memory as the tensors the last restore replaced.
class spare_storage {
public:
    struct item {
        virtual ~item() = default;
        const void* type = nullptr;  // a tag per value type: no RTTI needed
    };
    template <class T>
    struct box final : item {
        box() { type = &tag<T>; }
        T value{};
    };

    /// The tag of value type T: `item::type` of a box<T>.
    template <class T>
    static constexpr const void* tag_of() noexcept {
        return &tag<T>;
    }
    /// The spare in `slot` if it holds a value of the type tagged `type` (tag_of<T>()), else
    /// nullptr. A spare of another type is freed now, before the caller allocates in its place, so
    /// memory stays bounded (so must the caller free one of another shape).
    std::unique_ptr<item> take(std::size_t slot, const void* type);
    /// Replaces the spares by those of the restore that just ended.
    void replace(std::vector<std::unique_ptr<item>> items) noexcept { items_ = std::move(items); }
    /// Frees every spare.
    void clear() noexcept { items_.clear(); }

private:
    // Not const: distinct writable variables are never merged by a linker, so their addresses differ.
    template <class T>
    static inline char tag = 0;
    std::vector<std::unique_ptr<item>> items_;
};

/// One change to a tracked object, prepared by the check pass.
struct plan_step {
    virtual ~plan_step() = default;
    /// Staged steps only move or swap and do not throw; in_place reads may.
    virtual void apply() = 0;
    /// The block apply() reads (in_place tensors), or nullptr when the step holds its value already.
    virtual const entry_info* deferred_read() const noexcept { return nullptr; }
};

/// Where a restore takes its entries from, as the walk sees it: a file_reader, or a sharded
/// checkpoint's pieces (detail/mpi_manifest.hpp). An interface, not a template parameter of the
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

private:
    Source& source_;
};

/// What the check pass found and prepared: problems, the objects the file lacks, the entries it
/// used, and the steps that restore the objects. `walk into it; throw_if_problems(); apply();`
class restore_plan_core {
public:
    restore_plan_core(restore_source& s, bool partial_mode, bool in_place_mode, spare_storage* spare_pool)
        : source(s), partial(partial_mode), in_place(in_place_mode), consumed(s.entries().size(), 0),
          spares(spare_pool) {}
    restore_plan_core(const restore_plan_core&) = delete;
    restore_plan_core& operator=(const restore_plan_core&) = delete;

    restore_source& source;
    const bool partial;
    const bool in_place;
    std::vector<restore_problem> problems;          // mismatches: reported together, before any change
    std::vector<std::string> missing;               // tracked paths the file lacks (partial mode)
    std::vector<char> consumed;                     // per entry of the file
    std::vector<std::unique_ptr<plan_step>> steps;  // in visiting order
    spare_storage* spares;                          // staging storage to reuse, and to refill; may be null
    std::size_t boxed = 0;                          // staged tensors that take and leave a spare
    std::vector<std::unique_ptr<spare_storage::item>> swapped_out;  // slot i: what box i's step swapped out

    /// A tensor block that the check pass reads after the walk, with the others (read_staged), into
    /// staging memory that nothing else sees before apply().
    struct staged_read {
        const entry_info* entry;  // one of source.entries()
        void* memory;             // the staged tensor's elements
        std::size_t rank;
        bool column_major;
        std::size_t element_size;
        bool bools;
    };
    /// 0: the walk reads each block it stages when it meets it. From 1 (sources that
    /// reads_in_parallel() only): the walk collects the staged tensor blocks of a page or more in
    /// staged_reads, and read_staged() reads them, on up to this many threads.
    std::size_t read_threads = 0;
    std::vector<staged_read> staged_reads;
    std::uint64_t staged_bytes = 0;
    std::uint64_t fresh_bytes = 0;                                       // of staged_bytes: into new memory
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> fresh_pages;  // of staged_reads: populated together

    /// Throws mismatch_error listing every problem the check pass found.
    void throw_if_problems() const;
    /// Checks the blocks that apply() will read (in_place steps), in chunks, keeping nothing.
    void verify_deferred();
    /// Executes the plan: the only part of a restore that changes tracked objects.
    void apply();
    std::vector<std::string> unused() const;
};

/// A restore plan over a Source (see restore_source), which the caller still reaches by its own
/// type as `file` (ckpt/mpi.hpp asks a sharded_reader for more than a restore_source offers).
template <class Source>
class basic_restore_plan : private restore_source_of<Source>, public restore_plan_core {
public:
    basic_restore_plan(Source& f, bool partial_mode, bool in_place_mode, spare_storage* spare_pool = nullptr)
        : restore_source_of<Source>(f),
          restore_plan_core(static_cast<restore_source&>(*this), partial_mode, in_place_mode, spare_pool), file(f) {}

    Source& file;
};
using restore_plan = basic_restore_plan<file_reader>;

CKPT_INLINE std::string describe(const entry_info& e);

/// Converts between row- and column-major element order of the same logical shape.
CKPT_INLINE void reorder(const char* src, char* dst, const shape& s, std::size_t elem, bool src_column_major);

/// Checks that every byte of a bool tensor's bytes is 0 or 1: any other is undefined behaviour in
/// a bool, and the checksum cannot tell us intent.
CKPT_INLINE void check_bools(const restore_source& file, const entry_info& e, const char* bytes, std::uint64_t n);

/// True when a tensor's memory holds its elements in another order than the file.
inline bool needs_reorder(const entry_info& e, std::size_t rank, bool column_major) noexcept {
    return rank >= 2 && e.column_major != column_major;
}

/// Reads a tensor entry into `dest`, memory of the entry's shape laid out as `rank` and
/// `column_major` say; `bools` checks every byte is 0 or 1. Not a template: what differs between
/// tensor types is only this description of their memory. With a `buffer`, reads through
/// restore_source::read_part, which other threads may call at the same time (read_staged).
CKPT_INLINE void read_tensor_bytes(restore_source& file, const entry_info& e, void* memory, std::size_t rank,
                                   bool column_major, std::size_t element_size, bool bools,
                                   file_reader::read_buffer* buffer = nullptr);

/// How many threads a restore reads staged blocks with (see read_staged): the machine's, at most 4
/// (a restore should not take a whole node; 2 already halve the time on our machines).
CKPT_INLINE std::size_t restore_read_threads() noexcept;

/// Reads the blocks the walk collected in plan.staged_reads, checked as read_block checks them, on
/// up to plan.read_threads threads (`one_thread`: on this one) when there are enough bytes to be
/// worth it: from 16 MiB, at least 8 MiB per thread, and only when at most an eighth of them go to
/// new memory (otherwise: a process's first restore). Why: into storage a previous restore left
/// (spares) two threads measured 1.2-1.85x faster than one where a core was free; into new memory
/// they measured no faster (0.98x-0.995x, first restores with the pages populated; without that,
/// 0.64x-1.18x), so one thread keeps the first restore on the path measured longest
/// (benchmarks/results/restore_modes.md). Large blocks checked chunk by chunk are split
/// into parts of whole chunks, so that one large tensor is read by several threads too.
/// Throws what reading the blocks one by one in order throws: the error of the first damaged block
/// (of its first damaged chunk) in the walk's order, whichever thread found it, on this thread, once
/// every helper thread has ended. Changes no tracked object: the blocks go to staging memory.
/// A thread that cannot start is no error: this thread reads its share.
CKPT_INLINE void read_staged(restore_plan_core& plan, bool one_thread = false);

/// Reads a tensor entry into `obj`, which already has the entry's shape.
template <class T>
void read_tensor(restore_source& file, const entry_info& e, T& obj) {
    using traits = tensor_traits<T>;
    using element = typename traits::element;
    read_tensor_bytes(file, e, static_cast<void*>(traits::data(obj)), traits::rank, traits::column_major,
                      sizeof(element), std::is_same_v<element, bool>);
}

// Steps. Moving an Eigen dynamic object, a std::vector or a std::string swaps pointers.
template <class T>
struct move_step final : plan_step {
    explicit move_step(T& t) : target(t), value() {}  // a fresh value, filled before the step runs
    move_step(T& t, T&& v) : target(t), value(std::move(v)) {}
    void apply() override { target = std::move(value); }
    T& target;
    T value;
};
template <class T>
struct swap_step final : plan_step {
    swap_step(T& t, T&& v) : target(t), value(std::move(v)) {}
    void apply() override { target.swap(value); }
    T& target;
    T value;
};
/// What a restore needs of a tensor type, as data and plain functions: one small table per type
/// (tensor_ops_of<T>::ops), while the checks, reads and staging of every tensor type are compiled
/// once (restore_walker::tensor_leaf and the steps below). A template per type for all of that
/// cost more to compile than the rest of a restore.
struct tensor_ops {
    dtype type;
    std::size_t rank;
    bool column_major;
    std::size_t element_size;
    bool bools;                          // elements are bool: every byte read is checked
    const void* tag;                     // spare_storage::tag_of<T>()
    shape (*shape_of)(const void* obj);  // tensor_traits<T>::shape_of
    bool (*accepts)(const void* obj, const shape& s);
    void (*resize)(void* obj, const shape& s);
    void* (*data)(void* obj);
    // Staging in a spare_storage::box<T>; null for types that are not default-constructible and movable.
    spare_storage::item* (*new_box)();
    void* (*value)(spare_storage::item& box);     // the T in a box
    void (*swap)(void* obj, void* value);         // swap(obj, value)
    void (*move_assign)(void* obj, void* value);  // obj = std::move(value)
};

template <class T>
struct tensor_ops_of {
    using traits = tensor_traits<T>;
    using element = typename traits::element;
    static constexpr bool boxed = !std::is_array_v<T> && std::is_default_constructible_v<T> &&
                                  std::is_move_constructible_v<T> && std::is_move_assignable_v<T>;

    static shape shape_of(const void* obj) { return traits::shape_of(*static_cast<const T*>(obj)); }
    static bool accepts(const void* obj, const shape& s) { return traits::accepts(*static_cast<const T*>(obj), s); }
    static void resize(void* obj, const shape& s) { traits::resize(*static_cast<T*>(obj), s); }
    static void* data(void* obj) { return static_cast<void*>(traits::data(*static_cast<T*>(obj))); }
    static spare_storage::item* new_box() { return new spare_storage::box<T>(); }
    static void* value(spare_storage::item& b) { return &static_cast<spare_storage::box<T>&>(b).value; }
    static void swap(void* a, void* b) {
        using std::swap;
        swap(*static_cast<T*>(a), *static_cast<T*>(b));
    }
    static void move_assign(void* a, void* b) { *static_cast<T*>(a) = std::move(*static_cast<T*>(b)); }

    static constexpr tensor_ops make() {
        tensor_ops o{dtype_of<element>(),
                     traits::rank,
                     traits::column_major,
                     sizeof(element),
                     std::is_same_v<element, bool>,
                     spare_storage::tag_of<T>(),
                     &shape_of,
                     &accepts,
                     &resize,
                     &data,
                     nullptr,
                     nullptr,
                     nullptr,
                     nullptr};
        if constexpr (boxed) {
            o.new_box = &new_box;
            o.value = &value;
            o.swap = &swap;
            o.move_assign = &move_assign;
        }
        return o;
    }
    static constexpr tensor_ops ops = make();
};

/// Reads a tensor entry into the object `obj` that `ops` describes, which has the entry's shape.
inline void read_tensor(restore_source& file, const entry_info& e, void* obj, const tensor_ops& ops) {
    read_tensor_bytes(file, e, ops.data(obj), ops.rank, ops.column_major, ops.element_size, ops.bools);
}

// A tensor staged in a box of its own: apply() swaps it with the object (pointers, for dynamic
// storage) and leaves the object's previous storage in the plan's slot, as a spare for the next
// restore. Swapping, not move-assigning: a std::vector's move assignment would free that storage.
struct boxed_step final : plan_step {
    using slots = std::vector<std::unique_ptr<spare_storage::item>>;
    boxed_step(void* t, const tensor_ops& o, std::unique_ptr<spare_storage::item> b, slots& out_slots, std::size_t i)
        : target(t), ops(o), box(std::move(b)), out(out_slots), slot(i) {}
    void apply() override;
    void* target;
    const tensor_ops& ops;
    std::unique_ptr<spare_storage::item> box;
    slots& out;
    std::size_t slot;
};
// A small tensor staged in a box that the plan frees: apply() moves it into the object.
struct staged_step final : plan_step {
    staged_step(void* t, const tensor_ops& o, std::unique_ptr<spare_storage::item> b)
        : target(t), ops(o), box(std::move(b)) {}
    void apply() override { ops.move_assign(target, ops.value(*box)); }
    void* target;
    const tensor_ops& ops;
    std::unique_ptr<spare_storage::item> box;
};
template <class T>
struct array_step final : plan_step {  // C arrays: not assignable, copied element by element
    explicit array_step(T& t) : target(t) {}
    void apply() override { std::copy(std::begin(value), std::end(value), std::begin(target)); }
    T& target;
    T value{};
};
template <class T>
struct reset_step final : plan_step {  // an optional value the file says is empty
    explicit reset_step(T& t) : target(t) {}
    void apply() override { target.reset(); }
    T& target;
};
template <class T, class E>
struct emplace_step final : plan_step {  // an empty optional or unique_ptr takes a value built aside
    emplace_step(T& t, std::unique_ptr<E> v) : target(t), value(std::move(v)) {}
    void apply() override {
        if constexpr (std::is_same_v<T, std::unique_ptr<E>>)
            target = std::move(value);
        else
            target.emplace(std::move(*value));
    }
    T& target;
    std::unique_ptr<E> value;
};
struct read_step final : plan_step {
    read_step(restore_source& f, const entry_info& e, void* t, const tensor_ops& o)
        : file(f), entry(e), target(t), ops(o) {}
    void apply() override;
    const entry_info* deferred_read() const noexcept override { return &entry; }
    restore_source& file;
    const entry_info& entry;
    void* target;
    const tensor_ops& ops;
};

// The std distributions whose state has a variable length: their text starts with a count that
// libstdc++'s operator>> reserves before it reads a value.
template <class T>
struct is_variable_distribution : std::false_type {};
template <class I>
struct is_variable_distribution<std::discrete_distribution<I>> : std::true_type {};
template <class R>
struct is_variable_distribution<std::piecewise_constant_distribution<R>> : std::true_type {};
template <class R>
struct is_variable_distribution<std::piecewise_linear_distribution<R>> : std::true_type {};

/// True when the first number of `text` is at most the count of numbers after it: each value
/// the count announces takes at least one number of text.
CKPT_INLINE bool count_fits_text(std::string_view text);

/// The check pass over one tracked object: `restore_walker(plan, "model").visit(model);`
class restore_walker {
public:
    restore_walker(restore_plan_core& plan, std::string root) : plan_(plan), path_(std::move(root)) {}

    template <class T>
    void visit(T& obj) {
        require_checkpointable<T>();
        constexpr node kind = classify<T>();
        if constexpr (kind == node::structure) {
            walk_fields(*this, obj);
        } else {
            const entry_info* e = plan_.source.find(path_);
            if (!e) return missing();
            plan_.consumed[plan_.source.index_of(*e)] = 1;
            if constexpr (kind == node::sequence)
                sequence(obj, *e);
            else if constexpr (kind == node::mapping)
                mapping(obj, *e);
            else if constexpr (kind == node::nullable)
                nullable(obj, *e);
            else {
                // A damaged file must not get past with another exception type (std::bad_alloc from a
                // user's load function, std::length_error from a stream): it is a corrupt entry.
                try {
                    if constexpr (kind == node::tensor)
                        tensor(obj, *e);
                    else if constexpr (kind == node::sparse)
                        sparse(obj, *e);
                    else if constexpr (kind == node::text)
                        text(obj, *e);
                    else if constexpr (kind == node::serialized)
                        serialized(obj, *e);
                } catch (...) {
                    rethrow_as_corrupt(*e);
                }
            }
        }
    }

    /// A member of type M (see walk_fields).
    template <class M>
    static void visit_erased(restore_walker& walk, void* member) {
        walk.visit(*static_cast<M*>(member));
    }
    /// The members of a struct, in order: not a template, whatever the struct.
    void fields(const erased_field<restore_walker>* list, std::size_t n);

private:
    // Restores into an object nobody else sees yet (an element of a container being built).
    struct direct_scope {
        explicit direct_scope(bool& flag) : flag_(flag), was_(flag) { flag_ = true; }
        ~direct_scope() { flag_ = was_; }
        direct_scope(const direct_scope&) = delete;
        direct_scope& operator=(const direct_scope&) = delete;
        bool& flag_;
        bool was_;
    };

    template <class T>
    void child(std::string_view segment, T& member) {
        const auto size = path_.size();
        path_ += '/';
        path_ += segment;
        visit(member);
        path_.resize(size);
    }

    template <class T>
    void child_at(std::uint64_t index, T& member) {
        char digits[20];
        const auto end = std::to_chars(digits, digits + sizeof digits, index).ptr;
        child(std::string_view(digits, static_cast<std::size_t>(end - digits)), member);
    }

    void missing();
    // Rethrows the exception being handled: a ckpt::error as it is, std::bad_alloc and other
    // std::exceptions as a corrupt_error of entry `e`, anything else as it is. Not in each visit:
    // those handlers were code in every leaf type's walk.
    [[noreturn]] void rethrow_as_corrupt(const entry_info& e) const;
    void missing_child(std::string_view segment) { plan_.missing.push_back(path_ + '/' + std::string(segment)); }
    void problem(std::string what) { plan_.problems.push_back({path_, std::move(what)}); }
    bool kind_is(const entry_info& e, entry_kind k, const std::string& object);
    // Smaller staged tensors are not worth a spare: their pages are few, and often shared.
    static constexpr std::uint64_t spare_min_bytes = 4096;

    // Once a mismatch is known the restore will throw: blocks are no longer worth reading.
    bool reading() const noexcept { return plan_.problems.empty(); }

    // Takes a step made by `new`. Not a template, and no std::unique_ptr per step type: those were
    // instantiated for every container and tensor type.
    void stage(plan_step* step) {
        std::unique_ptr<plan_step> owned(step);
        plan_.steps.push_back(std::move(owned));
    }
    // A sequence's element count against the object's, as a problem (see sequence()).
    void count_problem(std::uint64_t in_file, std::uint64_t in_object, bool fixed);
    // A map's keys against the object's, as a problem (see mapping()).
    void keys_problem(std::size_t in_file, std::size_t in_object, const std::vector<std::string>& only_file,
                      const std::vector<std::string>& only_object);
    // A sequence that claims more elements than the file can hold.
    [[noreturn]] void too_many_elements(const entry_info& e, bool entryless) const;

    [[noreturn]] void out_of_memory(const entry_info& e) const;

    // Reads a staged tensor block now, or collects it for read_staged (restore_plan_core::read_threads).
    void read_staged_tensor(const entry_info& e, void* obj, const tensor_ops& ops);

    // A tensor leaf of any type, described by `ops`: checked, then read directly, deferred
    // (in_place) or staged. False when the type cannot be staged in a box: the caller stages it.
    bool tensor_leaf(void* obj, const tensor_ops& ops, const entry_info& e);

    template <class T>
    void tensor(T& obj, const entry_info& e) {
        if (tensor_leaf(&obj, tensor_ops_of<T>::ops, e)) return;
        using traits = tensor_traits<T>;
        if constexpr (std::is_array_v<T>) {
            auto step = std::make_unique<array_step<T>>(obj);
            read_tensor(plan_.source, e, step->value);
            stage(step.release());
        } else {
            // A tensor type that cannot be made empty and resized: stage a copy of the object.
            static_assert(
                std::is_copy_constructible_v<T> && std::is_move_assignable_v<T>,
                "ckpt: a restored tensor type must be default-constructible or copyable, and move-assignable");
            T copy = obj;
            if (traits::shape_of(copy) != e.shape) traits::resize(copy, e.shape);
            read_tensor(plan_.source, e, copy);
            stage(new move_step<T>(obj, std::move(copy)));
        }
    }

    template <class T>
    void sparse(T& obj, const entry_info& e) {
        using S = typename T::Scalar;
        const std::string object = std::string("sparse ") + dtype_name(dtype_of<S>()) + " [" +
                                   std::to_string(obj.rows()) + "," + std::to_string(obj.cols()) + "]";
        const bool empty = obj.rows() == 0 && obj.cols() == 0;
        if (e.kind != entry_kind::sparse || e.dtype != dtype_of<S>() ||
            (!empty && (e.shape[0] != static_cast<std::uint64_t>(obj.rows()) ||
                        e.shape[1] != static_cast<std::uint64_t>(obj.cols()))))
            return problem("checkpoint has " + describe(e) + ", object has " + object);
        if (e.column_major == static_cast<bool>(T::IsRowMajor))
            return problem(std::string("checkpoint has a ") + (e.column_major ? "column" : "row") +
                           "-major sparse matrix, object is " + (e.column_major ? "row" : "column") + "-major");
        if (!reading()) return;
        T staged;
        const std::string why = decode_sparse(plan_.source.read_block(e), e.shape[0], e.shape[1], &staged);
        if (!why.empty()) throw corrupt_error(why, plan_.source.path(), e.path);
        commit_swap(obj, std::move(staged));
    }

    template <class T>
    void commit_move(T& obj, T&& value) {
        if (direct_)
            obj = std::move(value);
        else
            stage(new move_step<T>(obj, std::move(value)));
    }
    template <class T>
    void commit_swap(T& obj, T&& value) {
        if (direct_)
            obj.swap(value);
        else
            stage(new swap_step<T>(obj, std::move(value)));
    }

    // The value an opaque entry is decoded into: a copy of the object, so a load function that
    // keeps some of the object's state sees it; a fresh value for move-only types.
    template <class T>
    static T staged_value(const T& obj) {
        if constexpr (std::is_copy_constructible_v<T>)
            return obj;
        else {
            static_assert(std::is_default_constructible_v<T>,
                          "ckpt: a move-only restored type must be default-constructible, to be decoded before the "
                          "restore changes anything");
            return T{};
        }
    }

    template <class T>
    void text(T& obj, const entry_info& e) {
        if (!kind_is(e, entry_kind::text, "a random engine or distribution")) return;
        const std::string bytes = plan_.source.read_block(e);
        if constexpr (is_variable_distribution<T>::value) {
            // Checked before operator>>, which would reserve whatever count the text claims.
            if (!count_fits_text(bytes))
                throw corrupt_error("the distribution's state announces more values than its text holds",
                                    plan_.source.path(), e.path);
        }
        T value = staged_value(obj);
        std::istringstream is(bytes);
        is.imbue(std::locale::classic());
        is >> value;
        if (is.fail() || !(is >> std::ws).eof())
            return problem("the saved state does not parse as this engine or distribution type");
        commit_move(obj, std::move(value));
    }

    template <class T>
    void serialized(T& obj, const entry_info& e) {
        if (!kind_is(e, entry_kind::serialized, "a serialized value")) return;
        const std::string bytes = plan_.source.read_block(e);
        T value = staged_value(obj);
        std::string why;
        try {
            opaque_input_archive ar(bytes);
            ar(value);
            if (ar.remaining() != 0)
                why = std::to_string(ar.remaining()) +
                      " bytes left over after reading the value: it was saved as another type";
        } catch (const opaque_load_error& u) {
            why = "the saved bytes do not hold a value of this type (" + u.what + ")";
        } catch (const cereal::Exception& x) {
            why = std::string("the saved bytes do not hold a value of this type (") + x.what() + ")";
        }
        if (!why.empty()) return problem(why);
        if constexpr (is_sized_container<T>::value) {
            if (!container_fits(obj, value))
                return problem("checkpoint has " + std::to_string(value.size()) + " elements, object holds " +
                               std::to_string(obj.size()) + (value.size() == obj.size() ? " with other keys" : "") +
                               " (a non-empty container must match the file; clear it to take the file's)");
        }
        commit_move(obj, std::move(value));
    }

    template <class T>
    void sequence(T& obj, const entry_info& e) {
        using seq = sequence_of<T>;
        using E = typename seq::element;
        if (!kind_is(e, entry_kind::sequence, "a sequence")) return;
        const std::uint64_t n = e.shape[0];
        if constexpr (seq::fixed) {
            if (n != seq::size) return count_problem(n, seq::size, true);
            for (std::uint64_t i = 0; i < n; ++i) child_at(i, obj[i]);
        } else {
            static_assert(std::is_default_constructible_v<E>,
                          "ckpt: elements of a restored std::vector must be default-constructible");
            // Every element has an entry of its own, so a larger count cannot be honest; elements
            // without entries (empty structs) are bounded by what a save writes.
            if constexpr (makes_an_entry<E>()) {
                if (n > plan_.source.entries().size()) too_many_elements(e, false);
            } else if (n > max_entryless_bytes / sizeof(E)) {  // elements with no entries: the bound the writer keeps
                too_many_elements(e, true);
            }
            const std::uint64_t m = obj.size();
            if (m == 0 && n > 0) {
                // An empty container takes the file's size: built whole, then swapped in.
                if (direct_) {
                    obj.resize(static_cast<std::size_t>(n));
                    for (std::uint64_t i = 0; i < n; ++i) child_at(i, obj[i]);
                    return;
                }
                T fresh(static_cast<std::size_t>(n));
                {
                    direct_scope scope(direct_);
                    for (std::uint64_t i = 0; i < n; ++i) child_at(i, fresh[i]);
                }
                return stage(new swap_step<T>(obj, std::move(fresh)));
            }
            if (n != m && !plan_.partial) return count_problem(n, m, false);
            // Partial: what both have is restored, the object's extra elements are kept and listed.
            for (std::uint64_t i = 0; i < std::min(n, m); ++i) child_at(i, obj[i]);
            for (std::uint64_t i = n; i < m; ++i) missing_child(std::to_string(i));
        }
    }

    template <class T>
    void mapping(T& obj, const entry_info& e) {
        using key_type = typename T::key_type;
        if (!kind_is(e, entry_kind::mapping, "a map")) return;
        std::vector<std::string> texts;
        if (!decode_keys(plan_.source.read_block(e), e.shape[0], texts))
            throw corrupt_error("map key list does not agree with its element count", plan_.source.path(), e.path);
        std::vector<key_type> keys(texts.size());
        for (std::size_t i = 0; i < texts.size(); ++i)
            if (!parse_key(texts[i], keys[i]))
                return problem("checkpoint has map key '" + texts[i] + "', which is not a key of this map's type");
        if (obj.empty() && !keys.empty()) {
            // An empty map takes the file's keys: built whole, then swapped in.
            if (direct_) {
                for (std::size_t i = 0; i < keys.size(); ++i) child(key_segment(texts[i]), obj[keys[i]]);
                return;
            }
            T fresh;
            {
                direct_scope scope(direct_);
                for (std::size_t i = 0; i < keys.size(); ++i) child(key_segment(texts[i]), fresh[keys[i]]);
            }
            return stage(new swap_step<T>(obj, std::move(fresh)));
        }
        std::vector<std::size_t> common;  // indices into keys
        std::vector<std::string> only_file, only_object;
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (obj.find(keys[i]) != obj.end())
                common.push_back(i);
            else
                only_file.push_back(texts[i]);
        }
        if (common.size() != obj.size()) {
            std::vector<key_type> sorted = keys;
            std::sort(sorted.begin(), sorted.end());
            for (const auto& item : obj)
                if (!std::binary_search(sorted.begin(), sorted.end(), item.first))
                    only_object.push_back(key_text(item.first));
            std::sort(only_object.begin(), only_object.end());
        }
        if ((!only_file.empty() || !only_object.empty()) && !plan_.partial)
            return keys_problem(keys.size(), obj.size(), only_file, only_object);
        for (const std::size_t i : common) child(key_segment(texts[i]), obj.find(keys[i])->second);
        for (const auto& k : only_object) missing_child(key_segment(k));
    }

    // An empty optional in the file resets the object; a present one is restored into the object's
    // value, or into a new value that the plan moves in (the object stays as it was until then).
    template <class T>
    void nullable(T& obj, const entry_info& e) {
        using E = typename nullable_of<T>::element;
        static_assert(std::is_default_constructible_v<E>,
                      "ckpt: the value of a restored std::optional or std::unique_ptr must be default-constructible");
        if (!kind_is(e, entry_kind::sequence, "an optional value")) return;
        const std::uint64_t n = e.shape[0];
        if (n > 1)
            return problem("checkpoint has a sequence of " + std::to_string(n) +
                           " elements, object is an optional value");
        if (direct_) {
            if (n == 0) return obj.reset();
            if (!obj) nullable_of<T>::emplace(obj);
            return child_at(0, *obj);
        }
        if (n == 0) {
            if (obj) stage(new reset_step<T>(obj));
            return;
        }
        if (obj) return child_at(0, *obj);
        auto fresh = std::make_unique<E>();
        {
            direct_scope scope(direct_);
            child_at(0, *fresh);
        }
        stage(new emplace_step<T, E>(obj, std::move(fresh)));
    }

    restore_plan_core& plan_;
    std::string path_;
    bool direct_ = false;
};
/// The walk does not depend on the source: kept for the callers that name one.
template <class Source>
using basic_restore_walker = restore_walker;

}  // namespace ckpt::detail

// Out-of-line definitions: inline in the header-only build, compiled once in ckpt::ckpt_compiled
// in the compiled mode (see ckpt/detail/config.hpp).
#if CKPT_HEADER_DEFINITIONS
namespace ckpt::detail {

CKPT_INLINE std::unique_ptr<spare_storage::item> spare_storage::take(std::size_t slot, const void* type) {
    if (slot >= items_.size() || !items_[slot]) return nullptr;
    if (items_[slot]->type == type) return std::move(items_[slot]);
    items_[slot].reset();
    return nullptr;
}

CKPT_INLINE void restore_source::read_part(const entry_info& e, std::uint64_t lo, std::uint64_t hi, char* dest,
                                           file_reader::read_buffer& buffer) const {
    (void)e, (void)lo, (void)hi, (void)dest, (void)buffer;
}

CKPT_INLINE std::uint64_t restore_source::part_size(const entry_info& e) const noexcept {
    (void)e;
    return 0;
}

CKPT_INLINE void restore_plan_core::throw_if_problems() const {
    if (problems.empty()) return;
    std::string what = problems.front().what;
    for (std::size_t i = 1; i < problems.size() && i < 20; ++i)
        what += "\n  and entry '" + problems[i].path + "': " + problems[i].what;
    if (problems.size() > 20) what += "\n  and " + std::to_string(problems.size() - 20) + " more";
    throw mismatch_error(what, source.path(), problems.front().path);
}

CKPT_INLINE void restore_plan_core::verify_deferred() {
    for (const auto& s : steps)
        if (const entry_info* e = s->deferred_read()) source.verify_block(*e);
}

CKPT_INLINE void restore_plan_core::apply() {
    swapped_out.resize(boxed);  // may throw: before the first change
    for (const auto& s : steps) s->apply();
    steps.clear();
    if (spares) spares->replace(std::move(swapped_out));
    swapped_out.clear();
}

CKPT_INLINE std::vector<std::string> restore_plan_core::unused() const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < consumed.size(); ++i)
        if (!consumed[i]) out.push_back(source.entries()[i].path);
    return out;
}

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

CKPT_INLINE void reorder(const char* src, char* dst, const shape& s, std::size_t elem, bool src_column_major) {
    const std::size_t rank = s.rank();
    std::uint64_t row_major[shape::max_rank], column_major[shape::max_rank];
    for (std::uint64_t i = rank, stride = 1; i-- > 0; stride *= s[i]) row_major[i] = stride;
    for (std::uint64_t i = 0, stride = 1; i < rank; stride *= s[i], ++i) column_major[i] = stride;
    const std::uint64_t* src_stride = src_column_major ? column_major : row_major;
    const std::uint64_t* dst_stride = src_column_major ? row_major : column_major;
    std::uint64_t index[shape::max_rank] = {};
    std::uint64_t src_off = 0, dst_off = 0;
    for (std::uint64_t k = 0, n = s.elements(); k < n; ++k) {
        std::memcpy(dst + dst_off * elem, src + src_off * elem, elem);
        for (std::size_t i = rank; i-- > 0;) {
            if (++index[i] < s[i]) {
                src_off += src_stride[i];
                dst_off += dst_stride[i];
                break;
            }
            src_off -= src_stride[i] * (s[i] - 1);
            dst_off -= dst_stride[i] * (s[i] - 1);
            index[i] = 0;
        }
    }
}

CKPT_INLINE void check_bools(const restore_source& file, const entry_info& e, const char* bytes, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i)
        if (static_cast<unsigned char>(bytes[i]) > 1)
            throw corrupt_error("bool tensor holds a byte that is neither 0 nor 1", file.path(), e.path);
}

CKPT_INLINE void read_tensor_bytes(restore_source& file, const entry_info& e, void* memory, std::size_t rank,
                                   bool column_major, std::size_t element_size, bool bools,
                                   file_reader::read_buffer* buffer) {
    auto* dest = static_cast<char*>(memory);
    auto read = [&](char* into) {
        if (buffer)
            file.read_part(e, 0, e.length, into, *buffer);
        else
            file.read_block(e, into);
    };
    if (!needs_reorder(e, rank, column_major)) {
        read(dest);
    } else {
        std::unique_ptr<char[]> staging(new char[static_cast<std::size_t>(e.length)]);
        read(staging.get());
        reorder(staging.get(), dest, e.shape, element_size, e.column_major);
    }
    if (bools) check_bools(file, e, dest, e.length);
}

CKPT_INLINE std::size_t restore_read_threads() noexcept {
    // Asked once: glibc reads /sys for it.
    static const std::size_t threads = [] {
        const unsigned n = std::thread::hardware_concurrency();  // 0 when unknown
        return n == 0 ? std::size_t{1} : std::min<std::size_t>(n, 4);
    }();
    return threads;
}

CKPT_INLINE void read_staged(restore_plan_core& plan, bool one_thread) {
    struct part {
        std::size_t read;
        std::uint64_t lo, hi;
    };
    restore_source& file = plan.source;
    const std::vector<restore_plan_core::staged_read> reads = std::move(plan.staged_reads);
    plan.staged_reads.clear();
    const std::uint64_t bytes = plan.staged_bytes, fresh = plan.fresh_bytes;
    plan.staged_bytes = plan.fresh_bytes = 0;
    populate_pages(plan.fresh_pages);  // on this thread: faults on several measured slower
    plan.fresh_pages.clear();
    if (reads.empty()) return;
    constexpr std::uint64_t parallel_min_bytes = std::uint64_t{16} << 20, per_thread = std::uint64_t{8} << 20,
                            part_bytes = std::uint64_t{4} << 20;
    std::size_t threads = 1;
    if (!one_thread && plan.read_threads > 1 && bytes >= parallel_min_bytes && fresh <= bytes / 8)
        threads = static_cast<std::size_t>(std::min<std::uint64_t>(plan.read_threads, bytes / per_thread));
    std::vector<part> parts;
    parts.reserve(reads.size());
    for (std::size_t i = 0; i < reads.size(); ++i) {
        const entry_info& e = *reads[i].entry;
        const std::uint64_t unit = file.part_size(e);
        if (threads == 1 || unit == 0 || needs_reorder(e, reads[i].rank, reads[i].column_major)) {
            parts.push_back({i, 0, e.length});
            continue;
        }
        const std::uint64_t step = (part_bytes + unit - 1) / unit * unit;
        for (std::uint64_t lo = 0; lo < e.length; lo += step) parts.push_back({i, lo, std::min(lo + step, e.length)});
    }

    auto read_one = [&](const part& p, file_reader::read_buffer& buffer) {
        const restore_plan_core::staged_read& r = reads[p.read];
        const entry_info& e = *r.entry;
        // As in restore_walker::visit: a failure of another type is the entry's.
        try {
            if (p.lo == 0 && p.hi == e.length) {
                read_tensor_bytes(file, e, r.memory, r.rank, r.column_major, r.element_size, r.bools, &buffer);
            } else {
                char* dest = static_cast<char*>(r.memory);
                file.read_part(e, p.lo, p.hi, dest, buffer);
                if (r.bools) check_bools(file, e, dest + p.lo, p.hi - p.lo);
            }
        } catch (const error&) {
            throw;
        } catch (const std::bad_alloc&) {
            throw corrupt_error("decoding the saved value asked for more memory than there is", file.path(), e.path);
        } catch (const std::exception& x) {
            throw corrupt_error(std::string("decoding the saved value failed: ") + x.what(), file.path(), e.path);
        }
    };
    // Parts are taken in order; after a failure only the parts before it are still read, so the
    // first failing part in order is always found.
    std::atomic<std::size_t> next{0}, failed{parts.size()};
    std::mutex mutex;
    std::exception_ptr failure;
    auto work = [&]() noexcept {
        std::unique_ptr<file_reader::read_buffer> buffer;
        for (;;) {
            const std::size_t i = next.fetch_add(1);
            if (i >= parts.size() || i > failed.load()) return;
            try {
                if (!buffer) buffer = std::make_unique<file_reader::read_buffer>();
                read_one(parts[i], *buffer);
            } catch (...) {
                const std::lock_guard<std::mutex> lock(mutex);
                if (i < failed.load()) {
                    failed.store(i);
                    failure = std::current_exception();
                }
            }
        }
    };
    std::vector<std::thread> helpers;
    try {
        helpers.reserve(threads - 1);
        while (helpers.size() + 1 < threads) helpers.emplace_back(work);
    } catch (...) {  // fewer helpers: this thread reads more
    }
    work();
    for (auto& t : helpers) t.join();
    if (failure) std::rethrow_exception(failure);
}

CKPT_INLINE void boxed_step::apply() {
    ops.swap(target, ops.value(*box));
    out[slot] = std::move(box);
}

CKPT_INLINE void read_step::apply() {
    if (ops.shape_of(target) != entry.shape) ops.resize(target, entry.shape);
    read_tensor(file, entry, target, ops);
}

CKPT_INLINE bool count_fits_text(std::string_view text) {
    auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
    std::size_t i = 0;
    while (i < text.size() && is_space(text[i])) ++i;
    std::uint64_t count = 0;
    const auto [p, ec] = std::from_chars(text.data() + i, text.data() + text.size(), count);
    if (ec != std::errc()) return false;
    std::uint64_t tokens = 0;
    bool in_token = false;
    for (const char* c = p; c != text.data() + text.size(); ++c) {
        if (is_space(*c))
            in_token = false;
        else if (!in_token) {
            in_token = true;
            ++tokens;
        }
    }
    return count <= tokens;
}

CKPT_INLINE void restore_walker::fields(const erased_field<restore_walker>* list, std::size_t n) {
    walk_erased_fields(*this, path_, list, n);
}

CKPT_INLINE void restore_walker::rethrow_as_corrupt(const entry_info& e) const {
    try {
        throw;
    } catch (const error&) {
        throw;
    } catch (const std::bad_alloc&) {
        throw corrupt_error("decoding the saved value asked for more memory than there is", plan_.source.path(),
                            e.path);
    } catch (const std::exception& x) {
        throw corrupt_error(std::string("decoding the saved value failed: ") + x.what(), plan_.source.path(), e.path);
    }
}

CKPT_INLINE void restore_walker::count_problem(std::uint64_t in_file, std::uint64_t in_object, bool fixed) {
    std::string what =
        "checkpoint has " + std::to_string(in_file) + " elements, object holds " + std::to_string(in_object);
    if (!fixed)
        what +=
            " (a non-empty container must match the file; clear it to take the file's size, or restore with "
            "ckpt::partial)";
    problem(std::move(what));
}

CKPT_INLINE void restore_walker::keys_problem(std::size_t in_file, std::size_t in_object,
                                              const std::vector<std::string>& only_file,
                                              const std::vector<std::string>& only_object) {
    auto list = [](const std::vector<std::string>& ks) {
        std::string s;
        for (std::size_t i = 0; i < ks.size() && i < 10; ++i) s += (i ? ", '" : "'") + ks[i] + "'";
        if (ks.size() > 10) s += ", ...";
        return s;
    };
    std::string what =
        "checkpoint has " + std::to_string(in_file) + " elements, object holds " + std::to_string(in_object);
    if (!only_file.empty()) what += "; keys only in the checkpoint: " + list(only_file);
    if (!only_object.empty()) what += "; keys only in the object: " + list(only_object);
    problem(what +
            " (a non-empty map must match the file; clear it to take the file's keys, or restore with ckpt::partial)");
}

CKPT_INLINE void restore_walker::too_many_elements(const entry_info& e, bool entryless) const {
    const std::uint64_t n = e.shape[0];
    if (entryless)
        throw corrupt_error(
            "sequence claims " + std::to_string(n) + " elements of a struct with no fields, more than a save writes",
            plan_.source.path(), e.path);
    throw corrupt_error("sequence claims " + std::to_string(n) + " elements, more than the file has entries",
                        plan_.source.path(), e.path);
}

CKPT_INLINE void restore_walker::missing() {
    if (plan_.partial) return plan_.missing.push_back(path_);
    // Suggestions cost a pass over the index each: only for the problems an error message shows.
    problem("not found in the checkpoint" +
            (plan_.problems.size() < 20 ? suggest_path(path_, plan_.source.entries()) : std::string()));
}

CKPT_INLINE bool restore_walker::kind_is(const entry_info& e, entry_kind k, const std::string& object) {
    if (e.kind == k) return true;
    problem("checkpoint has " + describe(e) + ", object is " + object);
    return false;
}

CKPT_INLINE void restore_walker::out_of_memory(const entry_info& e) const {
    throw error(
        "not enough memory to stage " + std::to_string(e.length) + " bytes for the restore (ckpt::in_place needs none)",
        plan_.source.path(), e.path);
}

CKPT_INLINE void restore_walker::read_staged_tensor(const entry_info& e, void* obj, const tensor_ops& ops) {
    if (plan_.read_threads == 0) return read_tensor(plan_.source, e, obj, ops);
    plan_.staged_reads.push_back({&e, ops.data(obj), ops.rank, ops.column_major, ops.element_size, ops.bools});
    plan_.staged_bytes += e.length;
}

CKPT_INLINE bool restore_walker::tensor_leaf(void* obj, const tensor_ops& ops, const entry_info& e) {
    if (e.kind != entry_kind::tensor || e.dtype != ops.type || e.shape.rank() != ops.rank ||
        !ops.accepts(obj, e.shape)) {
        problem("checkpoint has " + describe(e) + ", object has " + dtype_name(ops.type) + " " +
                ops.shape_of(obj).to_string());
        return true;
    }
    if (!reading()) return true;
    if (direct_) {
        if (ops.shape_of(obj) != e.shape) ops.resize(obj, e.shape);
        read_tensor(plan_.source, e, obj, ops);
        return true;
    }
    if (!ops.bools && plan_.in_place) {
        stage(new read_step(plan_.source, e, obj, ops));
        return true;
    }
    if (!ops.new_box) return false;
    // A block of a page or more is staged in a box that reuses the storage a previous restore
    // swapped out of this object, when it has the shape (see spare_storage).
    if (e.length >= spare_min_bytes) {
        const std::size_t slot = plan_.boxed;
        std::unique_ptr<spare_storage::item> box = plan_.spares ? plan_.spares->take(slot, ops.tag) : nullptr;
        if (box && ops.shape_of(ops.value(*box)) != e.shape) box.reset();  // freed before we allocate
        try {
            if (!box) {
                box.reset(ops.new_box());
                if (ops.shape_of(ops.value(*box)) != e.shape) {
                    ops.resize(ops.value(*box), e.shape);
                    void* fresh = ops.data(ops.value(*box));
                    // Filled next. Read after the walk: its pages are populated with the others.
                    advise_fresh_buffer(fresh, to_size(e.length), plan_.read_threads == 0);
                    if (plan_.read_threads != 0) {
                        plan_.fresh_pages.push_back(page_interior(fresh, to_size(e.length)));
                        plan_.fresh_bytes += e.length;
                    }
                }
            }
        } catch (const std::bad_alloc&) {
            out_of_memory(e);
        }
        if (ops.shape_of(ops.value(*box)) == e.shape) {
            // Staged before it is read: the plan owns the box by then, so a read collected for
            // later (read_staged) never outlives the memory it goes to.
            void* value = ops.value(*box);
            ++plan_.boxed;
            stage(new boxed_step(obj, ops, std::move(box), plan_.swapped_out, slot));
            read_staged_tensor(e, value, ops);
            return true;
        }
    }
    std::unique_ptr<spare_storage::item> value;
    try {
        value.reset(ops.new_box());
        if (ops.shape_of(ops.value(*value)) != e.shape) ops.resize(ops.value(*value), e.shape);
    } catch (const std::bad_alloc&) {
        out_of_memory(e);
    }
    if (ops.shape_of(ops.value(*value)) == e.shape) {
        read_tensor(plan_.source, e, ops.value(*value), ops);
        stage(new staged_step(obj, ops, std::move(value)));
        return true;
    }
    return false;
}

}  // namespace ckpt::detail
#endif  // CKPT_HEADER_DEFINITIONS
