// ckpt/inspection.hpp: what the ckpt tool is built on, tested directly.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

TEST_CASE("list_checkpoints: the manager's records, or a scan without a state file", "[inspection]") {
    const fs::path dir = "inspection_list";
    fs::remove_all(dir);
    std::int64_t step = 0;
    ckpt::checkpoint ck{ckpt::track("step", step)};
    {
        ckpt::checkpoint_manager mgr{ck, dir};
        mgr.save(5);
        mgr.save(7);
    }
    std::ofstream(dir / "notes.txt") << "not a checkpoint";
    auto rs = ckpt::list_checkpoints(dir);
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].name == "ckpt-5");
    CHECK(rs[1].step == 7);
    fs::remove(dir / "ckpt-state");
    rs = ckpt::list_checkpoints(dir);
    REQUIRE(rs.size() == 2);
    CHECK(rs[1].name == "ckpt-7");
    CHECK(ckpt::is_checkpoint_file(dir / "ckpt-5"));
    CHECK_FALSE(ckpt::is_checkpoint_file(dir / "notes.txt"));
    CHECK_FALSE(ckpt::is_checkpoint_file(dir / "missing"));
    CHECK(ckpt::list_checkpoints(dir / "missing").empty());
}

TEST_CASE("describe, convert_element_order, atomic_output", "[inspection]") {
    ckpt::entry_info e;
    e.kind = ckpt::entry_kind::tensor;
    e.dtype = ckpt::dtype::float32;
    e.shape = ckpt::shape{2, 3};
    CHECK(ckpt::describe(e) == "float32 " + e.shape.to_string());

    // Column-major 2x3 [[1 2 3] [4 5 6]] is 1 4 2 5 3 6.
    const std::vector<std::int32_t> col{1, 4, 2, 5, 3, 6};
    std::vector<std::int32_t> row(6);
    ckpt::convert_element_order(col.data(), row.data(), e.shape, sizeof(std::int32_t), true);
    CHECK(row == std::vector<std::int32_t>{1, 2, 3, 4, 5, 6});

    const fs::path file = "inspection_output.bin";
    fs::remove(file);
    {
        ckpt::atomic_output out(file);
        out.write_at(4, "cd", 2);
        out.write_at(0, "ab", 2);
        CHECK_FALSE(fs::exists(file));  // nothing under the final name before commit
        out.commit();
    }
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(bytes == std::string("ab\0\0cd", 6));
    {
        ckpt::atomic_output abandoned("inspection_abandoned.bin");
        abandoned.write_at(0, "x", 1);
    }
    CHECK_FALSE(fs::exists("inspection_abandoned.bin"));
}
