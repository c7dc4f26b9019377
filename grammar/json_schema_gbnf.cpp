// The converter walks the schema (simdjson DOM, which keeps the order of properties) and emits
// one GBNF rule per object, array and $defs entry; scalar types become shared rules.
#include "grammar/json_schema_gbnf.hpp"

#include <simdjson.h>

#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "grammar/number_range_gbnf.hpp"
#include "grammar/regex_gbnf.hpp"

namespace troupe {
namespace {

namespace dom = simdjson::dom;
using grammar_detail::integer_range_gbnf;
using grammar_detail::number_range_gbnf;

constexpr size_t max_schema_bytes = 256 * 1024;
constexpr size_t max_schema_depth = 64;

// The shared rules every generated grammar carries.
const char* const common_rules = R"(ws ::= [ \t\n]{0,20}
json-char ::= [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" ( [0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ) )
json-string ::= "\"" json-char* "\""
json-integer ::= "-"? ( "0" | [1-9] [0-9]{0,15} )
json-number ::= json-integer ( "." [0-9]{1,15} )? ( [eE] [-+]? [0-9]{1,2} )?
json-boolean ::= "true" | "false"
json-null ::= "null"
json-value ::= json-object | json-array | json-string | json-number | json-boolean | json-null
json-object ::= "{" ws ( json-string ws ":" ws json-value ws ( "," ws json-string ws ":" ws json-value ws )* )? "}"
json-array ::= "[" ws ( json-value ws ( "," ws json-value ws )* )? "]"
)";

// A JSON string literal of `text` (what a schema's property name looks like in the output).
std::string json_quoted(std::string_view text) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (b < 0x20) {
      out += "\\u00";
      out += hex[b >> 4];
      out += hex[b & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_pointer_escape(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// Thrown inside the converter only (deep recursion makes threading a result through every call
// noisy); json_schema_gbnf() turns it into an error value.
struct schema_failure {
  std::string message;
};

class schema_converter {
 public:
  explicit schema_converter(dom::element root) : root_(root) {}

  std::string run() {
    const std::string body = visit(root_, "", "root-value", 0);
    std::string out = "root ::= " + body + "\n";
    for (const auto& [name, rule] : rules_) out += name + " ::= " + rule + "\n";
    return out + common_rules;
  }

 private:
  [[noreturn]] void refuse(const std::string& path, const std::string& what) {
    throw schema_failure{"json_schema: " + (path.empty() ? std::string("/") : path) + ": " + what};
  }

  std::string new_rule_name(std::string_view hint) {
    std::string base;
    for (char c : hint) {
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        base += c;
      } else if (!base.empty() && base.back() != '-') {
        base += '-';
      }
      if (base.size() >= 24) break;
    }
    if (base.empty()) base = "value";
    return "s-" + base + "-" + std::to_string(++num_rules_);
  }

  std::string add_rule(std::string_view hint, std::string body) {
    const std::string name = new_rule_name(hint);
    rules_.emplace_back(name, std::move(body));
    return name;
  }

  std::string literal_of(dom::element v) { return gbnf_literal(simdjson::minify(v)); }

  std::string visit(dom::element schema, const std::string& path, const std::string& hint,
                    size_t depth) {
    if (depth > max_schema_depth) refuse(path, "nesting deeper than 64 levels");
    bool b;
    if (schema.get_bool().get(b) == simdjson::SUCCESS) {
      if (!b) refuse(path, "the schema 'false' accepts nothing");
      return "json-value";
    }
    dom::object obj;
    if (schema.get_object().get(obj) != simdjson::SUCCESS) {
      refuse(path, "a schema must be an object or a boolean");
    }
    static const std::set<std::string_view> annotations = {
        "title", "description", "default", "examples", "$schema", "$id", "$comment",
        "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "strict", "name"};
    static const std::set<std::string_view> type_keywords = {
        "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
        "minLength", "maxLength", "format", "pattern", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "uniqueItems"};
    std::map<std::string_view, dom::element> kw;
    for (auto field : obj) {
      const std::string_view key = field.key;
      if (annotations.count(key)) continue;
      if (!type_keywords.count(key) && key != "enum" && key != "const" && key != "anyOf" &&
          key != "oneOf" && key != "allOf" && key != "$ref") {
        refuse(path, "'" + std::string(key) + "' is not supported");
      }
      kw.emplace(key, field.value);
    }
    auto only = [&](std::string_view name) {
      for (const auto& [k, v] : kw) {
        if (k != name) refuse(path, "'" + std::string(k) + "' next to '" + std::string(name) +
                                        "' is not supported");
      }
    };
    if (auto it = kw.find("$ref"); it != kw.end()) {
      only("$ref");
      return visit_ref(it->second, path, depth);
    }
    if (auto it = kw.find("const"); it != kw.end()) {
      only("const");
      return literal_of(it->second);
    }
    if (auto it = kw.find("enum"); it != kw.end()) {
      only("enum");
      dom::array values;
      if (it->second.get_array().get(values) != simdjson::SUCCESS || values.size() == 0) {
        refuse(path + "/enum", "must be a non-empty array");
      }
      std::string out = "(";
      bool first = true;
      for (auto v : values) {
        out += (first ? "" : " | ") + literal_of(v);
        first = false;
      }
      return out + ")";
    }
    for (std::string_view comb : {"anyOf", "oneOf", "allOf"}) {
      auto it = kw.find(comb);
      if (it == kw.end()) continue;
      only(comb);
      dom::array branches;
      const std::string sub = path + "/" + std::string(comb);
      if (it->second.get_array().get(branches) != simdjson::SUCCESS || branches.size() == 0) {
        refuse(sub, "must be a non-empty array");
      }
      if (comb == "allOf") {
        if (branches.size() != 1) refuse(sub, "allOf with more than one schema is not supported");
        return visit(branches.at(0).value(), sub + "/0", hint, depth + 1);
      }
      std::string out = "(";
      size_t i = 0;
      for (auto br : branches) {
        out += (i ? " | " : "") + visit(br, sub + "/" + std::to_string(i), hint, depth + 1);
        ++i;
      }
      return out + ")";
    }
    return visit_typed(kw, path, hint, depth);
  }

  std::string visit_ref(dom::element ref, const std::string& path, size_t depth) {
    std::string_view target;
    if (ref.get_string().get(target) != simdjson::SUCCESS) refuse(path + "/$ref", "must be a string");
    if (auto it = ref_rules_.find(std::string(target)); it != ref_rules_.end()) return it->second;
    dom::element resolved;
    std::string pointer;
    if (target == "#") {
      resolved = root_;
    } else if (target.rfind("#/", 0) == 0) {
      pointer = std::string(target.substr(1));
      if (root_.at_pointer(pointer).get(resolved) != simdjson::SUCCESS) {
        refuse(path + "/$ref", "'" + std::string(target) + "' points to nothing");
      }
    } else {
      refuse(path + "/$ref", "only local references ('#/$defs/...') are supported");
    }
    // Name the rule before visiting so that a recursive reference finds it.
    const std::string name = new_rule_name(pointer.empty() ? "root" : pointer);
    ref_rules_.emplace(std::string(target), name);
    const size_t slot = rules_.size();
    rules_.emplace_back(name, "");
    std::string body = visit(resolved, pointer, name, depth + 1);
    rules_[slot].second = std::move(body);
    return name;
  }

  std::vector<std::string> type_names(const std::map<std::string_view, dom::element>& kw,
                                      const std::string& path) {
    auto it = kw.find("type");
    if (it == kw.end()) {
      // Untyped: infer from the keywords present, else any value.
      if (kw.count("properties") || kw.count("additionalProperties") || kw.count("required")) return {"object"};
      if (kw.count("items") || kw.count("minItems") || kw.count("maxItems")) return {"array"};
      if (kw.count("minLength") || kw.count("maxLength") || kw.count("format") ||
          kw.count("pattern")) {
        return {"string"};
      }
      if (kw.count("minimum") || kw.count("maximum")) return {"number"};
      return {};
    }
    std::vector<std::string> out;
    std::string_view one;
    dom::array many;
    if (it->second.get_string().get(one) == simdjson::SUCCESS) {
      out.emplace_back(one);
    } else if (it->second.get_array().get(many) == simdjson::SUCCESS) {
      for (auto t : many) {
        if (t.get_string().get(one) != simdjson::SUCCESS) refuse(path + "/type", "must hold strings");
        out.emplace_back(one);
      }
    } else {
      refuse(path + "/type", "must be a string or an array of strings");
    }
    return out;
  }

  std::string visit_typed(const std::map<std::string_view, dom::element>& kw,
                          const std::string& path, const std::string& hint, size_t depth) {
    const auto types = type_names(kw, path);
    if (types.empty()) return "json-value";
    if (types.size() == 1) return visit_type(types[0], kw, path, hint, depth);
    // A list of types: each keyword constrains the types it belongs to (as JSON Schema reads
    // it), so check the keywords against all of them and hand each type only its own.
    for (const auto& [k, v] : kw) {
      bool known = k == "type";
      for (const auto& t : types) known = known || keywords_of(t).count(k) > 0;
      if (!known) refuse(path, "'" + std::string(k) + "' is not supported for these types");
    }
    std::string out = "(";
    for (size_t i = 0; i < types.size(); ++i) {
      std::map<std::string_view, dom::element> own;
      for (const auto& [k, v] : kw) {
        if (keywords_of(types[i]).count(k)) own.emplace(k, v);
      }
      out += (i ? " | " : "") + visit_type(types[i], own, path, hint, depth);
    }
    return out + ")";
  }

  static const std::set<std::string_view>& keywords_of(const std::string& type) {
    static const std::map<std::string, std::set<std::string_view>> by_type = {
        {"null", {}},
        {"boolean", {}},
        {"string", {"minLength", "maxLength", "format", "pattern"}},
        {"integer", {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}},
        {"number", {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}},
        {"array", {"items", "minItems", "maxItems", "uniqueItems"}},
        {"object", {"properties", "required", "additionalProperties"}},
    };
    static const std::set<std::string_view> none;
    auto it = by_type.find(type);
    return it == by_type.end() ? none : it->second;
  }

  std::optional<uint64_t> count_keyword(const std::map<std::string_view, dom::element>& kw,
                                        std::string_view name, const std::string& path) {
    auto it = kw.find(name);
    if (it == kw.end()) return std::nullopt;
    uint64_t n;
    if (it->second.get_uint64().get(n) != simdjson::SUCCESS) {
      double d;
      if (it->second.get_double().get(d) != simdjson::SUCCESS || d < 0 || std::floor(d) != d) {
        refuse(path + "/" + std::string(name), "must be a non-negative integer");
      }
      n = static_cast<uint64_t>(d);
    }
    if (n > 10000) refuse(path + "/" + std::string(name), "values above 10000 are not supported");
    return n;
  }

  void check_keywords(const std::map<std::string_view, dom::element>& kw,
                      const std::string& path, const std::string& type) {
    for (const auto& [k, v] : kw) {
      if (k != "type" && !keywords_of(type).count(k)) {
        refuse(path, "'" + std::string(k) + "' is not supported for type '" + type + "'");
      }
    }
  }

  std::string visit_type(const std::string& type, const std::map<std::string_view, dom::element>& kw,
                         const std::string& path, const std::string& hint, size_t depth) {
    if (type == "null") {
      check_keywords(kw, path, type);
      return "json-null";
    }
    if (type == "boolean") {
      check_keywords(kw, path, type);
      return "json-boolean";
    }
    if (type == "string") return visit_string(kw, path);
    if (type == "integer" || type == "number") return visit_number(type, kw, path, hint);
    if (type == "array") return visit_array(kw, path, hint, depth);
    if (type == "object") return visit_object(kw, path, hint, depth);
    refuse(path + "/type", "unknown type '" + type + "'");
  }

  std::string visit_string(const std::map<std::string_view, dom::element>& kw,
                           const std::string& path) {
    check_keywords(kw, path, "string");
    if (auto it = kw.find("pattern"); it != kw.end()) {
      if (kw.size() > (kw.count("type") ? 2u : 1u)) {
        refuse(path, "'pattern' next to length bounds or 'format' is not supported");
      }
      std::string_view p;
      if (it->second.get_string().get(p) != simdjson::SUCCESS) refuse(path + "/pattern", "must be a string");
      // The whole string matches the pattern (narrower than JSON Schema's search, never wrong).
      auto body = regex_gbnf_expression(p, /*json_string=*/true);
      if (!body) refuse(path + "/pattern", body.message());
      return "\"\\\"\" " + *body + " \"\\\"\"";
    }
    if (auto it = kw.find("format"); it != kw.end()) {
      if (kw.size() > (kw.count("type") ? 2u : 1u)) {
        refuse(path, "'format' with length bounds is not supported");
      }
      std::string_view f;
      if (it->second.get_string().get(f) != simdjson::SUCCESS) refuse(path + "/format", "must be a string");
      static const std::string two = "[0-9]{2}";
      const std::string date = "[0-9]{4} \"-\" ( \"0\" [1-9] | \"1\" [0-2] ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"3\" [01] )";
      const std::string time = "( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{1,6} )? ( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )";
      std::string body;
      if (f == "date") {
        body = date;
      } else if (f == "time") {
        body = time;
      } else if (f == "date-time") {
        body = date + " \"T\" " + time;
      } else if (f == "uuid") {
        body = "[0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{12}";
      } else {
        refuse(path + "/format", "format '" + std::string(f) + "' is not supported");
      }
      return "\"\\\"\" " + body + " \"\\\"\"";
    }
    const auto min = count_keyword(kw, "minLength", path);
    const auto max = count_keyword(kw, "maxLength", path);
    if (!min && !max) return "json-string";
    const uint64_t lo = min.value_or(0);
    if (max && *max < lo) refuse(path, "minLength is greater than maxLength");
    const std::string reps = "{" + std::to_string(lo) + "," + (max ? std::to_string(*max) : "") + "}";
    return "\"\\\"\" json-char" + reps + " \"\\\"\"";
  }

  std::string visit_number(const std::string& type,
                           const std::map<std::string_view, dom::element>& kw,
                           const std::string& path, const std::string& hint) {
    check_keywords(kw, path, type);
    const bool integer = type == "integer";
    auto bound = [&](std::string_view name) -> std::optional<double> {
      auto it = kw.find(name);
      if (it == kw.end()) return std::nullopt;
      double d;
      if (it->second.get_double().get(d) != simdjson::SUCCESS) {
        refuse(path + "/" + std::string(name), "must be a number");
      }
      if (std::fabs(d) > 1e15) {
        refuse(path + "/" + std::string(name), "bounds beyond +-1e15 are not supported");
      }
      if (!integer && (std::floor(d) != d || name.rfind("exclusive", 0) == 0)) {
        refuse(path + "/" + std::string(name),
               "fractional or exclusive bounds on 'number' are not supported (use 'integer', or "
               "whole inclusive bounds)");
      }
      return d;
    };
    // Integer bounds from any bounds: minimum 1.5 -> 2, exclusiveMinimum 2 -> 3, and so on.
    std::optional<int64_t> lo, hi;
    auto raise_lo = [&](int64_t v) { lo = lo ? std::max(*lo, v) : v; };
    auto lower_hi = [&](int64_t v) { hi = hi ? std::min(*hi, v) : v; };
    if (auto d = bound("minimum")) raise_lo(static_cast<int64_t>(std::ceil(*d)));
    if (auto d = bound("maximum")) lower_hi(static_cast<int64_t>(std::floor(*d)));
    if (auto d = bound("exclusiveMinimum")) raise_lo(static_cast<int64_t>(std::floor(*d)) + 1);
    if (auto d = bound("exclusiveMaximum")) lower_hi(static_cast<int64_t>(std::ceil(*d)) - 1);
    if (!lo && !hi) return integer ? "json-integer" : "json-number";
    auto body = integer ? integer_range_gbnf(lo, hi) : number_range_gbnf(lo, hi);
    if (!body) refuse(path, body.message());
    return add_rule(hint, *body);
  }

  std::string visit_array(const std::map<std::string_view, dom::element>& kw,
                          const std::string& path, const std::string& hint, size_t depth) {
    check_keywords(kw, path, "array");
    if (auto it = kw.find("uniqueItems"); it != kw.end()) {
      bool unique = false;
      if (it->second.get_bool().get(unique) != simdjson::SUCCESS || unique) {
        refuse(path + "/uniqueItems", "uniqueItems: true is not supported");
      }
    }
    const std::string name = new_rule_name(hint);
    const size_t slot = rules_.size();
    rules_.emplace_back(name, "");
    std::string item = "json-value";
    if (auto it = kw.find("items"); it != kw.end()) {
      dom::array tuple;
      if (it->second.get_array().get(tuple) == simdjson::SUCCESS) {
        refuse(path + "/items", "tuple 'items' (an array) is not supported");
      }
      item = visit(it->second, path + "/items", hint + "-item", depth + 1);
    }
    const uint64_t min = count_keyword(kw, "minItems", path).value_or(0);
    const auto max = count_keyword(kw, "maxItems", path);
    if (max && *max < min) refuse(path, "minItems is greater than maxItems");
    std::string body;
    if (max && *max == 0) {
      body = "\"[\" ws \"]\"";
    } else {
      const std::string more = "( \",\" ws " + item + " ws ){" + std::to_string(min ? min - 1 : 0) +
                               "," + (max ? std::to_string(*max - 1) : "") + "}";
      const std::string items = item + " ws " + more;
      body = "\"[\" ws " + (min ? items : "( " + items + " )?") + " \"]\"";
    }
    rules_[slot].second = std::move(body);
    return name;
  }

  std::string visit_object(const std::map<std::string_view, dom::element>& kw,
                           const std::string& path, const std::string& hint, size_t depth) {
    check_keywords(kw, path, "object");
    std::set<std::string> required;
    if (auto it = kw.find("required"); it != kw.end()) {
      dom::array names;
      if (it->second.get_array().get(names) != simdjson::SUCCESS) refuse(path + "/required", "must be an array");
      for (auto n : names) {
        std::string_view s;
        if (n.get_string().get(s) != simdjson::SUCCESS) refuse(path + "/required", "must hold strings");
        required.emplace(s);
      }
    }
    std::optional<dom::element> extra;
    if (auto it = kw.find("additionalProperties"); it != kw.end()) {
      bool allowed;
      if (it->second.get_bool().get(allowed) != simdjson::SUCCESS) extra = it->second;
    }
    dom::object props;
    bool has_props = false;
    if (auto it = kw.find("properties"); it != kw.end()) {
      if (it->second.get_object().get(props) != simdjson::SUCCESS) refuse(path + "/properties", "must be an object");
      has_props = props.size() > 0;
    }
    const std::string name = new_rule_name(hint);
    const size_t slot = rules_.size();
    rules_.emplace_back(name, "");
    if (extra && has_props) {
      refuse(path + "/additionalProperties", "a schema here next to 'properties' is not supported");
    }
    if (!has_props) {
      if (!required.empty()) refuse(path + "/required", "names properties that 'properties' does not define");
      if (!extra) {
        rules_[slot].second = "json-object";
        return name;
      }
      const std::string value = visit(*extra, path + "/additionalProperties", hint + "-value", depth + 1);
      const std::string pair = "json-string ws \":\" ws " + value + " ws";
      rules_[slot].second = "\"{\" ws ( " + pair + " ( \",\" ws " + pair + " )* )? \"}\"";
      return name;
    }
    struct property {
      std::string pair;
      bool required;
    };
    std::vector<property> list;
    for (auto field : props) {
      const std::string key(field.key);
      const std::string encoded_key = json_quoted(key);
      const std::string value =
          visit(field.value, path + "/properties/" + json_pointer_escape(key), key, depth + 1);
      list.push_back({gbnf_literal(encoded_key) + " ws \":\" ws " + value + " ws",
                      required.count(key) > 0});
      required.erase(key);
    }
    if (!required.empty()) {
      refuse(path + "/required", "'" + *required.begin() + "' is not among the properties");
    }
    // head_k: properties k.. when none was written yet; tail_k: when one was (needs a comma).
    std::string head = "", tail = "";
    for (size_t k = list.size(); k-- > 0;) {
      const std::string& pair = list[k].pair;
      std::string new_tail, new_head;
      if (list[k].required) {
        new_tail = "\",\" ws " + pair + (tail.empty() ? "" : " " + tail);
        new_head = pair + (tail.empty() ? "" : " " + tail);
      } else {
        new_tail = "( \",\" ws " + pair + " )?" + (tail.empty() ? "" : " " + tail);
        new_head = "( " + pair + (tail.empty() ? "" : " " + tail) + (head.empty() ? " )?" : " | " + head + " )");
      }
      tail = add_rule(hint + "-tail", new_tail);
      head = list[k].required ? new_head : add_rule(hint + "-head", new_head);
    }
    rules_[slot].second = "\"{\" ws " + head + " \"}\"";
    return name;
  }

  dom::element root_;
  std::vector<std::pair<std::string, std::string>> rules_;
  std::map<std::string, std::string> ref_rules_;
  size_t num_rules_ = 0;
};

}  // namespace

std::string gbnf_literal(std::string_view bytes) {
  static const char* hex = "0123456789ABCDEF";
  std::string out = "\"";
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (b < 0x20 || b == 0x7F) {
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_object_gbnf() { return std::string("root ::= json-object\n") + common_rules; }

result<std::string> json_schema_gbnf(std::string_view schema_json) {
  if (schema_json.size() > max_schema_bytes) {
    return error{"json_schema: the schema is larger than 256 KiB"};
  }
  dom::parser parser;
  dom::element root;
  if (auto e = parser.parse(schema_json.data(), schema_json.size()).get(root); e) {
    return error{std::string("json_schema: not valid JSON (") + simdjson::error_message(e) + ")"};
  }
  try {
    return schema_converter(root).run();
  } catch (const schema_failure& f) {
    return error{f.message};
  }
}

}  // namespace troupe
