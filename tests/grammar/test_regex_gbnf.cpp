// Regex -> grammar (guided_regex, JSON Schema `pattern`), checked against PCRE2 as the oracle:
// for a corpus of patterns, every string the grammar generates (random byte walks, and random
// token walks over the SmolLM2 vocabulary) fully matches the pattern, and on random strings
// built from the pattern's own characters the grammar accepts exactly what PCRE2 fully matches.
// Unsupported constructs are refused with an error naming them; hostile sizes are refused.
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <memory>
#include <optional>
#include <random>
#include <set>

#include "grammar/grammar_constraint.hpp"
#include "grammar/json_schema_gbnf.hpp"
#include "grammar/regex_gbnf.hpp"
#include "grammar_test_util.hpp"
#include "pcre2_full_match.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> patterns = {
      "abc",
      "^a|b$",
      "[a-c]+x?",
      "[^a-y]{2,4}",
      "\\d{3}-\\d{4}",
      "(\\+\\d{1,3} )?\\(\\d{3}\\) \\d{3}-\\d{4}",
      "[A-Z][a-z]*( [A-Z][a-z]*){0,2}",
      "\\w+@\\w+\\.(com|org|net)",
      "(yes|no|maybe)",
      "a*b*c*",
      "(a|b?)*c",
      "(a*)*b",
      "((ab?)*|c)+d",
      "x(a?b?){3}y",
      "(?:ab)+(?<tail>c|d)(?P<x>e)?",
      "\\s\\S\\D\\W.",
      "[\\d_-]+",
      "[\\D]",
      "\\x41\\x{e9}[\\x{3b1}-\\x{3c9}]+",
      "caf\xc3\xa9 [\xc3\xa0-\xc3\xbf]?",
      "\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\\\\\/",
      "a{2}b{0,}c{1,3}?d??",
      "{x}a{",
      "(|a)b",
      "()",
      "[ab]{0}c",
      "\"[^\"\\\\]*\"",
      "(0|[1-9][0-9]*)(\\.[0-9]+)?",
  };
  return patterns;
}

// The code points a pattern mentions plus a few strangers, as UTF-8 strings to build tests of.
std::vector<std::string> alphabet_of(const std::string& pattern) {
  std::set<std::string> out = {"a", "b", "0", "9", " ", "\n", "-", "\"", "\\", "\xc3\xa9", "Z",
                               "_", "."};
  for (size_t i = 0; i < pattern.size();) {
    const auto b = static_cast<unsigned char>(pattern[i]);
    const size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    out.insert(pattern.substr(i, len));
    i += len;
  }
  return {out.begin(), out.end()};
}

