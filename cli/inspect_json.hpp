// JSON rendering of `troupe inspect --json`: one object describing a parsed GGUF file, written
// with net::json_writer (escaping, U+FFFD for invalid UTF-8). Metadata arrays are summarised
// (element type and count), not expanded.
#pragma once

#include <string>
#include <string_view>

#include "memory/gguf_file.hpp"
#include "memory/gguf_summary.hpp"

namespace troupe::cli {

// `s` as a quoted JSON string (also used to show strings unambiguously in the text output).
std::string json_quote(std::string_view s);

std::string inspect_json(const gguf_file& file, const gguf_summary& summary);

}  // namespace troupe::cli
