#include "net/openai_response.hpp"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <limits>

#include "net/json_writer.hpp"
#include "net/sse.hpp"
#include "troupe/result.hpp"

namespace troupe::net {

std::string make_response_id(const char* prefix) {
  static std::atomic<std::uint64_t> counter{0};
  static const std::uint64_t start = static_cast<std::uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count());
  return fmt::format("{}-{:016x}{:08x}", prefix, start, counter.fetch_add(1) & 0xffffffffu);
}

openai_response::openai_response(response_options opt) : opt_(std::move(opt)) {
  TROUPE_ASSERT(opt_.n >= 1 && opt_.num_prompts >= 1);
  if (opt_.kind != endpoint_kind::completions) opt_.echo = false;
  if (opt_.echo) TROUPE_ASSERT(opt_.prompt_texts.size() == static_cast<std::size_t>(opt_.num_prompts));
  choices_.reserve(static_cast<std::size_t>(opt_.num_choices()));
  for (std::int32_t i = 0; i < opt_.num_choices(); ++i) {
    choices_.push_back(choice_state{stop_matcher(opt_.stop)});
    if (opt_.tool_calls.enabled && opt_.kind == endpoint_kind::chat)
      choices_.back().tools.emplace(opt_.tool_calls);
    if (!opt_.echo) continue;
    const std::string& prompt = echo_text(i);
    if (!opt_.stream) choices_.back().text = prompt;
    choices_.back().text_offset = defers_echo() ? 0 : prompt.size();
  }
  prompt_logprobs_.resize(static_cast<std::size_t>(opt_.num_prompts));
  echo_sent_.assign(static_cast<std::size_t>(opt_.num_prompts), !defers_echo());
  num_cached_prompt_tokens_.assign(static_cast<std::size_t>(opt_.num_prompts), 0);
}

const std::string& openai_response::echo_text(std::int32_t choice) const {
  return opt_.prompt_texts[static_cast<std::size_t>(choice / opt_.n)];
}

void openai_response::write_usage(json_writer& w) const {
  auto completion = num_completion_tokens();
  std::int32_t cached = 0;
  for (auto c : num_cached_prompt_tokens_) cached += c;
  w.begin_object()
      .field("prompt_tokens", opt_.num_prompt_tokens)
      .field("completion_tokens", completion)
      .field("total_tokens", opt_.num_prompt_tokens + completion)
      .key("prompt_tokens_details").begin_object().field("cached_tokens", cached).end_object()
      .end_object();
}

void openai_response::set_num_cached_prompt_tokens(std::int32_t prompt, std::int32_t num) {
  TROUPE_ASSERT(prompt >= 0 && prompt < opt_.num_prompts);
  num_cached_prompt_tokens_[static_cast<std::size_t>(prompt)] = num;
}

// null until the server has one (tests that build responses by hand).
void openai_response::write_fingerprint(json_writer& w) const {
  w.key("system_fingerprint");
  if (opt_.system_fingerprint.empty()) w.null(); else w.value(opt_.system_fingerprint);
}

// Chat: {"content":[{"token","logprob","bytes","top_logprobs":[...]}]}.
// Completions: {"tokens","token_logprobs","top_logprobs":[{tok:lp}],"text_offset"}.
void openai_response::write_logprobs(json_writer& w, const std::vector<token_output>& lp,
                                     std::size_t first_offset) const {
  auto bytes = [&](const std::string& s) {
    w.begin_array();
    for (unsigned char c : s) w.value(static_cast<std::int64_t>(c));
    w.end_array();
  };
  if (opt_.kind == endpoint_kind::chat) {
    w.begin_object().key("content").begin_array();
    for (const auto& t : lp) {
      w.begin_object().field("token", t.token_text).field("logprob", t.logprob).key("bytes");
      bytes(t.token_text);
      w.key("top_logprobs").begin_array();
      for (const auto& [text, l] : t.top) {
        w.begin_object().field("token", text).field("logprob", l).key("bytes");
        bytes(text);
        w.end_object();
      }
      w.end_array().end_object();
    }
    w.end_array().end_object();
    return;
  }
  w.begin_object().key("tokens").begin_array();
  for (const auto& t : lp) w.value(t.token_text);
  w.end_array().key("token_logprobs").begin_array();
  for (const auto& t : lp) {
    if (t.has_logprob) w.value(t.logprob);
    else w.null();
  }
  w.end_array().key("top_logprobs").begin_array();
  for (const auto& t : lp) {
    if (!t.has_logprob) {
      w.null();
      continue;
    }
    w.begin_object();
    for (const auto& [text, l] : t.top) w.field(text, l);
    w.end_object();
  }
  w.end_array().key("text_offset").begin_array();
  std::size_t off = first_offset;
  for (const auto& t : lp) {
    w.value(static_cast<std::uint64_t>(off));
    off += t.token_text.size();
  }
  w.end_array().end_object();
}

