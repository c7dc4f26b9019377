// grammar_constraint_cache: one compiled grammar_constraint per distinct grammar text, shared by
// every sequence (and every later request) that uses the same text, so the automaton states and
// token masks a grammar has built are paid for once -- json_object and a client's repeated
// schema are the common case (BENCHMARKS.md, "Structured outputs": a cached state's mask costs
// well under a microsecond, a new one up to a full trie walk).
//
// Bounded: at most `capacity` grammars; the least recently used one is dropped (sequences that
// hold it keep it alive through their matchers' shared_ptr).
// Thread-safety: none; the last stage's executor thread owns it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "grammar/grammar_constraint.hpp"

namespace troupe {

class grammar_constraint_cache {
 public:
  grammar_constraint_cache(std::shared_ptr<const token_vocabulary> vocab, size_t capacity,
                           grammar_limits limits = {});

  // The constraint of `gbnf`, compiled on first use. Errors: compile_grammar_constraint's (not
  // cached: a bad grammar is refused each time).
  result<std::shared_ptr<grammar_constraint>> get(const std::string& gbnf);

  size_t size() const { return entries_.size(); }
  const token_vocabulary& vocabulary() const { return *vocab_; }

 private:
  struct entry {
    std::shared_ptr<grammar_constraint> constraint;
    uint64_t last_use = 0;
  };
  std::shared_ptr<const token_vocabulary> vocab_;
  size_t capacity_;
  grammar_limits limits_;
  std::unordered_map<std::string, entry> entries_;
  uint64_t clock_ = 0;
};

}  // namespace troupe
