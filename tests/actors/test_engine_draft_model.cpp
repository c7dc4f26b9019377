// Speculative decoding with a draft model on the default model: the last executor stage
// proposes drafts with a second model (its own K/V, rolled back on rejections, freed with the
// sequence) and verifies them. Greedy output is the same as without drafts -- with the target as
// its own draft (every draft holds: the plumbing) and with a layer-truncated draft (many fail:
// the rollback) -- alone, batched with preemption, and when the draft runs out of K/V (no
// drafts, no lost request). Sampling with the draft's q completes and repeats itself per seed.
#include <catch2/catch.hpp>

#include <cstdio>
#include <map>
#include <memory>

#include "actors/engine_step_executor.hpp"
#include "engine/draft_model.hpp"
#include "policy_driver.hpp"

using namespace troupe;
using namespace troupe::actors;
using namespace troupe::actors::testing;

namespace {

std::shared_ptr<const llama_model_file> target_file() {
  static std::shared_ptr<const llama_model_file> file = [] {
    auto r = load_llama_model(TROUPE_DEFAULT_MODEL);
    if (!r.ok()) {
      std::fprintf(stderr, "cannot load %s: %s (run `make model`)\n", TROUPE_DEFAULT_MODEL,
                   r.message().c_str());
      return std::shared_ptr<const llama_model_file>();
    }
    return std::make_shared<const llama_model_file>(std::move(r.value()));
  }();
  REQUIRE(file != nullptr);
  return file;
}

// The first 6 of the target's 30 layers, the final norm and the head: what
// tools/make-draft-model writes, built in memory from the same mapping.
std::shared_ptr<const llama_model_file> truncated_file() {
  static auto file = [] {
    auto f = std::make_shared<llama_model_file>(*target_file());
    f->hparams.n_layer = 6;
    f->weights.layers.resize(6);
    return std::shared_ptr<const llama_model_file>(std::move(f));
  }();
  return file;
}

std::shared_ptr<kernels::thread_pool> pool() {
  static auto p = std::make_shared<kernels::thread_pool>(2);
  return p;
}

scheduler_config draft_config(int32_t k) {
  scheduler_config c;
  c.max_num_batched_tokens = 256;
  c.max_num_seqs = 8;
  c.max_model_len = 512;
  c.block_size = 16;
  c.num_kv_blocks = 64;
  c.vocab_size = 49152;
  c.num_speculative_tokens = k;
  c.has_draft_model = k > 0;
  c.speculative_disable_by_batch_size = 8;
  c.slo_ttft_ms = 0;  // no wall-clock-dependent chunking (see test_engine_speculation.cpp)
  c.slo_tpot_ms = 0;
  return c;
}

// Prompts without repeats, so prompt lookup (tried first) rarely finds anything and the drafts
// come from the model.
generate_request plain_request(uint64_t id, float temperature) {
  std::vector<int32_t> prompt;
  for (int32_t k = 0; k < 10 + 4 * static_cast<int32_t>(id); ++k)
    prompt.push_back(400 + (k * 53 + static_cast<int32_t>(id) * 211) % 9000);
  auto r = make_request(id, prompt, 20, 900 + id);
  r.sampling.temperature = temperature;
  return r;
}

struct outcome {
  std::map<uint64_t, std::vector<int32_t>> tokens;
  scheduler_stats stats;
};

outcome run(scheduler_config cfg, float temperature, std::vector<uint64_t> ids,
            std::shared_ptr<const llama_model_file> draft, int32_t draft_blocks = 0) {
  scheduler_policy policy(cfg);
  draft_options d;
  d.file = std::move(draft);
  // Lookup of 64-grams never matches here: every draft is the model's.
  d.prompt_lookup_min = d.prompt_lookup_max = 64;
  d.num_kv_blocks = draft_blocks;
  auto e = engine_step_executor::create(target_file(), pool(), cfg.num_kv_blocks, cfg.block_size,
                                        {}, {}, {}, d);
  REQUIRE(e.ok());
  for (uint64_t id : ids) REQUIRE_FALSE(policy.add_request(plain_request(id, temperature)));
  run_log log;
  drive(policy, **e, log);
  outcome out;
  for (uint64_t id : ids) {
    out.tokens[id] = log.tokens(id);
    CHECK(log.choices[{id, 0}].num_terminal == 1);
  }
  CHECK(policy.pool().num_used_blocks() == 0);
  out.stats = policy.stats();
  return out;
}

}  // namespace

