// Our ids against llama.cpp's on the whole oracle corpus (tools/gen-tokenizer-oracle): the
// default model with both special-token modes, the same vocabulary under the other
// pre-tokenizers, and with BOS/EOS switched on.
#include <catch2/catch.hpp>

#include <thread>

#include "oracle_data.hpp"
#include "tokenizer/utf8.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

// Counts agreeing cases, reports every disagreement with its text and both id lists.
struct agreement {
  size_t total = 0, equal = 0;
  void check(const std::string& what, const std::string& text, const std::vector<int32_t>& ours,
             const std::vector<int32_t>& theirs) {
    ++total;
    if (ours == theirs) {
      ++equal;
      return;
    }
    FAIL_CHECK(what << ": ids differ for text (hex-safe) '" << utf8::to_valid_utf8(text)
                    << "'\n  ours:      " << ids_to_string(ours) << "\n  llama.cpp: " << ids_to_string(theirs));
  }
};

tokenizer variant(const std::string& pre) {
  tokenizer_spec spec = default_spec();
  spec.pre = pre;
  auto t = tokenizer::from_spec(std::move(spec));
  if (!t) FAIL(t.message());
  return std::move(t).value();
}

}  // namespace

TEST_CASE("the oracle corpus is large and covers every kind of input", "[tokenizer][oracle]") {
  const auto& o = oracle();
  CHECK(o.cases.size() >= 200);
  size_t invalid = 0, long_docs = 0;
  for (const auto& c : o.cases) {
    invalid += !c.valid_utf8;
    long_docs += c.text.size() >= 4000;
  }
  CHECK(invalid >= 10);
  CHECK(long_docs >= 1);
  CHECK(o.n_vocab == default_tokenizer().n_vocab());
}

TEST_CASE("ids equal llama.cpp's on the whole corpus, specials parsed and plain", "[tokenizer][oracle]") {
  const auto& tok = default_tokenizer();
  agreement special, plain;
  for (const auto& c : oracle().cases) {
    special.check(c.name + " (parse_special)", c.text, tok.encode(c.text, false, true), c.ids_special);
    plain.check(c.name + " (plain)", c.text, tok.encode(c.text, false, false), c.ids_plain);
  }
  WARN("oracle agreement, default model: parse_special " << special.equal << "/" << special.total
       << ", plain " << plain.equal << "/" << plain.total);
  CHECK(special.equal == special.total);
  CHECK(plain.equal == plain.total);
}

TEST_CASE("decode renders what llama.cpp's detokenize renders", "[tokenizer][oracle]") {
  const auto& tok = default_tokenizer();
  for (const auto& c : oracle().cases) {
    INFO(c.name);
    CHECK(tok.decode(c.ids_special, true) == c.decoded_special);
    CHECK(tok.decode(c.ids_special, false) == c.decoded_plain);
  }
}

TEST_CASE("ids equal llama.cpp's under the gpt-2, llama-bpe and default pre-tokenizers", "[tokenizer][oracle]") {
  for (const auto& [pre, cases] : oracle().pre_variants) {
    const tokenizer tok = variant(pre);
    CHECK(tok.pre_tokenizer_name() == pre);
    agreement special, plain;
    REQUIRE(cases.size() == oracle().cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
      const auto& text = oracle().cases[i].text;
      special.check(pre + " " + cases[i].name, text, tok.encode(text, false, true), cases[i].ids_special);
      plain.check(pre + " " + cases[i].name + " (plain)", text, tok.encode(text, false, false), cases[i].ids_plain);
    }
    WARN("oracle agreement, pre-tokenizer " << pre << ": parse_special " << special.equal << "/"
         << special.total << ", plain " << plain.equal << "/" << plain.total);
    CHECK(special.equal == special.total);
    CHECK(plain.equal == plain.total);
  }
}

TEST_CASE("with add_bos_token/add_eos_token set, add_special adds BOS and EOS like llama.cpp", "[tokenizer][oracle]") {
  tokenizer_spec spec = default_spec();
  spec.add_bos = true;
  spec.add_eos = true;
  auto tok = tokenizer::from_spec(std::move(spec));
  REQUIRE(tok.ok());
  for (size_t i = 0; i < oracle().bos_eos_variant.size(); ++i) {
    const auto& v = oracle().bos_eos_variant[i];
    INFO(v.name);
    CHECK(tok->encode(oracle().cases[i].text, true, true) == v.ids_add_special);
  }
}

TEST_CASE("special ids and end-of-generation tokens match llama.cpp", "[tokenizer][oracle]") {
  const auto& tok = default_tokenizer();
  const auto& o = oracle();
  CHECK(tok.bos_id() == o.bos);
  CHECK(tok.eos_id() == o.eos);
  CHECK(tok.eot_id() == o.eot);
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < tok.n_vocab(); ++id)
    if (tok.is_end_of_generation(id)) eog.push_back(id);
  CHECK(eog == o.eog_ids);
  CHECK_FALSE(tok.is_end_of_generation(-1));
  CHECK_FALSE(tok.is_end_of_generation(tok.n_vocab()));
}

TEST_CASE("one tokenizer encodes from several threads at once with the same results", "[tokenizer][oracle]") {
  // Copies of one tokenizer share its data; when this runs first (`test_tokenizer "*threads*"`)
  // the threads also race to fill the Unicode category cache. Every thread must still get
  // llama.cpp's ids.
  const tokenizer tok = variant("smollm");
  std::vector<size_t> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      const tokenizer copy = tok;
      for (const auto& c : oracle().cases)
        mismatches[t] += copy.encode(c.text, false, true) != c.ids_special;
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches == std::vector<size_t>(4, 0));
}
