// tool_calling: the request side of OpenAI tool calling -- reading `tools`, `tool_choice` and
// `parallel_tool_calls`, checking them against each other, and the grammar that makes a
// `required` or named choice always a valid call.
//
// tools: [{"type": "function", "function": {"name", "description"?, "parameters"?, "strict"?}}];
//   name matches ^[a-zA-Z0-9_-]{1,64}$ and is unique; parameters is a JSON Schema the grammar
//   converter accepts (grammar/json_schema_gbnf.hpp), else a 400 naming
//   `tools[i].function.parameters`; absent parameters mean an object with no properties.
// tool_choice: "none" | "auto" | "required" | {"type": "function", "function": {"name"}}.
//   Default: "auto" with tools, "none" without. "required" or a named function without tools,
//   or a name that is not among the tools, is a 400 naming `tool_choice`.
// parallel_tool_calls: a boolean (default true): with "required", up to max_parallel_tool_calls
//   calls, else exactly one. A named choice is one call of that function.
// The legacy `functions` / `function_call` stay refused (400 naming them): clients that still
// send them have `tools` since 2023.
//
// How the pieces meet (docs/ARCHITECTURE.md "Tool calling"): the chat template renders the tools
// and fed-back calls (engine/chat_template.hpp); for required/named the serving backend puts
// tool_call_grammar() into the request's grammar (the structured-output machinery: a token mask
// per step); for auto and required/named the response splits the output into content and
// tool_calls (net/tool_call_parser.hpp).
// Plain functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "frontend/openai_request.hpp"

namespace troupe::frontend {

inline constexpr int max_tools = 128;
inline constexpr int max_parallel_tool_calls = 8;

// Readers for frontend/constraint_params.cpp's table: raw_json is the parameter's JSON value.
std::optional<api_error> read_tools(std::string_view raw_json, generation_request& r);
std::optional<api_error> read_tool_choice(std::string_view raw_json, generation_request& r);
std::optional<api_error> read_parallel_tool_calls(std::string_view raw_json,
                                                  generation_request& r);

// After every field was read: the default tool_choice, and the checks between fields (a choice
// that needs tools, a name among them, required/named together with response_format).
std::optional<api_error> check_tool_calling(generation_request& r);

// The GBNF of what a required/named choice may write, in the template family's syntax: one call
// `open` "\n" {"name": "<name>", "arguments": <the function's parameters>} "\n" `close`, or
// (required with parallel_tool_calls) up to max_parallel_tool_calls such calls joined by
// `separator`. REQUIRES: check_tool_calling(r) passed; r.tool_choice is required or named.
std::string tool_call_grammar(const generation_request& r, std::string_view open,
                              std::string_view close, std::string_view separator);

// Whether the output is parsed for tool calls (auto, required, named with tools).
bool parses_tool_calls(const generation_request& r);

}  // namespace troupe::frontend
