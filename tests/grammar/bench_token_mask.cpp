// The cost of grammar-constrained decoding per sampled token on the SmolLM2 vocabulary (hidden:
// run with `test_grammar "[.bench]"`). Prints compile time, the mask cost when the state is new
// (a trie walk) and when it is cached, the cost of applying a mask to a logit row, and the
// per-token total over whole generations; BENCHMARKS.md compares them with the decode step. No
// timing is asserted.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "grammar/grammar_constraint.hpp"
#include "grammar/json_schema_gbnf.hpp"
#include "grammar_test_util.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

using clock_type = std::chrono::steady_clock;

double us_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

double sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

void bench_grammar(const char* label, const std::string& gbnf, int generations) {
  auto vocab = default_vocabulary();
  auto t0 = clock_type::now();
  auto c = compile_grammar_constraint(gbnf, vocab);
  const double compile_us = us_since(t0);
  REQUIRE(c.ok());
  std::mt19937 rng(3);
  std::vector<float> logits(static_cast<size_t>(vocab->n_vocab()), 0.5f);
  std::vector<double> cold, cached, apply, accept, per_token_by_gen;
  size_t tokens = 0;
  for (int g = 0; g < generations; ++g) {
    grammar_matcher m(*c);
    double total = 0;
    int n = 0;
    for (; n < 2000; ++n) {
      const size_t walks_before = (*c)->num_mask_walks();
      t0 = clock_type::now();
      auto mask = m.allowed_tokens();
      const double mask_us = us_since(t0);
      REQUIRE(mask.ok());
      ((*c)->num_mask_walks() != walks_before ? cold : cached).push_back(mask_us);
      // Apply the mask as the last stage does: refused logits become -inf.
      t0 = clock_type::now();
      const token_mask& mk = **mask;
      apply_token_mask(logits, mk);
      const double apply_us = us_since(t0);
      apply.push_back(apply_us);
      // Sample: uniformly among allowed tokens, biased to one-byte tokens as the tests do.
      std::vector<int32_t> all, short_ones;
      for (int32_t id = 0; id < vocab->n_vocab(); ++id) {
        if (!mk.allows(id)) continue;
        all.push_back(id);
        if (vocab->piece(id).size() == 1 || vocab->is_end(id)) short_ones.push_back(id);
      }
      std::fill(logits.begin(), logits.end(), 0.5f);
      const auto& from = (!short_ones.empty() && rng() % 4 != 0) ? short_ones : all;
      const int32_t id = from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(rng)];
      t0 = clock_type::now();
      REQUIRE(m.accept(id).ok());
      const double accept_us = us_since(t0);
      accept.push_back(accept_us);
      total += mask_us + apply_us + accept_us;
      if (vocab->is_end(id)) break;
    }
    tokens += static_cast<size_t>(n + 1);
    per_token_by_gen.push_back(total / (n + 1));
  }
  std::printf(
      "%-14s compile %.0f us | %zu tokens, %zu states, %zu masks | cold mask median %.0f us "
      "p90 %.0f us max %.0f us sum %.0f us (%zu) | cached mask median %.2f us (%zu) | apply median %.1f us | accept "
      "median %.2f us | per token: first generation %.1f us, last %.1f us, median %.1f us\n",
      label, compile_us, tokens, (*c)->automaton().num_states(), (*c)->num_cached_masks(),
      median(cold), percentile(cold, 0.9), percentile(cold, 1.0), sum(cold), cold.size(), median(cached), cached.size(),
      median(apply), median(accept), per_token_by_gen.front(), per_token_by_gen.back(),
      median(per_token_by_gen));
}

}  // namespace

TEST_CASE("grammar mask cost per token", "[.bench]") {
  const auto person = json_schema_gbnf(
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":40},
          "age":{"type":"integer","minimum":0,"maximum":120},
          "email":{"type":"string","format":"uuid"},
          "tags":{"type":"array","items":{"enum":["red","green","blue"]},"maxItems":5},
          "address":{"type":"object","properties":{"street":{"type":"string"},"zip":{"type":"integer","minimum":10000,"maximum":99999}},
            "required":["street","zip"],"additionalProperties":false}},
          "required":["name","age","email","tags","address"],"additionalProperties":false})");
  REQUIRE(person.ok());
  // Building the trie: what the last stage pays once, on its first constrained sequence.
  const auto& v = *default_vocabulary();
  std::vector<std::string> pieces;
  for (int32_t id = 0; id < v.n_vocab(); ++id) pieces.emplace_back(v.piece(id));
  auto t0 = clock_type::now();
  const token_vocabulary rebuilt(pieces, v.end_ids());
  std::printf("vocabulary: %d tokens, %zu trie nodes, trie built in %.1f ms\n", v.n_vocab(),
              rebuilt.num_nodes(), us_since(t0) / 1000);
  bench_grammar("json_schema", *person, 32);
  bench_grammar("json_object", json_object_gbnf(), 32);
}
