// scheduler_policy with the fake executor: budgets, chunking, preemption, cancellation,
// fairness, n > 1, prefix reuse, replay -- and on every run, one terminal event per choice and
// no leaked blocks.
#include <catch2/catch.hpp>

#include <random>

#include "policy_driver.hpp"

using namespace troupe::actors;
using namespace troupe::actors::testing;

namespace {

constexpr int32_t vocab = 50;

scheduler_config small_config(int32_t num_blocks, int32_t block_size = 4) {
  scheduler_config c;
  c.max_num_batched_tokens = 32;
  c.max_num_seqs = 8;
  c.max_model_len = 512;
  c.block_size = block_size;
  c.num_kv_blocks = num_blocks;
  c.vocab_size = vocab;
  return c;
}

// Invariant 1 at the end of a run: every choice ended exactly once, nothing after it, and
// every block is back in the pool.
void check_clean_end(const scheduler_policy& policy, run_log& log) {
  for (auto& [key, c] : log.choices) {
    INFO("request " << key.first << " choice " << key.second);
    CHECK(c.num_terminal == 1);
    CHECK(c.num_events_after_terminal == 0);
  }
  for (auto& [rid, n] : log.num_request_done) CHECK(n == 1);
  CHECK(policy.pool().num_used_blocks() == 0);
  CHECK(policy.pool().num_free_blocks() == policy.pool().num_blocks());
  CHECK(policy.num_active_requests() == 0);
  CHECK_FALSE(policy.has_work());
}

}  // namespace

TEST_CASE("one request streams max_tokens tokens then ends with length", "[policy]") {
  scheduler_policy policy(small_config(64));
  fake_step_executor exec(64, 4, vocab);
  auto prompt = make_prompt(10, 1);
  REQUIRE_FALSE(policy.add_request(make_request(1, prompt, 6)).has_value());
  run_log log;
  drive(policy, exec, log);
  CHECK(log.tokens(1) == fake_reference_output(prompt, 7919, 6, vocab, {}));
  CHECK(log.choices[{1, 0}].finish == finish_reason::length);
  CHECK(log.num_steps == 6);  // one prefill step (10 <= 32 tokens), then 5 decodes
  check_clean_end(policy, log);
}

TEST_CASE("a long prompt is prefilled in chunks under the token budget", "[policy]") {
  auto cfg = small_config(64);
  cfg.max_num_batched_tokens = 16;
  scheduler_policy policy(cfg);
  fake_step_executor exec(64, 4, vocab);
  auto prompt = make_prompt(50, 2);
  REQUIRE_FALSE(policy.add_request(make_request(1, prompt, 3)).has_value());
  std::vector<int32_t> chunk_sizes;
  std::vector<bool> sampled;
  for (int i = 0; i < 4; ++i) {
    auto plan = policy.schedule();
    REQUIRE(plan.seqs.size() == 1);
    chunk_sizes.push_back(static_cast<int32_t>(plan.seqs[0].token_ids.size()));
    sampled.push_back(plan.seqs[0].do_sample);
    CHECK(plan.seqs[0].first_position == 16 * i);
    CHECK(plan.seqs[0].is_new == (i == 0));
    auto events = policy.on_step_result(*exec.run_step(plan));
    CHECK(events.size() == (i == 3 ? 1u : 0u));  // only the chunk reaching the end samples
  }
  CHECK(chunk_sizes == std::vector<int32_t>{16, 16, 16, 2});
  CHECK(sampled == std::vector<bool>{false, false, false, true});
  run_log log;
  drive(policy, exec, log);
  check_clean_end(policy, log);
}

TEST_CASE("budgets hold with many requests; outputs equal the requests run alone", "[policy]") {
  auto cfg = small_config(256);
  cfg.max_num_seqs = 4;
  scheduler_policy policy(cfg);
  fake_step_executor exec(256, 4, vocab);
  for (uint64_t id = 1; id <= 10; ++id)
    REQUIRE_FALSE(policy.add_request(
        make_request(id, make_prompt(static_cast<int32_t>(3 + id * 5), static_cast<int32_t>(id)),
                     static_cast<int32_t>(2 + id))).has_value());
  run_log log;
  drive(policy, exec, log);
  CHECK(log.max_seqs_in_step == 4);
  for (uint64_t id = 1; id <= 10; ++id)
    CHECK(log.tokens(id) ==
          fake_reference_output(make_prompt(static_cast<int32_t>(3 + id * 5),
                                            static_cast<int32_t>(id)),
                                id * 7919, static_cast<int32_t>(2 + id), vocab, {}));
  check_clean_end(policy, log);
}

