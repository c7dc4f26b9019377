#include "grammar/grammar_constraint.hpp"

namespace troupe {

grammar_constraint::grammar_constraint(grammar_automaton automaton,
                                       std::shared_ptr<const token_vocabulary> vocab)
    : automaton_(std::move(automaton)), vocab_(std::move(vocab)) {}

void grammar_constraint::walk_trie(state_id s, token_mask& out) {
  const token_vocabulary& v = *vocab_;
  // state_at_depth_[d]: the state after the bytes of the current node's ancestor at depth d
  // (preorder visits a node right after all its ancestors, so the entries above it are its own).
  state_at_depth_.resize(v.max_depth() + 1);
  state_at_depth_[0] = s;
  const auto n = static_cast<uint32_t>(v.num_nodes());
  for (uint32_t i = 1; i < n;) {
    const token_vocabulary::node& node = v.trie_node(i);
    const state_id t = automaton_.next(state_at_depth_[node.depth - 1u], node.byte);
    if (t < 0) {  // dead, or overflow: nothing below is allowed
      i = node.subtree_end;
      continue;
    }
    for (auto id = v.tokens_begin(i); id != v.tokens_end(i); ++id) out.allow(*id);
    state_at_depth_[node.depth] = t;
    ++i;
  }
  if (automaton_.is_accepting(s)) {
    for (int32_t id : v.end_ids()) out.allow(id);
  }
}

result<const token_mask*> grammar_constraint::allowed_tokens(state_id s) {
  if (auto it = masks_.find(s); it != masks_.end()) return &it->second;
  // Bounded memory: when the cache is full, start it afresh (states keep being revisited, so
  // the masks that matter come back at the cost of one walk each).
  if (masks_.size() >= automaton_.limits().max_cached_masks) masks_.clear();
  token_mask mask(vocab_->n_vocab());
  ++num_mask_walks_;
  walk_trie(s, mask);
  // Tokens whose bytes break a limit are left out of the mask (the limit narrows the output);
  // only when nothing at all may follow is the limit the sequence's error.
  if (!mask.any()) {
    return troupe::error{automaton_.error().empty() ? "grammar: no token can continue the output"
                                                     : automaton_.error()};
  }
  return &masks_.emplace(s, std::move(mask)).first->second;
}

grammar_constraint::state_id grammar_constraint::next(state_id s, int32_t id) {
  if (id < 0 || id >= vocab_->n_vocab()) return grammar_automaton::dead;
  if (vocab_->is_end(id)) return automaton_.is_accepting(s) ? s : grammar_automaton::dead;
  const std::string_view piece = vocab_->piece(id);
  if (piece.empty()) return grammar_automaton::dead;
  return automaton_.next(s, piece);
}

result<std::shared_ptr<grammar_constraint>> compile_grammar_constraint(
    std::string_view gbnf, std::shared_ptr<const token_vocabulary> vocab,
    const grammar_limits& limits) {
  auto rules = parse_gbnf(gbnf, limits);
  if (!rules) return rules.err();
  auto c = std::make_shared<grammar_constraint>(
      grammar_automaton(std::move(rules).value(), limits), std::move(vocab));
  if (c->automaton().initial_state() < 0) return error{c->error()};
  if (auto mask = c->allowed_tokens(c->automaton().initial_state()); !mask) return mask.err();
  return c;
}

status grammar_matcher::accept(int32_t id) {
  const auto to = constraint_->next(state_, id);
  if (to == grammar_automaton::overflow) return error{constraint_->error()};
  if (to == grammar_automaton::dead) {
    return error{"grammar: token " + std::to_string(id) + " is not allowed here"};
  }
  state_ = to;
  return {};
}

}  // namespace troupe
