#include "bench/sse_parser.hpp"

#include <simdjson.h>

namespace troupe::bench {

std::vector<std::string> sse_parser::feed(std::string_view bytes) {
  std::vector<std::string> out;
  for (char c : bytes) {
    // A CR ends a line; an LF right after it belongs to the same line end (CRLF).
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;
    }
    if (c == '\r') {
      after_cr_ = true;
      end_line(out);
    } else if (c == '\n') {
      end_line(out);
    } else {
      line_ += c;
    }
  }
  return out;
}

void sse_parser::end_line(std::vector<std::string>& out) {
  if (line_.empty()) {  // blank line: dispatch
    if (has_data_) out.push_back(std::move(data_));
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line_.rfind("data:", 0) == 0) {
    std::string_view v(line_);
    v.remove_prefix(5);
    if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    if (has_data_) data_ += '\n';
    data_.append(v);
    has_data_ = true;
  }
  line_.clear();
}

stream_chunk read_chunk(std::string_view payload, api_kind kind) {
  stream_chunk c;
  if (payload == "[DONE]") {
    c.done = true;
    return c;
  }
  // thread_local: one parser (and its buffers) per io thread, not one per chunk.
  thread_local simdjson::ondemand::parser parser;
  simdjson::padded_string padded(payload);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (parser.iterate(padded).get(doc) || doc.get_object().get(obj)) {
    c.error = "unparseable stream event: " + std::string(payload.substr(0, 200));
    return c;
  }
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) break;
    if (key == "error") {
      std::string_view message = "(no message)";
      simdjson::ondemand::object err;
      if (!field.value().get_object().get(err)) {
        std::string_view m;
        if (!err["message"].get_string().get(m)) message = m;
      }
      c.error = "server error event: " + std::string(message.substr(0, 300));
    } else if (key == "choices") {
      simdjson::ondemand::array choices;
      if (field.value().get_array().get(choices)) continue;
      for (auto choice : choices) {  // only choices[0] is timed (n = 1)
        simdjson::ondemand::object ch;
        if (choice.get_object().get(ch)) break;
        std::string_view text;
        if (kind == api_kind::completions) {
          if (!ch["text"].get_string().get(text)) c.text_bytes = text.size();
        } else {
          simdjson::ondemand::object delta;
          if (!ch["delta"].get_object().get(delta) && !delta["content"].get_string().get(text))
            c.text_bytes = text.size();
        }
        break;
      }
    } else if (key == "usage") {
      simdjson::ondemand::object usage;
      if (field.value().get_object().get(usage)) continue;  // "usage": null
      for (auto u : usage) {
        std::string_view uk;
        if (u.unescaped_key().get(uk)) break;
        int64_t v = 0;
        if (uk == "prompt_tokens" && !u.value().get_int64().get(v)) c.prompt_tokens = v;
        if (uk == "completion_tokens" && !u.value().get_int64().get(v)) c.completion_tokens = v;
      }
    }
  }
  return c;
}

}  // namespace troupe::bench
