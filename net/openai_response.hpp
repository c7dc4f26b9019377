// openai_response: builds the OpenAI response bodies of one generation request -- text_completion,
// chat.completion and their streaming chunks -- from decoded token text, with stop strings,
// usage, finish_reason, logprobs (chat and completions shapes) and n choices.
//
// The request actor drives it: add_tokens() per token event, finish_choice() when a choice ends.
// In streaming mode each call returns the SSE frames to send now; otherwise text accumulates and
// complete_body() returns the whole JSON body at the end. Stop strings are matched here (across
// token boundaries, never emitted); choice_stopped() tells the caller a choice ended on one.
// No CAF, no HTTP: a plain class, one per request, used from one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "net/stop_matcher.hpp"
#include "net/tool_call_parser.hpp"

namespace troupe::net {

// Which OpenAI endpoint a response answers: its object names and choice shapes differ.
enum class endpoint_kind { completions, chat };

struct response_options {
  endpoint_kind kind = endpoint_kind::completions;
  std::string id;      // "cmpl-..." / "chatcmpl-..."
  std::string model;
  std::int64_t created = 0;
  std::int32_t n = 1;            // choices per prompt
  std::int32_t num_prompts = 1;  // completions batch; choice index = prompt * n + choice
  bool stream = false;
  bool include_usage = false;
  bool continuous_usage_stats = false;
  bool logprobs = false;
  std::int32_t top_logprobs = 0;
  bool echo = false;           // completions: the prompt text precedes the output
  std::vector<std::string> prompt_texts;  // for echo: one per prompt
  std::vector<std::string> stop;
  std::int32_t num_prompt_tokens = 0;     // usage: every prompt counted once
  std::string system_fingerprint;         // "" -> null
  // Chat with tools (tool_choice auto, required or a named function): each choice's text is
  // split into content and tool_calls (net/tool_call_parser.hpp); a choice that called a tool
  // and stopped finishes with "tool_calls". Streaming sends each call as OpenAI's deltas: one
  // with index, id, type, name and arguments "", then argument pieces -- as they are written
  // with tool_calls.stream_arguments (a grammar-constrained call), else the whole arguments
  // once the call closed.
  tool_call_options tool_calls;

  std::int32_t num_choices() const { return n * num_prompts; }
};

// One generated token as the client sees it.
struct token_output {
  std::int32_t id = -1;
  std::string text;        // the text this token adds to the choice (may be "" while UTF-8 is
                           // incomplete; the rest comes with a later token)
  std::string token_text;  // the token's own text, for logprobs entries
  float logprob = 0.0f;
  std::vector<std::pair<std::string, float>> top;  // (token text, logprob), best first
  bool has_logprob = true;  // false for a prompt's first token (echo): logprob and top are null
};

class openai_response {
 public:
  explicit openai_response(response_options opt);

  // The first frames of a stream (chat: the assistant role delta per choice; completions with
  // echo: the prompt). "" when not streaming.
  std::string begin();
  // Completions with echo and logprobs: the logprobs of prompt `prompt`'s tokens (one entry per
  // prompt token, the first without a logprob), placed before the generated tokens' entries of
  // each of its choices. Accepted once per prompt. Streaming: the echo chunks of the prompt's
  // choices wait for this (or for their first tokens / finish) and are returned here.
  std::string add_prompt_logprobs(std::int32_t prompt, std::vector<token_output> entries);

  // `choice` below is the response's choice index, 0 <= choice < num_choices().
  // New tokens of a choice. Returns the SSE frames to send (streaming) or "".
  std::string add_tokens(std::int32_t choice, const std::vector<token_output>& tokens);
  // The choice ended for `reason` ("stop", "length", "abort"); tail is text the decoder still
  // held. Ignored if the choice already ended on a stop string. Returns SSE frames or "".
  std::string finish_choice(std::int32_t choice, const std::string& reason,
                            const std::string& tail = "");

  // usage.prompt_tokens_details.cached_tokens: how many of prompt `prompt`'s tokens were served
  // from the prefix cache (the usage sums the prompts). 0 until set.
  void set_num_cached_prompt_tokens(std::int32_t prompt, std::int32_t num);

  bool choice_finished(std::int32_t choice) const;
  bool all_finished() const;
  std::int32_t num_completion_tokens() const;

  // Streaming: the closing frames (usage chunk if asked, then data: [DONE]).
  std::string end_stream();
  // Not streaming: the whole JSON body. REQUIRES: all_finished().
  std::string complete_body() const;

 private:
  struct choice_state {
    stop_matcher matcher;
    std::string text;
    std::vector<token_output> logprobs;  // accumulated (non-stream) logprob entries
    std::size_t text_offset = 0;         // completions logprobs: offset of the next token
    std::int32_t num_tokens = 0;
    std::optional<std::string> finish_reason;
    std::optional<tool_call_parser> tools;   // when opt_.tool_calls.enabled
    std::vector<parsed_tool_call> calls;     // non-streaming: the calls so far
  };

  std::string chunk(std::int32_t choice, const std::string& text,
                    const std::vector<token_output>* logprobs,
                    const std::string* finish_reason, bool role_delta) const;
  // The SSE frames of a choice's content and calls found by its tool parser.
  std::string stream_tool_output(std::int32_t choice, tool_call_parser::output o,
                                 const std::vector<token_output>* logprobs);
  // OpenAI's tool-call delta: with id (and type, name) it is a call's first.
  std::string tool_call_chunk(std::int32_t choice, const tool_call_delta& d) const;
  // "tool_calls" for a choice that called a tool and stopped; else `reason`.
  std::string finish_reason_of(const choice_state& c, const std::string& reason) const;
  void begin_chunk(class json_writer& w, std::int32_t choice) const;
  void write_logprobs(class json_writer& w, const std::vector<token_output>& lp,
                      std::size_t first_offset) const;
  void write_usage(class json_writer& w) const;
  void write_fingerprint(class json_writer& w) const;
  const std::string& echo_text(std::int32_t choice) const;  // its prompt's text (echo only)
  // Streaming echo with logprobs: the echo chunks wait for the prompt logprobs.
  bool defers_echo() const { return opt_.echo && opt_.stream && opt_.logprobs; }
  std::string send_echo(std::int32_t prompt);  // the deferred echo chunks, once

  response_options opt_;
  std::vector<choice_state> choices_;
  std::vector<std::vector<token_output>> prompt_logprobs_;  // per prompt (echo + logprobs)
  std::vector<bool> echo_sent_;                             // per prompt (streaming)
  std::vector<std::int32_t> num_cached_prompt_tokens_;     // per prompt
};

// Deterministic, unique-enough ids: prefix + 24 hex digits from a process-wide counter and time.
std::string make_response_id(const char* prefix);

}  // namespace troupe::net
