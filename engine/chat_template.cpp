#include "engine/chat_template.hpp"

#include "engine/chat_prompt.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace troupe::engine {
namespace {

constexpr std::string_view alternate_error =
    "Conversation roles must alternate user/assistant/user/assistant/...";

bool has(std::string_view text, std::string_view marker) {
  return text.find(marker) != std::string_view::npos;
}

// Decodes one UTF-8 code point starting at s[i]; returns its length (1 for an invalid byte, which
// then never counts as whitespace).
size_t decode_at(std::string_view s, size_t i, uint32_t& cp) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    cp = 0xFFFFFFFF;
    return 1;
  }
  cp = n == 1 ? b : b & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c >> 6) != 2) {
      cp = 0xFFFFFFFF;
      return 1;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  return n;
}

// The code points for which Python's str.isspace() is true.
bool is_python_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Undoes the backslash escapes of a Jinja string literal (\n, \t, \r, \\, \', \").
std::string unescape_jinja_literal(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char c = s[i + 1];
      const char* rep = c == 'n' ? "\n" : c == 't' ? "\t" : c == 'r' ? "\r" : c == '\\' ? "\\"
                      : c == '\'' ? "'" : c == '"' ? "\"" : nullptr;
      if (rep) {
        out += rep;
        ++i;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// ChatML templates of the SmolLM2/Qwen2 shape emit a literal system turn when the first message
// is not a system message; the literal is the only template-specific text, so read it out.
bool find_default_system(std::string_view t, std::string& text) {
  if (!has(t, "!= 'system'") && !has(t, "!= \"system\"")) return false;
  constexpr std::string_view open = "<|im_start|>system";
  const size_t at = t.find(open);
  if (at == std::string_view::npos) return false;
  size_t body = at + open.size();
  if (t.substr(body, 1) == "\n") body += 1;
  else if (t.substr(body, 2) == "\\n") body += 2;
  else return false;
  const size_t end = t.find("<|im_end|>", body);
  if (end == std::string_view::npos) return false;
  text = unescape_jinja_literal(t.substr(body, end - body));
  return true;
}

struct detection {
  bool ok = false;
  chat_family family = chat_family::chatml;
  std::string why_not;  // for templates that look like a family but use unsupported features
};

detection classify(std::string_view t) {
  detection d;
  auto family = [&](chat_family f) {
    d.ok = true;
    d.family = f;
    return d;
  };
  auto unsupported = [&](const char* what) {
    d.why_not = what;
    return d;
  };
  if (has(t, "<|im_start|>")) {
    if (has(t, "<|im_sep|>")) return unsupported("a Phi-4 style template (<|im_sep|>)");
    if (has(t, "tool")) return unsupported("a ChatML template with tool calling");
    return family(chat_family::chatml);
  }
  if (has(t, "<|start_header_id|>") && has(t, "<|eot_id|>")) {
    if (has(t, "Cutting Knowledge") || has(t, "tool") || has(t, "<|python_tag|>"))
      return unsupported("a Llama-3.1+ template (tools, date header)");
    return family(chat_family::llama3);
  }
  if (has(t, "[INST]")) {
    if (has(t, "<<SYS>>")) return family(chat_family::llama2);
    if (has(t, "[AVAILABLE_TOOLS]") || has(t, "[SYSTEM_PROMPT]") || has(t, "tool"))
      return unsupported("a Mistral v0.3+ template (tools, [SYSTEM_PROMPT])");
    return family(chat_family::mistral);
  }
  if (has(t, "<start_of_turn>")) {
    if (has(t, "first_user_prefix") || has(t, "tool"))
      return unsupported("a Gemma-3+ template (system folded into the first turn)");
    return family(chat_family::gemma);
  }
  if (has(t, "<|user|>") && has(t, "<|assistant|>") && has(t, "<|end|>")) {
    if (has(t, "tool")) return unsupported("a Phi template with tool calling");
    return family(chat_family::phi3);
  }
  return d;
}

chat_prompt render_chatml(std::span<const chat_message> ms, bool agp, bool has_default,
                          std::string_view default_system) {
  chat_prompt_builder out;
  for (size_t i = 0; i < ms.size(); ++i) {
    if (i == 0 && has_default && ms[0].role != "system")
      out.markup("<|im_start|>system\n").markup(default_system).markup("<|im_end|>\n");
    out.markup("<|im_start|>").content(ms[i].role).markup("\n").content(ms[i].content)
        .markup("<|im_end|>\n");
  }
  if (agp) out.markup("<|im_start|>assistant\n");
  return out.take();
}

// The Hermes / Qwen2.5 tool convention on ChatML (what Qwen2.5-Instruct's template writes, with
// this model's default system prompt in place of Qwen's): the system turn lists the tools, the
// assistant's calls are <tool_call> blocks, consecutive tool results share one user turn.
chat_prompt render_chatml_tools(std::span<const chat_message> ms, bool agp, bool has_default,
                                std::string_view default_system,
                                std::span<const std::string> tools) {
  chat_prompt_builder out;
  size_t first = 0;
  if (!tools.empty()) {
    out.markup("<|im_start|>system\n");
    if (ms[0].role == "system") {
      out.content(ms[0].content).markup("\n\n");
      first = 1;
    } else if (has_default) {
      out.markup(default_system).markup("\n\n");
    }
    out.markup(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>");
    for (const auto& t : tools) out.markup("\n").content(t);
    out.markup(
        "\n</tools>\n\nFor each function call, return a json object with function name and "
        "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
        "<function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n");
  } else if (has_default && ms[0].role != "system") {
    out.markup("<|im_start|>system\n").markup(default_system).markup("<|im_end|>\n");
  }
  for (size_t i = first; i < ms.size(); ++i) {
    const auto& m = ms[i];
    if (m.role == "tool") {
      if (i == 0 || ms[i - 1].role != "tool") out.markup("<|im_start|>user");
      out.markup("\n<tool_response>\n").content(m.content).markup("\n</tool_response>");
      if (i + 1 == ms.size() || ms[i + 1].role != "tool") out.markup("<|im_end|>\n");
    } else if (m.role == "assistant" && !m.tool_calls.empty()) {
      out.markup("<|im_start|>assistant");
      if (!m.content.empty()) out.markup("\n").content(m.content);
      for (const auto& c : m.tool_calls)
        out.markup("\n<tool_call>\n{\"name\": \"").content(c.name)
            .markup("\", \"arguments\": ").content(c.arguments).markup("}\n</tool_call>");
      out.markup("<|im_end|>\n");
    } else {
      out.markup("<|im_start|>").content(m.role).markup("\n").content(m.content)
          .markup("<|im_end|>\n");
    }
  }
  if (agp) out.markup("<|im_start|>assistant\n");
  return out.take();
}

bool has_tool_calls(std::span<const chat_message> ms) {
  return std::any_of(ms.begin(), ms.end(), [](const auto& m) { return !m.tool_calls.empty(); });
}

// Jinja's `message['content'] | trim`, keeping where each byte came from.
void content_trimmed(chat_prompt_builder& out, std::string_view content) {
  const size_t from = out.mark();
  out.content(content);
  out.strip_since(from);
}

chat_prompt render_llama3(std::span<const chat_message> ms, bool agp, const std::string& bos) {
  chat_prompt_builder out;
  for (size_t i = 0; i < ms.size(); ++i) {
    if (i == 0) out.markup(bos);
    out.markup("<|start_header_id|>").content(ms[i].role).markup("<|end_header_id|>\n\n");
    content_trimmed(out, ms[i].content);
    out.markup("<|eot_id|>");
  }
  if (agp) out.markup("<|start_header_id|>assistant<|end_header_id|>\n\n");
  return out.take();
}

// (role == 'user') != (index % 2 == 0): the alternation check several templates share.
bool breaks_alternation(const chat_message& m, size_t index) {
  return (m.role == "user") != (index % 2 == 0);
}

result<chat_prompt> render_llama2(std::span<const chat_message> ms, const std::string& bos,
                                  const std::string& eos) {
  // The template ignores add_generation_prompt: a prompt ending in [/INST] is already one.
  std::span<const chat_message> loop = ms;
  const bool has_system = ms[0].role == "system";
  if (has_system) loop = ms.subspan(1);
  chat_prompt_builder out;
  for (size_t i = 0; i < loop.size(); ++i) {
    if (breaks_alternation(loop[i], i)) return error{std::string(alternate_error)};
    const bool user = loop[i].role == "user";
    if (!user && loop[i].role != "assistant") continue;
    out.markup(user ? std::string_view(bos) : std::string_view()).markup(user ? "[INST] " : " ");
    // (<<SYS>> block +) content, trimmed as one string, as the template does.
    const size_t from = out.mark();
    if (i == 0 && has_system)
      out.markup("<<SYS>>\n").content(ms[0].content).markup("\n<</SYS>>\n\n");
    out.content(loop[i].content);
    out.strip_since(from);
    if (user)
      out.markup(" [/INST]");
    else
      out.markup(" ").markup(eos);
  }
  return out.take();
}

result<chat_prompt> render_mistral(std::span<const chat_message> ms, const std::string& bos,
                                   const std::string& eos, bool space_after_eos) {
  chat_prompt_builder out;
  out.markup(bos);
  for (size_t i = 0; i < ms.size(); ++i) {
    if (breaks_alternation(ms[i], i)) return error{std::string(alternate_error)};
    if (ms[i].role == "user")
      out.markup("[INST] ").content(ms[i].content).markup(" [/INST]");
    else if (ms[i].role == "assistant")
      out.content(ms[i].content).markup(eos).markup(space_after_eos ? " " : "");
    else
      return error{"Only user and assistant roles are supported!"};
  }
  return out.take();
}

result<chat_prompt> render_gemma(std::span<const chat_message> ms, bool agp,
                                 const std::string& bos) {
  if (ms[0].role == "system") return error{"System role not supported"};
  chat_prompt_builder out;
  out.markup(bos);
  for (size_t i = 0; i < ms.size(); ++i) {
    if (breaks_alternation(ms[i], i)) return error{std::string(alternate_error)};
    out.markup("<start_of_turn>");
    if (ms[i].role == "assistant")
      out.markup("model");
    else
      out.content(ms[i].role);
    out.markup("\n");
    content_trimmed(out, ms[i].content);
    out.markup("<end_of_turn>\n");
  }
  if (agp) out.markup("<start_of_turn>model\n");
  return out.take();
}

chat_prompt render_phi3(std::span<const chat_message> ms, bool agp, const std::string& eos,
                        bool skip_empty_system) {
  chat_prompt_builder out;
  for (const auto& m : ms) {
    const bool system = m.role == "system" && !(skip_empty_system && m.content.empty());
    if (system || m.role == "user" || m.role == "assistant")
      out.markup("<|").content(m.role).markup("|>\n").content(m.content).markup("<|end|>\n");
  }
  if (agp)
    out.markup("<|assistant|>\n");
  else
    out.markup(eos);
  return out.take();
}

}  // namespace

const char* chat_family_name(chat_family f) {
  switch (f) {
    case chat_family::chatml: return "chatml";
    case chat_family::llama3: return "llama-3";
    case chat_family::llama2: return "llama-2";
    case chat_family::mistral: return "mistral";
    case chat_family::gemma: return "gemma";
    case chat_family::phi3: return "phi-3";
  }
  return "unknown";
}

result<chat_family> parse_chat_family(std::string_view name) {
  std::string key;
  for (char c : name)
    if (c != '-' && c != '_') key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto f : {chat_family::chatml, chat_family::llama3, chat_family::llama2,
                 chat_family::mistral, chat_family::gemma, chat_family::phi3}) {
    std::string n;
    for (const char* p = chat_family_name(f); *p; ++p)
      if (*p != '-') n += *p;
    if (n == key) return f;
  }
  return error{"unknown chat template family '" + std::string(name) +
               "' (known: chatml, llama-3, llama-2, mistral, gemma, phi-3)"};
}

std::pair<size_t, size_t> python_strip_bounds(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    uint32_t cp;
    const size_t n = decode_at(s, begin, cp);
    if (!is_python_space(cp)) break;
    begin += n;
  }
  size_t end = begin;
  for (size_t i = begin; i < s.size();) {  // end = one past the last non-space code point
    uint32_t cp;
    const size_t n = decode_at(s, i, cp);
    i += n;
    if (!is_python_space(cp)) end = i;
  }
  return {begin, end - begin};
}

std::string python_strip(std::string_view s) {
  const auto [begin, length] = python_strip_bounds(s);
  return std::string(s.substr(begin, length));
}

result<chat_template> chat_template::detect(std::string_view template_text,
                                            std::string bos_token, std::string eos_token) {
  const detection d = classify(template_text);
  if (!d.ok) {
    std::string why = d.why_not.empty() ? "it matches none of the supported families"
                                        : "it is " + d.why_not + ", which troupe does not render";
    return error{"cannot apply the model's chat template: " + why +
                 "; pass --chat-template with one of chatml, llama-3, llama-2, mistral, gemma, "
                 "phi-3 to choose a rendering"};
  }
  return for_family(d.family, template_text, std::move(bos_token), std::move(eos_token));
}

chat_template chat_template::for_family(chat_family family, std::string_view template_text,
                                        std::string bos_token, std::string eos_token) {
  chat_template t;
  t.family_ = family;
  t.bos_ = std::move(bos_token);
  t.eos_ = std::move(eos_token);
  const detection d = classify(template_text);
  if (d.ok && d.family == family) {  // variants only when the given text is of this family
    t.has_default_system_ =
        family == chat_family::chatml && find_default_system(template_text, t.default_system_);
    t.mistral_space_after_eos_ = has(template_text, "eos_token + ' '");
    t.phi3_skip_empty_system_ = has(template_text, "'system' and message['content']");
  }
  return t;
}

std::optional<tool_call_format> chat_template::tool_calls() const {
  if (family_ == chat_family::chatml) return tool_call_format{"<tool_call>", "</tool_call>", "\n"};
  return std::nullopt;
}

result<chat_prompt> chat_template::render_prompt(std::span<const chat_message> messages,
                                                 bool add_generation_prompt,
                                                 std::span<const std::string> tools) const {
  if (messages.empty()) return error{"a chat needs at least one message"};
  const bool tool_convention = !tools.empty() || has_tool_calls(messages);
  if (tool_convention && !tool_calls())
    return error{std::string("the ") + chat_family_name(family_) +
                 " chat template has no tool-calling convention in troupe (only chatml has)"};
  switch (family_) {
    case chat_family::chatml:
      if (tool_convention)
        return render_chatml_tools(messages, add_generation_prompt, has_default_system_,
                                   default_system_, tools);
      return render_chatml(messages, add_generation_prompt, has_default_system_, default_system_);
    case chat_family::llama3: return render_llama3(messages, add_generation_prompt, bos_);
    case chat_family::llama2: return render_llama2(messages, bos_, eos_);
    case chat_family::mistral:
      return render_mistral(messages, bos_, eos_, mistral_space_after_eos_);
    case chat_family::gemma: return render_gemma(messages, add_generation_prompt, bos_);
    case chat_family::phi3:
      return render_phi3(messages, add_generation_prompt, eos_, phi3_skip_empty_system_);
  }
  return error{"unreachable chat family"};
}

result<std::string> chat_template::render(std::span<const chat_message> messages,
                                          bool add_generation_prompt,
                                          std::span<const std::string> tools) const {
  auto p = render_prompt(messages, add_generation_prompt, tools);
  if (!p) return p.err();
  return std::move(p->text);
}

}  // namespace troupe::engine