TEST_CASE("preemption under a tiny pool changes nothing a client sees", "[policy]") {
  auto workload = [](scheduler_policy& policy) {
    for (uint64_t id = 1; id <= 6; ++id)
      REQUIRE_FALSE(policy.add_request(
          make_request(id, make_prompt(9, static_cast<int32_t>(id)), 20)).has_value());
  };
  auto big_cfg = small_config(256);
  big_cfg.enable_prefix_caching = false;
  scheduler_policy big(big_cfg);
  fake_step_executor big_exec(256, 4, vocab);
  workload(big);
  run_log big_log;
  drive(big, big_exec, big_log);
  CHECK(big.stats().num_preemptions_total == 0);

  // 8 blocks of 4 tokens: one request needs up to 8 blocks (9 + 20 tokens), six cannot run
  // together, so the newest keep being preempted and recomputed.
  auto tiny_cfg = small_config(8);
  scheduler_policy tiny(tiny_cfg);
  fake_step_executor tiny_exec(8, 4, vocab);
  workload(tiny);
  run_log tiny_log;
  drive(tiny, tiny_exec, tiny_log);
  CHECK(tiny.stats().num_preemptions_total > 0);
  for (uint64_t id = 1; id <= 6; ++id) {
    CHECK(tiny_log.tokens(id) == big_log.tokens(id));
    CHECK(tiny_log.tokens(id).size() == 20);
  }
  check_clean_end(big, big_log);
  check_clean_end(tiny, tiny_log);
}

TEST_CASE("cancel frees the request's blocks at once and ends it exactly once", "[policy]") {
  scheduler_policy policy(small_config(64));
  fake_step_executor exec(64, 4, vocab);
  REQUIRE_FALSE(policy.add_request(make_request(1, make_prompt(12, 1), 50)).has_value());
  REQUIRE_FALSE(policy.add_request(make_request(2, make_prompt(12, 2), 5)).has_value());
  run_log log;
  for (int i = 0; i < 3; ++i) log.apply(policy.on_step_result(*exec.run_step(policy.schedule())));
  const int32_t used_before = policy.pool().num_used_blocks();
  CHECK(used_before == 8);  // two sequences of 14 tokens in 4-token blocks

  // Cancel while a step is in flight: the blocks return now, the late result is ignored.
  auto plan = policy.schedule();
  auto events = policy.cancel_request(1);
  REQUIRE(events.size() == 1);
  CHECK(events[0].finish == finish_reason::cancelled);
  CHECK(events[0].is_request_done);
  CHECK(events[0].num_output_tokens == 3);
  log.apply(events);
  CHECK(policy.pool().num_used_blocks() == 4);
  log.apply(policy.on_step_result(*exec.run_step(plan)));
  CHECK(policy.cancel_request(1).empty());  // a second cancel: nothing
  drive(policy, exec, log);
  CHECK(log.choices[{1, 0}].tokens.size() == 3);
  CHECK(log.tokens(2) == fake_reference_output(make_prompt(12, 2), 2 * 7919, 5, vocab, {}));
  // The next plan tells the executor to drop the cancelled sequence.
  check_clean_end(policy, log);
}

