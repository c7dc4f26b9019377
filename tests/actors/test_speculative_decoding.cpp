// Speculative decoding in the scheduler policy, against the fake executor (which verifies drafts
// as the engine does, reading every token back through the block table): prompt-lookup drafts,
// several tokens per step, stops / max_tokens in the middle of an accepted run, the switches
// (per-request opt-out, batch size, acceptance), counters -- and always the same tokens as
// without speculation, one terminal event per choice, no leaked blocks.
#include <catch2/catch.hpp>

#include <random>

#include "actors/draft_proposer.hpp"
#include "policy_driver.hpp"

using namespace troupe::actors;
using namespace troupe::actors::testing;

namespace {

constexpr int32_t vocab = 50;
constexpr int32_t copy_period = 6;

scheduler_config spec_config(int32_t k) {
  scheduler_config c;
  c.max_num_batched_tokens = 32;
  c.max_num_seqs = 8;
  c.max_model_len = 512;
  c.block_size = 4;
  c.num_kv_blocks = 128;
  c.vocab_size = vocab;
  c.num_speculative_tokens = k;
  c.speculative_disable_by_batch_size = 8;
  // No latency targets: their step-cost model learns from wall-clock times, which would make
  // chunking (and so preemption) depend on the machine's load.
  c.slo_ttft_ms = 0;
  c.slo_tpot_ms = 0;
  return c;
}

void check_clean_end(const scheduler_policy& policy, run_log& log) {
  for (auto& [key, c] : log.choices) {
    INFO("request " << key.first << " choice " << key.second);
    CHECK(c.num_terminal == 1);
    CHECK(c.num_events_after_terminal == 0);
  }
  CHECK(policy.pool().num_used_blocks() == 0);
  CHECK(policy.num_active_requests() == 0);
}

}  // namespace

TEST_CASE("prompt lookup proposes what followed the latest match of the longest suffix",
          "[spec]") {
  using v = std::vector<int32_t>;
  auto propose = [](v t, int32_t min_n, int32_t max_n, int32_t k) {
    return propose_prompt_lookup_drafts(t, min_n, max_n, k);
  };
  // "1 2 3" occurs at 0 and the suffix is "1 2 3": drafts are 4 5 (then the tokens run out
  // at the suffix start; the occurrence may run into the suffix itself).
  CHECK(propose({1, 2, 3, 4, 5, 1, 2, 3}, 1, 3, 3) == v{4, 5, 1});
  CHECK(propose({1, 2, 3, 4, 5, 1, 2, 3}, 1, 3, 1) == v{4});
  // The most recent occurrence wins: "7 8" at 0 (then 1) and at 3 (then 2).
  CHECK(propose({7, 8, 1, 7, 8, 2, 9, 7, 8}, 2, 2, 2) == v{2, 9});
  // A longer n is tried first: "3 4" matches at 2 (-> 9); "4" alone would match later (-> 5).
  CHECK(propose({0, 1, 3, 4, 9, 4, 5, 3, 4}, 1, 2, 1) == v{9});
  CHECK(propose({0, 1, 3, 4, 9, 4, 5, 3, 4}, 1, 1, 1) == v{5});
  // No match, nothing asked, too short.
  CHECK(propose({1, 2, 3, 4}, 1, 3, 4).empty());
  CHECK(propose({1, 2, 1}, 1, 3, 0).empty());
  CHECK(propose({1}, 1, 3, 4).empty());
  // A repeating pattern continues itself up to the end of the tokens.
  CHECK(propose({5, 5, 5}, 1, 3, 4) == v{5});
}

