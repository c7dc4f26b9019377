#include "frontend/structured_output.hpp"

#include <fmt/format.h>

#include "grammar/grammar_rules.hpp"
#include "grammar/json_schema_gbnf.hpp"

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
  return key == "response_format" || key == "grammar" || key.rfind("guided_", 0) == 0;
}

std::optional<api_error> read_structured_output(std::string_view key, od::value v,
                                                std::string& gbnf) {
  od::json_type t;
  if (v.type().get(t)) return invalid_json("malformed value of '" + std::string(key) + "'");
  if (t == od::json_type::null) return {};
  if (!gbnf.empty()) {
    return bad(key, "only one of response_format, guided_json, guided_grammar and guided_choice "
                    "may be given");
  }
  if (key == "response_format") return read_response_format(v, gbnf);
  if (key == "guided_json") {
    std::string_view raw;
    if (t == od::json_type::string) {
      if (v.get_string().get(raw)) return bad(key, "'guided_json' must be a schema");
    } else {
      od::object schema_obj;
      if (v.get_object().get(schema_obj) || schema_obj.raw_json().get(raw)) {
        return bad(key, "'guided_json' must be a schema (an object, or a string holding one)");
      }
    }
    return schema_grammar(key, raw, gbnf);
  }
  if (key == "guided_grammar" || key == "grammar") {  // vLLM's name, llama.cpp's name
    std::string_view text;
    if (v.get_string().get(text))
      return bad(key, fmt::format("'{}' must be a string (GBNF)", key));
    if (auto rules = parse_gbnf(text); !rules) return bad(key, rules.message());
    gbnf = text;
    return {};
  }
  if (key == "guided_choice") {
    od::array arr;
    if (v.get_array().get(arr)) return bad(key, "'guided_choice' must be an array of strings");
    std::string alts;
    for (auto item : arr) {
      std::string_view s;
      if (item.get_string().get(s)) return bad(key, "'guided_choice' must be an array of strings");
      alts += (alts.empty() ? "" : " | ") + gbnf_literal(s);
    }
    if (alts.empty()) return bad(key, "'guided_choice' must not be empty");
    gbnf = "root ::= " + alts + "\n";
    return {};
  }
  return bad(key, fmt::format("'{}' is not supported", key));
}

}  // namespace troupe::net