TEST_CASE("a long prompt does not starve short ones", "[policy]") {
  auto cfg = small_config(512);
  cfg.max_num_batched_tokens = 64;
  cfg.long_prefill_token_threshold = 16;
  cfg.max_model_len = 2048;
  scheduler_policy policy(cfg);
  fake_step_executor exec(512, 4, vocab);
  REQUIRE_FALSE(policy.add_request(make_request(1, make_prompt(1000, 1), 4)).has_value());
  run_log log;
  drive(policy, exec, log, [&](int step) {
    if (step == 2)
      for (uint64_t id = 2; id <= 4; ++id)
        REQUIRE_FALSE(policy.add_request(
            make_request(id, make_prompt(20, static_cast<int32_t>(id)), 4)).has_value());
  });
  // The long prompt takes at most 16 tokens a step, so each short one is admitted at once and
  // has its first token within two steps of arriving, long before the long prompt's.
  for (uint64_t id = 2; id <= 4; ++id) CHECK(log.first_sample_step[id] <= 4);
  CHECK(log.first_sample_step[1] >= 1000 / 16 - 1);
  for (uint64_t id = 2; id <= 4; ++id)
    CHECK(log.tokens(id) ==
          fake_reference_output(make_prompt(20, static_cast<int32_t>(id)), id * 7919, 4, vocab,
                                {}));
  check_clean_end(policy, log);
}

TEST_CASE("stop ids and EOS end a choice with stop and are never streamed", "[policy]") {
  auto prompt = make_prompt(7, 3);
  auto free_run = fake_reference_output(prompt, 99, 30, vocab, {});
  REQUIRE(free_run.size() == 30);
  const int32_t stop_id = free_run[5];  // the 6th token: reference stops at its first use
  auto expected = fake_reference_output(prompt, 99, 30, vocab, {stop_id});

  for (bool as_eos : {false, true}) {
    auto cfg = small_config(64);
    if (as_eos) cfg.eos_token_ids = {stop_id};
    scheduler_policy policy(cfg);
    fake_step_executor exec(64, 4, vocab);
    auto req = make_request(1, prompt, 30, 99);
    if (!as_eos) req.stop_token_ids = {stop_id};
    REQUIRE_FALSE(policy.add_request(req).has_value());
    run_log log;
    drive(policy, exec, log);
    CHECK(log.tokens(1) == expected);
    CHECK(log.choices[{1, 0}].finish == finish_reason::stop);
    CHECK(log.choices[{1, 0}].stop_token_id == stop_id);
    check_clean_end(policy, log);
  }
}

TEST_CASE("n > 1 shares the prompt blocks and each choice equals its own seed alone",
          "[policy]") {
  auto cfg = small_config(64);
  scheduler_policy policy(cfg);
  fake_step_executor exec(64, 4, vocab);
  auto prompt = make_prompt(10, 5);
  REQUIRE_FALSE(policy.add_request(make_request(1, prompt, 6, 1234, 3)).has_value());
  run_log log;
  log.apply(policy.on_step_result(*exec.run_step(policy.schedule())));  // prefill + fork
  // Leader: 3 blocks (11 tokens). Children share the 2 blocks before the last prompt token.
  CHECK(policy.num_running_seqs() == 3);
  CHECK(policy.pool().num_used_blocks() == 3);
  auto plan = policy.schedule();
  REQUIRE(plan.seqs.size() == 3);
  CHECK(plan.seqs[1].is_new);
  CHECK(plan.seqs[1].first_position == 8);
  CHECK(plan.seqs[1].token_ids.size() == 2);  // recomputes the tail, then samples
  CHECK(plan.seqs[1].block_table[0] == plan.seqs[0].block_table[0]);
  CHECK(plan.seqs[1].block_table[2] != plan.seqs[0].block_table[2]);
  log.apply(policy.on_step_result(*exec.run_step(plan)));
  drive(policy, exec, log);
  for (int32_t c = 0; c < 3; ++c)
    CHECK(log.tokens(1, c) ==
          fake_reference_output(prompt, derive_choice_seed(1234, c), 6, vocab, {}));
  CHECK(log.tokens(1, 1) != log.tokens(1, 2));
  check_clean_end(policy, log);
}

