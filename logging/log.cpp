#include "logging/log.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>

namespace troupe::logging {
namespace {

std::atomic<int> min_level{static_cast<int>(level::info)};

// One logger for the process, built on first use (a function-local static: no static-order
// issues with loggers used during start-up). Not registered with spdlog's global registry, so
// nothing else can replace or drop it.
spdlog::logger& logger() {
  static const std::shared_ptr<spdlog::logger> l = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto lg = std::make_shared<spdlog::logger>("troupe", std::move(sink));
    lg->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %v", spdlog::pattern_time_type::utc);
    lg->set_level(spdlog::level::trace);  // we filter ourselves (min_level)
    lg->flush_on(spdlog::level::trace);   // stderr is unbuffered; a crash must not eat lines
    return lg;
  }();
  return *l;
}

const char* level_name(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
    case level::off: return "off";
  }
  return "info";
}

// logfmt: a bare value is a non-empty run of printable ASCII without space, '"', '=' or '\'.
bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) return true;
  return false;
}

void append_text(std::string& out, std::string_view v) {
  if (!needs_quotes(v)) {
    out.append(v);
    return;
  }
  out += '"';
  for (unsigned char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        // Other control bytes are escaped so a line can never be split or hide text; bytes
        // >= 0x80 (UTF-8) pass through.
        if (c < 0x20 || c == 0x7f) {
          static constexpr char hex[] = "0123456789abcdef";
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else
          out += static_cast<char>(c);
    }
  }
  out += '"';
}

// (No fmt::format_to into `out` here or above: GCC 12 with ASan at -O3 reports a false
// -Wstringop-overflow inside fmt for it, which breaks the sanitizer build.)
void append_value(std::string& out, const field::value_type& v) {
  std::visit(
      [&out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string_view>)
          append_text(out, x);
        else if constexpr (std::is_same_v<T, bool>)
          out += x ? "true" : "false";
        else if constexpr (std::is_same_v<T, double>)
          out += fmt::format("{}", x);  // shortest round-trip form
        else
          out += std::to_string(x);
      },
      v);
}

}  // namespace

bool parse_level(std::string_view name, level& out) {
  for (level l : {level::debug, level::info, level::warn, level::error, level::off}) {
    if (name == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

void set_level(level min) { min_level.store(static_cast<int>(min), std::memory_order_relaxed); }

level current_level() { return static_cast<level>(min_level.load(std::memory_order_relaxed)); }

std::string format_line(std::string_view event, std::initializer_list<field> fields) {
  std::string out = "event=";
  append_text(out, event);
  for (const field& f : fields) {
    out += ' ';
    out.append(f.key);
    out += '=';
    append_value(out, f.value);
  }
  return out;
}

void write(level lvl, std::string_view event, std::initializer_list<field> fields) {
  if (lvl == level::off || static_cast<int>(lvl) < min_level.load(std::memory_order_relaxed))
    return;
  std::string line = level_name(lvl);
  line += ' ';
  line += format_line(event, fields);
  logger().log(spdlog::level::info, line);
}

}  // namespace troupe::logging
