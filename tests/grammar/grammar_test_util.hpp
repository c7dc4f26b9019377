// Test helpers for grammar/: whether a grammar accepts a string, and the default model's
// vocabulary.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "grammar/grammar_automaton.hpp"
#include "grammar/token_vocabulary.hpp"

namespace troupe::test {

// The automaton of `gbnf`; fails the test when it does not parse.
grammar_automaton automaton_of(const std::string& gbnf, const grammar_limits& limits = {});

// Whether the whole of `text` is a sentence of the grammar.
bool accepts(grammar_automaton& a, std::string_view text);
// Whether `text` can be continued into a sentence (every prefix of a sentence is viable).
bool is_viable_prefix(grammar_automaton& a, std::string_view text);

// The default model's vocabulary (fails the test, saying `make model`, when the model is absent).
std::shared_ptr<const token_vocabulary> default_vocabulary();

}  // namespace troupe::test
