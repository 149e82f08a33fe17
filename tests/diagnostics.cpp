// Messages that say what to do: a misspelt track name is answered with the nearest name the file has.

#include <ckpt/ckpt.hpp>
#include <ckpt/detail/suggest.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"

#include <type_traits>

namespace diag_models {
using ckpt_test::dense;
struct net {
    dense hidden, out;
};
CKPT_FIELDS(net, hidden, out)
}  // namespace diag_models

TEST_CASE("a strict restore with a misspelt track name suggests the name the file has", "[diagnostics]") {
    diag_models::net model;
    std::int64_t step = 3;
    ckpt::checkpoint ck{ckpt::track("model", model), ckpt::track("step", step)};
    const auto path = ck.write("diagnostics_suggest.ckpt");

    diag_models::net back;
    ckpt::checkpoint typo{ckpt::track("modle", back), ckpt::track("step", step)};
    CHECK_THROWS_WITH(typo.restore(path),
                      Catch::Contains("not found in the checkpoint (did you mean 'model/hidden/kernel'?)"));

    std::int64_t steps = 0;
    ckpt::checkpoint deep{ckpt::track("model", back), ckpt::track("steps", steps)};
    CHECK_THROWS_WITH(deep.restore(path), Catch::Contains("(did you mean 'step'?)"));
}

TEST_CASE("suggestions keep the matching prefix and stay quiet when nothing is close", "[diagnostics]") {
    std::vector<ckpt::entry_info> entries(3);
    entries[0].path = "model/hidden/kernel";
    entries[1].path = "model/out/kernel";
    entries[2].path = "optimizer/lr";
    CHECK(ckpt::detail::suggest_path("model/hiden/kernel", entries) == " (did you mean 'model/hidden/kernel'?)");
    CHECK(ckpt::detail::suggest_path("optimiser/lr", entries) == " (did you mean 'optimizer/lr'?)");
    CHECK(ckpt::detail::suggest_path("scheduler", entries).empty());
    CHECK(ckpt::detail::edit_distance("kitten", "sitting") == 3);
}

namespace {
template <class R, class = void>
struct can_call_entries : std::false_type {};
template <class R>
struct can_call_entries<R, std::void_t<decltype(std::declval<R>().entries())>> : std::true_type {};
}  // namespace

TEST_CASE("reference-returning reader accessors are refused on a temporary", "[diagnostics]") {
    STATIC_REQUIRE(can_call_entries<ckpt::reader&>::value);
    STATIC_REQUIRE(can_call_entries<const ckpt::reader&>::value);
    STATIC_REQUIRE_FALSE(can_call_entries<ckpt::reader>::value);
}
