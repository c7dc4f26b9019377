#include <catch2/catch.hpp>

#include <set>

#include "net/request_id.hpp"

using namespace troupe::net;

TEST_CASE("a sane client request id is kept, anything else replaced by a fresh one") {
  CHECK(accept_or_make_request_id("trace-42.a_b:c") == "trace-42.a_b:c");
  CHECK(accept_or_make_request_id(std::string(64, 'x')) == std::string(64, 'x'));
  for (std::string bad : {std::string(), std::string(65, 'x'), std::string("a b"),
                          std::string("a\r\nSet-Cookie: x"), std::string("id\"x"),
                          std::string("event=forged")}) {
    INFO(bad);
    const auto id = accept_or_make_request_id(bad);
    CHECK(id != bad);
    CHECK(id.size() == 32);
    CHECK(is_sane_request_id(id));
  }
}

TEST_CASE("fresh request ids are 32 hex digits and do not repeat") {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    auto id = make_request_id();
    REQUIRE(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    REQUIRE(seen.insert(id).second);
  }
}
