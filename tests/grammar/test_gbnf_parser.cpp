// GBNF as users write it for llama.cpp: what parses, what each construct accepts, and errors that
// point at the line and column to fix.
#include <catch2/catch.hpp>

#include "grammar_test_util.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

std::string parse_error(const std::string& gbnf, const grammar_limits& limits = {}) {
  auto r = parse_gbnf(gbnf, limits);
  return r ? std::string("(parsed)") : r.message();
}

}  // namespace

TEST_CASE("literals, sequences, alternation and groups", "[grammar]") {
  auto a = automaton_of(R"(root ::= "ab" ("c" | "de")  "f"
)");
  CHECK(accepts(a, "abcf"));
  CHECK(accepts(a, "abdef"));
  CHECK_FALSE(accepts(a, "abf"));
  CHECK_FALSE(accepts(a, "abc"));
  CHECK(is_viable_prefix(a, "abd"));
  CHECK_FALSE(is_viable_prefix(a, "abx"));
}

TEST_CASE("repetition operators and bounded counts", "[grammar]") {
  auto a = automaton_of(R"(root ::= "a"* "b"+ "c"? "d"{2} "e"{1,3} "f"{2,})");
  CHECK(accepts(a, "bddeff"));
  CHECK(accepts(a, "aaabbbcddeeefff"));
  CHECK_FALSE(accepts(a, "ddeff"));        // b+ needs one
  CHECK_FALSE(accepts(a, "bcceff"));       // c? at most one
  CHECK_FALSE(accepts(a, "bdeff"));        // d{2}
  CHECK_FALSE(accepts(a, "bddeeeeff"));    // e{1,3}
  CHECK_FALSE(accepts(a, "bddef"));        // f{2,}
  auto lit = automaton_of(R"(root ::= "ab"{2} ("x" "y")*)");
  CHECK(accepts(lit, "abab"));
  CHECK(accepts(lit, "ababxyxy"));
  CHECK_FALSE(accepts(lit, "abb"));
  CHECK_FALSE(accepts(lit, "ababx"));
}

TEST_CASE("character classes: ranges, negation, escapes and UTF-8", "[grammar]") {
  auto a = automaton_of(R"(root ::= [a-cX\-]+ [^"\\\n]* "\"")");
  CHECK(accepts(a, "abX-\""));
  CHECK(accepts(a, "a hello, world é ✓ 😀\""));
  CHECK_FALSE(accepts(a, "d\""));
  CHECK_FALSE(accepts(a, "a\\\""));
  CHECK_FALSE(accepts(a, "a\n\""));
  // A multi-byte class member matches the whole encoding and nothing shorter.
  auto u = automaton_of(R"(root ::= [é-ë✓] "!")");
  CHECK(accepts(u, "é!"));
  CHECK(accepts(u, "ê!"));
  CHECK(accepts(u, "✓!"));
  CHECK_FALSE(accepts(u, "ì!"));
  CHECK_FALSE(accepts(u, "\xC3!"));
  // Negated classes never produce invalid UTF-8 (lone continuation bytes, surrogates).
  auto n = automaton_of(R"(root ::= [^a])");
  CHECK(accepts(n, "b"));
  CHECK(accepts(n, "\xF0\x9F\x98\x80"));
  CHECK_FALSE(accepts(n, "a"));
  CHECK_FALSE(accepts(n, "\x80"));
  CHECK_FALSE(accepts(n, "\xED\xA0\x80"));  // U+D800
  CHECK_FALSE(accepts(n, "\xC0\xAF"));      // overlong
  auto dot = automaton_of(R"(root ::= . .)");
  CHECK(accepts(dot, "a\xE2\x9C\x93"));
  CHECK_FALSE(accepts(dot, "a"));
}

TEST_CASE("escapes in literals", "[grammar]") {
  auto a = automaton_of(R"(root ::= "\x41\u00e9\U0001F600\t\"\\" 'q')");
  CHECK(accepts(a, "A\xC3\xA9\xF0\x9F\x98\x80\t\"\\q"));
}

TEST_CASE("rules across lines, comments, recursion", "[grammar]") {
  auto a = automaton_of(R"gbnf(# balanced parentheses
root ::= item*   # any number
item ::= "(" item* ")"
       | "x"
list ::= (
  "a" |
  "b"
)
)gbnf");
  CHECK(accepts(a, ""));
  CHECK(accepts(a, "x(x(()))x"));
  CHECK_FALSE(accepts(a, "(()"));
  CHECK(is_viable_prefix(a, "(((("));
}

TEST_CASE("parse errors name line and column", "[grammar]") {
  CHECK(parse_error("root ::= \"a\"\nfoo ::= bar\n") == "grammar: 2:9: undefined rule 'bar'");
  CHECK(parse_error("root ::= \"abc\n") == "grammar: 1:14: unterminated string literal");
  CHECK(parse_error("root ::= [a-z\n") == "grammar: 1:14: unterminated character class");
  CHECK(parse_error("root = \"a\"") == "grammar: 1:6: expected '::=' after rule name 'root'");
  CHECK(parse_error("root ::= ( \"a\" \n") == "grammar: 2:1: expected ')'");
  CHECK(parse_error("root ::= \"a\" )") == "grammar: 1:14: unexpected ')' in rule 'root'");
  CHECK(parse_error("root ::= * \"a\"") == "grammar: 1:10: '*' has nothing to repeat");
  CHECK(parse_error("root ::= \"\\q\"") == "grammar: 1:11: unknown escape '\\q'");
  CHECK(parse_error("root ::= [z-a]") == "grammar: 1:14: character range is reversed");
  CHECK(parse_error("root ::= \"a\"{3,1}") == "grammar: 1:18: repetition {m,n} with n < m");
  CHECK(parse_error("a ::= \"x\"") == "grammar: no rule named 'root'");
  CHECK(parse_error("root ::= \"a\"\nroot ::= \"b\"") ==
        "grammar: 2:1: rule 'root' is defined twice");
  CHECK(parse_error("root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"") ==
        "grammar: rule 'expr' is left-recursive (it can reach itself without reading a character)");
  CHECK(parse_error("root ::= a \"x\"\na ::= \"\" | root") ==
        "grammar: rule 'root' is left-recursive (it can reach itself without reading a character)");
}

TEST_CASE("a grammar too large after expanding repetition is refused", "[grammar]") {
  grammar_limits limits;
  limits.max_elements = 10000;
  // Rules are shared, not copied: nesting counts multiplies nothing.
  CHECK(parse_error(R"(root ::= ("a" "b"{100}){200})", limits) == "(parsed)");
  CHECK(parse_error(R"(root ::= "a"{6000} "b"{6000})", limits) ==
        "grammar: 1:29: the grammar expands to more than 10000 elements (check large repetition "
        "counts)");
  CHECK(parse_error(R"(root ::= "a"{20000})", limits) == "grammar: 1:18: repetition count too large");
}