TEST_CASE("a repeated prompt reuses cached blocks without changing the output", "[policy]") {
  scheduler_policy policy(small_config(64));
  fake_step_executor exec(64, 4, vocab);
  auto prompt = make_prompt(18, 6);
  REQUIRE_FALSE(policy.add_request(make_request(1, prompt, 4, 5)).has_value());
  run_log log;
  drive(policy, exec, log);
  REQUIRE_FALSE(policy.add_request(make_request(2, prompt, 4, 5)).has_value());
  auto plan = policy.schedule();
  REQUIRE(plan.seqs.size() == 1);
  CHECK(plan.seqs[0].first_position == 16);  // four full blocks reused, two tokens computed
  CHECK(plan.seqs[0].history_token_ids.size() == 16);
  log.apply(policy.on_step_result(*exec.run_step(plan)));
  drive(policy, exec, log);
  CHECK(policy.stats().num_prefix_cache_hit_tokens_total == 16);
  // usage.prompt_tokens_details.cached_tokens: one value in every event of a request.
  CHECK(log.num_cached_prompt_tokens[1] == std::set<int32_t>{0});
  CHECK(log.num_cached_prompt_tokens[2] == std::set<int32_t>{16});
  CHECK(log.tokens(2) == log.tokens(1));
  check_clean_end(policy, log);
}

TEST_CASE("replay after an executor loss recomputes and continues without repeats",
          "[policy]") {
  scheduler_policy policy(small_config(64));
  fake_step_executor exec(64, 4, vocab);
  for (uint64_t id = 1; id <= 3; ++id)
    REQUIRE_FALSE(policy.add_request(
        make_request(id, make_prompt(6, static_cast<int32_t>(id)), 10, 0, id == 3 ? 2 : 1))
                      .has_value());
  run_log log;
  for (int i = 0; i < 4; ++i) log.apply(policy.on_step_result(*exec.run_step(policy.schedule())));
  auto lost = policy.schedule();  // this step dies with the executor
  policy.replay_all();
  CHECK(policy.pool().num_used_blocks() == 0);
  CHECK(policy.on_step_result(step_result{lost.step_id, {}}).empty());  // void
  fake_step_executor fresh(64, 4, vocab);  // no K/V at all
  drive(policy, fresh, log);
  for (uint64_t id = 1; id <= 2; ++id)
    CHECK(log.tokens(id) == fake_reference_output(make_prompt(6, static_cast<int32_t>(id)),
                                                  id * 7919, 10, vocab, {}));
  for (int32_t c = 0; c < 2; ++c)
    CHECK(log.tokens(3, c) == fake_reference_output(make_prompt(6, 3),
                                                    derive_choice_seed(3 * 7919, c), 10, vocab,
                                                    {}));
  check_clean_end(policy, log);
}

TEST_CASE("a duplicate id or a full queue is refused with a reason and changes nothing",
          "[policy]") {
  // Bad values (empty prompt, context, vocabulary, n, sampling) never get here: the front door
  // refuses them (tests/frontend/test_request_validation.cpp) and the policy asserts them.
  auto cfg = small_config(16);
  cfg.max_model_len = 40;
  cfg.max_num_waiting_requests = 2;
  scheduler_policy policy(cfg);
  auto refused = [&](generate_request r) { return policy.add_request(std::move(r)); };
  CHECK_FALSE(refused(make_request(1, {3}, 4)));
  CHECK(refused(make_request(1, {3}, 4))->message.find("already active") != std::string::npos);
  CHECK_FALSE(refused(make_request(2, {3}, 4)));
  // Room: max_num_seqs (8) free seats + max_num_waiting_requests (2) queued behind them.
  for (uint64_t id = 3; id <= 10; ++id) CHECK_FALSE(refused(make_request(id, {3}, 4)));
  CHECK(refused(make_request(11, {3}, 4))->code == submit_error::queue_full);
  CHECK(policy.num_active_requests() == 10);
}

