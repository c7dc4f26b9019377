// JSON rendering of `troupe inspect --json`: one object describing a parsed GGUF file.
// Strings are escaped per RFC 8259; bytes that are not valid UTF-8 become U+FFFD so the output
// is always valid JSON. Metadata arrays are summarised (element type and count), not expanded.
#pragma once

#include <string>
#include <string_view>

#include "memory/gguf_file.hpp"
#include "memory/gguf_summary.hpp"

namespace troupe::cli {

// `s` as a quoted JSON string.
std::string json_quote(std::string_view s);

std::string inspect_json(const gguf_file& file, const gguf_summary& summary);

}  // namespace troupe::cli
