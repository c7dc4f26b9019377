// Token masks against brute force: at every state a random constrained walk reaches, the trie
// walk must allow exactly the tokens whose bytes the grammar accepts from that state (and the end
// tokens exactly where it may end) -- on a small made-up vocabulary with split UTF-8 bytes, and on
// the real SmolLM2 vocabulary.
#include <catch2/catch.hpp>

#include <limits>
#include <random>

#include "grammar/grammar_constraint.hpp"
#include "grammar/grammar_constraint_cache.hpp"
#include "grammar/json_schema_gbnf.hpp"
#include "grammar_test_util.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

const char* const json_like_grammar = R"(
root   ::= object
object ::= "{" ws ( pair ( "," ws pair )* )? "}" ws
pair   ::= string ":" ws value
value  ::= object | string | number | "true" | "false" | "null" | "[" ws ( value ( "," ws value )* )? "]" ws
string ::= "\"" ( [^"\\\x00-\x1f] | "\\" ["\\/bfnrt] )* "\"" ws
number ::= "-"? ( "0" | [1-9] [0-9]{0,15} ) ws
ws     ::= [ \n]{0,4}
)";

token_mask brute_force_mask(const std::string& gbnf, const token_vocabulary& v,
                            std::string_view prefix) {
  auto a = automaton_of(gbnf);
  const auto s = a.next(a.initial_state(), prefix);
  REQUIRE(s >= 0);
  token_mask m(v.n_vocab());
  for (int32_t id = 0; id < v.n_vocab(); ++id) {
    if (v.is_end(id)) {
      if (a.is_accepting(s)) m.allow(id);
    } else if (!v.piece(id).empty() && a.next(s, v.piece(id)) >= 0) {
      m.allow(id);
    }
  }
  return m;
}

std::string describe_difference(const token_mask& got, const token_mask& want,
                                const token_vocabulary& v) {
  std::string out;
  for (int32_t id = 0; id < v.n_vocab() && out.size() < 400; ++id) {
    if (got.allows(id) != want.allows(id)) {
      out += std::to_string(id) + (got.allows(id) ? " allowed" : " refused") + " '" +
             std::string(v.piece(id)) + "'; ";
    }
  }
  return out;
}

int32_t pick_allowed(const token_mask& m, std::mt19937& rng) {
  std::vector<int32_t> ids;
  for (size_t w = 0; w < m.words.size(); ++w) {
    for (uint64_t bits = m.words[w]; bits; bits &= bits - 1) {
      ids.push_back(static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits))));
    }
  }
  REQUIRE_FALSE(ids.empty());
  return ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
}

// Walks `steps` random allowed tokens, comparing every mask with brute force.
void check_masks_along_walks(const std::string& gbnf, std::shared_ptr<const token_vocabulary> v,
                             int walks, int steps, int brute_force_every) {
  auto c = compile_grammar_constraint(gbnf, v);
  REQUIRE(c.ok());
  std::mt19937 rng(1234);
  for (int w = 0; w < walks; ++w) {
    grammar_matcher m(*c);
    std::string text;
    for (int i = 0; i < steps; ++i) {
      auto mask = m.allowed_tokens();
      REQUIRE(mask.ok());
      if (i % brute_force_every == 0) {
        const token_mask want = brute_force_mask(gbnf, *v, text);
        INFO("after '" << text << "'");
        INFO(describe_difference(**mask, want, *v));
        REQUIRE((*mask)->words == want.words);
      }
      const int32_t id = pick_allowed(**mask, rng);
      if (v->is_end(id)) break;
      REQUIRE(m.accept(id).ok());
      text += v->piece(id);
    }
  }
}

}  // namespace

TEST_CASE("masks equal brute force on a small vocabulary with split UTF-8", "[grammar]") {
  // Pieces that cross grammar boundaries and split multi-byte characters.
  std::vector<std::string> pieces = {"{", "}", "{\"", "\":", "\"", "a", "ab", "\"a", "1", "12", "0",
                                     "-", ",", ", ", ":", " ", "\n", "[", "]", "[]", "{}", "true",
                                     "tr", "ue", "null", "\\", "\\n", "\\\"", "é", "\xC3", "\xA9",
                                     "\xE2\x9C", "\x93", "✓\"", "\x01", "", "e1", "99"};
  const auto end_id = static_cast<int32_t>(pieces.size());
  pieces.push_back("");  // the end token
  auto v = std::make_shared<const token_vocabulary>(pieces, std::vector<int32_t>{end_id});
  check_masks_along_walks(json_like_grammar, v, 40, 60, 1);
}

