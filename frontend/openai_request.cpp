#include "frontend/openai_request.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <simdjson.h>

#include "frontend/constraint_params.hpp"
#include "frontend/passive_params.hpp"
#include "frontend/python_json.hpp"
#include "frontend/tool_calling.hpp"

namespace troupe::frontend {

namespace {

namespace od = simdjson::ondemand;
using net::invalid_json;
using net::invalid_parameter;
using opt_error = std::optional<api_error>;

opt_error wrong_type(std::string_view param, std::string_view expected) {
  return invalid_parameter(std::string{param},
                           fmt::format("'{}' must be {}", param, expected));
}

// A simdjson failure while reading a field: a type or range mismatch is the client's choice of
// value (name the parameter); anything else means the text is not JSON at all.
opt_error read_failure(simdjson::error_code e, std::string_view param,
                       std::string_view expected) {
  if (e == simdjson::INCORRECT_TYPE || e == simdjson::NUMBER_OUT_OF_RANGE ||
      e == simdjson::NUMBER_ERROR)
    return wrong_type(param, expected);
  return invalid_json(simdjson::error_message(e));
}

// The field's JSON type; null fields are treated as absent by every reader below.
simdjson::error_code type_of(od::value& v, od::json_type& t) { return v.type().get(t); }

const char* json_type_name(od::json_type t) {
  switch (t) {
    case od::json_type::array: return "array";
    case od::json_type::object: return "object";
    case od::json_type::number: return "number";
    case od::json_type::string: return "string";
    case od::json_type::boolean: return "boolean";
    case od::json_type::null: return "null";
  }
  return "value";
}

opt_error read_bool(od::value v, std::string_view param, bool& out) {
  od::json_type t;
  if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
  if (t == od::json_type::null) return {};
  if (auto e = v.get_bool().get(out)) return read_failure(e, param, "a boolean");
  return {};
}

template <class Int>
opt_error read_int(od::value v, std::string_view param, Int& out, std::int64_t lo,
                   std::int64_t hi, bool* present = nullptr) {
  od::json_type t;
  if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
  if (t == od::json_type::null) return {};
  auto expected = fmt::format("an integer between {} and {}", lo, hi);
  std::int64_t x = 0;
  if (auto e = v.get_int64().get(x)) return read_failure(e, param, expected);
  if (x < lo || x > hi) return wrong_type(param, expected);
  out = static_cast<Int>(x);
  if (present) *present = true;
  return {};
}

opt_error read_double(od::value v, std::string_view param, double& out, double lo, double hi,
                      bool lo_open = false) {
  od::json_type t;
  if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
  if (t == od::json_type::null) return {};
  auto expected = fmt::format("a number {} {} and <= {}", lo_open ? ">" : ">=", lo, hi);
  double x = 0;
  if (auto e = v.get_double().get(x)) return read_failure(e, param, expected);
  if (!std::isfinite(x) || (lo_open ? x <= lo : x < lo) || x > hi)
    return wrong_type(param, expected);
  out = x;
  return {};
}

opt_error read_string(od::value v, std::string_view param, std::string& out) {
  od::json_type t;
  if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
  if (t == od::json_type::null) return {};
  std::string_view s;
  if (auto e = v.get_string().get(s)) return read_failure(e, param, "a string");
  out.assign(s);
  return {};
}

opt_error read_token_ids(od::array arr, std::string_view param, std::vector<std::int32_t>& out) {
  out.clear();  // a repeated key replaces the list, never appends to it (last one wins)
  std::size_t i = 0;
  for (auto item : arr) {
    od::value v;
    if (auto e = item.get(v)) return invalid_json(simdjson::error_message(e));
    std::int32_t id = 0;
    auto p = fmt::format("{}[{}]", param, i++);
    od::json_type t;
    if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
    if (t != od::json_type::number) return wrong_type(p, "a token id (integer >= 0)");
    if (auto err = read_int(v, p, id, 0, INT32_MAX)) return err;
    out.push_back(id);
  }
  return {};
}

opt_error read_stop(od::value v, std::vector<std::string>& out) {
  out.clear();
  od::json_type t;
  if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
  if (t == od::json_type::null) return {};
  if (t == od::json_type::string) {
    std::string s;
    if (auto err = read_string(v, "stop", s)) return err;
    if (s.empty()) return wrong_type("stop", "a non-empty string");
    out.push_back(std::move(s));
    return {};
  }
  if (t != od::json_type::array) return wrong_type("stop", "a string or an array of strings");
  od::array arr;
  if (auto e = v.get_array().get(arr)) return invalid_json(simdjson::error_message(e));
  std::size_t i = 0;
  for (auto item : arr) {
    od::value s;
    if (auto e = item.get(s)) return invalid_json(simdjson::error_message(e));
    auto p = fmt::format("stop[{}]", i++);
    std::string str;
    od::json_type st;
    if (auto e = type_of(s, st)) return invalid_json(simdjson::error_message(e));
    if (st != od::json_type::string) return wrong_type(p, "a string");
    if (auto err = read_string(s, p, str)) return err;
    if (str.empty()) return wrong_type(p, "a non-empty string");
    out.push_back(std::move(str));
  }
  if (out.size() > static_cast<std::size_t>(max_num_stop_strings))
    return invalid_parameter("stop", fmt::format("'stop' takes at most {} strings, got {}",
                                                 max_num_stop_strings, out.size()));
  return {};
}

opt_error read_logit_bias(od::value v, std::vector<std::pair<std::int32_t, float>>& out) {
  out.clear();
  od::json_type t;
  if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
  if (t == od::json_type::null) return {};
  if (t != od::json_type::object)
    return wrong_type("logit_bias", "an object mapping token ids to biases");
  od::object obj;
  if (auto e = v.get_object().get(obj)) return invalid_json(simdjson::error_message(e));
  for (auto f : obj) {
    std::string_view key;
    if (auto e = f.unescaped_key().get(key)) return invalid_json(simdjson::error_message(e));
    std::int32_t id = -1;
    auto [p, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (ec != std::errc{} || p != key.data() + key.size() || id < 0)
      return invalid_parameter("logit_bias",
                               fmt::format("'logit_bias' key '{}' is not a token id", key));
    double bias = 0;
    auto param = fmt::format("logit_bias[{}]", key);
    if (auto err = read_double(f.value(), param, bias, -100.0, 100.0)) return err;
    out.emplace_back(id, static_cast<float>(bias));
  }
  return {};
}

// The keys OpenAI documents for a message of `role` (accepting one is not implementing it: see
// docs/PARAMETERS.md "Inside messages"); anything else is answered as OpenAI answers it, unless
// the operator set server.ignore_unknown_fields.
bool is_documented_message_key(std::string_view role, std::string_view key) {
  if (key == "role" || key == "content") return true;
  if (role == "system" || role == "developer" || role == "user") return key == "name";
  if (role == "assistant") {
    return key == "name" || key == "refusal" || key == "tool_calls" || key == "function_call" ||
           key == "audio";
  }
  // `name` on a tool message is not in OpenAI's schema, but LangChain's ToolMessage sends it and
  // OpenAI accepts it, so refusing it would break bind_tools loops.
  if (role == "tool") return key == "tool_call_id" || key == "name";
  return true;  // an unknown role is refused by its own check
}

// OpenAI's own wording (its schema validator's), which names the object as "messages.0" or
// "messages.0.content.1"; `param` names the key itself ("messages[0].foo"), which OpenAI leaves
// null.
api_error unknown_field(const std::string& where, std::string_view key) {
  std::string dotted;
  for (char c : where) {
    if (c == '[') {
      dotted += '.';
    } else if (c != ']') {
      dotted += c;
    }
  }
  return invalid_parameter(where + "." + std::string(key),
                           fmt::format("Additional properties are not allowed ('{}' was "
                                       "unexpected) - '{}'", key, dotted));
}

opt_error read_content(od::value v, std::string_view param, std::string& out, bool& present,
                       bool reject_unknown) {
  od::json_type t;
  if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
  if (t == od::json_type::null) return {};
  present = true;
  if (t == od::json_type::string) return read_string(v, param, out);
  if (t != od::json_type::array) return wrong_type(param, "a string or an array of text parts");
  od::array arr;
  if (auto e = v.get_array().get(arr)) return invalid_json(simdjson::error_message(e));
  std::size_t i = 0;
  for (auto item : arr) {
    auto p = fmt::format("{}[{}]", param, i++);
    od::object part;
    if (auto e = item.get_object().get(part)) return read_failure(e, p, "an object");
    std::string type, text;
    bool has_text = false;
    for (auto f : part) {
      std::string_view key;
      if (auto e = f.unescaped_key().get(key)) return invalid_json(simdjson::error_message(e));
      if (key == "type") {
        if (auto err = read_string(f.value(), p + ".type", type)) return err;
      } else if (key == "text") {
        if (auto err = read_string(f.value(), p + ".text", text)) return err;
        has_text = true;
      } else if (reject_unknown && key != "image_url" && key != "input_audio" && key != "file" &&
                 key != "refusal") {
        // The other part types' own keys fall to the type check below (only text is supported).
        return unknown_field(p, key);
      }
    }
    if (type != "text" || !has_text)
      return invalid_parameter(p + ".type", fmt::format("'{}.type' must be \"text\" with a "
                                                        "'text' field; only text is supported", p));
    out += text;
  }
  return {};
}

// An assistant message's tool_calls: [{"id", "type": "function", "function": {"name",
// "arguments": "<JSON object text>"}}]. The arguments are kept as the template's `tojson`
// writes them (frontend/python_json.hpp).
opt_error read_tool_calls(od::value v, const std::string& param,
                          std::vector<chat_tool_call>& out) {
  out.clear();
  std::string_view raw;
  od::json_type t;
  if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
  if (t == od::json_type::null) return {};
  od::array arr;
  if (auto e = v.get_array().get(arr)) return read_failure(e, param, "an array of tool calls");
  if (auto e = arr.raw_json().get(raw)) return invalid_json(simdjson::error_message(e));
  simdjson::dom::parser parser;
  simdjson::dom::element calls;
  if (auto e = parser.parse(raw.data(), raw.size()).get(calls))
    return invalid_json(simdjson::error_message(e));
  std::size_t i = 0;
  simdjson::dom::array list;
  if (calls.get_array().get(list)) return wrong_type(param, "an array of tool calls");
  for (auto c : list) {
    const auto p = fmt::format("{}[{}]", param, i++);
    std::string_view id, type, name, arguments;
    if (c["id"].get_string().get(id)) return wrong_type(p + ".id", "a string");
    if (c["type"].get_string().get(type) || type != "function")
      return wrong_type(p + ".type", "\"function\"");
    if (c["function"]["name"].get_string().get(name))
      return wrong_type(p + ".function.name", "a string");
    if (c["function"]["arguments"].get_string().get(arguments))
      return wrong_type(p + ".function.arguments", "a string holding a JSON object");
    simdjson::dom::parser args_parser;
    simdjson::dom::element args;
    if (args_parser.parse(arguments.data(), arguments.size()).get(args) || !args.is_object())
      return wrong_type(p + ".function.arguments", "a string holding a JSON object");
    out.push_back({std::string(id), std::string(name), python_json_dumps(args)});
  }
  return {};
}

opt_error read_messages(od::value v, std::vector<chat_message>& out, bool reject_unknown) {
  out.clear();
  od::array arr;
  if (auto e = v.get_array().get(arr)) return read_failure(e, "messages", "an array of messages");
  std::size_t i = 0;
  for (auto item : arr) {
    auto p = fmt::format("messages[{}]", i++);
    od::object obj;
    if (auto e = item.get_object().get(obj)) return read_failure(e, p, "an object");
    chat_message m;
    bool has_role = false, has_content = false;
    std::vector<std::string> keys;  // checked against the role once it is known (any key order)
    for (auto f : obj) {
      std::string_view key;
      if (auto e = f.unescaped_key().get(key)) return invalid_json(simdjson::error_message(e));
      if (reject_unknown) keys.emplace_back(key);
      if (key == "role") {
        if (auto err = read_string(f.value(), p + ".role", m.role)) return err;
        has_role = true;
      } else if (key == "content") {
        if (auto err = read_content(f.value(), p + ".content", m.content, has_content,
                                    reject_unknown))
          return err;
      } else if (key == "tool_calls") {
        if (auto err = read_tool_calls(f.value(), p + ".tool_calls", m.tool_calls)) return err;
      } else if (key == "tool_call_id") {
        if (auto err = read_string(f.value(), p + ".tool_call_id", m.tool_call_id)) return err;
      }
    }
    static constexpr std::string_view roles[] = {"system", "user", "assistant", "tool",
                                                 "developer"};
    bool known = false;
    for (auto r : roles) known = known || m.role == r;
    if (!has_role || !known)
      return invalid_parameter(p + ".role", fmt::format("'{}.role' must be one of system, user, "
                                                        "assistant, tool, developer", p));
    for (const auto& key : keys) {
      if (!is_documented_message_key(m.role, key)) return unknown_field(p, key);
    }
    if (!has_content && m.role != "assistant")
      return invalid_parameter(p + ".content", fmt::format("'{}.content' is required", p));
    if (!m.tool_calls.empty() && m.role != "assistant")
      return invalid_parameter(p + ".tool_calls",
                               fmt::format("only assistant messages carry '{}.tool_calls'", p));
    if (m.role == "tool" && m.tool_call_id.empty())
      return invalid_parameter(p + ".tool_call_id",
                               fmt::format("'{}.tool_call_id' is required (the id of the call "
                                           "this result answers)",
                                           p));
    out.push_back(std::move(m));
  }
  if (out.empty()) return invalid_parameter("messages", "'messages' must not be empty");
  return {};
}

// An element of a JSON array and its type; a parse error is invalid JSON.
opt_error element_of(simdjson::simdjson_result<od::value> item, od::value& v, od::json_type& t) {
  if (auto e = item.get(v)) return invalid_json(simdjson::error_message(e));
  if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
  return {};
}

// Every prompt error names the parameter `prompt` (as OpenAI does); the message says where.
opt_error bad_prompt(std::string message) {
  return invalid_parameter("prompt", std::move(message));
}

// A JSON array of token ids at `where` ("prompt", "prompt[2]") into out; non-empty.
opt_error read_prompt_tokens(od::array arr, const std::string& where, std::vector<std::int32_t>& out) {
  std::size_t i = 0;
  for (auto item : arr) {
    od::value v;
    od::json_type t;
    if (auto e = element_of(item, v, t)) return e;
    std::int64_t id = -1;
    if (t != od::json_type::number || v.get_int64().get(id) || id < 0 || id > INT32_MAX)
      return bad_prompt(fmt::format("'{}[{}]' must be a token id (an integer >= 0)", where, i));
    out.push_back(static_cast<std::int32_t>(id));
    ++i;
  }
  if (out.empty()) return bad_prompt(fmt::format("'{}' must not be an empty array", where));
  return {};
}

// prompt: "text" | ["text", ...] | [id, ...] | [[id, ...], ...]. A batch holds one kind only.
opt_error read_prompt(od::value v, generation_request& r) {
  r.prompts.clear();
  od::json_type t;
  if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
  constexpr std::string_view expected =
      "'prompt' must be a string, an array of strings, an array of token ids, or an array of "
      "arrays of token ids";
  if (t == od::json_type::string) {
    completion_prompt p;
    if (auto err = read_string(v, "prompt", p.text)) return err;
    if (p.text.empty()) return bad_prompt("'prompt' must not be empty");
    r.prompts.push_back(std::move(p));
    return {};
  }
  if (t != od::json_type::array) return bad_prompt(std::string{expected});
  od::array arr;
  if (auto e = v.get_array().get(arr)) return invalid_json(simdjson::error_message(e));
  // The first element's type says which form the array is; every other element must match.
  std::optional<od::json_type> kind;
  completion_prompt ids;  // the [id, ...] form
  ids.is_tokens = true;
  std::size_t i = 0;
  for (auto item : arr) {
    od::value e0;
    od::json_type et;
    if (auto e = element_of(item, e0, et)) return e;
    if (!kind) {
      if (et != od::json_type::number && et != od::json_type::string &&
          et != od::json_type::array)
        return bad_prompt(std::string{expected});
      kind = et;
    }
    const auto where = fmt::format("prompt[{}]", i);
    if (et != *kind)
      return bad_prompt(fmt::format("'{}' is a {} but 'prompt[0]' is a {}: a prompt array holds "
                                    "one kind of element",
                                    where, json_type_name(et), json_type_name(*kind)));
    if (*kind != od::json_type::number &&
        r.prompts.size() >= static_cast<std::size_t>(max_num_prompts))
      return bad_prompt(fmt::format("'prompt' holds more than {} prompts; send several requests",
                                    max_num_prompts));
    if (et == od::json_type::number) {
      std::int64_t id = -1;
      if (e0.get_int64().get(id) || id < 0 || id > INT32_MAX)
        return bad_prompt(fmt::format("'{}' must be a token id (an integer >= 0)", where));
      ids.tokens.push_back(static_cast<std::int32_t>(id));
    } else if (et == od::json_type::string) {
      completion_prompt p;
      if (auto err = read_string(e0, where, p.text)) return err;
      if (p.text.empty()) return bad_prompt(fmt::format("'{}' must not be empty", where));
      r.prompts.push_back(std::move(p));
    } else {
      od::array inner;
      if (auto e = e0.get_array().get(inner)) return invalid_json(simdjson::error_message(e));
      completion_prompt p;
      p.is_tokens = true;
      if (auto err = read_prompt_tokens(inner, where, p.tokens)) return err;
      r.prompts.push_back(std::move(p));
    }
    ++i;
  }
  if (i == 0) return bad_prompt("'prompt' must not be an empty array");
  if (*kind == od::json_type::number) r.prompts.push_back(std::move(ids));
  return {};
}

opt_error read_stream_options(od::value v, generation_request& r) {
  od::json_type t;
  if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
  if (t == od::json_type::null) return {};
  od::object obj;
  if (auto e = v.get_object().get(obj)) return read_failure(e, "stream_options", "an object");
  for (auto f : obj) {
    std::string_view key;
    if (auto e = f.unescaped_key().get(key)) return invalid_json(simdjson::error_message(e));
    if (key == "include_usage") {
      if (auto err = read_bool(f.value(), "stream_options.include_usage", r.include_usage))
        return err;
    } else if (key == "include_obfuscation") {
      // OpenAI pads stream chunks against side channels on its network; a documented no-op.
      bool ignored = false;
      if (auto err = read_bool(f.value(), "stream_options.include_obfuscation", ignored))
        return err;
    } else if (key == "continuous_usage_stats") {
      if (auto err = read_bool(f.value(), "stream_options.continuous_usage_stats",
                               r.continuous_usage_stats))
        return err;
    }
  }
  return {};
}

// Fields both endpoints share. Returns true in *handled when the key was one of them.
opt_error read_common_field(std::string_view key, od::value v, generation_request& r,
                            bool& handled) {
  handled = true;
  if (key == "model") return read_string(v, "model", r.model);
  if (key == "max_tokens" || key == "max_completion_tokens") {
    std::int64_t m = 0;
    bool present = false;
    if (auto err = read_int(v, key, m, 1, INT32_MAX, &present)) return err;
    if (present) r.max_tokens = m;
    return {};
  }
  if (key == "min_tokens") return read_int(v, key, r.min_tokens, 0, INT32_MAX);
  if (key == "temperature") return read_double(v, key, r.temperature, 0.0, 2.0);
  if (key == "top_p") return read_double(v, key, r.top_p, 0.0, 1.0, true);
  if (key == "top_k") {
    if (auto err = read_int(v, key, r.top_k, -1, INT32_MAX)) return err;
    if (r.top_k < 0) r.top_k = 0;
    return {};
  }
  if (key == "min_p") return read_double(v, key, r.min_p, 0.0, 1.0);
  if (key == "seed") {
    std::int64_t s = 0;
    bool present = false;
    if (auto err = read_int(v, key, s, INT64_MIN, INT64_MAX, &present)) return err;
    if (present) r.seed = static_cast<std::uint64_t>(s);
    return {};
  }
  if (key == "n") return read_int(v, key, r.n, 1, max_n);
  if (key == "best_of") {
    // Refused rather than implemented: vLLM's V1 engine dropped it too, OpenAI keeps it only on
    // the legacy completions endpoint, and its one honest form (best_of candidates generated
    // to the end, n returned by cumulative logprob) cannot stream and costs best_of times the
    // compute of the answer. 1 (or null) is what every request gets anyway.
    std::int64_t best_of = 1;
    if (auto err = read_int(v, key, best_of, 1, INT32_MAX)) return err;
    if (best_of != 1)
      return invalid_parameter(
          "best_of", fmt::format("best_of = {} is not supported (only 1); ask for n "
                                 "completions and pick among them instead",
                                 best_of));
    return {};
  }
  if (key == "presence_penalty") return read_double(v, key, r.presence_penalty, -2.0, 2.0);
  if (key == "frequency_penalty") return read_double(v, key, r.frequency_penalty, -2.0, 2.0);
  if (key == "repetition_penalty")
    return read_double(v, key, r.repetition_penalty, 0.0, 2.0, true);
  if (key == "logit_bias") return read_logit_bias(v, r.logit_bias);
  if (key == "stop") return read_stop(v, r.stop);
  if (key == "stop_token_ids") {
    od::json_type t;
    if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
    if (t == od::json_type::null) return {};
    od::array arr;
    if (auto e = v.get_array().get(arr)) return read_failure(e, key, "an array of token ids");
    return read_token_ids(arr, key, r.stop_token_ids);
  }
  if (key == "stream") return read_bool(v, key, r.stream);
  if (key == "stream_options") return read_stream_options(v, r);
  if (key == "user") return read_string(v, key, r.user);
  if (key == "ignore_eos") return read_bool(v, key, r.ignore_eos);
  if (key == "skip_special_tokens") return read_bool(v, key, r.skip_special_tokens);
  if (key == "speculative_decoding") return read_bool(v, key, r.speculative_decoding);
  handled = false;
  return {};
}

// Runs `on_field(key, value)` over the top-level object of body, with JSON-level errors mapped.
template <class OnField>
opt_error for_each_field(std::string_view body, OnField&& on_field) {
  thread_local od::parser parser;
  simdjson::padded_string padded(body);
  od::document doc;
  if (auto e = parser.iterate(padded).get(doc)) return invalid_json(simdjson::error_message(e));
  // On-demand parsing stops after the root value; check once that nothing but whitespace
  // follows it, then rewind and walk the fields.
  std::string_view root;
  if (auto e = doc.raw_json().get(root)) return invalid_json(simdjson::error_message(e));
  std::size_t root_end = static_cast<std::size_t>(root.data() - padded.data()) + root.size();
  if (body.find_first_not_of(" \t\r\n", root_end) != std::string_view::npos)
    return invalid_json("trailing characters after the JSON object");
  doc.rewind();
  od::object obj;
  if (auto e = doc.get_object().get(obj)) {
    if (e == simdjson::INCORRECT_TYPE) return invalid_json("the body must be a JSON object");
    return invalid_json(simdjson::error_message(e));
  }
  for (auto f : obj) {
    od::field field;
    if (auto e = std::move(f).get(field)) return invalid_json(simdjson::error_message(e));
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return invalid_json(simdjson::error_message(e));
    if (auto err = on_field(key, field.value())) return err;
  }
  return {};
}

// The value's JSON text as the client wrote it (simdjson 3.0's value has no raw_json(): objects
// and arrays have, scalars are one token).
opt_error raw_json_of(od::value v, std::string_view& out) {
  od::json_type t;
  if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
  simdjson::error_code e = simdjson::SUCCESS;
  if (t == od::json_type::object) {
    od::object o;
    e = v.get_object().get(o);
    if (!e) e = o.raw_json().get(out);
  } else if (t == od::json_type::array) {
    od::array a;
    e = v.get_array().get(a);
    if (!e) e = a.raw_json().get(out);
  } else {
    out = v.raw_json_token();
  }
  if (e) return invalid_json(simdjson::error_message(e));
  while (!out.empty() && (out.back() == ' ' || out.back() == '\t' || out.back() == '\r' ||
                          out.back() == '\n'))
    out.remove_suffix(1);
  return {};
}

// A top-level field the endpoint's own reader did not take: a constraint parameter, a passive
// one (no-op or refused), or unknown (collected; the caller answers them all at once).
opt_error read_other_field(std::string_view key, od::value v, generation_request& r,
                           std::vector<std::string>& unknown) {
  if (const auto* c = find_constraint_param(key, r.kind)) {
    std::string_view raw;
    if (auto err = raw_json_of(v, raw)) return err;
    return c->read(raw, r);
  }
  if (const auto* p = find_passive_param(key, r.kind)) {
    std::string_view raw;
    if (auto err = raw_json_of(v, raw)) return err;
    return read_passive_param(*p, raw);
  }
  unknown.emplace_back(key);
  return {};
}

template <class T>
parsed<T> fail(api_error e) {
  parsed<T> p;
  p.error = std::move(e);
  return p;
}

}  // namespace

parsed<generation_request> parse_completion_request(std::string_view body,
                                                    const parse_options& options) {
  generation_request r;
  r.kind = endpoint_kind::completions;
  bool has_prompt = false;
  std::vector<std::string> unknown;
  std::int32_t logprobs = -1;
  auto err = for_each_field(body, [&](std::string_view key, od::value v) -> opt_error {
    bool handled = false;
    if (auto e = read_common_field(key, v, r, handled)) return e;
    if (handled) return {};
    if (key == "prompt") {
      has_prompt = true;
      return read_prompt(v, r);
    }
    if (key == "logprobs") return read_int(v, key, logprobs, 0, max_top_logprobs);
    if (key == "echo") return read_bool(v, key, r.echo);
    return read_other_field(key, v, r, unknown);
  });
  if (err) return fail<generation_request>(std::move(*err));
  if (!unknown.empty() && !options.ignore_unknown_fields)
    return fail<generation_request>(net::unrecognized_arguments(unknown));
  if (!has_prompt) return fail<generation_request>(invalid_parameter("prompt", "'prompt' is required"));
  if (logprobs >= 0) {
    r.logprobs = true;
    r.top_logprobs = logprobs;
  }
  return {std::move(r), {}};
}

parsed<generation_request> parse_chat_request(std::string_view body,
                                              const parse_options& options) {
  generation_request r;
  r.kind = endpoint_kind::chat;
  bool has_messages = false;
  std::vector<std::string> unknown;
  bool top_given = false;
  auto err = for_each_field(body, [&](std::string_view key, od::value v) -> opt_error {
    bool handled = false;
    if (auto e = read_common_field(key, v, r, handled)) return e;
    if (handled) return {};
    if (key == "messages") {
      has_messages = true;
      return read_messages(v, r.messages, !options.ignore_unknown_fields);
    }
    if (key == "logprobs") return read_bool(v, key, r.logprobs);
    if (key == "top_logprobs") return read_int(v, key, r.top_logprobs, 0, max_top_logprobs, &top_given);
    if (key == "add_generation_prompt") return read_bool(v, key, r.add_generation_prompt);
    return read_other_field(key, v, r, unknown);
  });
  if (err) return fail<generation_request>(std::move(*err));
  if (!unknown.empty() && !options.ignore_unknown_fields)
    return fail<generation_request>(net::unrecognized_arguments(unknown));
  if (!has_messages)
    return fail<generation_request>(invalid_parameter("messages", "'messages' is required"));
  if (top_given && r.top_logprobs > 0 && !r.logprobs)
    return fail<generation_request>(
        invalid_parameter("top_logprobs", "'top_logprobs' requires 'logprobs' to be true"));
  if (auto e = check_tool_calling(r)) return fail<generation_request>(std::move(*e));
  return {std::move(r), {}};
}

parsed<tokenize_request> parse_tokenize_request(std::string_view body) {
  tokenize_request r;
  bool has_prompt = false, has_messages = false;
  auto err = for_each_field(body, [&](std::string_view key, od::value v) -> opt_error {
    if (key == "model") return read_string(v, key, r.model);
    if (key == "prompt") {
      has_prompt = true;
      od::json_type t;
      if (auto e = type_of(v, t)) return invalid_json(simdjson::error_message(e));
      if (t != od::json_type::string) return wrong_type("prompt", "a string");
      return read_string(v, key, r.prompt);
    }
    if (key == "messages") {
      has_messages = true;
      return read_messages(v, r.messages, /*reject_unknown=*/false);  // vLLM's: ignores extras
    }
    if (key == "add_special_tokens") return read_bool(v, key, r.add_special_tokens);
    if (key == "add_generation_prompt") return read_bool(v, key, r.add_generation_prompt);
    return {};
  });
  if (err) return fail<tokenize_request>(std::move(*err));
  if (has_prompt == has_messages)
    return fail<tokenize_request>(
        invalid_parameter(has_prompt ? "messages" : "prompt",
                          "exactly one of 'prompt' and 'messages' is required"));
  r.is_chat = has_messages;
  return {std::move(r), {}};
}

parsed<detokenize_request> parse_detokenize_request(std::string_view body) {
  detokenize_request r;
  bool has_tokens = false;
  auto err = for_each_field(body, [&](std::string_view key, od::value v) -> opt_error {
    if (key == "model") return read_string(v, key, r.model);
    if (key == "tokens") {
      has_tokens = true;
      od::array arr;
      if (auto e = v.get_array().get(arr)) return read_failure(e, key, "an array of token ids");
      return read_token_ids(arr, key, r.tokens);
    }
    return {};
  });
  if (err) return fail<detokenize_request>(std::move(*err));
  if (!has_tokens) return fail<detokenize_request>(invalid_parameter("tokens", "'tokens' is required"));
  return {std::move(r), {}};
}

}  // namespace troupe::frontend
