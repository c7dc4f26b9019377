// tools / tool_choice / parallel_tool_calls as the request parser reads them: what a request
// becomes, the 400s that name the parameter, and the grammar of a required or named call -- a
// call in the chat template's syntax whose arguments follow the function's parameters.
#include <catch2/catch.hpp>

#include "frontend/openai_request.hpp"
#include "frontend/tool_calling.hpp"
#include "grammar/grammar_automaton.hpp"
#include "grammar/grammar_rules.hpp"

using namespace troupe;
using namespace troupe::frontend;

namespace {

constexpr const char* weather_tool =
    R"({"type": "function", "function": {"name": "get_weather", "description": "Weather now",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"},
        "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"]}}})";
constexpr const char* add_tool =
    R"({"type": "function", "function": {"name": "add", "parameters": {"type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"], "additionalProperties": false}, "strict": true}})";

parsed<generation_request> chat(const std::string& extra) {
  return parse_chat_request(R"({"messages":[{"role":"user","content":"x"}],)" + extra + "}");
}

generation_request ok(const std::string& extra) {
  auto r = chat(extra);
  INFO(extra << " -> " << r.error.message);
  REQUIRE(r.ok());
  return *r.value;
}

api_error refused(const std::string& extra) {
  auto r = chat(extra);
  INFO(extra);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error.http_status == 400);
  return r.error;
}

std::string tools(std::initializer_list<const char*> ts) {
  std::string s = R"("tools": [)";
  for (auto t : ts) {
    if (s.back() != '[') s += ',';
    s += t;
  }
  s += ']';
  return s;
}

// Whether the grammar accepts the whole text.
bool accepts(const std::string& gbnf, std::string_view text) {
  auto rules = parse_gbnf(gbnf);
  if (!rules) FAIL(rules.message() << "\n" << gbnf);
  grammar_automaton a(std::move(*rules), grammar_limits{});
  auto s = a.next(a.initial_state(), text);
  return s >= 0 && a.is_accepting(s);
}

std::string call(std::string_view name, std::string_view args) {
  std::string s = "<tool_call>\n{\"name\": \"";
  s += name;
  s += "\", \"arguments\": ";
  s += args;
  s += "}\n</tool_call>";
  return s;
}

}  // namespace

TEST_CASE("tools are read, rendered as tojson writes them, and default tool_choice to auto") {
  auto r = ok(tools({weather_tool, add_tool}));
  REQUIRE(r.tools.size() == 2);
  CHECK(r.tools[0].name == "get_weather");
  CHECK(r.tools[1].name == "add");
  CHECK(r.tool_choice == tool_choice_mode::auto_call);
  CHECK(r.parallel_tool_calls);
  CHECK(r.grammar.empty());  // auto: parsed afterwards, never constrained
  CHECK(r.tools[1].rendered ==
        R"({"type": "function", "function": {"name": "add", "parameters": {"type": "object", )"
        R"("properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": )"
        R"(["a", "b"], "additionalProperties": false}, "strict": true}})");
  CHECK(parses_tool_calls(r));

  CHECK(ok(R"("n": 1)").tool_choice == tool_choice_mode::none);
  CHECK(ok(R"("tool_choice": "auto")").tool_choice == tool_choice_mode::auto_call);
  CHECK_FALSE(parses_tool_calls(ok(R"("tool_choice": "auto")")));  // no tools: nothing to call
  auto none = ok(tools({add_tool}) + R"(, "tool_choice": "none")");
  CHECK_FALSE(parses_tool_calls(none));
  auto named = ok(tools({weather_tool, add_tool}) +
                  R"(, "tool_choice": {"type": "function", "function": {"name": "add"}},
                       "parallel_tool_calls": false)");
  CHECK(named.tool_choice == tool_choice_mode::named);
  CHECK(named.tool_choice_name == "add");
  CHECK_FALSE(named.parallel_tool_calls);
}

TEST_CASE("bad tool parameters are 400s naming where") {
  struct bad {
    std::string extra;
    std::string param;
  };
  for (const auto& [extra, param] : {
           bad{R"("tools": {})", "tools"},
           bad{R"("tools": [3])", "tools[0]"},
           bad{R"("tools": [{"type": "code", "function": {"name": "f"}}])", "tools[0].type"},
           bad{R"("tools": [{"type": "function"}])", "tools[0].function"},
           bad{R"("tools": [{"type": "function", "function": {}}])", "tools[0].function.name"},
           bad{R"("tools": [{"type": "function", "function": {"name": "a b"}}])",
               "tools[0].function.name"},
           bad{R"("tools": [{"type": "function", "function": {"name": ""}}])",
               "tools[0].function.name"},
           bad{tools({add_tool, add_tool}), "tools[1].function.name"},
           bad{R"("tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}])",
               "tools[0].function.parameters"},
           bad{R"("tools": [{"type": "function", "function": {"name": "f", "parameters":
               {"type": "object", "properties": {"x": {"type": "array", "uniqueItems": true}}}}}])",
               "tools[0].function.parameters"},
           bad{R"("tools": [{"type": "function", "function": {"name": "f", "parameters":
               {"type": "wat"}}}])",
               "tools[0].function.parameters"},
           bad{R"("tools": [{"type": "function", "function": {"name": "f", "colour": 1}}])",
               "tools[0].function.colour"},
           bad{R"("tool_choice": "always")", "tool_choice"},
           bad{R"("tool_choice": {"type": "function"})", "tool_choice"},
           bad{R"("tool_choice": "required")", "tool_choice"},
           bad{R"("tool_choice": {"type": "function", "function": {"name": "add"}})",
               "tool_choice"},
           bad{tools({add_tool}) +
                   R"(, "tool_choice": {"type": "function", "function": {"name": "sub"}})",
               "tool_choice"},
           bad{tools({add_tool}) +
                   R"(, "tool_choice": "required", "response_format": {"type": "json_object"})",
               "tool_choice"},
           bad{R"("parallel_tool_calls": "yes")", "parallel_tool_calls"},
           bad{R"("functions": [{"name": "f"}])", "functions"},
           bad{R"("function_call": "auto")", "function_call"},
       }) {
    INFO(extra);
    auto e = refused(extra);
    CHECK(e.param == param);
  }
  // The parameters error carries the converter's message, which names the keyword.
  CHECK(refused(R"("tools": [{"type": "function", "function": {"name": "f", "parameters":
               {"type": "object", "properties": {"x": {"type": "array", "uniqueItems": true}}}}}])")
            .message.find("uniqueItems") != std::string::npos);
}

