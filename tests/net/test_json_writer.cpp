#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "net/json_writer.hpp"
#include "net/sse.hpp"

using troupe::net::json_writer;

TEST_CASE("json_writer nests objects and arrays with commas in the right places") {
  json_writer w;
  w.begin_object()
      .field("a", 1)
      .key("b").begin_array().value(true).value(false).null().end_array()
      .key("c").begin_object().end_object()
      .field("d", "x")
      .end_object();
  CHECK(w.str() == R"({"a":1,"b":[true,false,null],"c":{},"d":"x"})");
}

TEST_CASE("json_writer escapes quotes, backslashes and control characters") {
  json_writer w;
  w.value(std::string_view{"q\"b\\n\nr\rt\t\x01\x1f\x7f", 13});
  CHECK(w.str() == R"("q\"b\\n\nr\rt\t\u0001\u001f\u007f")");
}

TEST_CASE("json_writer passes valid UTF-8 through and repairs invalid bytes") {
  json_writer a;
  a.value("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80");  // é € 😀
  CHECK(a.str() == "\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\"");

  json_writer b;  // a lone continuation byte, a truncated 3-byte sequence, an overlong '/'
  b.value(std::string_view{"a\x80" "b\xE2\x82" "c\xC0\xAF", 8});
  CHECK(b.str() == "\"a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD\"");

  json_writer c;  // a UTF-16 surrogate encoded in UTF-8 is not valid UTF-8
  c.value(std::string_view{"\xED\xA0\x80", 3});
  CHECK(c.str() == "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

TEST_CASE("json_writer writes numbers exactly and non-finite doubles as null") {
  json_writer w;
  w.begin_array()
      .value(0.1)
      .value(-2.5)
      .value(std::numeric_limits<double>::infinity())
      .value(-std::numeric_limits<double>::infinity())
      .value(std::nan(""))
      .value(std::int64_t{-9007199254740993})
      .value(std::uint64_t{18446744073709551615u})
      .value(1e300)
      .end_array();
  CHECK(w.str() == "[0.1,-2.5,null,null,null,-9007199254740993,18446744073709551615,1e+300]");
}

TEST_CASE("utf8_complete_prefix holds back only an incomplete trailing character") {
  using troupe::net::utf8_complete_prefix;
  CHECK(utf8_complete_prefix("abc") == 3);
  CHECK(utf8_complete_prefix("ab\xE2\x82") == 2);
  CHECK(utf8_complete_prefix("ab\xE2\x82\xAC") == 5);
  CHECK(utf8_complete_prefix("\xF0\x9F\x98") == 0);
  CHECK(utf8_complete_prefix("\xC3") == 0);
  CHECK(utf8_complete_prefix("") == 0);
}

TEST_CASE("SSE frames one data field per line and ends with [DONE]") {
  using troupe::net::sse_event;
  CHECK(sse_event(R"({"a":1})") == "data: {\"a\":1}\n\n");
  CHECK(sse_event("x\ny\r\nz") == "data: x\ndata: y\ndata: z\n\n");
  CHECK(troupe::net::sse_done == "data: [DONE]\n\n");
}