TEST_CASE("the target as its own draft: every greedy draft holds, output unchanged",
          "[engine_draft]") {
  const auto plain = run(draft_config(0), 0.0f, {1}, nullptr);
  REQUIRE(plain.tokens.at(1).size() == 20);
  const auto spec = run(draft_config(4), 0.0f, {1}, target_file());
  CHECK(spec.tokens.at(1) == plain.tokens.at(1));
  CHECK(spec.stats.num_spec_draft_tokens_total > 0);
  CHECK(spec.stats.num_spec_accepted_tokens_total == spec.stats.num_spec_draft_tokens_total);
}

TEST_CASE("a truncated draft: greedy output unchanged alone, batched and through preemption",
          "[engine_draft]") {
  std::map<uint64_t, std::vector<int32_t>> plain;
  for (uint64_t id = 1; id <= 3; ++id)
    plain[id] = run(draft_config(0), 0.0f, {id}, nullptr).tokens[id];
  const auto alone = run(draft_config(4), 0.0f, {2}, truncated_file());
  CHECK(alone.tokens.at(2) == plain[2]);
  CHECK(alone.stats.num_spec_draft_tokens_total > 0);
  auto cfg = draft_config(4);
  cfg.max_num_batched_tokens = 24;
  cfg.block_size = 8;
  cfg.num_kv_blocks = 12;  // 3 sequences of up to 42 tokens need 18 blocks of 8
  const auto together = run(cfg, 0.0f, {1, 2, 3}, truncated_file());
  for (uint64_t id = 1; id <= 3; ++id) {
    INFO("batched, request " << id);
    CHECK(together.tokens.at(id) == plain[id]);
  }
  CHECK(together.stats.num_preemptions_total > 0);
  CHECK(together.stats.num_spec_draft_tokens_total > 0);
  // Some drafts failed, so the draft's K/V was rolled back and recomputed.
  CHECK(together.stats.num_spec_accepted_tokens_total <
        together.stats.num_spec_draft_tokens_total);
}

TEST_CASE("a draft model out of K/V blocks proposes nothing; requests finish unchanged",
          "[engine_draft]") {
  const auto plain = run(draft_config(0), 0.0f, {3}, nullptr);
  // One 16-token block cannot hold a 22-token prompt: every proposal fails.
  const auto starved = run(draft_config(4), 0.0f, {3}, truncated_file(), /*draft_blocks=*/1);
  CHECK(starved.tokens.at(3) == plain.tokens.at(3));
  CHECK(starved.stats.num_spec_draft_tokens_total == 0);
}

TEST_CASE("sampling with the draft's q: requests complete, the same seed repeats itself",
          "[engine_draft]") {
  const auto a = run(draft_config(4), 0.8f, {1, 2}, truncated_file());
  const auto b = run(draft_config(4), 0.8f, {1, 2}, truncated_file());
  for (uint64_t id : {1, 2}) {
    CHECK(a.tokens.at(id).size() == 20);
    CHECK(a.tokens.at(id) == b.tokens.at(id));
  }
  CHECK(a.stats.num_spec_draft_tokens_total > 0);
  CHECK(a.stats.num_spec_accepted_tokens_total > 0);
}

TEST_CASE("a draft model must have the target's vocabulary", "[engine_draft]") {
  CHECK(engine::check_same_vocabulary(*target_file(), *truncated_file(), "trunc.gguf").ok());
  llama_model_file other = *target_file();
  other.hparams.n_vocab = 32000;
  auto st = engine::check_same_vocabulary(*target_file(), other, "other.gguf");
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.message(),
             Catch::Contains("other.gguf") &&
                 Catch::Contains("vocabulary of 32000 tokens, the target's has 49152"));
}
