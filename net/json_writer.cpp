#include "net/json_writer.hpp"

#include <charconv>
#include <cmath>

#include "troupe/result.hpp"

namespace troupe::net {

namespace {

// Shortest round-trip text of a number (std::to_chars); 32 bytes hold any double or 64-bit int.
template <class Number>
void append_number(std::string& out, Number x) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, x);
  out.append(buf, r.ptr);
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is invalid (overlongs,
// surrogates and values past U+10FFFF are invalid, as RFC 3629 says).
std::size_t valid_utf8_len(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;   // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;   // > U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      std::size_t n = valid_utf8_len(s, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD replaces one invalid byte
        ++i;
      } else {
        out.append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

std::size_t utf8_complete_prefix(std::string_view s) {
  // Only the last 3 bytes can be an incomplete lead; look back for a lead byte whose sequence
  // runs past the end.
  std::size_t n = s.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    std::size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

void json_writer::before_value() {
  if (has_items_.empty()) {
    TROUPE_ASSERT(out_.empty());  // one top-level value only
    return;
  }
  if (is_object_.back()) {
    TROUPE_ASSERT(after_key_);
    after_key_ = false;
    return;
  }
  if (has_items_.back()) out_.push_back(',');
  has_items_.back() = true;
}

json_writer& json_writer::begin_object() {
  before_value();
  out_.push_back('{');
  has_items_.push_back(false);
  is_object_.push_back(true);
  return *this;
}

json_writer& json_writer::end_object() {
  TROUPE_ASSERT(!is_object_.empty() && is_object_.back() && !after_key_);
  out_.push_back('}');
  has_items_.pop_back();
  is_object_.pop_back();
  return *this;
}

json_writer& json_writer::begin_array() {
  before_value();
  out_.push_back('[');
  has_items_.push_back(false);
  is_object_.push_back(false);
  return *this;
}

json_writer& json_writer::end_array() {
  TROUPE_ASSERT(!is_object_.empty() && !is_object_.back());
  out_.push_back(']');
  has_items_.pop_back();
  is_object_.pop_back();
  return *this;
}

json_writer& json_writer::key(std::string_view k) {
  TROUPE_ASSERT(!is_object_.empty() && is_object_.back() && !after_key_);
  if (has_items_.back()) out_.push_back(',');
  has_items_.back() = true;
  append_json_string(out_, k);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

json_writer& json_writer::value(std::string_view s) {
  before_value();
  append_json_string(out_, s);
  return *this;
}

json_writer& json_writer::value(bool b) {
  before_value();
  out_ += b ? "true" : "false";
  return *this;
}

json_writer& json_writer::value(double d) {
  before_value();
  if (!std::isfinite(d)) {
    out_ += "null";
    return *this;
  }
  append_number(out_, d);
  return *this;
}

json_writer& json_writer::value(std::int64_t i) {
  before_value();
  append_number(out_, i);
  return *this;
}

json_writer& json_writer::value(std::uint64_t u) {
  before_value();
  append_number(out_, u);
  return *this;
}

json_writer& json_writer::null() {
  before_value();
  out_ += "null";
  return *this;
}

json_writer& json_writer::raw(std::string_view json) {
  before_value();
  out_ += json;
  return *this;
}

}  // namespace troupe::net
