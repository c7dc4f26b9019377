// pre_tokenizer: splits text (as code points) into the pieces that byte-level BPE then merges
// within, the way llama.cpp does for the pre-tokenizer named by `tokenizer.ggml.pre`.
//
// llama.cpp describes each pre-tokenizer as a list of regexes applied in sequence: each one
// re-splits every piece produced so far, and both its matches and the gaps between them become
// pieces. We implement each of those regexes as a hand-written scanner with exactly llama.cpp's
// matching behaviour (including its quirks), using unicode_props for \p{L}, \p{N}, \p{P} and \s.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "troupe/result.hpp"

namespace troupe {

enum class pre_tokenizer_kind {
  gpt2,     // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
  smollm,   // \p{N} (each digit alone), then the gpt2 regex
  llama3,   // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  fallback, // llama.cpp's "default": [\p{P}\$\+<=>\^~\|]+, the gpt2 regex, \p{N}+, [0-9][0-9][0-9]
};

struct pre_tokenizer_info {
  pre_tokenizer_kind kind;
  bool ignore_merges = false;    // a piece that is a whole vocabulary entry is emitted as is
  bool forces_add_bos = false;   // add BOS unless the file says otherwise
};

// Resolves a `tokenizer.ggml.pre` value ("" means llama.cpp's "default"). Unknown names are an
// error naming the value.
result<pre_tokenizer_info> find_pre_tokenizer(std::string_view name);

// Splits `cpts` into pieces; returns each piece's length in code points, in order (they sum to
// cpts.size(); none is zero).
std::vector<size_t> split_into_pieces(pre_tokenizer_kind kind, std::span<const uint32_t> cpts);

}  // namespace troupe
