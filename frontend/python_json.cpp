#include "frontend/python_json.hpp"

#include <fmt/format.h>

namespace troupe::frontend {

namespace {

void dump_string(std::string_view s, std::string& out) {
  out += '"';
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (b < 0x20) out += fmt::format("\\u{:04x}", b);
        else out += c;
    }
  }
  out += '"';
}

void dump(simdjson::dom::element v, std::string& out) {
  switch (v.type()) {
    case simdjson::dom::element_type::OBJECT: {
      out += '{';
      bool first = true;
      const simdjson::dom::object obj = v.get_object().value_unsafe();
      for (auto [key, value] : obj) {
        if (!first) out += ", ";
        first = false;
        dump_string(key, out);
        out += ": ";
        dump(value, out);
      }
      out += '}';
      return;
    }
    case simdjson::dom::element_type::ARRAY: {
      out += '[';
      bool first = true;
      const simdjson::dom::array arr = v.get_array().value_unsafe();
      for (auto item : arr) {
        if (!first) out += ", ";
        first = false;
        dump(item, out);
      }
      out += ']';
      return;
    }
    case simdjson::dom::element_type::STRING:
      dump_string(v.get_string().value_unsafe(), out);
      return;
    default:  // numbers, booleans, null: simdjson's minimal text
      out += simdjson::minify(v);
      return;
  }
}

}  // namespace

std::string python_json_dumps(simdjson::dom::element v) {
  std::string out;
  dump(v, out);
  return out;
}

}  // namespace troupe::frontend
