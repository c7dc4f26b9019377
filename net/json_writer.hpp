// json_writer: a small, correct JSON serializer that appends to a std::string.
//
// Contract:
//  - Commas and colons are inserted automatically; the caller only nests begin_/end_ calls and
//    writes key() before each value inside an object. Misnesting is a programmer error (assert).
//  - Strings are UTF-8. Valid UTF-8 passes through unchanged; '"', '\\' and control characters
//    are escaped; bytes that are not valid UTF-8 become U+FFFD, so the output is always valid
//    JSON whatever a detokenizer produced.
//  - JSON has no NaN or infinity: non-finite doubles are written as null. Doubles use the
//    shortest representation that round-trips (std::to_chars).
// Not thread-safe; one writer per thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::net {

class json_writer {
 public:
  json_writer& begin_object();
  json_writer& end_object();
  json_writer& begin_array();
  json_writer& end_array();
  json_writer& key(std::string_view k);

  json_writer& value(std::string_view s);
  json_writer& value(const char* s) { return value(std::string_view{s}); }
  json_writer& value(const std::string& s) { return value(std::string_view{s}); }
  json_writer& value(bool b);
  json_writer& value(double d);
  json_writer& value(float f) { return value(static_cast<double>(f)); }
  json_writer& value(std::int64_t i);
  json_writer& value(std::uint64_t u);
  json_writer& value(int i) { return value(static_cast<std::int64_t>(i)); }
  json_writer& value(unsigned u) { return value(static_cast<std::uint64_t>(u)); }
  json_writer& null();
  // Inserts already-serialized JSON as one value (e.g. a cached sub-object). REQUIRES: valid JSON.
  json_writer& raw(std::string_view json);

  // key(k).value(v) in one call.
  template <class T>
  json_writer& field(std::string_view k, const T& v) { key(k); return value(v); }

  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void before_value();
  std::string out_;
  // One entry per open container: true when something was written in it already.
  std::vector<bool> has_items_;
  std::vector<bool> is_object_;
  bool after_key_ = false;
};

// Appends s to out as a quoted JSON string (escaping and UTF-8 repair as above).
void append_json_string(std::string& out, std::string_view s);

// The number of bytes at the start of s forming complete, valid UTF-8 characters, leaving out an
// incomplete trailing sequence (which a later token may complete). Invalid bytes inside count.
std::size_t utf8_complete_prefix(std::string_view s);

}  // namespace troupe::net