TEST_CASE("speculation emits several tokens per step, the same tokens as without it",
          "[spec]") {
  auto prompt = make_prompt(20, 2);
  auto expected = fake_reference_output(prompt, 77, 60, vocab, {}, copy_period);
  REQUIRE(expected.size() == 60);
  for (int32_t k : {0, 1, 3, 5}) {
    INFO("k " << k);
    scheduler_policy policy(spec_config(k));
    fake_step_executor exec(128, 4, vocab);
    exec.copy_period = copy_period;
    REQUIRE_FALSE(policy.add_request(make_request(1, prompt, 60, 77)));
    run_log log;
    drive(policy, exec, log);
    CHECK(log.tokens(1) == expected);
    CHECK(log.choices[{1, 0}].finish == finish_reason::length);
    const auto st = policy.stats();
    if (k == 0) {
      CHECK(st.num_spec_draft_tokens_total == 0);
      CHECK(log.num_steps == 60);
    } else {
      CHECK(st.num_spec_draft_tokens_total > 0);
      CHECK(st.num_spec_accepted_tokens_total > 0);
      CHECK(st.num_spec_accepted_tokens_total <= st.num_spec_draft_tokens_total);
      // Every accepted draft saved a step.
      CHECK(log.num_steps == 60 - static_cast<int>(st.num_spec_accepted_tokens_total));
    }
    CHECK(st.num_generation_tokens_total == 60);
    check_clean_end(policy, log);
  }
}

TEST_CASE("a stop id or max_tokens inside an accepted run ends the choice there", "[spec]") {
  auto prompt = make_prompt(20, 4);
  auto free_run = fake_reference_output(prompt, 5, 80, vocab, {}, copy_period);
  for (int32_t stop_at = 8; stop_at < 40; stop_at += 3) {
    const int32_t stop_id = free_run[static_cast<size_t>(stop_at)];
    auto expected = fake_reference_output(prompt, 5, 80, vocab, {stop_id}, copy_period);
    for (int32_t min_tokens : {0, 30}) {
      INFO("stop at " << stop_at << " min_tokens " << min_tokens);
      scheduler_policy policy(spec_config(4));
      fake_step_executor exec(128, 4, vocab);
      exec.copy_period = copy_period;
      auto req = make_request(1, prompt, 80, 5);
      req.stop_token_ids = {stop_id};
      req.min_tokens = min_tokens;
      REQUIRE_FALSE(policy.add_request(req));
      run_log log;
      drive(policy, exec, log);
      if (min_tokens == 0) {
        CHECK(log.tokens(1) == expected);
        CHECK(log.choices[{1, 0}].finish == finish_reason::stop);
      } else {
        // The stop id may not end the choice before min_tokens: compare with a plain run.
        scheduler_policy plain(spec_config(0));
        fake_step_executor plain_exec(128, 4, vocab);
        plain_exec.copy_period = copy_period;
        REQUIRE_FALSE(plain.add_request(req));
        run_log plain_log;
        drive(plain, plain_exec, plain_log);
        CHECK(log.tokens(1) == plain_log.tokens(1));
        CHECK(log.choices[{1, 0}].finish == plain_log.choices[{1, 0}].finish);
      }
      check_clean_end(policy, log);
    }
  }
  for (int32_t max_tokens = 1; max_tokens < 30; ++max_tokens) {
    INFO("max_tokens " << max_tokens);
    scheduler_policy policy(spec_config(4));
    fake_step_executor exec(128, 4, vocab);
    exec.copy_period = copy_period;
    REQUIRE_FALSE(policy.add_request(make_request(1, prompt, max_tokens, 5)));
    run_log log;
    drive(policy, exec, log);
    CHECK(log.tokens(1) == std::vector<int32_t>(free_run.begin(), free_run.begin() + max_tokens));
    CHECK(log.choices[{1, 0}].finish == finish_reason::length);
    check_clean_end(policy, log);
  }
}

