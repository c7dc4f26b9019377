// Parsing and validation of OpenAI request bodies (/v1/completions, /v1/chat/completions,
// /tokenize, /detokenize) into plain structs, with simdjson on-demand.
//
// Contract: parse_* never throws and never crashes on any input. A body that is not JSON, not an
// object, or has a value of the wrong type or out of range gives an api_error (HTTP 400) whose
// `param` names the field ("temperature", "messages[1].content", "stop[2]"). Every top-level
// field of /v1/completions and /v1/chat/completions is implemented, a documented no-op, or
// refused with a 400 naming it (frontend/passive_params.hpp, frontend/constraint_params.hpp;
// docs/PARAMETERS.md); a field nobody documents gets OpenAI's own answer, 400 "Unrecognized
// request argument supplied: foo", unless parse_options::ignore_unknown_fields. A repeated key
// takes its last value, lists included (as Python's json, which OpenAI and vLLM use). Defaults that depend on the model (max_tokens when
// absent) are left unset for the caller to fill. Callable from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/openai_error.hpp"
#include "net/openai_response.hpp"

namespace troupe::frontend {

using net::api_error;
using net::endpoint_kind;

// A call an assistant message made, as the client feeds it back (tool calling).
struct chat_tool_call {
  std::string id;
  std::string name;
  std::string arguments;  // the arguments object as the chat template's `tojson` writes it
};

struct chat_message {
  std::string role;     // system | user | assistant | tool | developer
  std::string content;  // text parts concatenated
  std::vector<chat_tool_call> tool_calls;  // assistant only
  std::string tool_call_id;                // tool only (required there)
};

// Tool calling (frontend/tool_calling.hpp): what the model may call and must call.
enum class tool_choice_mode { none, auto_call, required, named };

struct tool_definition {
  std::string name;
  std::string parameters;  // its JSON Schema text; {"type": "object"} when the client gave none
  std::string rendered;    // the whole tool as the chat template's `tojson` writes it
};

// Limits shared by the parser and its tests.
inline constexpr int max_num_stop_strings = 4;
inline constexpr int max_top_logprobs = 20;
inline constexpr int max_n = 16;
// /v1/completions takes a batch of prompts (an array of strings or of token-id arrays); more
// than this many are refused with a 400 naming `prompt`. Each prompt becomes its own scheduler
// request, so the bound keeps one HTTP request from filling the waiting queue.
inline constexpr int max_num_prompts = 64;

// One completions prompt: text, or token ids (is_tokens says which).
struct completion_prompt {
  std::string text;
  std::vector<std::int32_t> tokens;
  bool is_tokens = false;
};

struct generation_request {
  endpoint_kind kind = endpoint_kind::completions;
  std::string model;

  // completions: 1..max_num_prompts prompts, generated independently; the response has n
  // choices per prompt, choice index = prompt index * n + choice (OpenAI, vLLM).
  std::vector<completion_prompt> prompts;
  // chat
  std::vector<chat_message> messages;
  bool add_generation_prompt = true;

  std::optional<std::int64_t> max_tokens;  // max_tokens or max_completion_tokens
  std::int64_t min_tokens = 0;             // vLLM extension
  double temperature = 1.0;
  double top_p = 1.0;
  std::int32_t top_k = 0;  // 0 = disabled (-1 in requests means the same)
  double min_p = 0.0;
  std::optional<std::uint64_t> seed;
  std::int32_t n = 1;
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  double repetition_penalty = 1.0;
  std::vector<std::pair<std::int32_t, float>> logit_bias;  // token id -> bias, in request order

  bool logprobs = false;   // chat: logprobs=true; completions: logprobs is an int (>= 0)
  std::int32_t top_logprobs = 0;
  bool echo = false;       // completions only

  std::vector<std::string> stop;
  std::vector<std::int32_t> stop_token_ids;  // vLLM extension
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool continuous_usage_stats = false;  // vLLM: usage in every chunk
  std::string user;
  bool ignore_eos = false;      // vLLM extension used by its benchmark client
  bool skip_special_tokens = true;
  // troupe extension: false opts this request out of speculative decoding (the output is the
  // same; only the speed differs). Default: whatever the server's config says.
  bool speculative_decoding = true;
  // Structured outputs (response_format, guided_*; frontend/structured_output.hpp): the GBNF the
  // output must match, empty for none.
  std::string grammar;
  // Tool calling: the tools, and tool_choice (default: auto with tools, none without) -- the
  // function's name when named. With required/named the serving backend adds the grammar of a
  // call (frontend/tool_calling.hpp); with auto the output is parsed for calls.
  std::vector<tool_definition> tools;
  std::optional<tool_choice_mode> tool_choice;  // set once parse_chat_request returns
  std::string tool_choice_name;
  bool parallel_tool_calls = true;
};

// The outcome of a parse: a value, or the api_error to send back.
template <class T>
struct parsed {
  std::optional<T> value;
  api_error error;
  bool ok() const { return value.has_value(); }
};

// What the operator chose about requests (server.* in the config).
struct parse_options {
  // true: top-level fields nobody documents are ignored (server.ignore_unknown_fields), for
  // clients that send their own extras; false (default): 400, as OpenAI answers them.
  bool ignore_unknown_fields = false;
};

parsed<generation_request> parse_completion_request(std::string_view body,
                                                    const parse_options& options = {});
parsed<generation_request> parse_chat_request(std::string_view body,
                                              const parse_options& options = {});

// POST /tokenize (vLLM): {"model"?, "prompt": "..."} or {"model"?, "messages": [...]},
// "add_special_tokens"? (default true for prompt), "add_generation_prompt"? (default true).
struct tokenize_request {
  std::string model;
  bool is_chat = false;
  std::string prompt;
  std::vector<chat_message> messages;
  bool add_special_tokens = true;
  bool add_generation_prompt = true;
};
parsed<tokenize_request> parse_tokenize_request(std::string_view body);

// POST /detokenize (vLLM): {"model"?, "tokens": [ids]}
struct detokenize_request {
  std::string model;
  std::vector<std::int32_t> tokens;
};
parsed<detokenize_request> parse_detokenize_request(std::string_view body);

}  // namespace troupe::frontend
