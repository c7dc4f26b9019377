// bpe_model: byte-level BPE over one pre-tokenized piece -- the vocabulary lookup and the merge
// loop, as llama.cpp's BPE session runs it.
//
// A piece arrives already byte-mapped (each byte as its GPT-2 code point, see byte_unicode).
// Its characters are the initial symbols; adjacent pairs listed in the merges are merged in order
// of rank (lowest first, leftmost first among equal ranks) using a min-heap, so a long piece costs
// O(n log n), never O(n^2). Each final symbol is looked up in the vocabulary; one that is missing
// is emitted as the single-byte vocabulary entries of its bytes (llama.cpp's fallback).
//
// Ownership: the model holds views of the token and merge strings it is built from; the caller
// keeps those strings alive and in place for the model's lifetime.
// Thread-safety: immutable after construction; encode_piece may run on many threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace troupe {

class bpe_model {
 public:
  // `tokens[i]` is the text of token i; later duplicates win, as in llama.cpp. `merges[r]` is
  // "left right" (split at the first space after the first byte) with rank r; the first of
  // duplicate merges wins, malformed ones (no space) are ignored.
  bpe_model(const std::vector<std::string>& tokens, const std::vector<std::string>& merges,
            bool ignore_merges);

  // The id of the vocabulary entry `text`, or -1.
  int32_t find_token(std::string_view text) const;

  // Appends the ids of the byte-mapped `piece` to `out`.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

 private:
  struct pair_key {
    std::string_view left, right;
    bool operator==(const pair_key&) const = default;
  };
  struct pair_hash {
    size_t operator()(const pair_key& k) const;
  };
  struct string_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  int32_t find_rank(std::string_view left, std::string_view right) const;

  std::unordered_map<std::string_view, int32_t, string_hash, std::equal_to<>> token_ids_;
  std::unordered_map<pair_key, int32_t, pair_hash> ranks_;
  bool ignore_merges_;
};

}  // namespace troupe
