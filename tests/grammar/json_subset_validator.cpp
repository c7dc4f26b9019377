#include "json_subset_validator.hpp"

#include <cmath>

#include "pcre2_full_match.hpp"

namespace troupe::test {
namespace {

namespace dom = simdjson::dom;

bool has_type(dom::element v, std::string_view type) {
  switch (v.type()) {
    case dom::element_type::OBJECT: return type == "object";
    case dom::element_type::ARRAY: return type == "array";
    case dom::element_type::STRING: return type == "string";
    case dom::element_type::INT64:
    case dom::element_type::UINT64: return type == "integer" || type == "number";
    case dom::element_type::DOUBLE: {
      const double d = v.get_double().value();
      return type == "number" || (type == "integer" && std::floor(d) == d);
    }
    case dom::element_type::BOOL: return type == "boolean";
    case dom::element_type::NULL_VALUE: return type == "null";
  }
  return false;
}

size_t code_points(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool matches_format(std::string_view s, std::string_view format) {
  static const char* const date_re = R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))";
  static const char* const time_re =
      R"(([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d))";
  static const pcre2_full_match date(date_re);
  static const pcre2_full_match time(time_re);
  static const pcre2_full_match uuid(
      R"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})");
  if (format == "date") return date.matches(s);
  if (format == "time") return time.matches(s);
  if (format == "uuid") return uuid.matches(s);
  if (format == "date-time") {
    const auto t = s.find('T');
    return t != std::string_view::npos && date.matches(s.substr(0, t)) &&
           time.matches(s.substr(t + 1));
  }
  return false;
}

}  // namespace

std::string validate_json(dom::element value, dom::element schema, dom::element root,
                          const std::string& path) {
  auto fail = [&](const std::string& what) { return (path.empty() ? "/" : path) + ": " + what; };
  bool b;
  if (schema.get_bool().get(b) == simdjson::SUCCESS) return b ? "" : fail("schema false");
  dom::object s = schema.get_object().value();
  dom::element kw;
  if (s["$ref"].get(kw) == simdjson::SUCCESS) {
    const std::string_view ref = kw.get_string().value();
    dom::element target = ref == "#" ? root : root.at_pointer(ref.substr(1)).value();
    return validate_json(value, target, root, path);
  }
  if (s["const"].get(kw) == simdjson::SUCCESS &&
      simdjson::minify(kw) != simdjson::minify(value)) {
    return fail("not the const");
  }
  if (s["enum"].get(kw) == simdjson::SUCCESS) {
    bool found = false;
    for (auto e : kw.get_array()) found = found || simdjson::minify(e) == simdjson::minify(value);
    if (!found) return fail("not in the enum");
  }
  for (const char* comb : {"anyOf", "oneOf"}) {
    if (s[comb].get(kw) != simdjson::SUCCESS) continue;
    int ok = 0;
    for (auto branch : kw.get_array()) ok += validate_json(value, branch, root, path).empty();
    if (ok == 0 || (std::string_view(comb) == "oneOf" && ok > 1)) {
      return fail(std::string(comb) + " matched " + std::to_string(ok) + " branches");
    }
  }
  if (s["allOf"].get(kw) == simdjson::SUCCESS) {
    for (auto branch : kw.get_array()) {
      if (auto e = validate_json(value, branch, root, path); !e.empty()) return e;
    }
  }
  if (s["type"].get(kw) == simdjson::SUCCESS) {
    bool ok = false;
    std::string_view t;
    if (kw.get_string().get(t) == simdjson::SUCCESS) {
      ok = has_type(value, t);
    } else {
      for (auto e : kw.get_array()) ok = ok || has_type(value, e.get_string().value());
    }
    if (!ok) return fail("wrong type");
  }
  double num;
  if (value.get_double().get(num) == simdjson::SUCCESS) {
    if (s["minimum"].get(kw) == simdjson::SUCCESS && num < kw.get_double().value()) return fail("< minimum");
    if (s["maximum"].get(kw) == simdjson::SUCCESS && num > kw.get_double().value()) return fail("> maximum");
    if (s["exclusiveMinimum"].get(kw) == simdjson::SUCCESS && num <= kw.get_double().value()) return fail("<= exclusiveMinimum");
    if (s["exclusiveMaximum"].get(kw) == simdjson::SUCCESS && num >= kw.get_double().value()) return fail(">= exclusiveMaximum");
  }
  std::string_view str;
  if (value.get_string().get(str) == simdjson::SUCCESS) {
    if (s["minLength"].get(kw) == simdjson::SUCCESS && code_points(str) < kw.get_uint64().value()) return fail("too short");
    if (s["maxLength"].get(kw) == simdjson::SUCCESS && code_points(str) > kw.get_uint64().value()) return fail("too long");
    std::string_view format;
    if (s["format"].get(kw) == simdjson::SUCCESS && kw.get_string().get(format) == simdjson::SUCCESS &&
        !matches_format(str, format)) {
      return fail("not a " + std::string(format));
    }
  }
  dom::array arr;
  if (value.get_array().get(arr) == simdjson::SUCCESS) {
    if (s["minItems"].get(kw) == simdjson::SUCCESS && arr.size() < kw.get_uint64().value()) return fail("too few items");
    if (s["maxItems"].get(kw) == simdjson::SUCCESS && arr.size() > kw.get_uint64().value()) return fail("too many items");
    if (s["items"].get(kw) == simdjson::SUCCESS) {
      size_t i = 0;
      for (auto item : arr) {
        if (auto e = validate_json(item, kw, root, path + "/" + std::to_string(i++)); !e.empty()) return e;
      }
    }
  }
  dom::object obj;
  if (value.get_object().get(obj) == simdjson::SUCCESS) {
    dom::object props;
    const bool has_props = s["properties"].get_object().get(props) == simdjson::SUCCESS;
    if (s["required"].get(kw) == simdjson::SUCCESS) {
      for (auto name : kw.get_array()) {
        dom::element ignored;
        if (obj[name.get_string().value()].get(ignored) != simdjson::SUCCESS) {
          return fail("missing required '" + std::string(name.get_string().value()) + "'");
        }
      }
    }
    dom::element extra;
    const bool has_extra = s["additionalProperties"].get(extra) == simdjson::SUCCESS;
    for (auto field : obj) {
      dom::element sub;
      const std::string child = path + "/" + std::string(field.key);
      if (has_props && props[field.key].get(sub) == simdjson::SUCCESS) {
        if (auto e = validate_json(field.value, sub, root, child); !e.empty()) return e;
      } else if (has_extra) {
        if (auto e = validate_json(field.value, extra, root, child); !e.empty()) return e;
      }
    }
  }
  return "";
}

}  // namespace troupe::test
