#include "grammar/grammar_constraint_cache.hpp"

namespace troupe {

grammar_constraint_cache::grammar_constraint_cache(std::shared_ptr<const token_vocabulary> vocab,
                                                   size_t capacity, grammar_limits limits)
    : vocab_(std::move(vocab)), capacity_(capacity), limits_(limits) {
  TROUPE_ASSERT(capacity_ > 0);
}

result<std::shared_ptr<grammar_constraint>> grammar_constraint_cache::get(const std::string& gbnf) {
  ++clock_;
  if (auto it = entries_.find(gbnf); it != entries_.end()) {
    it->second.last_use = clock_;
    return it->second.constraint;
  }
  auto c = compile_grammar_constraint(gbnf, vocab_, limits_);
  if (!c) return c.err();
  if (entries_.size() >= capacity_) {
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.last_use < oldest->second.last_use) oldest = it;
    }
    entries_.erase(oldest);
  }
  entries_.emplace(gbnf, entry{*c, clock_});
  return c;
}

}  // namespace troupe