// A chunk's envelope up to inside its one choice object.
void openai_response::begin_chunk(json_writer& w, std::int32_t choice) const {
  const bool chat = opt_.kind == endpoint_kind::chat;
  w.begin_object()
      .field("id", opt_.id)
      .field("object", chat ? "chat.completion.chunk" : "text_completion")
      .field("created", opt_.created)
      .field("model", opt_.model);
  write_fingerprint(w);
  w.key("choices").begin_array().begin_object().field("index", choice);
}

std::string openai_response::chunk(std::int32_t choice, const std::string& text,
                                   const std::vector<token_output>* logprobs,
                                   const std::string* finish_reason, bool role_delta) const {
  const bool chat = opt_.kind == endpoint_kind::chat;
  json_writer w;
  begin_chunk(w, choice);
  if (chat) {
    w.key("delta").begin_object();
    if (role_delta) w.field("role", "assistant").field("content", "");
    else if (!finish_reason || !text.empty()) w.field("content", text);
    w.end_object();
  } else {
    w.field("text", text);
  }
  w.key("logprobs");
  if (logprobs && !logprobs->empty()) {
    write_logprobs(w, *logprobs, choices_[static_cast<std::size_t>(choice)].text_offset);
  } else {
    w.null();
  }
  w.key("finish_reason");
  if (finish_reason) w.value(*finish_reason); else w.null();
  w.end_object().end_array();
  if (opt_.include_usage && opt_.continuous_usage_stats) {
    w.key("usage");
    write_usage(w);
  }
  w.end_object();
  return sse_event(w.str());
}

// OpenAI's tool-call delta: the header (index, id, type, name, arguments "") first, then the
// arguments as a fragment that the client appends.
std::string openai_response::tool_call_chunk(std::int32_t choice,
                                             const tool_call_delta& d) const {
  const bool header = !d.id.empty();
  json_writer w;
  begin_chunk(w, choice);
  w.key("delta").begin_object().key("tool_calls").begin_array().begin_object()
      .field("index", static_cast<std::uint64_t>(d.index));
  if (header) w.field("id", d.id).field("type", "function");
  w.key("function").begin_object();
  if (header) w.field("name", d.name);
  w.field("arguments", d.arguments).end_object();
  w.end_object().end_array().end_object();
  w.key("logprobs").null().key("finish_reason").null();
  w.end_object().end_array();
  if (opt_.include_usage && opt_.continuous_usage_stats) {
    w.key("usage");
    write_usage(w);
  }
  w.end_object();
  return sse_event(w.str());
}

std::string openai_response::stream_tool_output(std::int32_t choice, tool_call_parser::output o,
                                                const std::vector<token_output>* logprobs) {
  auto& c = choices_[static_cast<std::size_t>(choice)];
  std::string out;
  if (!o.content.empty() || (logprobs && !logprobs->empty())) {
    out += chunk(choice, o.content, logprobs, nullptr, false);
    if (logprobs)
      for (const auto& t : *logprobs) c.text_offset += t.token_text.size();
  }
  // Whole calls (closed, then parsed) go out as a header delta and one with the arguments;
  // streamed ones as they came. Both in the order of their calls.
  auto whole = o.calls.begin();
  auto send_whole_before = [&](std::size_t index) {
    for (; whole != o.calls.end() && whole->index < index; ++whole) {
      out += tool_call_chunk(choice, {whole->index, whole->id, whole->name, ""});
      out += tool_call_chunk(choice, {whole->index, "", "", whole->arguments});
    }
  };
  for (const auto& d : o.deltas) {
    send_whole_before(d.index);
    out += tool_call_chunk(choice, d);
  }
  send_whole_before(std::numeric_limits<std::size_t>::max());
  return out;
}