TEST_CASE("masks equal brute force on the SmolLM2 vocabulary", "[grammar]") {
  check_masks_along_walks(json_like_grammar, default_vocabulary(), 3, 40, 8);
}

TEST_CASE("masks equal brute force inside bounded strings of a schema (SmolLM2 vocabulary)",
          "[grammar]") {
  // Inside a string almost every token is allowed and the walk visits the whole trie; with
  // maxLength every character position is a new state, so these are the walks a cold schema pays.
  auto gbnf = json_schema_gbnf(
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},
          "id":{"type":"string","format":"uuid"},"n":{"type":"integer","minimum":3,"maximum":250}},
          "required":["name","id","n"],"additionalProperties":false})");
  REQUIRE(gbnf.ok());
  check_masks_along_walks(*gbnf, default_vocabulary(), 2, 40, 3);
}

TEST_CASE("the vocabulary trie lists every piece once, in preorder with exact subtree ends",
          "[grammar]") {
  auto check = [](const token_vocabulary& v) {
    std::vector<std::string> prefix(v.max_depth() + 1);
    std::vector<int> seen(static_cast<size_t>(v.n_vocab()), 0);
    REQUIRE(v.trie_node(0).depth == 0);
    REQUIRE(v.trie_node(0).subtree_end == v.num_nodes());
    for (uint32_t i = 1; i < v.num_nodes(); ++i) {
      const auto& n = v.trie_node(i);
      REQUIRE(n.depth >= 1);
      REQUIRE(n.depth <= v.trie_node(i - 1).depth + 1);  // preorder: one level down at most
      prefix[n.depth] = prefix[n.depth - 1u] + static_cast<char>(n.byte);
      for (auto id = v.tokens_begin(i); id != v.tokens_end(i); ++id) {
        CHECK(v.piece(*id) == prefix[n.depth]);
        ++seen[static_cast<size_t>(*id)];
      }
      REQUIRE(n.subtree_end > i);
      REQUIRE(n.subtree_end <= v.num_nodes());
      for (uint32_t j = i + 1; j < n.subtree_end; ++j) REQUIRE(v.trie_node(j).depth > n.depth);
      if (n.subtree_end < v.num_nodes()) {
        const auto& after = v.trie_node(n.subtree_end);
        REQUIRE(after.depth <= n.depth);
        if (after.depth == n.depth) REQUIRE(after.byte > n.byte);  // the next sibling, in byte order
      }
    }
    CHECK(v.tokens_begin(0) == v.tokens_end(0));  // no token has an empty piece in the trie
    for (int32_t id = 0; id < v.n_vocab(); ++id) {
      INFO("token " << id);
      CHECK(seen[static_cast<size_t>(id)] == (v.piece(id).empty() || v.is_end(id) ? 0 : 1));
    }
  };
  check(*default_vocabulary());
  check(token_vocabulary({"ab", "a", "b", "", "abc", "\xC3\xA9", "\xC3", "ba"}, {3}));
}

TEST_CASE("applying a mask sets exactly the refused logits to -inf", "[grammar]") {
  std::mt19937 rng(7);
  for (int32_t n_vocab : {1, 63, 64, 65, 1000, 49152}) {
    token_mask m(n_vocab);
    // Whole words allowed, whole words refused, and mixed words.
    for (size_t w = 0; w < m.words.size(); ++w) {
      const auto kind = rng() % 3;
      m.words[w] = kind == 0 ? 0 : kind == 1 ? ~uint64_t{0} : (uint64_t{rng()} << 32 | rng());
    }
    std::vector<float> row(static_cast<size_t>(n_vocab));
    for (auto& x : row) x = std::uniform_real_distribution<float>(-5, 5)(rng);
    std::vector<float> want = row;
    for (int32_t id = 0; id < n_vocab; ++id)
      if (!m.allows(id)) want[static_cast<size_t>(id)] = -std::numeric_limits<float>::infinity();
    apply_token_mask(row, m);
    CHECK(row == want);
  }
}

