// gguf_summary: what `troupe inspect` reports about a parsed GGUF file -- architecture, llama
// hyperparameters (when it is a llama model troupe can run, else why not), tokenizer facts and
// total tensor bytes. Works for any valid GGUF file: fields it cannot find stay empty.
//
// Pure function of the file; never fails (a non-runnable model is a fact, not an error).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "memory/gguf_file.hpp"
#include "memory/llama_model_file.hpp"

namespace troupe {

struct gguf_tokenizer_summary {
  std::optional<std::string> model;  // tokenizer.ggml.model ("gpt2", "llama", ...)
  std::optional<std::string> pre;    // tokenizer.ggml.pre ("smollm", ...)
  std::optional<uint64_t> n_tokens;  // length of tokenizer.ggml.tokens
  std::optional<uint64_t> n_merges;  // length of tokenizer.ggml.merges
  std::optional<uint64_t> bos_id, eos_id;
  std::optional<std::string> bos_text, eos_text;  // the tokens' texts, when ids are in range
  std::optional<bool> add_bos, add_eos;
  std::optional<uint64_t> chat_template_bytes;     // present iff tokenizer.chat_template is
};

struct gguf_summary {
  std::optional<std::string> architecture;  // general.architecture
  std::optional<std::string> name;          // general.name
  std::optional<llama_hparams> llama;       // set when load_llama_model accepts the file
  std::string llama_error;                  // why not, when it does not (empty otherwise)
  gguf_tokenizer_summary tokenizer;
  uint64_t tensor_bytes = 0;                // sum of all tensors' data bytes
};

gguf_summary summarize_gguf(const gguf_file& file);

}  // namespace troupe
