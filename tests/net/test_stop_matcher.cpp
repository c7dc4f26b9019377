#include <catch2/catch.hpp>

#include "net/stop_matcher.hpp"

using troupe::net::stop_matcher;

namespace {
// Feeds pieces and returns everything emitted plus whether a stop matched.
std::pair<std::string, bool> run(std::vector<std::string> stops, std::vector<std::string> pieces) {
  stop_matcher m(std::move(stops));
  std::string out;
  for (auto& p : pieces) {
    auto o = m.feed(p);
    out += o.text;
    if (o.stopped) return {out, true};
  }
  out += m.flush();
  return {out, false};
}
}  // namespace

TEST_CASE("a stop string inside one token is cut and never emitted") {
  auto [text, stopped] = run({"END"}, {"hello ", "wEND more", "after"});
  CHECK(stopped);
  CHECK(text == "hello w");
}

TEST_CASE("a stop string split across tokens is detected and none of it leaks") {
  stop_matcher m({"</s>"});
  auto a = m.feed("abc<");
  CHECK(a.text == "abc");
  CHECK(!a.stopped);
  auto b = m.feed("/");
  CHECK(b.text.empty());
  auto c = m.feed("s>tail");
  CHECK(c.stopped);
  CHECK(c.text.empty());
  CHECK(m.feed("more").text.empty());
}

TEST_CASE("a false start is released once it can no longer become a stop string") {
  stop_matcher m({"abcd"});
  CHECK(m.feed("xab").text == "x");
  CHECK(m.feed("c").text.empty());
  auto o = m.feed("x");
  CHECK(o.text == "abcx");
  CHECK(!o.stopped);
}

TEST_CASE("overlapping prefixes keep the longest candidate suffix") {
  // "aab": after "aa" the held text must be "aa" (both "a" and "aa" are prefixes).
  auto [t1, s1] = run({"aab"}, {"x", "a", "a", "b"});
  CHECK(s1);
  CHECK(t1 == "x");
  auto [t2, s2] = run({"aab"}, {"a", "a", "a", "b"});
  CHECK(s2);
  CHECK(t2 == "a");
}

TEST_CASE("the earliest of several stop strings wins") {
  auto [text, stopped] = run({"world", "lo w"}, {"hello world"});
  CHECK(stopped);
  CHECK(text == "hel");
}

TEST_CASE("without a match, flush returns the held text so nothing is lost") {
  auto [text, stopped] = run({"STOP"}, {"all ", "good ", "ST"});
  CHECK(!stopped);
  CHECK(text == "all good ST");
}

TEST_CASE("multi-byte UTF-8 stop strings split inside a character") {
  auto [text, stopped] = run({"\xE2\x82\xAC"}, {"price: 5", "\xE2", "\x82", "\xAC", "!"});
  CHECK(stopped);
  CHECK(text == "price: 5");
}

TEST_CASE("no stop strings: everything passes straight through") {
  stop_matcher m({});
  CHECK(m.feed("abc").text == "abc");
  CHECK(m.held_bytes() == 0);
}
