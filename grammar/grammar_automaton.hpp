// grammar_automaton: which bytes a grammar allows next, as a deterministic automaton built
// lazily over sets of parse stacks.
//
// A parse stack is the list of grammar positions still to match, innermost last; its top is
// always a byte-set element (rule references are expanded into one stack per alternative, and
// finished alternatives are popped, so right recursion such as `x*` keeps the stack flat). The
// set of all stacks compatible with the bytes read so far is the recognizer's configuration; an
// empty stack in the set means the grammar may end here. Each distinct set is interned once and
// numbered: that number is the automaton state, and transitions (state, byte) -> state are
// computed on first use and cached, so a JSON document that revisits a position costs one table
// lookup per byte. Masks over a vocabulary are cached per state by token_mask_cache.
//
// Bounds (grammar_limits): a stack deeper than max_stack_depth, a set with more than
// max_stacks_per_state stacks, or more than max_states states makes that transition fail with
// `overflow` (not cached, error() says why); other transitions keep working, so a limit narrows
// what may be generated rather than ending it. The work of one transition is bounded by those
// limits, so nothing here runs unbounded.
//
// Ownership: the automaton owns its rules. Thread-safety: none; one thread (an executor's sampler)
// uses it, and the states it hands out are plain numbers valid for its lifetime.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "grammar/grammar_rules.hpp"

namespace troupe {

class grammar_automaton {
 public:
  using state_id = int32_t;
  static constexpr state_id dead = -1;      // the byte is not allowed
  static constexpr state_id overflow = -2;  // a limit was hit; see error()

  grammar_automaton(grammar_rules rules, grammar_limits limits);

  // The state before any byte; `overflow` if even that breaks a limit.
  state_id initial_state() const { return initial_; }

  // The state after reading `byte` in `from` (REQUIRES: from >= 0), `dead` or `overflow`.
  // Inline: a mask walk calls this once per trie node, almost always for a cached transition.
  state_id next(state_id from, uint8_t byte) {
    const state_id cached = states_[static_cast<size_t>(from)].transitions[byte];
    return cached != unknown ? cached : compute_next(from, byte);
  }
  // Reads `bytes`; stops early at `dead` / `overflow`.
  state_id next(state_id from, std::string_view bytes);

  // The grammar may end here (the empty stack is in the set).
  bool is_accepting(state_id s) const { return states_[static_cast<size_t>(s)].accepting; }
  // Some byte may follow (a stack that is not empty is in the set).
  bool can_continue(state_id s) const { return states_[static_cast<size_t>(s)].can_continue; }

  size_t num_states() const { return states_.size(); }
  // Empty until a limit was hit; then says which (the latest), for the person who wrote the
  // grammar.
  const std::string& error() const { return error_; }
  const grammar_rules& rules() const { return rules_; }
  const grammar_limits& limits() const { return limits_; }

 private:
  using stack = std::vector<uint32_t>;
  static constexpr state_id unknown = -3;

  struct state {
    std::vector<stack> stacks;  // sorted, unique
    std::array<state_id, 256> transitions;
    // The next state depends only on which stacks read the byte: (bit i = stacks[i] reads it,
    // next state) for the byte classes computed so far (states of at most 64 stacks).
    std::vector<std::pair<uint64_t, state_id>> by_advancing;
    bool accepting = false;
    bool can_continue = false;
  };

  // Expands the stack until its top is a byte-set element (or it is empty) into `out`; false
  // when a limit is hit.
  bool expand(stack& s, std::vector<stack>& out);
  state_id compute_next(state_id from, uint8_t byte);
  state_id intern(std::vector<stack> stacks);
  state_id fail(std::string why);

  grammar_rules rules_;
  grammar_limits limits_;
  std::vector<state> states_;
  std::unordered_map<std::string, state_id> ids_;  // key: the stacks serialized
  std::string error_;
  state_id initial_ = overflow;
};

}  // namespace troupe