TEST_CASE("no drafts for an opted-out request, a full batch, or low acceptance", "[spec]") {
  auto prompt = make_prompt(20, 2);
  SECTION("per-request opt-out") {
    scheduler_policy policy(spec_config(4));
    fake_step_executor exec(128, 4, vocab);
    exec.copy_period = copy_period;
    auto req = make_request(1, prompt, 40, 77);
    req.allow_speculation = false;
    REQUIRE_FALSE(policy.add_request(req));
    run_log log;
    drive(policy, exec, log);
    CHECK(policy.stats().num_spec_draft_tokens_total == 0);
    CHECK(log.num_steps == 40);
  }
  SECTION("batch size") {
    auto cfg = spec_config(4);
    cfg.speculative_disable_by_batch_size = 3;
    cfg.max_num_batched_tokens = 64;  // all three prompts in the first step
    scheduler_policy policy(cfg);
    fake_step_executor exec(128, 4, vocab);
    exec.copy_period = copy_period;
    for (uint64_t id = 1; id <= 3; ++id)
      REQUIRE_FALSE(policy.add_request(make_request(id, make_prompt(20, static_cast<int32_t>(id)),
                                                    10 * static_cast<int32_t>(id), id)));
    run_log log;
    // Three sequences run until request 1 ends: no plan may carry drafts before that.
    bool done_1 = false;
    while (policy.has_work()) {
      auto plan = policy.schedule();
      for (const auto& s : plan.seqs)
        if (!done_1) CHECK(s.num_draft_tokens == 0);
      auto res = exec.run_step(plan);
      REQUIRE(res.ok());
      log.apply(policy.on_step_result(*res));
      done_1 = log.choices[{1, 0}].num_terminal > 0;
    }
    CHECK(policy.stats().num_spec_draft_tokens_total > 0);  // once only two ran
    for (uint64_t id = 1; id <= 3; ++id)
      CHECK(log.tokens(id) == fake_reference_output(make_prompt(20, static_cast<int32_t>(id)), id,
                                                    10 * static_cast<int32_t>(id), vocab, {},
                                                    copy_period));
    check_clean_end(policy, log);
  }
  SECTION("acceptance too low") {
    // Without copying, drafts from prompt lookup are almost always wrong: the sequence stops
    // drafting after 32 of them (single-token n-grams, so that there are drafts at all).
    auto cfg = spec_config(4);
    cfg.prompt_lookup_min = 1;
    scheduler_policy policy(cfg);
    fake_step_executor exec(128, 4, vocab);
    REQUIRE_FALSE(policy.add_request(make_request(1, make_prompt(40, 1), 200, 3)));
    run_log log;
    drive(policy, exec, log);
    const auto st = policy.stats();
    CHECK(st.num_spec_draft_tokens_total >= 32);
    CHECK(st.num_spec_draft_tokens_total < 32 + 4);
    CHECK(st.num_spec_accepted_tokens_total * 5 < st.num_spec_draft_tokens_total);
    CHECK(log.tokens(1) == fake_reference_output(make_prompt(40, 1), 3, 200, vocab, {}));
  }
}

TEST_CASE("speculation: random workloads equal their plain runs, one terminal each, no leaks",
          "[spec]") {
  std::mt19937 rng(7);
  for (int round = 0; round < 30; ++round) {
    auto cfg = spec_config(static_cast<int32_t>(1 + rng() % 6));
    cfg.num_kv_blocks = static_cast<int32_t>(16 + rng() % 40);
    cfg.block_size = static_cast<int32_t>(1 + rng() % 6);
    cfg.max_num_batched_tokens = static_cast<int32_t>(8 + rng() % 40);
    cfg.max_num_seqs = static_cast<int32_t>(2 + rng() % 6);
    cfg.speculative_disable_by_batch_size = static_cast<int32_t>(1 + rng() % 8);
    cfg.enable_prefix_caching = rng() % 2 == 0;
    cfg.max_model_len = 64;
    INFO("round " << round);
    scheduler_policy policy(cfg);
    fake_step_executor exec(cfg.num_kv_blocks, cfg.block_size, vocab);
    exec.copy_period = copy_period;
    struct spec { std::vector<int32_t> prompt; int32_t max_tokens; int32_t n; };
    std::map<uint64_t, spec> specs;
    uint64_t next_id = 1;
    run_log log;
    drive(policy, exec, log, [&](int step) {
      if (step < 40 && rng() % 3 == 0) {
        auto prompt = make_prompt(static_cast<int32_t>(1 + rng() % 20),
                                  static_cast<int32_t>(rng() % 3));
        int32_t max_tokens = static_cast<int32_t>(1 + rng() % 40);
        int32_t n = rng() % 4 == 0 ? 2 : 1;
        uint64_t id = next_id++;
        auto req = make_request(id, prompt, max_tokens, 0, n);
        if (passes_front_door(cfg, req) && !policy.add_request(req))
          specs[id] = {prompt, max_tokens, n};
      }
    });
    for (auto& [id, s] : specs)
      for (int32_t c = 0; c < s.n; ++c) {
        INFO("request " << id << " choice " << c);
        CHECK(log.tokens(id, c) == fake_reference_output(s.prompt, derive_choice_seed(id * 7919, c),
                                                         s.max_tokens, vocab, {}, copy_period));
      }
    check_clean_end(policy, log);
  }
}