std::string openai_response::finish_reason_of(const choice_state& c,
                                              const std::string& reason) const {
  if (reason == "stop" && c.tools && c.tools->num_calls() > 0) return "tool_calls";
  return reason;
}

std::string openai_response::begin() {
  if (!opt_.stream) return {};
  std::string out;
  for (std::int32_t i = 0; i < opt_.num_choices(); ++i) {
    if (opt_.kind == endpoint_kind::chat)
      out += chunk(i, "", nullptr, nullptr, true);
    else if (opt_.echo && !defers_echo() && !echo_text(i).empty())
      out += chunk(i, echo_text(i), nullptr, nullptr, false);
  }
  return out;
}

std::string openai_response::add_prompt_logprobs(std::int32_t prompt,
                                                 std::vector<token_output> entries) {
  TROUPE_ASSERT(prompt >= 0 && prompt < opt_.num_prompts);
  if (!opt_.echo || !opt_.logprobs || entries.empty()) return {};
  auto& pl = prompt_logprobs_[static_cast<std::size_t>(prompt)];
  // Once per prompt, and (streaming) only before the prompt's echo went out without them.
  if (!pl.empty() || (opt_.stream && echo_sent_[static_cast<std::size_t>(prompt)])) return {};
  pl = std::move(entries);
  return opt_.stream ? send_echo(prompt) : std::string{};
}

std::string openai_response::send_echo(std::int32_t prompt) {
  if (echo_sent_[static_cast<std::size_t>(prompt)]) return {};
  echo_sent_[static_cast<std::size_t>(prompt)] = true;
  const auto& pl = prompt_logprobs_[static_cast<std::size_t>(prompt)];
  std::string out;
  for (std::int32_t c = prompt * opt_.n; c < (prompt + 1) * opt_.n; ++c) {
    out += chunk(c, echo_text(c), pl.empty() ? nullptr : &pl, nullptr, false);
    auto& cs = choices_[static_cast<std::size_t>(c)];
    if (pl.empty()) cs.text_offset += echo_text(c).size();
    for (const auto& t : pl) cs.text_offset += t.token_text.size();
  }
  return out;
}

std::string openai_response::add_tokens(std::int32_t choice,
                                        const std::vector<token_output>& tokens) {
  TROUPE_ASSERT(choice >= 0 && choice < opt_.num_choices());
  auto& c = choices_[static_cast<std::size_t>(choice)];
  if (c.finish_reason) return {};  // ended on a stop string: later tokens are not the client's
  std::string out = opt_.stream ? send_echo(choice / opt_.n) : std::string{};
  std::string emitted;
  std::vector<token_output> lp;
  bool stopped = false;
  for (const auto& t : tokens) {
    ++c.num_tokens;
    if (opt_.logprobs) lp.push_back(t);
    auto o = c.matcher.feed(t.text);
    emitted += o.text;
    if (o.stopped) {
      stopped = true;
      break;
    }
  }
  if (c.tools) {
    auto o = c.tools->feed(emitted);
    if (stopped) {  // the stop string ends the choice: resolve what the parser held
      auto rest = c.tools->finish();
      o.content += rest.content;
      for (auto& call : rest.calls) o.calls.push_back(std::move(call));
    }
    if (opt_.stream) {
      out += stream_tool_output(choice, std::move(o), opt_.logprobs ? &lp : nullptr);
    } else {
      c.text += o.content;
      for (auto& call : o.calls) c.calls.push_back(std::move(call));
      for (auto& t : lp) c.logprobs.push_back(std::move(t));
    }
  } else if (opt_.stream) {
    if (!emitted.empty() || !lp.empty()) {
      out += chunk(choice, emitted, opt_.logprobs ? &lp : nullptr, nullptr, false);
      for (const auto& t : lp) c.text_offset += t.token_text.size();
    }
  } else {
    c.text += emitted;
    for (auto& t : lp) c.logprobs.push_back(std::move(t));
  }
  if (stopped) {
    c.finish_reason = finish_reason_of(c, "stop");
    if (opt_.stream) out += chunk(choice, "", nullptr, &*c.finish_reason, false);
  }
  return out;
}

