#include "tokenizer/streaming_detokenizer.hpp"

#include "tokenizer/unicode_props.hpp"
#include "tokenizer/utf8.hpp"

namespace troupe {

std::string streaming_detokenizer::push(int32_t id) {
  pending_ += tok_.token_piece(id, render_special_);
  std::string out;
  size_t pos = 0;
  while (pos < pending_.size()) {
    const auto scan = utf8::next_utf8_char(pending_, pos);
    if (scan.status == utf8::char_status::incomplete) break;  // wait for the next token
    if (scan.status == utf8::char_status::complete)
      out.append(pending_, pos, scan.length);
    else
      utf8::append_code_point(out, unicode::replacement_character);
    pos += scan.length;
  }
  pending_.erase(0, pos);
  return out;
}

std::string streaming_detokenizer::finish() {
  std::string out = utf8::to_valid_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace troupe
