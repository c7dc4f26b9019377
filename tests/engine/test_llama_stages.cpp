// Pipeline stages at the model level: running the layers in 2 or 3 ranges, each stage with its
// own K/V pages and the hidden states handed from one to the next, gives logits bit-identical to
// the single whole-model call, on real prompts, through chunked prefill and greedy decode. Also
// the input checks of forward_layers().
#include <simdjson.h>

#include <cstring>
#include <string>

#include "model_fixture.hpp"

using namespace troupe;
using namespace troupe::engine;
using namespace troupe::engine::testing;

namespace {

// Real prompts: the token ids llama.cpp's tokenizer gave for a few of the oracle's texts.
std::vector<std::vector<int32_t>> oracle_prompts(const std::vector<std::string>& names) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc =
      parser.load(std::string(TROUPE_SOURCE_DIR) + "/tests/data/engine/logits_oracle.json");
  std::vector<std::vector<int32_t>> out(names.size());
  for (simdjson::dom::element p : doc["prompts"].get_array()) {
    const std::string name{std::string_view(p["name"])};
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] != name) continue;
      for (int64_t t : p["tokens"].get_array()) out[i].push_back(static_cast<int32_t>(t));
    }
  }
  for (size_t i = 0; i < names.size(); ++i) {
    INFO("prompt " << names[i]);
    REQUIRE(!out[i].empty());
  }
  return out;
}

// One way of running the model: a list of stages, each with its own model object (scratch) and
// its own pages; one stage = the plain forward().
struct pipeline {
  std::vector<layer_range> ranges;
  std::vector<std::unique_ptr<llama_model>> models;
  std::vector<paged_kv_storage> kv;

  pipeline(std::vector<layer_range> r, int64_t num_blocks) : ranges(std::move(r)) {
    for (const auto& lr : ranges) {
      models.push_back(std::make_unique<llama_model>(default_model_file(), test_pool()));
      auto s = paged_kv_storage::create(models.back()->kv_shape(num_blocks, 16, lr));
      REQUIRE(s.ok());
      kv.push_back(std::move(s.value()));
    }
  }

  std::vector<float> step(std::span<const batch_sequence> batch) {
    std::vector<float> logits(
        static_cast<size_t>(llama_model::num_logit_rows(batch) * models[0]->n_vocab()));
    if (ranges.size() == 1) {
      status st = models[0]->forward(batch, kv[0], logits);
      INFO(st.message());
      REQUIRE(st.ok());
      return logits;
    }
    std::vector<float> hidden, next;
    const int64_t n_embd = models[0]->hparams().n_embd;
    for (size_t i = 0; i < ranges.size(); ++i) {
      const bool last = i + 1 == ranges.size();
      if (!last) next.assign(static_cast<size_t>(llama_model::num_hidden_rows(batch) * n_embd), 0.f);
      status st = models[i]->forward_layers(batch, ranges[i], kv[i], hidden,
                                            last ? std::span<float>(logits) : std::span<float>(next));
      INFO("stage " << i << ": " << st.message());
      REQUIRE(st.ok());
      hidden.swap(next);
    }
    return logits;
  }
};

// Runs the prompts as one batch: prefill in chunks of `chunk` tokens (all sequences in every
// step while they have prompt left), then `n_decode` greedy steps. Returns every logits row.
std::vector<std::vector<float>> run(pipeline& p, const std::vector<std::vector<int32_t>>& prompts,
                                    size_t chunk, int n_decode) {
  const int64_t V = p.models[0]->n_vocab();
  const size_t n = prompts.size();
  std::vector<std::vector<int32_t>> tokens = prompts;
  std::vector<int32_t> n_past(n, 0);
  std::vector<std::vector<int32_t>> blocks(n);
  for (size_t i = 0; i < n; ++i) blocks[i] = iota_blocks(static_cast<int32_t>(i * 80), 80);
  std::vector<std::vector<float>> rows;
  bool prompts_left = true;
  int decodes = 0;
  while (prompts_left || decodes < n_decode) {
    std::vector<batch_sequence> batch;
    std::vector<size_t> who;
    std::vector<std::vector<int32_t>> step_tokens(n);
    for (size_t i = 0; i < n; ++i) {
      const size_t done = static_cast<size_t>(n_past[i]);
      if (done >= tokens[i].size()) continue;
      const size_t len = std::min(chunk, tokens[i].size() - done);
      step_tokens[i].assign(tokens[i].begin() + done, tokens[i].begin() + done + len);
      batch_sequence b;
      b.seq_id = i;
      b.tokens = step_tokens[i];
      b.first_position = n_past[i];
      b.block_table = blocks[i];
      b.sampled_from = static_cast<int32_t>(prompts[i].size());
      batch.push_back(b);
      who.push_back(i);
    }
    REQUIRE(!batch.empty());
    const auto logits = p.step(batch);
    prompts_left = false;
    for (size_t j = 0; j < who.size(); ++j) {
      const size_t i = who[j];
      n_past[i] += static_cast<int32_t>(batch[j].tokens.size());
      const float* row = logits.data() + static_cast<int64_t>(j) * V;
      rows.emplace_back(row, row + V);
      if (static_cast<size_t>(n_past[i]) == tokens[i].size())
        tokens[i].push_back(argmax(row, V));  // greedy: the next step decodes it
      if (static_cast<size_t>(n_past[i]) < prompts[i].size()) prompts_left = true;
    }
    if (!prompts_left) ++decodes;
  }
  return rows;
}

