// constraint_params: the request parameters that constrain what the model may write --
// structured outputs (`response_format`, vLLM's `structured_outputs`, `guided_json`,
// `guided_regex`, `guided_choice`, `guided_grammar`, `grammar`) and tool calling (`tools`,
// `tool_choice`, `functions`, `function_call`, `parallel_tool_calls`).
//
// One reader per parameter, in one table: the parser (frontend/openai_request.cpp) hands each
// the parameter's raw JSON. `response_format`, `structured_outputs`, `guided_json`,
// `guided_regex`, `guided_choice`, `guided_grammar` and `grammar` are read into the request's
// GBNF (frontend/structured_output.hpp, the grammar engine of issue 11 point 3); `tools`,
// `tool_choice` and `parallel_tool_calls` into the request's tools (frontend/tool_calling.hpp,
// point 4); `guided_decoding_backend` is a no-op (one engine); `guided_whitespace_pattern` and
// the legacy `functions` / `function_call` accept only their "off" value (null, "none"...) and
// refuse anything else with a 400 naming the parameter, never a silent 200. Implementing one
// means replacing its reader here (and filling a field of generation_request); nothing else in
// the parser changes.
// Plain functions; callable from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "frontend/openai_request.hpp"

namespace troupe::frontend {

// Reads `raw_json` (the parameter's value as the client wrote it, never empty) into r, or
// returns the 400 to send.
using constraint_reader = std::optional<api_error> (*)(std::string_view raw_json,
                                                      generation_request& r);

struct constraint_param {
  std::string_view name;
  constraint_reader read;
  bool on_chat = true;
  bool on_completions = true;  // vLLM takes the structured-output ones on /v1/completions too
};

std::span<const constraint_param> constraint_params();

// The entry for `name` on that endpoint, or nullptr.
const constraint_param* find_constraint_param(std::string_view name, endpoint_kind kind);

}  // namespace troupe::frontend