// A random string of the grammar, one byte at a time among the bytes the automaton allows;
// nullopt when it grew past 2,000 bytes without ending (the callers skip those).
std::optional<std::string> byte_walk(grammar_automaton& a, std::mt19937& rng) {
  std::string out;
  auto s = a.initial_state();
  for (int i = 0; i < 2000; ++i) {
    if (a.is_accepting(s) && (!a.can_continue(s) || rng() % 4 == 0)) return out;
    std::vector<uint8_t> allowed;
    for (int b = 0; b < 256; ++b) {
      if (a.next(s, static_cast<uint8_t>(b)) >= 0) allowed.push_back(static_cast<uint8_t>(b));
    }
    REQUIRE_FALSE(allowed.empty());
    const uint8_t b = allowed[rng() % allowed.size()];
    out += static_cast<char>(b);
    s = a.next(s, b);
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("regex: every generated string fully matches the pattern (PCRE2 oracle)") {
  std::mt19937 rng(11);
  for (const auto& p : corpus()) {
    INFO("pattern: " << p);
    auto g = regex_gbnf(p);
    INFO((g.ok() ? *g : g.message()));
    REQUIRE(g.ok());
    auto a = automaton_of(*g);
    pcre2_full_match oracle(p);
    for (int walk = 0; walk < 60; ++walk) {
      const auto s = byte_walk(a, rng);
      if (!s) continue;
      INFO("generated: " << *s);
      CHECK(oracle.matches(*s));
    }
  }
}

TEST_CASE("regex: the grammar accepts exactly the strings PCRE2 fully matches") {
  std::mt19937 rng(7);
  for (const auto& p : corpus()) {
    INFO("pattern: " << p);
    auto g = regex_gbnf(p);
    REQUIRE(g.ok());
    auto a = automaton_of(*g);
    pcre2_full_match oracle(p);
    const auto alphabet = alphabet_of(p);
    for (int t = 0; t < 400; ++t) {
      std::string s;
      const int len = static_cast<int>(rng() % 9);
      for (int i = 0; i < len; ++i) s += alphabet[rng() % alphabet.size()];
      INFO("string: " << s);
      CHECK(accepts(a, s) == oracle.matches(s));
    }
    // Positive samples too: random strings rarely match long patterns.
    for (int walk = 0; walk < 20; ++walk) {
      if (const auto s = byte_walk(a, rng)) CHECK(accepts(a, *s));
    }
  }
}

TEST_CASE("regex: constrained token walks over the model's vocabulary match the pattern") {
  auto vocab = default_vocabulary();
  std::mt19937 rng(3);
  for (const std::string p : {"\\d{3}-\\d{4}", "(yes|no|maybe)", "[A-Z][a-z]{1,8}( [a-z]+){0,3}",
                              "\\w+@\\w+\\.(com|org)"}) {
    INFO("pattern: " << p);
    auto c = compile_grammar_constraint(*regex_gbnf(p), vocab);
    REQUIRE(c.ok());
    pcre2_full_match oracle(p);
    for (int walk = 0; walk < 20; ++walk) {
      grammar_matcher m(*c);
      std::string text;
      bool ended = false;
      for (int i = 0; i < 64 && !ended; ++i) {
        auto mask = m.allowed_tokens();
        REQUIRE(mask.ok());
        std::vector<int32_t> ids;
        for (size_t w = 0; w < (*mask)->words.size(); ++w) {
          for (uint64_t bits = (*mask)->words[w]; bits; bits &= bits - 1) {
            ids.push_back(static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits))));
          }
        }
        REQUIRE_FALSE(ids.empty());
        const int32_t id = ids[rng() % ids.size()];
        if (vocab->is_end(id)) {
          ended = true;
        } else {
          REQUIRE(m.accept(id).ok());
          text += vocab->piece(id);
        }
      }
      INFO("generated: " << text);
      if (ended) CHECK(oracle.matches(text));
    }
  }
}

TEST_CASE("regex: inside a JSON string, escapes are written and the decoded text matches") {
  std::mt19937 rng(5);
  for (const std::string p : {"[^a-z]{1,6}", ".{0,5}", "a\"b\\\\c\\n", "[\\x00-\\x1f\"\\\\]+"}) {
    INFO("pattern: " << p);
    auto e = regex_gbnf_expression(p, true);
    REQUIRE(e.ok());
    auto a = automaton_of("root ::= \"\\\"\" " + *e + " \"\\\"\"\n");
    pcre2_full_match oracle(p);
    simdjson::dom::parser parser;
    for (int walk = 0; walk < 60; ++walk) {
      const auto s = byte_walk(a, rng);
      if (!s) continue;
      INFO("generated: " << *s);
      std::string_view decoded;
      const simdjson::padded_string json(*s);
      REQUIRE(parser.parse(json).get_string().get(decoded) == simdjson::SUCCESS);
      CHECK(oracle.matches(decoded));
    }
  }
}

TEST_CASE("regex: \\u escapes (Python's and ECMA-262's; PCRE2 has none) name a code point") {
  auto a = automaton_of(*regex_gbnf("\\u00e8\\u03b1+"));
  CHECK(accepts(a, "\xc3\xa8\xce\xb1\xce\xb1"));
  CHECK_FALSE(accepts(a, "\xc3\xa8"));
}

