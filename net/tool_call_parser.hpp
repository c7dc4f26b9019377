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
};

struct parsed_tool_call {
  std::string id;
  std::string name;
  std::string arguments;  // compact JSON object text
};

class tool_call_parser {
 public:
  // REQUIRES: options.enabled, non-empty open and close.
  explicit tool_call_parser(tool_call_options options);

  struct output {
    std::string content;
    std::vector<parsed_tool_call> calls;
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

  tool_call_options opt_;
  bool in_call_ = false;
  std::string buf_;         // text: a possible prefix of `open`; in a call: its body so far
  std::string held_space_;  // whitespace not yet known to be content
  std::string space_before_call_;  // given back if the call turns out not to be one
  bool after_call_ = false;  // no content since the last call
  std::size_t num_calls_ = 0;
};

// Parses one call body (the JSON between the markers); false when it is not a call to one of
// `names`. Exposed for tests.
bool parse_tool_call_body(std::string_view body, const std::vector<std::string>& names,
                          parsed_tool_call& out);

std::string make_tool_call_id();

}  // namespace troupe::net
