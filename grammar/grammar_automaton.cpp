#include "grammar/grammar_automaton.hpp"

#include <algorithm>

namespace troupe {

grammar_automaton::grammar_automaton(grammar_rules rules, grammar_limits limits)
    : rules_(std::move(rules)), limits_(limits) {
  std::vector<stack> stacks;
  for (uint32_t alt : rules_.rule_alternatives[rules_.root_rule]) {
    stack s;
    if (rules_.elements[alt].kind != grammar_element_kind::end) s.push_back(alt);
    if (!expand(s, stacks)) return;
  }
  initial_ = intern(std::move(stacks));
}

grammar_automaton::state_id grammar_automaton::fail(std::string why) {
  error_ = std::move(why);
  return overflow;
}

bool grammar_automaton::expand(stack& s, std::vector<stack>& out) {
  if (s.size() > limits_.max_stack_depth) {
    fail("grammar: nesting deeper than " + std::to_string(limits_.max_stack_depth) + " levels");
    return false;
  }
  if (s.empty() || rules_.elements[s.back()].kind == grammar_element_kind::bytes) {
    if (out.size() >= limits_.max_stacks_per_state) {
      fail("grammar: more than " + std::to_string(limits_.max_stacks_per_state) +
           " parses are open at one position (the grammar is too ambiguous)");
      return false;
    }
    out.push_back(s);
    return true;
  }
  // A rule reference: continue after it (unless it closes its alternative, which keeps right
  // recursion flat), with each alternative of the rule on top.
  const uint32_t pos = s.back();
  const uint32_t rule = rules_.elements[pos].value;
  s.pop_back();
  if (rules_.elements[pos + 1].kind != grammar_element_kind::end) s.push_back(pos + 1);
  const size_t base = s.size();
  for (uint32_t alt : rules_.rule_alternatives[rule]) {
    s.resize(base);
    if (rules_.elements[alt].kind != grammar_element_kind::end) s.push_back(alt);
    if (!expand(s, out)) return false;
  }
  return true;
}

grammar_automaton::state_id grammar_automaton::intern(std::vector<stack> stacks) {
  if (stacks.empty()) return dead;
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  std::string key;
  for (const auto& s : stacks) {
    const auto n = static_cast<uint32_t>(s.size());
    key.append(reinterpret_cast<const char*>(&n), sizeof n);
    key.append(reinterpret_cast<const char*>(s.data()), s.size() * sizeof(uint32_t));
  }
  if (auto it = ids_.find(key); it != ids_.end()) return it->second;
  if (states_.size() >= limits_.max_states) {
    return fail("grammar: more than " + std::to_string(limits_.max_states) +
                " automaton states (the grammar or schema is too large)");
  }
  state st;
  st.transitions.fill(unknown);
  for (const auto& s : stacks) (s.empty() ? st.accepting : st.can_continue) = true;
  st.stacks = std::move(stacks);
  const auto id = static_cast<state_id>(states_.size());
  states_.push_back(std::move(st));
  ids_.emplace(std::move(key), id);
  return id;
}

grammar_automaton::state_id grammar_automaton::compute_next(state_id from, uint8_t byte) {
  TROUPE_ASSERT(from >= 0 && static_cast<size_t>(from) < states_.size());
  // Bytes that advance the same stacks lead to the same state (what follows a byte set does not
  // depend on the byte): inside a JSON string ~200 bytes advance the one character stack, and a
  // mask walk asks for each of them; compute the set once per class, look the rest up.
  const size_t num_stacks = states_[static_cast<size_t>(from)].stacks.size();
  const bool by_class = num_stacks <= 64;
  uint64_t advancing = 0;
  if (by_class) {
    state& st = states_[static_cast<size_t>(from)];
    for (size_t i = 0; i < num_stacks; ++i) {
      const stack& top = st.stacks[i];
      if (!top.empty() && rules_.byte_sets[rules_.elements[top.back()].value].test(byte))
        advancing |= uint64_t{1} << i;
    }
    if (advancing == 0) return st.transitions[byte] = dead;
    for (const auto& [key, to] : st.by_advancing) {
      if (key == advancing) return st.transitions[byte] = to;
    }
  }
  std::vector<stack> out;
  stack s;
  bool ok = true;
  // states_ may grow (and move) inside intern(), so index it afresh after each step.
  for (size_t i = 0; i < num_stacks && ok; ++i) {
    const stack& top = states_[static_cast<size_t>(from)].stacks[i];
    if (top.empty()) continue;
    const grammar_element& e = rules_.elements[top.back()];
    if (!rules_.byte_sets[e.value].test(byte)) continue;
    s = top;
    const uint32_t pos = s.back();
    s.pop_back();
    if (rules_.elements[pos + 1].kind != grammar_element_kind::end) s.push_back(pos + 1);
    ok = expand(s, out);
  }
  const state_id to = ok ? intern(std::move(out)) : overflow;
  if (to != overflow) {
    states_[static_cast<size_t>(from)].transitions[byte] = to;
    if (by_class) states_[static_cast<size_t>(from)].by_advancing.emplace_back(advancing, to);
  }
  return to;
}

grammar_automaton::state_id grammar_automaton::next(state_id from, std::string_view bytes) {
  for (char c : bytes) {
    from = next(from, static_cast<uint8_t>(c));
    if (from < 0) return from;
  }
  return from;
}

}  // namespace troupe