TEST_CASE("admission counts free seats: room for 6 admits exactly 6, before and after a step",
          "[policy]") {
  // Issue 10: with max_num_seqs 1 and 5 waiting places, 20 racing requests got 5 (the first
  // one still sat in `waiting` when the others arrived).
  auto cfg = small_config(64);
  cfg.max_num_seqs = 1;
  cfg.max_num_waiting_requests = 5;
  scheduler_policy policy(cfg);
  fake_step_executor exec(64, 4, vocab);
  int admitted = 0;
  for (uint64_t id = 1; id <= 20; ++id)
    if (!policy.add_request(make_request(id, make_prompt(5, static_cast<int32_t>(id)), 8)))
      ++admitted;
  CHECK(admitted == 6);
  CHECK(policy.num_active_requests() == 6);
  // One step later the first request runs: still no room for a seventh.
  run_log log;
  auto res = exec.run_step(policy.schedule());
  REQUIRE(res.ok());
  log.apply(policy.on_step_result(*res));
  auto r = policy.add_request(make_request(21, make_prompt(5, 21), 8));
  REQUIRE(r);
  CHECK(r->code == submit_error::queue_full);
  CHECK(r->message.find("5 requests are waiting") != std::string::npos);
  // A request of n = 2 needs two seats: with one seat free it queues (it does not take it).
  auto cfg2 = small_config(64);
  cfg2.max_num_seqs = 2;
  cfg2.max_num_waiting_requests = 1;
  scheduler_policy p2(cfg2);
  CHECK_FALSE(p2.add_request(make_request(1, make_prompt(5, 1), 8)));           // the 1st seat
  CHECK_FALSE(p2.add_request(make_request(2, make_prompt(5, 2), 8, 1, 2)));     // queued
  CHECK(p2.add_request(make_request(3, make_prompt(5, 3), 8))->code == submit_error::queue_full);
}

TEST_CASE("random workloads: outputs as if alone, one terminal each, no leaks", "[policy]") {
  std::mt19937 rng(42);
  for (int round = 0; round < 25; ++round) {
    auto cfg = small_config(static_cast<int32_t>(12 + rng() % 40), static_cast<int32_t>(1 + rng() % 6));
    cfg.max_num_batched_tokens = static_cast<int32_t>(8 + rng() % 40);
    cfg.max_num_seqs = static_cast<int32_t>(2 + rng() % 6);
    cfg.long_prefill_token_threshold = static_cast<int32_t>(rng() % 12);
    cfg.enable_prefix_caching = rng() % 2 == 0;
    cfg.max_model_len = 48;
    INFO("round " << round << " blocks " << cfg.num_kv_blocks << " block_size "
                  << cfg.block_size);
    scheduler_policy policy(cfg);
    fake_step_executor exec(cfg.num_kv_blocks, cfg.block_size, vocab);
    struct spec { std::vector<int32_t> prompt; int32_t max_tokens; int32_t n; bool cancel; };
    std::map<uint64_t, spec> specs;
    uint64_t next_id = 1;
    run_log log;
    std::set<uint64_t> cancelled;
    drive(policy, exec, log, [&](int step) {
      if (step < 40 && rng() % 3 == 0) {
        for (int k = 0; k < 3; ++k) {
          // Shared prefixes make prefix-cache hits likely.
          auto prompt = make_prompt(static_cast<int32_t>(1 + rng() % 20),
                                    static_cast<int32_t>(rng() % 3));
          int32_t max_tokens = static_cast<int32_t>(1 + rng() % 20);
          int32_t n = rng() % 4 == 0 ? 2 : 1;
          uint64_t id = next_id++;
          auto req = make_request(id, prompt, max_tokens, 0, n);
          if (passes_front_door(cfg, req) && !policy.add_request(req))
            specs[id] = {prompt, max_tokens, n, rng() % 5 == 0};
        }
      }
      for (auto& [id, s] : specs)
        if (s.cancel && !cancelled.count(id) && rng() % 4 == 0) {
          log.apply(policy.cancel_request(id));
          cancelled.insert(id);
        }
    });
    for (auto& [id, s] : specs) {
      for (int32_t c = 0; c < s.n; ++c) {
        auto expected = fake_reference_output(s.prompt, derive_choice_seed(id * 7919, c),
                                              s.max_tokens, vocab, {});
        const auto& got = log.tokens(id, c);
        INFO("request " << id << " choice " << c);
        if (cancelled.count(id)) {
          CHECK(std::equal(got.begin(), got.end(), expected.begin()));  // a prefix of it
        } else {
          CHECK(got == expected);
        }
      }
    }
    check_clean_end(policy, log);
  }
}