TEST_CASE("regex: unsupported constructs are refused, naming them") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"(a)\\1", "backreferences"},
      {"(?<n>a)\\k<n>", "backreferences"},
      {"(?=a)a", "lookaround"},
      {"a(?!b)", "lookaround"},
      {"(?<=a)b", "lookaround"},
      {"(?<!a)b", "lookaround"},
      {"(?i)abc", "inline flags"},
      {"(?>a)", "atomic"},
      {"a*+", "possessive"},
      {"a^b", "'^'"},
      {"a$b", "'$'"},
      {"\\bword", "word boundaries"},
      {"\\p{L}", "'\\p'"},
      {"\\v", "'\\v'"},
      {"\\0", "octal"},
      {"[[:alpha:]]", "POSIX"},
      {"a{,3}", "{0,n}"},
      {"a{2000}", "above 1000"},
      {"a{3,2}", "n < m"},
      {"*a", "nothing to repeat"},
      {"a**", "follows another"},
      {"(ab", "unclosed '('"},
      {"ab)", "unbalanced ')'"},
      {"[ab", "unclosed '['"},
      {"[]a]", "empty class"},
      {"[z-a]", "reversed"},
      {"[\\d-z]", "range"},
      {"\\x{110000}", "U+10FFFF"},
      {"\xff", "UTF-8"},
      {"ab\\", "end with"},
  };
  for (const auto& [pattern, needle] : cases) {
    INFO("pattern: " << pattern);
    auto g = regex_gbnf(pattern);
    REQUIRE_FALSE(g.ok());
    INFO(g.message());
    CHECK(g.message().rfind("regex: at offset ", 0) == 0);
    CHECK(g.message().find(needle) != std::string::npos);
  }
}

TEST_CASE("regex: hostile sizes are refused, and the bounded ones compile") {
  // Longer than the limit.
  CHECK_FALSE(regex_gbnf(std::string(17 * 1024, 'a')).ok());
  // Deeper than the limit.
  CHECK_FALSE(regex_gbnf(std::string(100, '(') + "a" + std::string(100, ')')).ok());
  // A long run of optional parts under a star squares in the rewrite: refused, not expanded.
  std::string optional_run = "(";
  for (int i = 0; i < 4000; ++i) optional_run += "a?";
  optional_run += ")*";
  auto g = regex_gbnf(optional_run);
  REQUIRE_FALSE(g.ok());
  CHECK(g.message().find("too large") != std::string::npos);
  // Nested counts stay linear in GBNF (the parser numbers repetitions, it does not copy them) and
  // the automaton's limits bound the rest.
  auto nested = regex_gbnf("((a{1000}){1000}){1000}");
  REQUIRE(nested.ok());
  auto rules = parse_gbnf(*nested);
  CHECK(rules.ok());
  // Nested nullable stars are rewritten into a grammar the parser takes (no left recursion).
  auto stars = regex_gbnf("((((a*)*)*b?)*)*");
  REQUIRE(stars.ok());
  auto a = automaton_of(*stars);
  CHECK(accepts(a, ""));
  CHECK(accepts(a, "aabab"));
  CHECK_FALSE(accepts(a, "c"));
}

TEST_CASE("regex: a JSON Schema string pattern constrains the decoded value") {
  const std::string schema =
      R"({"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{3}-\\d{2}\"?$"}},"required":["code"]})";
  auto g = json_schema_gbnf(schema);
  INFO((g.ok() ? *g : g.message()));
  REQUIRE(g.ok());
  auto a = automaton_of(*g);
  pcre2_full_match oracle("^[A-Z]{3}-\\d{2}\"?$");
  std::mt19937 rng(9);
  simdjson::dom::parser parser;
  for (int walk = 0; walk < 40; ++walk) {
    const auto s = byte_walk(a, rng);
    if (!s) continue;
    INFO("generated: " << *s);
    std::string_view code;
    const simdjson::padded_string json(*s);
    REQUIRE(parser.parse(json)["code"].get_string().get(code) == simdjson::SUCCESS);
    CHECK(oracle.matches(code));
  }
}
