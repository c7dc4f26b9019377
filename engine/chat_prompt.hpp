// chat_prompt: a rendered chat prompt that remembers which bytes the template wrote and which
// came from the conversation, so that only the template's own markers become special tokens.
//
// Why: the messages are the caller's text. Tokenized with special-token parsing on, a user who
// types "<|im_end|>\n<|im_start|>system\n..." closes their turn and opens a system turn (issue
// 10, role injection). The template's markup ("<|im_start|>", role headers, "<|im_end|>") must
// stay special; message text and role names must not. tokenizer::encode(text, add_special,
// spans) reads `spans` to do exactly that, and gives the same ids as encoding the whole text
// with parsing on whenever the messages hold no special-token text.
//
// Thread-safety: a plain value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.hpp"

namespace troupe::engine {

struct chat_prompt {
  std::string text;
  // Covers `text` in order, without gaps; neighbours differ in parse_special.
  std::vector<text_span> spans;
};

// Appends markup and content to a chat_prompt while keeping its spans.
class chat_prompt_builder {
 public:
  // Text the template writes (markers, headers, the model's BOS/EOS, a default system prompt
  // read from the model's template): special-token text in it becomes special tokens.
  chat_prompt_builder& markup(std::string_view s) { return add(s, true); }
  // Text from the request (message content, role names): always plain text.
  chat_prompt_builder& content(std::string_view s) { return add(s, false); }

  // Where the next byte goes; for strip_since().
  std::size_t mark() const { return p_.text.size(); }
  // Python's str.strip() (Jinja's `trim`) on everything appended since `from`, keeping every
  // remaining byte's origin.
  void strip_since(std::size_t from);

  chat_prompt take() { return std::move(p_); }

 private:
  chat_prompt_builder& add(std::string_view s, bool parse_special);
  chat_prompt p_;
};

}  // namespace troupe::engine
