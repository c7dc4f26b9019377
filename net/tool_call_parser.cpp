#include "net/tool_call_parser.hpp"

#include <simdjson.h>

#include <algorithm>
#include <random>

#include "troupe/result.hpp"

namespace troupe::net {

namespace {

// The length of the longest suffix of `text` that is a proper prefix of `marker`.
std::size_t partial_marker_at_end(std::string_view text, std::string_view marker) {
  for (std::size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n)
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  return 0;
}

}  // namespace

std::string make_tool_call_id() {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int> pick(0, sizeof(alphabet) - 2);
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += alphabet[pick(rng)];
  return id;
}

bool parse_tool_call_body(std::string_view body, const std::vector<std::string>& names,
                          parsed_tool_call& out) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size()).get(root)) return false;
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return false;
  std::string_view name;
  simdjson::dom::object args;
  if (obj["name"].get_string().get(name) || obj["arguments"].get_object().get(args)) return false;
  if (std::find(names.begin(), names.end(), name) == names.end()) return false;
  out.id = make_tool_call_id();
  out.name = name;
  out.arguments = simdjson::minify(args);
  return true;
}

tool_call_parser::tool_call_parser(tool_call_options options) : opt_(std::move(options)) {
  TROUPE_ASSERT(opt_.enabled && !opt_.open.empty() && !opt_.close.empty());
}

// Content outside calls. Trailing whitespace waits: before a call or after the last one it is
// dropped (it separates calls), and so is whitespace right after a call.
void tool_call_parser::emit_text(std::string_view text, output& out) {
  const auto last = text.find_last_not_of(" \t\r\n");
  if (last == std::string_view::npos) {
    held_space_ += text;
    return;
  }
  std::string_view head = text.substr(0, last + 1);
  if (after_call_) {
    held_space_.clear();
    head.remove_prefix(head.find_first_not_of(" \t\r\n"));
    after_call_ = false;
  }
  out.content += held_space_;
  out.content += head;
  held_space_.assign(text.substr(last + 1));
}

void tool_call_parser::close_call(std::string_view body, bool closed, output& out) {
  parsed_tool_call call;
  if (parse_tool_call_body(body, opt_.names, call)) {
    space_before_call_.clear();  // it separated this call from what came before
    after_call_ = true;
    call.index = num_calls_++;
    out.calls.push_back(std::move(call));
    return;
  }
  // Cut off inside its JSON (max_tokens, a stop string): no call, and no markup for the content
  // either; the finish reason tells the client.
  if (!closed) {
    space_before_call_.clear();
    return;
  }
  // Closed, yet not a call: the model's text, as it wrote it.
  std::string text = opt_.open;
  text += body;
  if (closed) text += opt_.close;
  out.content += space_before_call_;
  out.content += text;
  space_before_call_.clear();
  after_call_ = false;
}

// The head of a call as the grammar writes it; until it is complete nothing is sent.
void tool_call_parser::start_streamed_call(output& out) {
  static constexpr std::string_view head = "{\"name\": \"";
  static constexpr std::string_view mid = "\", \"arguments\": ";
  const auto first = buf_.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return;
  const std::string_view rest = std::string_view(buf_).substr(first);
  if (rest.size() < head.size()) {
    head_failed_ = !head.starts_with(rest);
    return;
  }
  if (!rest.starts_with(head)) {
    head_failed_ = true;
    return;
  }
  const auto m = rest.find(mid, head.size());
  if (m == std::string_view::npos) return;
  const std::string name(rest.substr(head.size(), m - head.size()));
  if (std::find(opt_.names.begin(), opt_.names.end(), name) == opt_.names.end()) {
    head_failed_ = true;
    return;
  }
  out.deltas.push_back({num_calls_, make_tool_call_id(), name, ""});
  ++num_calls_;
  streaming_call_ = true;
  args_from_ = sent_ = first + m + mid.size();
  space_before_call_.clear();
  after_call_ = true;
}

// The arguments written so far, less the last '}' and what follows it: that brace may be the one
// closing the call's object, which is not part of the arguments.
void tool_call_parser::stream_arguments(output& out) {
  const auto brace = buf_.rfind('}');
  const std::size_t safe = brace == std::string::npos || brace < sent_ ? buf_.size() : brace;
  if (safe > sent_) out.deltas.push_back({num_calls_ - 1, "", "", buf_.substr(sent_, safe - sent_)});
  sent_ = std::max(sent_, safe);
}

// The close tag arrived: the rest of the arguments, up to the call object's own closing brace.
void tool_call_parser::end_streamed_call(std::string_view body, output& out) {
  std::string_view args = body.substr(std::min(args_from_, body.size()));
  auto trim_end = [&] {
    while (!args.empty() && (args.back() == ' ' || args.back() == '\t' || args.back() == '\n' ||
                             args.back() == '\r'))
      args.remove_suffix(1);
  };
  trim_end();
  if (!args.empty() && args.back() == '}') args.remove_suffix(1);
  trim_end();
  const std::size_t done = sent_ - args_from_;
  if (args.size() > done)
    out.deltas.push_back({num_calls_ - 1, "", "", std::string(args.substr(done))});
  streaming_call_ = false;
}

void tool_call_parser::scan(output& out) {
  for (;;) {
    if (!in_call_) {
      const auto at = buf_.find(opt_.open);
      if (at == std::string::npos) {
        const std::size_t keep = partial_marker_at_end(buf_, opt_.open);
        emit_text(std::string_view(buf_).substr(0, buf_.size() - keep), out);
        buf_.erase(0, buf_.size() - keep);
        return;
      }
      emit_text(std::string_view(buf_).substr(0, at), out);
      // Whitespace right before a call separates, it is no content -- if a call follows.
      space_before_call_ = after_call_ ? std::string() : std::move(held_space_);
      held_space_.clear();
      buf_.erase(0, at + opt_.open.size());
      in_call_ = true;
      head_failed_ = false;
    }
    if (opt_.stream_arguments && !streaming_call_ && !head_failed_) start_streamed_call(out);
    const auto end = buf_.find(opt_.close);
    if (end == std::string::npos) {
      if (streaming_call_) stream_arguments(out);
      return;
    }
    if (streaming_call_)
      end_streamed_call(std::string_view(buf_).substr(0, end), out);
    else
      close_call(std::string_view(buf_).substr(0, end), true, out);
    buf_.erase(0, end + opt_.close.size());
    in_call_ = false;
  }
}

tool_call_parser::output tool_call_parser::feed(std::string_view text) {
  output out;
  buf_ += text;
  scan(out);
  return out;
}

tool_call_parser::output tool_call_parser::finish() {
  output out;
  if (in_call_) {
    // Ended inside a call (the model stopped after the JSON, or ran out of tokens): a complete
    // body is still a call.
    // A streamed call cut off stays as far as it went (the finish reason tells the client).
    if (!streaming_call_) close_call(buf_, false, out);
    streaming_call_ = false;
    in_call_ = false;
  } else {
    emit_text(buf_, out);
  }
  buf_.clear();
  // Trailing whitespace: content of a plain answer, a separator after calls.
  if (num_calls_ == 0) out.content += held_space_;
  held_space_.clear();
  return out;
}

}  // namespace troupe::net
