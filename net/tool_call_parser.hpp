// tool_call_parser: splits one chat choice's generated text into the content the client reads
// and the tool calls the model made, as the text arrives (streaming) or all at once.
//
// A call is `open` + a JSON object {"name": <a known tool>, "arguments": {...}} + `close`
// (chatml: <tool_call> ... </tool_call>, engine/chat_template.hpp). What the parser guarantees:
//   - the markup never reaches the content: text that could still become `open` is held back
//     until it cannot; a call's text is held until its `close` (or the end of the choice);
//   - a call is reported only when its body is a JSON object naming a known tool with an object
//     of arguments; the arguments are returned as compact JSON text;
//   - a closed body that is not such a call (the model wrote markup around something else) goes
//     back to the content verbatim, markup included: it is what the model said, no call exists;
//   - a call the choice ended inside (max_tokens, a stop string) is a call if its JSON is
//     complete, else it is dropped: half a call is neither a call nor content;
//   - whitespace before, between and after calls is dropped (it separates calls; no content).
// With stream_arguments (the output is grammar-constrained to `{"name": "<tool>", "arguments": `
// <object> `}`), a call is reported as deltas as it is written instead: its header once the name
// is read, then the arguments text as the model writes it, less the last '}' seen so far (it may
// close the call's object, not the arguments); a call in another form is reported whole.
// Each call gets an id "call_" + 24 random alphanumerics, as OpenAI's look.
// A plain class, one per choice, used from one thread at a time.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::net {

struct tool_call_options {
  bool enabled = false;  // false: the text is all content (no tools, tool_choice "none")
  std::string open;      // e.g. "<tool_call>"
  std::string close;     // e.g. "</tool_call>"
  std::vector<std::string> names;  // the request's tools
  // The output is constrained to calls written as `{"name": "<tool>", "arguments": ` <object>
  // `}` (required/named tool_choice) and is streamed: report each call as it is written --
  // output::deltas -- instead of whole calls once closed.
  bool stream_arguments = false;
};

struct parsed_tool_call {
  std::size_t index = 0;  // the call's index in the choice
  std::string id;
  std::string name;
  std::string arguments;  // compact JSON object text
};

// A piece of a call as it is written (stream_arguments): the first of a call carries its id and
// name (arguments ""), the next ones pieces of the arguments text as the model wrote it.
struct tool_call_delta {
  std::size_t index = 0;  // the call's index in the choice
  std::string id;         // first delta only
  std::string name;       // first delta only
  std::string arguments;
};

class tool_call_parser {
 public:
  // REQUIRES: options.enabled, non-empty open and close.
  explicit tool_call_parser(tool_call_options options);

  struct output {
    std::string content;
    std::vector<parsed_tool_call> calls;   // whole calls (not stream_arguments)
    std::vector<tool_call_delta> deltas;   // stream_arguments
  };
  // More text of the choice: the content and calls it completes.
  output feed(std::string_view text);
  // The choice ended: whatever was held back, resolved.
  output finish();

  std::size_t num_calls() const { return num_calls_; }

 private:
  void scan(output& out);
  void emit_text(std::string_view text, output& out);
  void close_call(std::string_view body, bool closed, output& out);
  void start_streamed_call(output& out);
  void stream_arguments(output& out);
  void end_streamed_call(std::string_view body, output& out);

  tool_call_options opt_;
  bool in_call_ = false;
  std::string buf_;         // text: a possible prefix of `open`; in a call: its body so far
  std::string held_space_;  // whitespace not yet known to be content
  std::string space_before_call_;  // given back if the call turns out not to be one
  bool after_call_ = false;  // no content since the last call
  // stream_arguments: the open call's head was read (streaming_call_), or cannot be (head_failed_:
  // it is then reported whole); its arguments start at args_from_ in buf_, sent_ is how far
  // they went out.
  bool streaming_call_ = false;
  bool head_failed_ = false;
  std::size_t args_from_ = 0;
  std::size_t sent_ = 0;
  std::size_t num_calls_ = 0;
};

// Parses one call body (the JSON between the markers); false when it is not a call to one of
// `names`. Exposed for tests.
bool parse_tool_call_body(std::string_view body, const std::vector<std::string>& names,
                          parsed_tool_call& out);

std::string make_tool_call_id();

}  // namespace troupe::net
