// streaming_detokenizer: turns ids into text one id at a time, for streaming a generation to a
// client, and never returns part of a UTF-8 character.
//
// Bytes that end in the middle of a character are held back until the next push() completes it.
// Every returned chunk is valid UTF-8: ill-formed bytes (which a model can produce, one byte
// token at a time) become U+FFFD, one per maximal ill-formed subpart, and finish() turns a
// character left incomplete at the end into U+FFFD. The concatenation of all chunks equals
// utf8::to_valid_utf8(tok.decode(ids, render_special)).
//
// Ownership: holds a copy of the tokenizer handle (shared data). One instance per stream.
// Thread-safety: not thread-safe; one caller at a time.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.hpp"

namespace troupe {

class streaming_detokenizer {
 public:
  explicit streaming_detokenizer(const tokenizer& tok, bool render_special = false)
      : tok_(tok), render_special_(render_special) {}

  // The text that `id` completes (possibly empty).
  std::string push(int32_t id);
  // Whatever is still held back, made valid; the detokenizer is then empty and reusable.
  std::string finish();
  // Bytes held back waiting for the rest of a character.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  tokenizer tok_;
  bool render_special_;
  std::string pending_;
};

}  // namespace troupe
