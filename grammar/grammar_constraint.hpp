// grammar_constraint and grammar_matcher: the allowed next tokens of a grammar over a vocabulary.
//
// A grammar_constraint is one compiled grammar (a grammar_automaton) against one vocabulary; it
// computes the allowed-token mask of an automaton state by walking the vocabulary trie from that
// state (a subtree is dropped at the first byte the grammar refuses) and caches masks per state,
// since structured outputs revisit the same states again and again (every string character of a
// JSON value, every element of an array). End ids are allowed exactly where the grammar may end.
// A grammar_matcher is one sequence's position in it: n > 1 sequences of a request share the
// constraint and each keep a matcher.
//
// Failure: a token whose bytes would break a grammar_limits bound (too deep, too ambiguous, too
// many states) is left out of the mask; when no token at all is left, allowed_tokens() returns an
// error naming the bound, and accept() of a token that breaks one fails the same way. The
// sequence should then end with that error. compile_grammar_constraint() already expands the start state and its
// mask, so a grammar too large to start is refused before any token is sampled.
//
// Thread-safety: none; one thread (the sampler of the last stage) uses a constraint and its
// matchers.
#pragma once

#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "grammar/grammar_automaton.hpp"
#include "grammar/token_mask.hpp"
#include "grammar/token_vocabulary.hpp"

namespace troupe {

class grammar_constraint {
 public:
  using state_id = grammar_automaton::state_id;

  grammar_constraint(grammar_automaton automaton, std::shared_ptr<const token_vocabulary> vocab);

  // The tokens allowed in `s` (REQUIRES: s >= 0). The pointer stays valid until the next call.
  result<const token_mask*> allowed_tokens(state_id s);
  // The state after token `id`: `s` itself for an end id where the grammar may end, `dead` for
  // a token the grammar refuses, `overflow` when a limit was hit (error() says which).
  state_id next(state_id s, int32_t id);

  grammar_automaton& automaton() { return automaton_; }
  const token_vocabulary& vocabulary() const { return *vocab_; }
  const std::string& error() const { return automaton_.error(); }
  size_t num_cached_masks() const { return masks_.size(); }
  size_t num_mask_walks() const { return num_mask_walks_; }

 private:
  void walk_trie(state_id s, token_mask& out);

  grammar_automaton automaton_;
  std::shared_ptr<const token_vocabulary> vocab_;
  std::unordered_map<state_id, token_mask> masks_;
  std::vector<state_id> state_at_depth_;  // walk_trie's scratch, kept to avoid an allocation
  size_t num_mask_walks_ = 0;
};

// Parses `gbnf`, builds the automaton and the start state's mask. Errors: those of parse_gbnf,
// and any limit the start state breaks.
result<std::shared_ptr<grammar_constraint>> compile_grammar_constraint(
    std::string_view gbnf, std::shared_ptr<const token_vocabulary> vocab,
    const grammar_limits& limits = {});

class grammar_matcher {
 public:
  explicit grammar_matcher(std::shared_ptr<grammar_constraint> c)
      : constraint_(std::move(c)), state_(constraint_->automaton().initial_state()) {}

  result<const token_mask*> allowed_tokens() { return constraint_->allowed_tokens(state_); }
  // Advances past token `id`. Errors: the grammar refuses it (the caller sampled outside the
  // mask), or a limit was hit. An end id is accepted where the grammar may end and leaves the
  // state as it was; the caller ends the sequence.
  status accept(int32_t id);
  // The grammar may end here / nothing but an end token may follow.
  bool is_accepting() const { return constraint_->automaton().is_accepting(state_); }
  bool is_complete() const { return !constraint_->automaton().can_continue(state_); }

 private:
  std::shared_ptr<grammar_constraint> constraint_;
  grammar_constraint::state_id state_;
};

}  // namespace troupe
