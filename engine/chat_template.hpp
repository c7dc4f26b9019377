// chat_template: renders a conversation into the prompt text a chat model was trained on.
//
// troupe does not embed a Jinja interpreter. Instead it recognises the common template families
// from the model's `tokenizer.chat_template` text and renders each with hand-written code that
// produces byte-for-byte what the Jinja template produces (checked against Python jinja2 on the
// real templates: tools/gen-chat-template-golden, tests/engine/test_chat_template.cpp):
//
//   chatml   <|im_start|>role\ncontent<|im_end|>\n ...; SmolLM2/Qwen-style templates that insert
//            a default system turn when the first message is not system are supported: the
//            default text is read out of the template.
//   llama-3  Meta-Llama-3-*-Instruct (3.0: no tools, no date header)
//   llama-2  Llama-2-*-chat (<<SYS>> folded into the first [INST])
//   mistral  Mistral-7B-Instruct v0.1/v0.2, Mixtral-8x7B-Instruct ([INST] without <<SYS>>)
//   gemma    gemma-*-it (1 and 2; no system role)
//   phi-3    Phi-3/Phi-3.5-mini-instruct (<|user|> ... <|end|>)
//
// Tool calling (issue 11): chatml renders tools the Hermes / Qwen2.5 way -- the tool definitions
// as JSON lines inside <tools></tools> in the system turn, an assistant's calls as
// <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, tool results as
// <tool_response>...</tool_response> inside a user turn -- whenever the request has tools or a
// message carries tool calls (otherwise a `tool` message renders as the model's own template
// does). The other families have no tool convention here: render_prompt() refuses tools and tool
// calls for them, and tool_call_format() is empty.
//
// A template outside these families (or a family member with features we do not render, such
// as tool definitions in the template itself) is an error unless the caller names a family explicitly (--chat-template);
// then that family's canonical rendering is used. Where the Jinja template raises (Gemma given a
// system message, roles that do not alternate), render() returns the same message as an error.
//
// Thread-safety: immutable after construction; render() may be called from any thread.
#pragma once

#include <optional>
#include <span>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "engine/chat_prompt.hpp"
#include "troupe/result.hpp"

namespace troupe::engine {

enum class chat_family { chatml, llama3, llama2, mistral, gemma, phi3 };

// "chatml", "llama-3", "llama-2", "mistral", "gemma", "phi-3".
const char* chat_family_name(chat_family f);
// Accepts the names above (also without the dash, any case); the error lists the valid names.
result<chat_family> parse_chat_family(std::string_view name);

// One call an assistant turn made (the conversation's history, fed back by the client).
struct chat_tool_call {
  std::string name;
  std::string arguments;  // the arguments object as the template's `tojson` writes it
};

struct chat_message {
  std::string role;     // "system", "user", "assistant" (others are passed to the template)
  std::string content;
  std::vector<chat_tool_call> tool_calls;  // assistant turns only
};

// How a family's model writes a tool call: open, a JSON object {"name": ..., "arguments": ...},
// close; several calls are separated by `separator`.
struct tool_call_format {
  std::string open;
  std::string close;
  std::string separator;
};

class chat_template {
 public:
  // Detects the family from a Jinja template text (the model's tokenizer.chat_template).
  // bos/eos: the model's special token texts, which the templates splice in as bos_token and
  // eos_token. Error when the text matches no supported family (the message suggests
  // --chat-template).
  static result<chat_template> detect(std::string_view template_text, std::string bos_token,
                                      std::string eos_token);

  // A family chosen by the user. If template_text is given and is of the same family, its
  // details (ChatML default system prompt, Mistral/Phi variants) are honoured.
  static chat_template for_family(chat_family family, std::string_view template_text,
                                  std::string bos_token, std::string eos_token);

  // The prompt text, or the template's own error (e.g. "Conversation roles must alternate
  // user/assistant/user/assistant/..."). An empty conversation is an error.
  // tools: each tool definition ({"type": "function", "function": {...}}) as the template's
  // `tojson` writes it; empty for none. Error for a family without a tool convention.
  result<std::string> render(std::span<const chat_message> messages,
                             bool add_generation_prompt,
                             std::span<const std::string> tools = {}) const;
  // The same text with its origins: the template's markup may hold special tokens, message
  // content and role names never do (see chat_prompt.hpp). Use this to tokenize untrusted chats.
  result<chat_prompt> render_prompt(std::span<const chat_message> messages,
                                    bool add_generation_prompt,
                                    std::span<const std::string> tools = {}) const;

  // The family's tool-call syntax; nullopt when this family has no tool convention here.
  std::optional<tool_call_format> tool_calls() const;

  chat_family family() const { return family_; }
  const std::string& default_system_prompt() const { return default_system_; }

 private:
  chat_family family_ = chat_family::chatml;
  std::string bos_;
  std::string eos_;
  std::string default_system_;     // chatml: inserted when messages[0] is not system ("" = none)
  bool has_default_system_ = false;
  bool mistral_space_after_eos_ = false;  // v0.1: eos_token + ' ' after an assistant turn
  bool phi3_skip_empty_system_ = false;   // Phi-3.5: `role == 'system' and content`
};

// Python's str.strip() (which Jinja's `trim` filter calls): removes leading and trailing
// characters for which str.isspace() is true, on UTF-8 text. Exposed for tests.
std::string python_strip(std::string_view s);
// The same as {offset of the first kept byte, number of kept bytes}.
std::pair<size_t, size_t> python_strip_bounds(std::string_view s);

}  // namespace troupe::engine
