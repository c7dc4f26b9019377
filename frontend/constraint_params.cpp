#include "frontend/constraint_params.hpp"

#include "frontend/structured_output.hpp"
#include "frontend/tool_calling.hpp"

#include <fmt/format.h>
#include <simdjson.h>

namespace troupe::frontend {

namespace {

using net::invalid_json;
using net::invalid_parameter;
using opt_error = std::optional<api_error>;

// The value as a DOM element (the readers are off the hot path: one small parse per parameter
// a client sends). The parser holds the element's storage, so each reader owns one.
opt_error parse_value(std::string_view raw, simdjson::dom::parser& parser,
                      simdjson::dom::element& out) {
  if (auto e = parser.parse(raw.data(), raw.size()).get(out))
    return invalid_json(simdjson::error_message(e));
  return {};
}

// null is the parameter's absence (the OpenAI SDKs send it for "not given" in places).
bool is_null(const simdjson::dom::element& v) { return v.is_null(); }

// The structured-output parameters (frontend/structured_output.hpp) read an on-demand value; the
// table hands raw JSON, so it is wrapped in an array, where any JSON value -- a scalar included --
// is an element the on-demand API can hand out.
template <const char* Name>
opt_error read_structured(std::string_view raw, generation_request& r) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string wrapped(std::string("[") + std::string(raw) + "]");
  simdjson::ondemand::document doc;
  if (auto e = parser.iterate(wrapped).get(doc)) return invalid_json(simdjson::error_message(e));
  simdjson::ondemand::array arr;
  if (auto e = doc.get_array().get(arr)) return invalid_json(simdjson::error_message(e));
  for (auto item : arr) {
    simdjson::ondemand::value v;
    if (auto e = item.get(v)) return invalid_json(simdjson::error_message(e));
    return read_structured_output(Name, v, r.grammar);
  }
  return invalid_json("empty value of '" + std::string(Name) + "'");
}

// The legacy function-calling parameters (OpenAI deprecated them for `tools` in 2023): "none"
// (and null) say no function is called, which is what happens; anything else is refused.
opt_error read_legacy_function_param(std::string_view name, std::string_view raw) {
  simdjson::dom::parser parser;
  simdjson::dom::element v;
  if (auto e = parse_value(raw, parser, v)) return e;
  if (is_null(v)) return {};
  std::string_view s;
  if (name == "function_call" && !v.get_string().get(s) && s == "none") return {};
  return invalid_parameter(
      std::string{name},
      fmt::format("'{}' (legacy function calling) is not supported; send 'tools' and "
                  "'tool_choice' instead",
                  name));
}
opt_error read_function_call(std::string_view raw, generation_request&) {
  return read_legacy_function_param("function_call", raw);
}
opt_error read_functions(std::string_view raw, generation_request&) {
  return read_legacy_function_param("functions", raw);
}

// vLLM's name of its constraint engine: one engine here, so any name (a string) is a no-op.
opt_error read_guided_decoding_backend(std::string_view raw, generation_request&) {
  simdjson::dom::parser parser;
  simdjson::dom::element v;
  if (auto e = parse_value(raw, parser, v)) return e;
  if (is_null(v) || v.is_string()) return {};
  return invalid_parameter("guided_decoding_backend", "'guided_decoding_backend' must be a string");
}

// vLLM's regex for the blanks between JSON tokens: not enforced (JSON grammars here allow up to
// 20 of [ \t\n] after punctuation), so anything but null is refused rather than ignored.
opt_error read_guided_whitespace_pattern(std::string_view raw, generation_request&) {
  simdjson::dom::parser parser;
  simdjson::dom::element v;
  if (auto e = parse_value(raw, parser, v)) return e;
  if (is_null(v)) return {};
  return invalid_parameter("guided_whitespace_pattern",
                           "'guided_whitespace_pattern' is not supported (JSON grammars here allow "
                           "up to 20 blanks of [ \\t\\n] after punctuation)");
}

constexpr char response_format[] = "response_format";
constexpr char structured_outputs[] = "structured_outputs";
constexpr char guided_json[] = "guided_json";
constexpr char guided_regex[] = "guided_regex";
constexpr char guided_choice[] = "guided_choice";
constexpr char guided_grammar[] = "guided_grammar";
constexpr char grammar[] = "grammar";

constexpr constraint_param table[] = {
    {response_format, read_structured<response_format>, true, true},
    {"tools", read_tools, true, false},
    {"tool_choice", read_tool_choice, true, false},
    {"functions", read_functions, true, false},
    {"function_call", read_function_call, true, false},
    {"parallel_tool_calls", read_parallel_tool_calls, true, false},
    {structured_outputs, read_structured<structured_outputs>, true, true},
    {guided_json, read_structured<guided_json>, true, true},
    {guided_regex, read_structured<guided_regex>, true, true},
    {guided_choice, read_structured<guided_choice>, true, true},
    {guided_grammar, read_structured<guided_grammar>, true, true},
    {"guided_decoding_backend", read_guided_decoding_backend, true, true},
    {"guided_whitespace_pattern", read_guided_whitespace_pattern, true, true},
    {grammar, read_structured<grammar>, true, true},
};

}  // namespace

std::span<const constraint_param> constraint_params() { return table; }

const constraint_param* find_constraint_param(std::string_view name, endpoint_kind kind) {
  for (const auto& p : table)
    if (p.name == name && (kind == endpoint_kind::chat ? p.on_chat : p.on_completions)) return &p;
  return nullptr;
}

}  // namespace troupe::frontend
