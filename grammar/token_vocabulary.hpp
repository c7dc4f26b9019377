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

  // The trie in depth-first preorder (children in byte order): node 0 is the root (the empty
  // prefix); node i > 0 is reached from its parent by `byte`, lies `depth` bytes below the root,
  // and its subtree is the run of nodes [i, subtree_end). A mask walk therefore reads the nodes
  // front to back -- contiguous memory, which matters when a state allows nearly every token and
  // the walk visits all ~100,000 nodes -- and jumps over a subtree at the first refused byte.
  struct node {
    uint32_t subtree_end;
    uint16_t depth;
    uint8_t byte;
  };
  size_t num_nodes() const { return nodes_.size(); }
  const node& trie_node(uint32_t n) const { return nodes_[n]; }
  // The deepest node's depth (the longest piece's length in bytes).
  size_t max_depth() const { return max_depth_; }
  // Token ids whose piece ends exactly at `node`.
  const int32_t* tokens_begin(uint32_t node) const { return token_ids_.data() + first_token_[node]; }
  const int32_t* tokens_end(uint32_t node) const { return token_ids_.data() + first_token_[node + 1]; }

 private:
  std::vector<std::string> pieces_;
  std::vector<int32_t> end_ids_;
  std::vector<bool> is_end_;
  std::vector<node> nodes_;            // preorder
  std::vector<uint32_t> first_token_;  // CSR, num_nodes + 1
  size_t max_depth_ = 0;
  std::vector<int32_t> token_ids_;
};

}  // namespace troupe