bool bit_identical(const std::vector<std::vector<float>>& a,
                   const std::vector<std::vector<float>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].size() != b[i].size() ||
        std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0)
      return false;
  return true;
}

}  // namespace

TEST_CASE("pipeline stages give the single call's logits bit for bit", "[engine][stages]") {
  const auto prompts =
      oracle_prompts({"chat_france", "code_cpp", "chinese", "counting", "short_hello"});
  const int32_t L = static_cast<int32_t>(default_model_file().hparams.n_layer);
  REQUIRE(L >= 3);
  constexpr int64_t num_blocks = 5 * 80;
  constexpr int n_decode = 6;
  pipeline whole({{0, L}}, num_blocks);
  const auto ref = run(whole, prompts, 16, n_decode);
  REQUIRE(ref.size() > 5 * n_decode);

  SECTION("two stages") {
    pipeline two({{0, L / 2}, {L / 2, L}}, num_blocks);
    CHECK(bit_identical(run(two, prompts, 16, n_decode), ref));
  }
  SECTION("three uneven stages") {
    pipeline three({{0, 7}, {7, L - 4}, {L - 4, L}}, num_blocks);
    CHECK(bit_identical(run(three, prompts, 16, n_decode), ref));
  }
  SECTION("a one-layer stage at each end") {
    pipeline edges({{0, 1}, {1, L - 1}, {L - 1, L}}, num_blocks);
    CHECK(bit_identical(run(edges, prompts, 16, n_decode), ref));
  }
}

TEST_CASE("forward_layers refuses mismatched stages", "[engine][stages]") {
  llama_model m(default_model_file(), test_pool());
  const int32_t L = static_cast<int32_t>(m.hparams().n_layer);
  const int64_t E = m.hparams().n_embd;
  const std::vector<int32_t> toks = {1, 2, 3};
  const std::vector<int32_t> blocks = {0};
  batch_sequence b;
  b.tokens = toks;
  b.block_table = blocks;
  std::vector<float> hidden(3 * E, 0.f), logits(m.n_vocab(), 0.f);
  auto kv_first = paged_kv_storage::create(m.kv_shape(1, 16, {0, 10}));
  auto kv_last = paged_kv_storage::create(m.kv_shape(1, 16, {10, L}));
  REQUIRE(kv_first.ok());
  REQUIRE(kv_last.ok());

  // The first stage gets no hidden states; the later ones need exactly one row per token.
  CHECK_FALSE(m.forward_layers({&b, 1}, {0, 10}, *kv_first, hidden, hidden).ok());
  CHECK_FALSE(m.forward_layers({&b, 1}, {10, L}, *kv_last, {}, logits).ok());
  CHECK_FALSE(m.forward_layers({&b, 1}, {10, L},  *kv_last,
                               std::span<const float>(hidden).first(2 * E), logits).ok());
  // Pages of another range's size, empty or reversed ranges, an output too small.
  CHECK_FALSE(m.forward_layers({&b, 1}, {0, 11}, *kv_first, {}, hidden).ok());
  CHECK_FALSE(m.forward_layers({&b, 1}, {10, 10}, *kv_first, {}, hidden).ok());
  CHECK_FALSE(m.forward_layers({&b, 1}, {0, L + 1}, *kv_first, {}, hidden).ok());
  CHECK_FALSE(m.forward_layers({&b, 1}, {0, 10}, *kv_first, {},
                               std::span<float>(hidden).first(E)).ok());
  // And the well-formed pair works.
  REQUIRE(m.forward_layers({&b, 1}, {0, 10}, *kv_first, {}, hidden).ok());
  REQUIRE(m.forward_layers({&b, 1}, {10, L}, *kv_last, hidden, logits).ok());
}
