// log: one structured line per event, for operators. Every line is logfmt on stderr:
//
//   2026-12-07T21:04:05.123Z info event=request.shed request_id=3f2a... status=429 reason=queue_full
//
// An event name (dotted, lowercase: "request.start", "stage.restart") and key=value fields.
// Values with spaces, quotes, '=' or control characters are quoted and escaped, so a line always
// parses as logfmt. Lines about a request carry the field `request_id` (the id the client sees
// in the x-request-id response header); see request_id.hpp for making one.
//
// Never log prompt or completion text: it is the user's data. Log sizes (num_prompt_tokens)
// instead.
//
// Usage:
//   logging::info("request.shed", {{"request_id", id}, {"status", 429}, {"reason", "queue_full"}});
//   logging::warn("stage.restart", {{"stage", 1}, {"cause", why}, {"restart", n}});
//
// Thread-safety: every function may be called from any thread at once (one spdlog logger with a
// mutex-protected stderr sink; a line is written whole).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

namespace troupe::logging {

enum class level { debug, info, warn, error, off };

// "debug", "info", "warn", "error", "off"; anything else is nullopt-like: returns false.
bool parse_level(std::string_view name, level& out);

// One key=value pair. Values are text, integers, floating point or booleans; a `const char*`
// is text (never a pointer).
struct field {
  using value_type = std::variant<std::string_view, std::int64_t, std::uint64_t, double, bool>;

  field(std::string_view k, std::string_view v) : key(k), value(v) {}
  field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  field(std::string_view k, bool v) : key(k), value(v) {}
  field(std::string_view k, double v) : key(k), value(v) {}
  template <class I>
    requires(std::is_integral_v<I> && !std::is_same_v<I, bool>)
  field(std::string_view k, I v)
      : key(k),
        value(std::is_signed_v<I> ? value_type(static_cast<std::int64_t>(v))
                                  : value_type(static_cast<std::uint64_t>(v))) {}

  std::string_view key;
  value_type value;
};

// Lines below `min` are dropped (default: info). Thread: any; takes effect for later lines.
void set_level(level min);
level current_level();

// The logfmt text of one line without the timestamp and level: "event=... k=v ...". Exposed for
// tests and for callers that need the text itself.
std::string format_line(std::string_view event, std::initializer_list<field> fields);

void write(level lvl, std::string_view event, std::initializer_list<field> fields);
inline void debug(std::string_view event, std::initializer_list<field> fields = {}) {
  write(level::debug, event, fields);
}
inline void info(std::string_view event, std::initializer_list<field> fields = {}) {
  write(level::info, event, fields);
}
inline void warn(std::string_view event, std::initializer_list<field> fields = {}) {
  write(level::warn, event, fields);
}
inline void error(std::string_view event, std::initializer_list<field> fields = {}) {
  write(level::error, event, fields);
}

}  // namespace troupe::logging
