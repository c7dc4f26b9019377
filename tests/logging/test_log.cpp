#include <catch2/catch.hpp>

#include "logging/log.hpp"

using troupe::logging::format_line;

TEST_CASE("log lines are logfmt: bare simple values, quoted and escaped others") {
  CHECK(format_line("request.shed", {{"request_id", "abc-1"}, {"status", 429}, {"ok", false}}) ==
        "event=request.shed request_id=abc-1 status=429 ok=false");
  CHECK(format_line("x", {{"reason", "queue is full"}}) == "event=x reason=\"queue is full\"");
  CHECK(format_line("x", {{"v", ""}}) == "event=x v=\"\"");
  CHECK(format_line("x", {{"v", "a=b"}}) == "event=x v=\"a=b\"");
  CHECK(format_line("x", {{"v", std::string("say \"hi\"\\")}}) == "event=x v=\"say \\\"hi\\\"\\\\\"");
}

TEST_CASE("a value can never break a log line or hide text with control bytes") {
  CHECK(format_line("x", {{"v", "a\nevent=forged"}}) == "event=x v=\"a\\nevent=forged\"");
  CHECK(format_line("x", {{"v", std::string_view("\x1b[2J\r", 5)}}) == "event=x v=\"\\x1b[2J\\r\"");
}

TEST_CASE("integers keep their sign and width, doubles print shortest") {
  CHECK(format_line("x", {{"a", std::int64_t{-5}}, {"b", std::uint64_t{18446744073709551615u}},
                          {"c", 0.25}}) == "event=x a=-5 b=18446744073709551615 c=0.25");
}

TEST_CASE("level names parse; unknown names are refused") {
  troupe::logging::level l{};
  CHECK(troupe::logging::parse_level("warn", l));
  CHECK(l == troupe::logging::level::warn);
  CHECK_FALSE(troupe::logging::parse_level("verbose", l));
}