TEST_CASE("messages carry tool calls and tool results back") {
  auto r = parse_chat_request(R"({"messages": [
      {"role": "user", "content": "add 1 and 2"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "add", "arguments": "{\"a\":1,\"b\":\"\u00e9\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "3"}]})");
  INFO(r.error.message);
  REQUIRE(r.ok());
  const auto& m = r.value->messages;
  REQUIRE(m[1].tool_calls.size() == 1);
  CHECK(m[1].tool_calls[0].id == "call_1");
  CHECK(m[1].tool_calls[0].name == "add");
  CHECK(m[1].tool_calls[0].arguments == "{\"a\": 1, \"b\": \"\u00e9\"}");  // as tojson writes it
  CHECK(m[2].tool_call_id == "call_1");

  struct bad {
    const char* messages;
    const char* param;
  };
  for (auto [messages, param] : {
           bad{R"([{"role": "tool", "content": "3"}])", "messages[0].tool_call_id"},
           bad{R"([{"role": "user", "content": "x", "tool_calls": [{"id": "c", "type":
               "function", "function": {"name": "f", "arguments": "{}"}}]}])",
               "messages[0].tool_calls"},
           bad{R"([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
               "function": {"name": "f", "arguments": "not json"}}]}])",
               "messages[0].tool_calls[0].function.arguments"},
           bad{R"([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
               "function": {"name": "f", "arguments": {"a": 1}}}]}])",
               "messages[0].tool_calls[0].function.arguments"},
           bad{R"([{"role": "assistant", "tool_calls": [{"type": "function",
               "function": {"name": "f", "arguments": "{}"}}]}])",
               "messages[0].tool_calls[0].id"},
           bad{R"([{"role": "assistant", "tool_calls": {}}])", "messages[0].tool_calls"},
       }) {
    INFO(messages);
    auto e = parse_chat_request(std::string(R"({"messages": )") + messages + "}");
    REQUIRE_FALSE(e.ok());
    CHECK(e.error.param == param);
  }
}

TEST_CASE("the grammar of a required choice is a call to one of the tools, its arguments "
          "following the function's parameters") {
  auto r = ok(tools({weather_tool, add_tool}) + R"(, "tool_choice": "required")");
  const auto g = tool_call_grammar(r, "<tool_call>", "</tool_call>", "\n");
  CHECK(accepts(g, call("add", R"({"a": 1, "b": -2})")));
  CHECK(accepts(g, call("get_weather", R"({"city": "Paris", "unit": "celsius"})")));
  CHECK(accepts(g, call("add", R"({"a": 1, "b": 2})") + "\n" +
                       call("get_weather", R"({"city": "x", "unit": "fahrenheit"})")));
  CHECK_FALSE(accepts(g, call("add", R"({"a": 1})")));              // b is required
  CHECK_FALSE(accepts(g, call("add", R"({"a": 1, "b": 2.5})")));    // an integer
  CHECK_FALSE(accepts(g, call("get_weather", R"({"city": "x", "unit": "kelvin"})")));
  CHECK_FALSE(accepts(g, call("sub", R"({"a": 1, "b": 2})")));      // not a tool
  CHECK_FALSE(accepts(g, "Sure! " + call("add", R"({"a": 1, "b": 2})")));
  CHECK_FALSE(accepts(g, ""));
  std::string many;
  for (int i = 0; i < max_parallel_tool_calls + 1; ++i) {
    if (i) many += '\n';
    many += call("add", R"({"a": 1, "b": 2})");
  }
  CHECK_FALSE(accepts(g, many));  // bounded, so a weak model cannot loop on calls

  auto single = ok(tools({weather_tool, add_tool}) +
                   R"(, "tool_choice": "required", "parallel_tool_calls": false)");
  const auto g1 = tool_call_grammar(single, "<tool_call>", "</tool_call>", "\n");
  CHECK(accepts(g1, call("add", R"({"a": 1, "b": 2})")));
  CHECK_FALSE(accepts(g1, call("add", R"({"a": 1, "b": 2})") + "\n" +
                              call("add", R"({"a": 1, "b": 2})")));

  auto named = ok(tools({weather_tool, add_tool}) +
                  R"(, "tool_choice": {"type": "function", "function": {"name": "get_weather"}})");
  const auto gn = tool_call_grammar(named, "<tool_call>", "</tool_call>", "\n");
  CHECK(accepts(gn, call("get_weather", R"({"city": "Oslo", "unit": "celsius"})")));
  CHECK_FALSE(accepts(gn, call("add", R"({"a": 1, "b": 2})")));

  // A function without parameters takes an object.
  auto bare = ok(R"("tools": [{"type": "function", "function": {"name": "now"}}],
                   "tool_choice": "required")");
  CHECK(accepts(tool_call_grammar(bare, "<tool_call>", "</tool_call>", "\n"), call("now", "{}")));
}