TEST_CASE("masks are cached per state: a revisited state costs no trie walk", "[grammar]") {
  auto c = compile_grammar_constraint(R"(root ::= "[" ( "\"" [a-z]* "\"" ","? )* "]")",
                                      default_vocabulary());
  REQUIRE(c.ok());
  grammar_matcher m(*c);
  const auto& v = (*c)->vocabulary();
  auto id_of = [&](std::string_view piece) {
    for (int32_t id = 0; id < v.n_vocab(); ++id) {
      if (v.piece(id) == piece) return id;
    }
    FAIL("no token '" << piece << "'");
    return -1;
  };
  for (const char* piece : {"[", "\"", "hello", "\",", "\"", "world", "\",", "\"", "hello"}) {
    REQUIRE(m.allowed_tokens().ok());
    REQUIRE(m.accept(id_of(piece)).ok());
  }
  const size_t walks = (*c)->num_mask_walks();
  // Inside a second and third string: the same states as inside the first.
  for (const char* piece : {"\",", "\"", "hello", "\",", "\"", "world"}) {
    REQUIRE(m.allowed_tokens().ok());
    REQUIRE(m.accept(id_of(piece)).ok());
  }
  CHECK((*c)->num_mask_walks() == walks);
  // The end token only once the array is closed.
  const int32_t eos = v.end_ids().front();
  CHECK_FALSE((*m.allowed_tokens())->allows(eos));
  REQUIRE(m.accept(id_of("\"]")).ok());
  CHECK((*m.allowed_tokens())->allows(eos));
  CHECK((*m.allowed_tokens())->count() == v.end_ids().size());
  CHECK(m.is_complete());
  CHECK_FALSE(m.accept(id_of("x")).ok());
}

TEST_CASE("limits refuse runaway grammars with a clear error", "[grammar]") {
  auto v = default_vocabulary();
  SECTION("ambiguity") {
    grammar_limits limits;
    limits.max_stacks_per_state = 64;
    // After n '(' either closer may follow each: 2^n open parses.
    auto c = compile_grammar_constraint(R"g(root ::= "(" root ")" | "(" root "]" | "x")g", v, limits);
    REQUIRE(c.ok());
    auto& a = (*c)->automaton();
    CHECK(a.next(a.initial_state(), "((((") >= 0);
    CHECK(a.next(a.initial_state(), "((((((((") == grammar_automaton::overflow);
    CHECK(a.error() ==
          "grammar: more than 64 parses are open at one position (the grammar is too ambiguous)");
  }
  SECTION("depth") {
    grammar_limits limits;
    limits.max_stack_depth = 16;
    auto c = compile_grammar_constraint(R"g(root ::= "(" root ")" | "x")g", v, limits);
    REQUIRE(c.ok());
    auto& a = (*c)->automaton();
    auto s = a.next(a.initial_state(), std::string(14, '('));
    CHECK(s >= 0);
    s = a.next(s, std::string(4, '('));
    CHECK(s == grammar_automaton::overflow);
    CHECK(a.error() == "grammar: nesting deeper than 16 levels");
  }
  SECTION("states") {
    grammar_limits limits;
    limits.max_states = 50;
    auto c = compile_grammar_constraint(R"(root ::= [a-z]{100})", v, limits);
    REQUIRE(c.ok());
    // The walk goes on while known states last, then stops with the limit as its error.
    grammar_matcher m(*c);
    result<const token_mask*> mask = m.allowed_tokens();
    int steps = 0;
    for (; mask.ok() && steps < 200; ++steps) {
      int32_t id = 0;
      while (!(*mask)->allows(id)) ++id;
      REQUIRE(m.accept(id).ok());
      mask = m.allowed_tokens();
    }
    REQUIRE_FALSE(mask.ok());
    CHECK(mask.message() ==
          "grammar: more than 50 automaton states (the grammar or schema is too large)");
    CHECK((*c)->automaton().num_states() == 50);
  }
}

TEST_CASE("the constraint cache shares one constraint per grammar text, LRU-bounded", "[grammar]") {
  grammar_constraint_cache cache(default_vocabulary(), 2);
  auto a = cache.get(R"(root ::= "a")");
  auto a2 = cache.get(R"(root ::= "a")");
  REQUIRE(a.ok());
  REQUIRE(a2.ok());
  CHECK(a->get() == a2->get());
  auto b = cache.get(R"(root ::= "b")");
  REQUIRE(b.ok());
  REQUIRE(cache.get(R"(root ::= "a")").ok());  // a is now the most recent
  REQUIRE(cache.get(R"(root ::= "c")").ok());  // evicts b
  CHECK(cache.size() == 2);
  CHECK(cache.get(R"(root ::= "a")")->get() == a->get());
  CHECK(cache.get(R"(root ::= "b")")->get() != b->get());  // compiled afresh
  CHECK_FALSE(cache.get("root ::= (").ok());
  CHECK(cache.size() == 2);
}
