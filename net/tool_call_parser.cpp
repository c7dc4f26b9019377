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
    out.calls.push_back(std::move(call));
    ++num_calls_;
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
    }
    const auto end = buf_.find(opt_.close);
    if (end == std::string::npos) return;
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
    close_call(buf_, false, out);
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
