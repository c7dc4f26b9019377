#include "frontend/passive_params.hpp"

#include <fmt/format.h>
#include <simdjson.h>

namespace troupe::frontend {

namespace {

using net::invalid_json;
using net::invalid_parameter;
namespace dom = simdjson::dom;

constexpr passive_param table[] = {
    // No-ops: bookkeeping on OpenAI's side, or a hint whose effect troupe has anyway.
    {"metadata", passive_kind::no_op, true, false},
    {"store", passive_kind::no_op, true, false},
    {"service_tier", passive_kind::no_op, true, false},
    {"safety_identifier", passive_kind::no_op, true, false},
    {"prompt_cache_key", passive_kind::no_op, true, false},
    {"prompt_cache_retention", passive_kind::no_op, true, false},
    {"prompt_cache_options", passive_kind::no_op, true, false},
    {"modalities", passive_kind::no_op, true, false},  // ["text"] only; "audio" is refused
    // Refused unless off: honouring them would change the answer, ignoring them would lie.
    {"audio", passive_kind::refused, true, false},
    {"prediction", passive_kind::refused, true, false},
    {"web_search_options", passive_kind::refused, true, false},
    {"moderation", passive_kind::refused, true, false},
    {"reasoning_effort", passive_kind::refused, true, false},
    {"verbosity", passive_kind::refused, true, false},
    {"continue_final_message", passive_kind::refused, true, false},  // vLLM
    {"suffix", passive_kind::refused, false, true},
};

// The JSON type a no-op must have (OpenAI checks it too).
enum class json_kind { string, boolean, object, array };

json_kind expected_kind(std::string_view name) {
  if (name == "metadata" || name == "prompt_cache_options") return json_kind::object;
  if (name == "store") return json_kind::boolean;
  if (name == "modalities") return json_kind::array;
  return json_kind::string;
}

bool has_kind(const dom::element& v, json_kind k) {
  switch (k) {
    case json_kind::string: return v.is_string();
    case json_kind::boolean: return v.is_bool();
    case json_kind::object: return v.is_object();
    case json_kind::array: return v.is_array();
  }
  return false;
}

const char* kind_name(json_kind k) {
  switch (k) {
    case json_kind::string: return "a string";
    case json_kind::boolean: return "a boolean";
    case json_kind::object: return "an object";
    case json_kind::array: return "an array";
  }
  return "a value";
}

// The value that asks for nothing: null for all; "" for suffix, false for
// continue_final_message.
bool is_off(std::string_view name, const dom::element& v) {
  if (v.is_null()) return true;
  if (name == "suffix") {
    std::string_view s;
    return !v.get_string().get(s) && s.empty();
  }
  if (name == "continue_final_message") {
    bool b = true;
    return !v.get_bool().get(b) && !b;
  }
  return false;
}

}  // namespace

const passive_param* find_passive_param(std::string_view name, endpoint_kind kind) {
  for (const auto& p : table)
    if (p.name == name && (kind == endpoint_kind::chat ? p.on_chat : p.on_completions)) return &p;
  return nullptr;
}

std::optional<api_error> read_passive_param(const passive_param& p, std::string_view raw) {
  dom::parser parser;
  dom::element v;
  if (auto e = parser.parse(raw.data(), raw.size()).get(v))
    return invalid_json(simdjson::error_message(e));
  const std::string name{p.name};
  if (p.kind == passive_kind::refused) {
    if (is_off(p.name, v)) return {};
    return invalid_parameter(name, fmt::format("'{}' is not supported by this server", name));
  }
  if (v.is_null()) return {};
  const auto k = expected_kind(p.name);
  if (!has_kind(v, k))
    return invalid_parameter(name, fmt::format("'{}' must be {}", name, kind_name(k)));
  if (p.name == "modalities") {
    dom::array arr;
    if (v.get_array().get(arr)) return invalid_parameter(name, "'modalities' must be an array");
    for (auto m : arr) {
      std::string_view s;
      if (m.get_string().get(s) || s != "text")
        return invalid_parameter(name, "'modalities' supports only \"text\" on this server");
    }
  }
  return {};
}

}  // namespace troupe::frontend
