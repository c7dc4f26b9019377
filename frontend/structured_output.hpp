// structured_output: reads the request fields that constrain the output to a grammar --
// OpenAI's `response_format`, vLLM's `structured_outputs`, `guided_json`, `guided_regex`,
// `guided_grammar`, `guided_choice` and llama.cpp's `grammar` -- into
// the GBNF text the last stage's sampler enforces (grammar/, docs/ARCHITECTURE.md "Structured
// outputs").
//
// response_format: {"type":"text"} (no grammar), {"type":"json_object"} (any JSON object),
// {"type":"json_schema","json_schema":{"name":..,"schema":{..},"strict":..}}. guided_json: a
// schema (object, or a string holding one); guided_grammar: GBNF text; guided_choice: a list of
// strings, one of which is the whole output; guided_regex: a regular expression the whole output
// matches (the subset of grammar/regex_gbnf.hpp). structured_outputs (vLLM >= 0.10): an object
// with one of "json", "regex", "choice", "grammar" (as above) or "json_object": true, plus
// "disable_fallback" / "disable_additional_properties" (booleans, no-ops here); its errors name
// the member ("structured_outputs.regex").
//
// Errors are 400s naming the field (`response_format`, `guided_json`, ...): a malformed value,
// an unknown type (`{"type":"sound"}`), a schema keyword the converter refuses (its message
// names the keyword and where), a grammar that does not parse, a regex construct outside the
// subset, two of these fields (or two members of structured_outputs) at once.
// Thread-safety: pure; any thread.
#pragma once

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>

#include "net/openai_error.hpp"

namespace troupe::frontend {

using net::api_error;

// REQUIRES: `key` is one of the fields named above, or starts with "guided_". `gbnf` receives
// the grammar (left empty for response_format text); an error when `gbnf` was already set by
// another field of the same request.
std::optional<api_error> read_structured_output(std::string_view key,
                                                simdjson::ondemand::value v, std::string& gbnf);

bool is_structured_output_field(std::string_view key);

}  // namespace troupe::net