std::string openai_response::finish_choice(std::int32_t choice, const std::string& reason,
                                           const std::string& tail) {
  TROUPE_ASSERT(choice >= 0 && choice < opt_.num_choices());
  auto& c = choices_[static_cast<std::size_t>(choice)];
  if (c.finish_reason) return {};
  std::string rest = c.matcher.feed(tail).text;
  bool stopped = c.matcher.stopped();
  if (!stopped) rest += c.matcher.flush();
  std::optional<tool_call_parser::output> parsed;
  if (c.tools) {
    parsed = c.tools->feed(rest);
    auto last = c.tools->finish();
    parsed->content += last.content;
    for (auto& call : last.calls) parsed->calls.push_back(std::move(call));
  }
  c.finish_reason = finish_reason_of(c, stopped ? "stop" : reason);
  if (!opt_.stream) {
    if (!parsed) {
      c.text += rest;
      return {};
    }
    c.text += parsed->content;
    for (auto& call : parsed->calls) c.calls.push_back(std::move(call));
    return {};
  }
  std::string out = send_echo(choice / opt_.n);
  if (parsed)
    out += stream_tool_output(choice, std::move(*parsed), nullptr);
  else if (!rest.empty())
    out += chunk(choice, rest, nullptr, nullptr, false);
  out += chunk(choice, "", nullptr, &*c.finish_reason, false);
  return out;
}

bool openai_response::choice_finished(std::int32_t choice) const {
  return choices_[static_cast<std::size_t>(choice)].finish_reason.has_value();
}

bool openai_response::all_finished() const {
  for (const auto& c : choices_)
    if (!c.finish_reason) return false;
  return true;
}

std::int32_t openai_response::num_completion_tokens() const {
  std::int32_t n = 0;
  for (const auto& c : choices_) n += c.num_tokens;
  return n;
}

std::string openai_response::end_stream() {
  std::string out;
  if (opt_.include_usage) {
    json_writer w;
    w.begin_object()
        .field("id", opt_.id)
        .field("object", opt_.kind == endpoint_kind::chat ? "chat.completion.chunk"
                                                           : "text_completion")
        .field("created", opt_.created)
        .field("model", opt_.model);
    write_fingerprint(w);
    w.key("choices").begin_array().end_array().key("usage");
    write_usage(w);
    w.end_object();
    out += sse_event(w.str());
  }
  out += sse_done;
  return out;
}

std::string openai_response::complete_body() const {
  TROUPE_ASSERT(all_finished());
  const bool chat = opt_.kind == endpoint_kind::chat;
  json_writer w;
  w.begin_object()
      .field("id", opt_.id)
      .field("object", chat ? "chat.completion" : "text_completion")
      .field("created", opt_.created)
      .field("model", opt_.model);
  write_fingerprint(w);
  w.key("choices").begin_array();
  for (std::size_t i = 0; i < choices_.size(); ++i) {
    const auto& c = choices_[i];
    w.begin_object().field("index", static_cast<std::int64_t>(i));
    if (chat) {
      w.key("message").begin_object().field("role", "assistant").key("content");
      // A message that only calls tools has no content (null), as OpenAI answers.
      if (c.calls.empty() || !c.text.empty()) w.value(c.text); else w.null();
      if (!c.calls.empty()) {
        w.key("tool_calls").begin_array();
        for (const auto& call : c.calls)
          w.begin_object().field("id", call.id).field("type", "function").key("function")
              .begin_object().field("name", call.name).field("arguments", call.arguments)
              .end_object().end_object();
        w.end_array();
      }
      w.end_object();
    } else {
      w.field("text", c.text);
    }
    w.key("logprobs");
    const auto& pl = prompt_logprobs_[i / static_cast<std::size_t>(opt_.n)];
    if (opt_.logprobs && !pl.empty()) {
      // Echo with prompt logprobs: the prompt's entries, then the generated ones, offsets from 0.
      std::vector<token_output> all = pl;
      all.insert(all.end(), c.logprobs.begin(), c.logprobs.end());
      write_logprobs(w, all, 0);
    } else if (opt_.logprobs) {
      std::size_t first = opt_.echo ? echo_text(static_cast<std::int32_t>(i)).size() : 0;
      write_logprobs(w, c.logprobs, first);
    } else {
      w.null();
    }
    w.field("finish_reason", *c.finish_reason).end_object();
  }
  w.end_array().key("usage");
  write_usage(w);
  w.end_object();
  return w.take();
}

}  // namespace troupe::net
