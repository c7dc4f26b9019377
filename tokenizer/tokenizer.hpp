// tokenizer: text <-> token ids for GGUF `gpt2` (byte-level BPE) vocabularies, producing the same
// ids as llama.cpp.
//
// encode(): special-token text is found first (see special_tokens.hpp; parse_special=false
// treats CONTROL tokens such as "<|im_start|>" as plain text -- use it for untrusted input), the
// rest is read as UTF-8 the way llama.cpp reads it (invalid bytes become U+FFFD), split by the
// pre-tokenizer that tokenizer.ggml.pre names, byte-mapped and merged by BPE. add_special adds
// BOS/EOS exactly when the file's add_bos_token/add_eos_token say so.
//
// decode(): the concatenated bytes of each token: NORMAL tokens un-byte-mapped, USER_DEFINED
// tokens verbatim, CONTROL/UNKNOWN tokens verbatim only when render_special, other kinds and ids
// outside [0, n_vocab) as nothing. The result may end inside a UTF-8 character; for text shown to
// people while generating, use streaming_detokenizer.
//
// Ownership: a tokenizer is a cheap handle to immutable shared data; copies share it and it does
// not reference the gguf_file it came from.
// Thread-safety: every const member may be called from any number of threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "memory/gguf_file.hpp"
#include "tokenizer/tokenizer_spec.hpp"
#include "troupe/result.hpp"

namespace troupe {

// A byte range of encode()'s input and whether special-token text inside it may become CONTROL
// tokens (USER_DEFINED tokens are always recognised, as llama.cpp does).
struct text_span {
  size_t offset = 0;
  size_t length = 0;
  bool parse_special = false;
};

class tokenizer {
 public:
  // Reads the tokenizer of a GGUF file. Errors (naming the file): a model kind other than "gpt2"
  // (named in the message), an unknown tokenizer.ggml.pre, missing or mistyped keys, a
  // token_type array whose length differs from the tokens'.
  static result<tokenizer> from_gguf(const gguf_file& file);
  static result<tokenizer> from_spec(tokenizer_spec spec);

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  // Special-token parsing per span: a special token is recognised only when it lies wholly
  // inside a span that allows it. The plain text between special tokens is split and merged
  // as one run even where it crosses spans, so the ids equal encode(text, add_special, true)
  // whenever no special-token text sits in a span that forbids it.
  // REQUIRES: spans cover text in order, without gaps or overlaps.
  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              std::span<const text_span> spans) const;
  std::string decode(std::span<const int32_t> ids, bool render_special) const;

  // The bytes decode() produces for one id (empty for ids it renders as nothing).
  std::string_view token_piece(int32_t id, bool render_special) const;
  // The vocabulary entry of `id` as stored in the file (byte-mapped for NORMAL tokens).
  // REQUIRES: is_valid(id).
  std::string_view token_text(int32_t id) const;
  token_kind kind_of(int32_t id) const;  // REQUIRES: is_valid(id)

  int32_t n_vocab() const;
  bool is_valid(int32_t id) const { return id >= 0 && id < n_vocab(); }
  int32_t bos_id() const;  // -1 when the vocabulary has none
  int32_t eos_id() const;
  int32_t eot_id() const;
  bool adds_bos() const;   // what add_special adds
  bool adds_eos() const;
  const std::string& pre_tokenizer_name() const;
  // EOS, EOT/EOM, and the tokens llama.cpp treats as ending a generation ("<|im_end|>",
  // "<|endoftext|>", ... and the FIM repo/sep/pad tokens), as llama_vocab_is_eog decides.
  bool is_end_of_generation(int32_t id) const;

 private:
  struct impl;
  explicit tokenizer(std::shared_ptr<const impl> p) : impl_(std::move(p)) {}
  std::shared_ptr<const impl> impl_;
};

}  // namespace troupe
