#include "frontend/tool_calling.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>

#include "frontend/python_json.hpp"
#include "grammar/grammar_rules.hpp"
#include "grammar/json_schema_gbnf.hpp"

namespace troupe::frontend {

namespace {

using net::invalid_json;
using net::invalid_parameter;
using opt_error = std::optional<api_error>;
namespace dom = simdjson::dom;

api_error bad(std::string param, std::string message) {
  return invalid_parameter(std::move(param), std::move(message));
}

bool valid_function_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
}

bool is_gbnf_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// Every rule name in `gbnf` with `prefix` in front, so that several converted schemas can live
// in one grammar. Literals, character classes, repetition counts and comments are copied as they
// are. REQUIRES: gbnf parses (it comes from json_schema_gbnf).
std::string prefix_rule_names(std::string_view gbnf, std::string_view prefix) {
  std::string out;
  out.reserve(gbnf.size() * 2);
  for (std::size_t i = 0; i < gbnf.size();) {
    const char c = gbnf[i];
    if (c == '"' || c == '[') {  // a literal or a class, with backslash escapes
      const char close = c == '"' ? '"' : ']';
      std::size_t j = i + 1;
      while (j < gbnf.size() && gbnf[j] != close) j += gbnf[j] == '\\' ? 2 : 1;
      out.append(gbnf.substr(i, j + 1 - i));
      i = j + 1;
    } else if (c == '{' || c == '#') {  // x{m,n}; a comment
      const std::size_t j = gbnf.find(c == '{' ? '}' : '\n', i);
      const std::size_t end = j == std::string_view::npos ? gbnf.size() : j + 1;
      out.append(gbnf.substr(i, end - i));
      i = end;
    } else if (is_gbnf_name_char(c)) {
      std::size_t j = i;
      while (j < gbnf.size() && is_gbnf_name_char(gbnf[j])) ++j;
      out.append(prefix).append(gbnf.substr(i, j - i));
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

opt_error read_function(dom::object fn, const std::string& where, tool_definition& t) {
  bool has_name = false;
  for (auto [key, value] : fn) {
    const std::string p = where + "." + std::string(key);
    if (key == "name") {
      std::string_view name;
      if (value.get_string().get(name) || !valid_function_name(name))
        return bad(p, fmt::format("'{}' must match ^[a-zA-Z0-9_-]{{1,64}}$", p));
      t.name = name;
      has_name = true;
    } else if (key == "description") {
      if (!value.is_string() && !value.is_null())
        return bad(p, fmt::format("'{}' must be a string", p));
    } else if (key == "parameters") {
      if (value.is_null()) continue;
      if (!value.is_object()) return bad(p, fmt::format("'{}' must be a JSON Schema object", p));
      t.parameters = simdjson::minify(value);
      auto g = json_schema_gbnf(t.parameters);
      if (!g) return bad(p, g.message());
      if (auto rules = parse_gbnf(*g); !rules) return bad(p, "json_schema: " + rules.message());
    } else if (key == "strict") {
      if (!value.is_bool() && !value.is_null())
        return bad(p, fmt::format("'{}' must be a boolean", p));
    } else {
      return bad(p, fmt::format("'{}' is not a field of a function", p));
    }
  }
  if (!has_name) return bad(where + ".name", fmt::format("'{}.name' is required", where));
  if (t.parameters.empty()) t.parameters = R"({"type":"object","properties":{}})";
  return {};
}

opt_error read_tool(dom::element v, const std::string& where, tool_definition& t) {
  dom::object obj;
  if (v.get_object().get(obj)) return bad(where, fmt::format("'{}' must be an object", where));
  std::string_view type;
  if (obj["type"].get_string().get(type) || type != "function")
    return bad(where + ".type", fmt::format("'{}.type' must be \"function\"", where));
  dom::object fn;
  if (obj["function"].get_object().get(fn))
    return bad(where + ".function", fmt::format("'{}.function' must be an object", where));
  for (auto [key, value] : obj)
    if (key != "type" && key != "function")
      return bad(where + "." + std::string(key),
                 fmt::format("'{}.{}' is not a field of a tool", where, key));
  if (auto e = read_function(fn, where + ".function", t)) return e;
  t.rendered = python_json_dumps(v);
  return {};
}

}  // namespace

opt_error read_tools(std::string_view raw, generation_request& r) {
  dom::parser parser;
  dom::element v;
  if (auto e = parser.parse(raw.data(), raw.size()).get(v)) return invalid_json(simdjson::error_message(e));
  r.tools.clear();  // a repeated key: the last one wins
  if (v.is_null()) return {};
  dom::array arr;
  if (v.get_array().get(arr)) return bad("tools", "'tools' must be an array of tools");
  if (arr.size() > static_cast<std::size_t>(max_tools))
    return bad("tools", fmt::format("'tools' holds at most {} tools", max_tools));
  std::size_t i = 0;
  for (auto item : arr) {
    const std::string where = fmt::format("tools[{}]", i++);
    tool_definition t;
    if (auto e = read_tool(item, where, t)) return e;
    for (const auto& other : r.tools)
      if (other.name == t.name)
        return bad(where + ".function.name",
                   fmt::format("two tools are named '{}'; function names must be unique", t.name));
    r.tools.push_back(std::move(t));
  }
  return {};
}

opt_error read_tool_choice(std::string_view raw, generation_request& r) {
  dom::parser parser;
  dom::element v;
  if (auto e = parser.parse(raw.data(), raw.size()).get(v)) return invalid_json(simdjson::error_message(e));
  r.tool_choice.reset();
  r.tool_choice_name.clear();
  if (v.is_null()) return {};
  constexpr std::string_view expected =
      "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", "
      "\"function\": {\"name\": ...}}";
  std::string_view s;
  if (!v.get_string().get(s)) {
    if (s == "none") r.tool_choice = tool_choice_mode::none;
    else if (s == "auto") r.tool_choice = tool_choice_mode::auto_call;
    else if (s == "required") r.tool_choice = tool_choice_mode::required;
    else return bad("tool_choice", std::string(expected));
    return {};
  }
  std::string_view type, name;
  if (!v.is_object() || v["type"].get_string().get(type) || type != "function" ||
      v["function"]["name"].get_string().get(name))
    return bad("tool_choice", std::string(expected));
  r.tool_choice = tool_choice_mode::named;
  r.tool_choice_name = name;
  return {};
}

opt_error read_parallel_tool_calls(std::string_view raw, generation_request& r) {
  dom::parser parser;
  dom::element v;
  if (auto e = parser.parse(raw.data(), raw.size()).get(v)) return invalid_json(simdjson::error_message(e));
  if (v.is_null()) return {};
  if (!v.is_bool()) return bad("parallel_tool_calls", "'parallel_tool_calls' must be a boolean");
  r.parallel_tool_calls = v.get_bool().value_unsafe();
  return {};
}

opt_error check_tool_calling(generation_request& r) {
  if (!r.tool_choice)
    r.tool_choice = r.tools.empty() ? tool_choice_mode::none : tool_choice_mode::auto_call;
  const auto mode = *r.tool_choice;
  if ((mode == tool_choice_mode::required || mode == tool_choice_mode::named) && r.tools.empty())
    return bad("tool_choice", "tool_choice requires 'tools' (a function to call)");
  if (mode == tool_choice_mode::named &&
      std::none_of(r.tools.begin(), r.tools.end(),
                   [&](const auto& t) { return t.name == r.tool_choice_name; }))
    return bad("tool_choice", fmt::format("tool_choice names function '{}', which is not among "
                                          "'tools'",
                                          r.tool_choice_name));
  // Both would be grammars over the whole output, and a call is not the response format.
  if ((mode == tool_choice_mode::required || mode == tool_choice_mode::named) &&
      !r.grammar.empty())
    return bad("tool_choice", "a required or named tool_choice cannot be combined with "
                              "response_format or guided_* (the output is the tool call)");
  return {};
}

bool parses_tool_calls(const generation_request& r) {
  return !r.tools.empty() && r.tool_choice && *r.tool_choice != tool_choice_mode::none;
}

std::string tool_call_grammar(const generation_request& r, std::string_view open,
                              std::string_view close, std::string_view separator) {
  std::string calls, rules;
  for (std::size_t i = 0; i < r.tools.size(); ++i) {
    const auto& t = r.tools[i];
    if (*r.tool_choice == tool_choice_mode::named && t.name != r.tool_choice_name) continue;
    auto schema = json_schema_gbnf(t.parameters);
    TROUPE_ASSERT(schema.ok());  // read_tools converted it once already
    const std::string prefix = fmt::format("f{}-", i);
    const std::string head = std::string(open) + "\n{\"name\": \"" + t.name + "\", \"arguments\": ";
    const std::string tail = "}\n" + std::string(close);
    rules += fmt::format("tc-f{} ::= {} {}root {}\n", i, gbnf_literal(head), prefix,
                         gbnf_literal(tail));
    rules += prefix_rule_names(*schema, prefix);
    calls += fmt::format("{}tc-f{}", calls.empty() ? "" : " | ", i);
  }
  std::string root = "root ::= tc-call";
  if (*r.tool_choice == tool_choice_mode::required && r.parallel_tool_calls)
    root += fmt::format(" ( {} tc-call ){{0,{}}}", gbnf_literal(separator),
                        max_parallel_tool_calls - 1);
  return root + "\ntc-call ::= " + calls + "\n" + rules;
}

}  // namespace troupe::frontend
