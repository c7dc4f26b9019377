// token_vocabulary: the vocabulary as byte strings in a trie, for walking against a grammar.
//
// Token i produces the bytes pieces[i]; a token whose piece is empty (control tokens, unused
// ids) is never allowed by a grammar. The end ids (EOS, <|im_end|>, ...) are allowed exactly
// where the grammar may end. Tokens sharing a prefix share trie nodes, so a mask walk reads each
// distinct prefix once and abandons a whole subtree at the first byte the grammar refuses.
//
// Ownership: immutable after construction; share it (shared_ptr) among all the grammars of one
// model. Thread-safety: const members from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe {

class tokenizer;

class token_vocabulary {
 public:
  token_vocabulary(std::vector<std::string> pieces, std::vector<int32_t> end_ids);
  // NORMAL and USER_DEFINED tokens by their text; the tokenizer's end-of-generation tokens as
  // the end ids; every other token never allowed.
  static token_vocabulary from_tokenizer(const tokenizer& tok);

  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  std::string_view piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  bool is_end(int32_t id) const { return is_end_[static_cast<size_t>(id)]; }
  const std::vector<int32_t>& end_ids() const { return end_ids_; }

  // The trie: node 0 is the root (the empty prefix).
  struct edge {
    uint8_t byte;
    uint32_t child;
  };
  size_t num_nodes() const { return first_edge_.size() - 1; }
  // Edges of `node`, sorted by byte.
  const edge* edges_begin(uint32_t node) const { return edges_.data() + first_edge_[node]; }
  const edge* edges_end(uint32_t node) const { return edges_.data() + first_edge_[node + 1]; }
  // Token ids whose piece ends exactly at `node`.
  const int32_t* tokens_begin(uint32_t node) const { return token_ids_.data() + first_token_[node]; }
  const int32_t* tokens_end(uint32_t node) const { return token_ids_.data() + first_token_[node + 1]; }

 private:
  std::vector<std::string> pieces_;
  std::vector<int32_t> end_ids_;
  std::vector<bool> is_end_;
  std::vector<uint32_t> first_edge_;  // CSR, num_nodes + 1
  std::vector<edge> edges_;
  std::vector<uint32_t> first_token_;  // CSR, num_nodes + 1
  std::vector<int32_t> token_ids_;
};

}  // namespace troupe
