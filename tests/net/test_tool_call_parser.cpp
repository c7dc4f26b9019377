// The split of a choice's text into content and tool calls (net/tool_call_parser.hpp): the same
// result whether the text arrives at once or byte by byte, the markup never in the content, and
// what is not a call given back as the model wrote it.
#include <catch2/catch.hpp>

#include "net/tool_call_parser.hpp"

using namespace troupe::net;

namespace {

tool_call_options chatml() {
  tool_call_options o;
  o.enabled = true;
  o.open = "<tool_call>";
  o.close = "</tool_call>";
  o.names = {"get_weather", "add"};
  return o;
}

// The whole text fed in pieces of `step` bytes, then finished.
tool_call_parser::output parse_in_steps(std::string_view text, std::size_t step) {
  tool_call_parser p(chatml());
  tool_call_parser::output all;
  auto take = [&](tool_call_parser::output o) {
    all.content += o.content;
    for (auto& c : o.calls) all.calls.push_back(std::move(c));
  };
  for (std::size_t i = 0; i < text.size(); i += step) take(p.feed(text.substr(i, step)));
  take(p.finish());
  CHECK(p.num_calls() == all.calls.size());
  return all;
}

}  // namespace

TEST_CASE("calls are found whole or byte by byte, and the markup never reaches the content") {
  const std::string text =
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, "
      "\"b\": 2}}\n</tool_call>\n";
  for (std::size_t step : {text.size(), std::size_t{1}, std::size_t{3}, std::size_t{7}}) {
    INFO("step " << step);
    auto out = parse_in_steps(text, step);
    CHECK(out.content == "Let me check.");
    REQUIRE(out.calls.size() == 2);
    CHECK(out.calls[0].name == "get_weather");
    CHECK(out.calls[0].arguments == R"({"city":"Paris"})");
    CHECK(out.calls[1].name == "add");
    CHECK(out.calls[1].arguments == R"({"a":1,"b":2})");
    CHECK(out.calls[0].id.rfind("call_", 0) == 0);
    CHECK(out.calls[0].id.size() == 29);
    CHECK(out.calls[0].id != out.calls[1].id);
  }
}

TEST_CASE("a text with no call is all content, whitespace and near-markers included") {
  for (std::string text : {"Hello there.  ", "a < b and <tool_ca", "  \n", "<tool</tool_call>"}) {
    INFO(text);
    for (std::size_t step : {text.size(), std::size_t{1}}) {
      auto out = parse_in_steps(text, step);
      CHECK(out.content == text);
      CHECK(out.calls.empty());
    }
  }
}

TEST_CASE("markup around something that is not a call goes back to the content verbatim") {
  for (std::string text :
       {"<tool_call>\nnot json\n</tool_call>", "<tool_call>{\"name\": \"rm\", \"arguments\": {}}</tool_call>",
        "<tool_call>{\"name\": \"add\", \"arguments\": \"1, 2\"}</tool_call>",
        "<tool_call>[1, 2]</tool_call>"}) {
    INFO(text);
    auto out = parse_in_steps(text, 1);
    CHECK(out.content == text);
    CHECK(out.calls.empty());
  }
}

TEST_CASE("a call the choice ended inside counts when its JSON is complete, else is dropped") {
  for (std::size_t step : {std::size_t{1}, std::size_t{100}}) {
    auto cut = parse_in_steps("x <tool_call>\n{\"name\": \"add\", \"arguments\": {\n  \"a\": ", step);
    CHECK(cut.content == "x");
    CHECK(cut.calls.empty());
  }
  auto out = parse_in_steps("<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}", 2);
  CHECK(out.content.empty());
  REQUIRE(out.calls.size() == 1);
  CHECK(out.calls[0].arguments == R"({"a":1})");
}

TEST_CASE("text after a call is content; whitespace around calls is not") {
  auto out = parse_in_steps(
      "  <tool_call>{\"name\": \"add\", \"arguments\": {}}</tool_call>\n\nDone. \n", 1);
  REQUIRE(out.calls.size() == 1);
  CHECK(out.content == "Done.");
}

TEST_CASE("parse_tool_call_body reads one call to a known tool") {
  parsed_tool_call c;
  CHECK(parse_tool_call_body(R"( {"arguments": {"x": [1, {"y": null}]}, "name": "add"} )",
                             {"add"}, c));
  CHECK(c.name == "add");
  CHECK(c.arguments == R"({"x":[1,{"y":null}]})");
  CHECK_FALSE(parse_tool_call_body(R"({"name": "add"})", {"add"}, c));
  CHECK_FALSE(parse_tool_call_body(R"({"name": "add", "arguments": {}})", {"sub"}, c));
  CHECK_FALSE(parse_tool_call_body(R"({"name": "add", "arguments": {}} trailing)", {"add"}, c));
}

TEST_CASE("stream_arguments: a call goes out as it is written, header first, then pieces") {
  auto o = chatml();
  o.stream_arguments = true;
  const std::string text =
      "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": {\"x\": 1}, \"b\": \"}\"}}\n"
      "</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>";
  for (std::size_t step : {std::size_t{1}, std::size_t{4}, text.size()}) {
    INFO("step " << step);
    tool_call_parser p(o);
    std::vector<tool_call_delta> deltas;
    std::string content;
    auto take = [&](tool_call_parser::output out) {
      CHECK(out.calls.empty());
      content += out.content;
      for (auto& d : out.deltas) deltas.push_back(std::move(d));
    };
    for (std::size_t i = 0; i < text.size(); i += step) take(p.feed(std::string_view(text).substr(i, step)));
    take(p.finish());
    CHECK(content.empty());
    REQUIRE(p.num_calls() == 2);
    std::string args[2];
    int headers = 0;
    for (const auto& d : deltas) {
      REQUIRE(d.index < 2);
      if (!d.id.empty()) {
        ++headers;
        CHECK(d.name == (d.index == 0 ? "add" : "get_weather"));
        CHECK(d.arguments.empty());
        CHECK(args[d.index].empty());  // the header comes first
      }
      args[d.index] += d.arguments;
    }
    CHECK(headers == 2);
    CHECK(args[0] == R"({"a": {"x": 1}, "b": "}"})");
    CHECK(args[1] == "{}");
    if (step == 1) CHECK(deltas.size() > 4);  // pieces, not one whole call
  }
}

TEST_CASE("stream_arguments: a call in another form is reported whole; a cut one as far as it "
          "went") {
  auto o = chatml();
  o.stream_arguments = true;
  tool_call_parser p(o);
  auto out = p.feed("<tool_call>{\"arguments\": {\"a\": 1}, \"name\": \"add\"}</tool_call>");
  REQUIRE(out.calls.size() == 1);
  CHECK(out.calls[0].arguments == R"({"a":1})");
  CHECK(out.deltas.empty());

  tool_call_parser cut(o);
  auto first = cut.feed("<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1");
  auto last = cut.finish();
  REQUIRE(first.deltas.size() == 2);
  CHECK(first.deltas[0].name == "add");
  CHECK(first.deltas[1].arguments == "{\"a\": 1");
  CHECK(last.deltas.empty());
  CHECK(last.content.empty());
}
