// The rule for sizes (docs/guide.md), the same for every container kind: an empty container takes
// the file's size (and keys), a sized one must match it, else the restore throws mismatch_error
// naming the entry and both sizes and changes nothing. Containers stored as one entry (tensors,
// cereal values) follow it under ckpt::partial too; containers of structs, one entry per element,
// restore under ckpt::partial what both sides have and list the object's extra elements.

#include <ckpt/ckpt.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// Saves `saved` as "x", then restores it into `empty` (which must take it whole) and, strictly and
// partially, into `sized` (which must throw a mismatch naming "x" and `found`, and stay as it was).
template <class T>
void check_rule(const std::string& kind, const T& saved, T empty, T sized, const std::string& found) {
    INFO(kind);
    const fs::path dir = "sizes_" + std::to_string(std::hash<std::string>{}(kind));  // test cases run in parallel
    const auto file = [&] {
        T copy = saved;
        ckpt::checkpoint ck{ckpt::track("x", copy)};
        return ck.write(dir / "ckpt");
    }();

    ckpt::checkpoint takes{ckpt::track("x", empty)};
    takes.restore(file).assert_consumed();
    CHECK(empty == saved);

    const T before = sized;
    ckpt::checkpoint must_match{ckpt::track("x", sized)};
    for (auto mode : {ckpt::strict, ckpt::partial}) {
        try {
            must_match.restore(file, mode);
            FAIL("a sized " << kind << " of another size was restored");
        } catch (const ckpt::mismatch_error& e) {
            CHECK(e.entry() == "x");
            CHECK_THAT(e.what(), Catch::Contains(found));
        }
        CHECK(sized == before);
    }
    fs::remove_all(dir);
}

}  // namespace

TEST_CASE("tensors: an empty one takes the file's shape, a sized one must match, strict or partial", "[sizes]") {
    check_rule("std::vector<float>", std::vector<float>{1, 2, 3}, {}, std::vector<float>(5, 0.5f),
               "checkpoint has float32 [3], object has float32 [5]");
    check_rule<Eigen::MatrixXf>("Eigen::MatrixXf", Eigen::MatrixXf::Constant(2, 3, 1.5f), Eigen::MatrixXf(),
                                Eigen::MatrixXf::Zero(3, 3), "checkpoint has float32 [2,3], object has float32 [3,3]");
    check_rule<Eigen::VectorXd>("Eigen::VectorXd", Eigen::VectorXd::Constant(4, 2.0), Eigen::VectorXd(),
                                Eigen::VectorXd::Zero(2), "checkpoint has float64 [4], object has float64 [2]");
}

TEST_CASE("fixed-size tensors are always sized: they must match", "[sizes]") {
    fs::remove_all("sizes_fixed");
    Eigen::Matrix3f m = Eigen::Matrix3f::Identity();
    std::array<float, 3> a{1, 2, 3};
    std::vector<float> v{1, 2, 3, 4};
    ckpt::checkpoint ck{ckpt::track("m", m), ckpt::track("a", a), ckpt::track("v", v)};
    const auto file = ck.write("sizes_fixed/ckpt");

    Eigen::Matrix3f same = Eigen::Matrix3f::Zero();
    std::array<float, 3> same_a{};
    ckpt::checkpoint back{ckpt::track("m", same), ckpt::track("a", same_a)};
    back.restore(file, ckpt::partial);
    CHECK(same == m);
    CHECK(same_a == a);

    // The file's 4 floats as "v" into a 3-element array, and its 3x3 matrix into a 2x2 one.
    Eigen::Matrix2f small = Eigen::Matrix2f::Zero();
    std::array<float, 3> three{};
    ckpt::checkpoint other{ckpt::track("m", small), ckpt::track("v", three)};
    for (auto mode : {ckpt::strict, ckpt::partial}) {
        try {
            other.restore(file, mode);
            FAIL("a fixed-size object of another size was restored");
        } catch (const ckpt::mismatch_error& e) {
            CHECK_THAT(e.what(), Catch::Contains("checkpoint has float32 [3,3], object has float32 [2,2]") &&
                                     Catch::Contains("checkpoint has float32 [4], object has float32 [3]"));
        }
        CHECK(small == Eigen::Matrix2f::Zero());
        CHECK(three == std::array<float, 3>{});
    }
}

TEST_CASE("containers stored as one cereal value follow the rule, strict or partial", "[sizes]") {
    check_rule("std::vector<std::string>", std::vector<std::string>{"a", "b", "c"}, {},
               std::vector<std::string>(5, "x"), "checkpoint has 3 elements, object holds 5");
    check_rule("std::map<std::string, float>", std::map<std::string, float>{{"lr", 0.1f}, {"wd", 0.01f}}, {},
               std::map<std::string, float>{{"lr", 1.0f}}, "checkpoint has 2 elements, object holds 1");
    check_rule("std::map<std::string, float>, other keys", std::map<std::string, float>{{"lr", 0.1f}}, {},
               std::map<std::string, float>{{"momentum", 0.9f}},
               "checkpoint has 1 elements, object holds 1 with other keys");
    check_rule("std::set<int>", std::set<int>{1, 2, 3}, {}, std::set<int>{7},
               "checkpoint has 3 elements, object holds 1");
    check_rule("std::vector<bool>", std::vector<bool>{true, false}, {}, std::vector<bool>(3, true),
               "checkpoint has 2 elements, object holds 3");
}

TEST_CASE("containers with an entry per element follow the rule, and partial restores what both sides have",
          "[sizes]") {
    fs::remove_all("sizes_elements");
    std::vector<Eigen::MatrixXf> moments{Eigen::MatrixXf::Constant(2, 3, 1), Eigen::MatrixXf::Constant(3, 1, 2)};
    std::map<std::string, Eigen::VectorXf> heads{{"en", Eigen::VectorXf::Constant(2, 3)}};
    ckpt::checkpoint ck{ckpt::track("moments", moments), ckpt::track("heads", heads)};
    const auto file = ck.write("sizes_elements/ckpt");

    std::vector<Eigen::MatrixXf> m;
    std::map<std::string, Eigen::VectorXf> h;
    ckpt::checkpoint takes{ckpt::track("moments", m), ckpt::track("heads", h)};
    takes.restore(file).assert_consumed();
    CHECK(m == moments);
    CHECK(h == heads);

    std::vector<Eigen::MatrixXf> three{Eigen::MatrixXf::Zero(2, 3), Eigen::MatrixXf::Zero(3, 1),
                                       Eigen::MatrixXf::Zero(1, 1)};
    std::map<std::string, Eigen::VectorXf> other{{"fr", Eigen::VectorXf::Zero(2)}};
    const auto three_before = three;
    ckpt::checkpoint sized{ckpt::track("moments", three), ckpt::track("heads", other)};
    try {
        sized.restore(file);
        FAIL("sized containers of another size were restored");
    } catch (const ckpt::mismatch_error& e) {
        CHECK_THAT(e.what(), Catch::Contains("'moments': checkpoint has 2 elements, object holds 3") &&
                                 Catch::Contains("keys only in the object: 'fr'"));
    }
    CHECK(three == three_before);
    CHECK(other.count("fr") == 1);

    // Partial: each element is an entry of its own, so the ones both sides have are restored and
    // the object's extra ones are kept and listed as missing.
    const auto status = sized.restore(file, ckpt::partial);
    CHECK(three[0] == moments[0]);
    CHECK(three[1] == moments[1]);
    CHECK(three[2] == three_before[2]);
    CHECK(status.missing() == std::vector<std::string>{"moments/2", "heads/fr"});
}
