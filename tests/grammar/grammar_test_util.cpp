#include "grammar_test_util.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

#include "memory/gguf_file.hpp"
#include "tokenizer/tokenizer.hpp"

namespace troupe::test {

grammar_automaton automaton_of(const std::string& gbnf, const grammar_limits& limits) {
  auto rules = parse_gbnf(gbnf, limits);
  INFO(gbnf);
  if (!rules) FAIL(rules.message());
  return grammar_automaton(std::move(rules).value(), limits);
}

bool accepts(grammar_automaton& a, std::string_view text) {
  const auto s = a.next(a.initial_state(), text);
  return s >= 0 && a.is_accepting(s);
}

bool is_viable_prefix(grammar_automaton& a, std::string_view text) {
  return a.next(a.initial_state(), text) >= 0;
}

std::shared_ptr<const token_vocabulary> default_vocabulary() {
  static const std::shared_ptr<const token_vocabulary> vocab = [] {
    if (!std::filesystem::exists(TROUPE_DEFAULT_MODEL)) {
      FAIL("the default model is missing: run `make model` (" TROUPE_DEFAULT_MODEL ")");
    }
    auto file = gguf_file::open(TROUPE_DEFAULT_MODEL);
    if (!file) FAIL(file.message());
    auto tok = tokenizer::from_gguf(*file);
    if (!tok) FAIL(tok.message());
    return std::make_shared<const token_vocabulary>(token_vocabulary::from_tokenizer(*tok));
  }();
  return vocab;
}

}  // namespace troupe::test
