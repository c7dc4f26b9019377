// tokenizer_spec: everything a GGUF file says about its tokenizer, copied out of the file.
//
// read_tokenizer_spec() only reads and type-checks the `tokenizer.ggml.*` keys; whether the
// tokenizer is one we can run (model kind, pre-tokenizer, id ranges) is decided by
// tokenizer::from_spec(). Keeping the two apart lets tests build variants of a real vocabulary
// (another pre-tokenizer, other BOS/EOS flags) without writing GGUF files.
//
// Thread-safety: plain data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "memory/gguf_file.hpp"
#include "troupe/result.hpp"

namespace troupe {

// tokenizer.ggml.token_type values.
enum class token_kind : uint8_t {
  undefined = 0, normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6,
};

struct tokenizer_spec {
  std::string source;                    // file name, for error messages
  std::string model;                     // tokenizer.ggml.model ("gpt2" = byte-level BPE)
  std::string pre;                       // tokenizer.ggml.pre ("" when absent)
  std::vector<std::string> tokens;       // tokenizer.ggml.tokens
  std::vector<token_kind> token_kinds;   // tokenizer.ggml.token_type (empty when absent)
  std::vector<std::string> merges;       // tokenizer.ggml.merges, "left right", rank = index
  // Special token ids; nullopt when the key is absent.
  std::optional<int64_t> bos_id, eos_id, unk_id, pad_id, eot_id, eom_id;
  std::optional<int64_t> fim_pad_id, fim_rep_id, fim_sep_id;
  std::optional<bool> add_bos, add_eos;  // tokenizer.ggml.add_bos_token / add_eos_token
};

// Reads the tokenizer keys of `file`. A missing tokenizer.ggml.model or tokens array, or a key of
// the wrong type, is an error naming the file and the key.
result<tokenizer_spec> read_tokenizer_spec(const gguf_file& file);

}  // namespace troupe
