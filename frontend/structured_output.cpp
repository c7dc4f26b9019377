#include "frontend/structured_output.hpp"

#include <fmt/format.h>

#include "grammar/grammar_rules.hpp"
#include "grammar/json_schema_gbnf.hpp"
#include "grammar/regex_gbnf.hpp"

namespace troupe::frontend {
namespace {

using net::invalid_json;
using net::invalid_parameter;

namespace od = simdjson::ondemand;

api_error bad(std::string_view param, std::string message) {
  return invalid_parameter(std::string(param), std::move(message));
}

std::optional<api_error> schema_grammar(std::string_view param, std::string_view schema_json,
                                        std::string& gbnf) {
  auto g = json_schema_gbnf(schema_json);
  if (!g) return bad(param, g.message());
  // The converter's output always parses, except where the schema itself is circular with no
  // way out ({"$ref": "#"}): the parser names that as left recursion.
  if (auto rules = parse_gbnf(*g); !rules) return bad(param, "json_schema: " + rules.message());
  gbnf = std::move(g).value();
  return {};
}

std::optional<api_error> read_response_format(od::value v, std::string& gbnf) {
  constexpr std::string_view param = "response_format";
  od::object obj;
  if (v.get_object().get(obj)) return bad(param, "'response_format' must be an object");
  std::string type;
  std::string schema;
  bool has_schema = false;
  for (auto f : obj) {
    od::field field;
    if (std::move(f).get(field)) return invalid_json("malformed response_format");
    std::string_view key;
    if (field.unescaped_key().get(key)) return invalid_json("malformed response_format");
    if (key == "type") {
      std::string_view t;
      if (field.value().get_string().get(t)) return bad(param, "'response_format.type' must be a string");
      type = t;
    } else if (key == "json_schema") {
      od::object js;
      if (field.value().get_object().get(js)) {
        return bad(param, "'response_format.json_schema' must be an object");
      }
      for (auto jf : js) {
        od::field jfield;
        if (std::move(jf).get(jfield)) return invalid_json("malformed response_format.json_schema");
        std::string_view jkey;
        if (jfield.unescaped_key().get(jkey)) return invalid_json("malformed response_format");
        if (jkey == "schema") {
          std::string_view raw;
          od::object schema_obj;
          if (jfield.value().get_object().get(schema_obj) || schema_obj.raw_json().get(raw)) {
            return bad(param, "'response_format.json_schema.schema' must be an object");
          }
          schema = raw;
          has_schema = true;
        } else if (jkey != "name" && jkey != "strict" && jkey != "description") {
          return bad(param, fmt::format("'response_format.json_schema.{}' is not supported", jkey));
        }
      }
    } else {
      return bad(param, fmt::format("'response_format.{}' is not supported", key));
    }
  }
  if (type == "text") return {};
  if (type == "json_object") {
    gbnf = json_object_gbnf();
    return {};
  }
  if (type == "json_schema") {
    if (!has_schema) return bad(param, "'response_format.json_schema.schema' is required");
    return schema_grammar(param, schema, gbnf);
  }
  return bad(param, fmt::format("response_format type '{}' is not supported (text, json_object, "
                                "json_schema)", type));
}

}  // namespace

bool is_structured_output_field(std::string_view key) {
  return key == "response_format" || key == "grammar" || key == "structured_outputs" ||
         key.rfind("guided_", 0) == 0;
}

namespace {

// The readers shared by vLLM's flat names (guided_json ...) and the members of its newer
// `structured_outputs` object; `param` is what a 400 names ("guided_json",
// "structured_outputs.json").
std::optional<api_error> read_schema(std::string_view param, od::value v, std::string& gbnf) {
  od::json_type t;
  if (v.type().get(t)) return invalid_json("malformed value of '" + std::string(param) + "'");
  std::string_view raw;
  if (t == od::json_type::string) {
    if (v.get_string().get(raw)) return bad(param, fmt::format("'{}' must be a schema", param));
  } else {
    od::object schema_obj;
    if (v.get_object().get(schema_obj) || schema_obj.raw_json().get(raw)) {
      return bad(param, fmt::format("'{}' must be a schema (an object, or a string holding one)",
                                    param));
    }
  }
  return schema_grammar(param, raw, gbnf);
}

std::optional<api_error> read_grammar(std::string_view param, od::value v, std::string& gbnf) {
  std::string_view text;
  if (v.get_string().get(text)) return bad(param, fmt::format("'{}' must be a string (GBNF)", param));
  if (auto rules = parse_gbnf(text); !rules) return bad(param, rules.message());
  gbnf = text;
  return {};
}

std::optional<api_error> read_regex(std::string_view param, od::value v, std::string& gbnf) {
  std::string_view pattern;
  if (v.get_string().get(pattern)) {
    return bad(param, fmt::format("'{}' must be a string (a regular expression)", param));
  }
  auto g = regex_gbnf(pattern);
  if (!g) {  // "regex: at offset 3: ..." -> "guided_regex: at offset 3: ..."
    constexpr std::string_view prefix = "regex: ";
    const std::string& m = g.message();
    return bad(param, std::string(param) + ": " +
                          (m.rfind(prefix, 0) == 0 ? m.substr(prefix.size()) : m));
  }
  // The translation bounds its own size; the parser bounds the expanded grammar.
  if (auto rules = parse_gbnf(*g); !rules) return bad(param, "regex: " + rules.message());
  gbnf = std::move(g).value();
  return {};
}

std::optional<api_error> read_choice(std::string_view param, od::value v, std::string& gbnf) {
  const std::string must = fmt::format("'{}' must be an array of strings", param);
  od::array arr;
  if (v.get_array().get(arr)) return bad(param, must);
  std::string alts;
  for (auto item : arr) {
    std::string_view s;
    if (item.get_string().get(s)) return bad(param, must);
    alts += (alts.empty() ? "" : " | ") + gbnf_literal(s);
  }
  if (alts.empty()) return bad(param, fmt::format("'{}' must not be empty", param));
  gbnf = "root ::= " + alts + "\n";
  return {};
}

// vLLM >= 0.10's `structured_outputs`: {"json"|"regex"|"choice"|"grammar"|"json_object": ...},
// exactly one constraint, plus options that change nothing here.
std::optional<api_error> read_structured_outputs(od::value v, std::string& gbnf) {
  constexpr std::string_view param = "structured_outputs";
  od::object obj;
  if (v.get_object().get(obj)) return bad(param, "'structured_outputs' must be an object");
  int constraints = 0;
  for (auto f : obj) {
    od::field field;
    if (std::move(f).get(field)) return invalid_json("malformed structured_outputs");
    std::string_view key;
    if (field.unescaped_key().get(key)) return invalid_json("malformed structured_outputs");
    const std::string name = "structured_outputs." + std::string(key);
    od::value value = field.value();
    od::json_type t;
    if (value.type().get(t)) return invalid_json("malformed " + name);
    if (t == od::json_type::null) continue;
    auto want_bool = [&](bool& b) -> std::optional<api_error> {
      if (value.get_bool().get(b)) return bad(name, fmt::format("'{}' must be a boolean", name));
      return {};
    };
    const bool is_constraint = key == "json" || key == "regex" || key == "choice" ||
                               key == "grammar" || key == "json_object";
    if (is_constraint && ++constraints > 1) {
      return bad(param, "only one of structured_outputs.json, .regex, .choice, .grammar and "
                        ".json_object may be given");
    }
    std::optional<api_error> e;
    if (key == "json") {
      e = read_schema(name, value, gbnf);
    } else if (key == "regex") {
      e = read_regex(name, value, gbnf);
    } else if (key == "choice") {
      e = read_choice(name, value, gbnf);
    } else if (key == "grammar") {
      e = read_grammar(name, value, gbnf);
    } else if (key == "json_object") {
      bool on = false;
      if ((e = want_bool(on))) return e;
      if (on) gbnf = json_object_gbnf();
      if (!on) --constraints;
    } else if (key == "disable_fallback" || key == "disable_additional_properties") {
      // No fallback engine to disable; schemas never generate unlisted properties here.
      bool ignored = false;
      e = want_bool(ignored);
    } else if (key == "disable_any_whitespace") {
      bool on = false;
      if ((e = want_bool(on))) return e;
      if (on) return bad(name, "'structured_outputs.disable_any_whitespace' is not supported "
                               "(JSON grammars here allow up to 20 blanks after punctuation)");
    } else {
      // whitespace_pattern, structural_tag and anything newer: not enforced, so not accepted.
      return bad(name, fmt::format("'{}' is not supported", name));
    }
    if (e) return e;
  }
  return {};
}

}  // namespace

std::optional<api_error> read_structured_output(std::string_view key, od::value v,
                                                std::string& gbnf) {
  od::json_type t;
  if (v.type().get(t)) return invalid_json("malformed value of '" + std::string(key) + "'");
  if (t == od::json_type::null) return {};
  if (!gbnf.empty()) {
    return bad(key, "only one of response_format, structured_outputs, guided_json, guided_regex, "
                    "guided_grammar, guided_choice and grammar may be given");
  }
  if (key == "response_format") return read_response_format(v, gbnf);
  if (key == "structured_outputs") return read_structured_outputs(v, gbnf);
  if (key == "guided_json") return read_schema(key, v, gbnf);
  if (key == "guided_regex") return read_regex(key, v, gbnf);
  if (key == "guided_grammar" || key == "grammar") return read_grammar(key, v, gbnf);
  if (key == "guided_choice") return read_choice(key, v, gbnf);
  return bad(key, fmt::format("'{}' is not supported", key));
}

}  // namespace troupe::frontend
