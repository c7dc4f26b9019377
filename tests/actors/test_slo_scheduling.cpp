// SLO-aware scheduling (slo_planner + scheduler_policy) with the fake executor, a fake clock
// and a fixed cost model: prefill chunks keep decoding streams within the TPOT target (or give
// prefill as much time as the decodes, when they alone take most of it), admission puts
// requests that can still meet their TTFT first (Moore-Hodgson over deadlines), and a request
// that cannot still gets its turn after starvation_factor x TTFT. Outputs stay those of each
// request run alone (invariant 2).
#include <catch2/catch.hpp>

#include <algorithm>

#include "actors/slo_planner.hpp"
#include "policy_driver.hpp"

using namespace troupe::actors;
using namespace troupe::actors::testing;

namespace {

constexpr int32_t vocab = 50;

scheduler_config slo_config(int32_t ttft_ms, int32_t tpot_ms, double gap_factor = 0) {
  scheduler_config c;
  c.max_num_batched_tokens = 2048;
  c.max_num_seqs = 16;
  c.max_model_len = 4096;
  c.block_size = 16;
  c.num_kv_blocks = 1024;
  c.vocab_size = vocab;
  c.slo_ttft_ms = ttft_ms;
  c.slo_tpot_ms = tpot_ms;
  c.max_decode_gap_factor = gap_factor;
  return c;
}

step_shape shape_of(const step_plan& plan) {
  step_shape s;
  for (const auto& q : plan.seqs)
    s.add_chunk(q.first_position, static_cast<int64_t>(q.token_ids.size()));
  return s;
}

struct plan_summary {
  int num_decodes = 0;            // one-token entries of streams that already sampled
  int64_t num_prefill_tokens = 0;  // the long request's chunk
  double predicted_s = 0;
};

// Eight streams decoding, then a 2,000-token prompt; returns what each plan carried until the
// long prompt's first token, and checks every output against the request run alone.
std::vector<plan_summary> long_prompt_among_streams(int32_t tpot_ms,
                                                    step_cost_model::coefficients cost,
                                                    double gap_factor = 0) {
  scheduler_policy policy(slo_config(0, tpot_ms, gap_factor));
  policy.slo().cost_model() = step_cost_model(cost);
  fake_step_executor exec(1024, 16, vocab);
  for (uint64_t id = 1; id <= 8; ++id)
    REQUIRE_FALSE(policy.add_request(make_request(id, make_prompt(20, static_cast<int32_t>(id)),
                                                  300)).has_value());
  run_log log;
  auto step = [&] {
    step_plan plan = policy.schedule();
    REQUIRE_FALSE(plan.seqs.empty());
    auto res = exec.run_step(plan);
    REQUIRE(res.ok());
    log.apply(policy.on_step_result(*res));
    ++log.num_steps;
    return plan;
  };
  step();  // the eight prompts, together (nothing decodes yet: no cut)
  step();  // eight decodes
  const auto long_prompt = make_prompt(2000, 9);
  REQUIRE_FALSE(policy.add_request(make_request(9, long_prompt, 4)).has_value());
  std::vector<plan_summary> plans;
  while (log.tokens(9).empty()) {
    step_plan plan = step();
    plan_summary p;
    p.predicted_s = policy.slo().cost_model().predict_s(shape_of(plan));
    for (const auto& q : plan.seqs) {
      if (q.seq_id == 9)  // the long prompt's sequence (ids count from 1 in arrival order)
        p.num_prefill_tokens += static_cast<int64_t>(q.token_ids.size());
      else if (q.token_ids.size() == 1)
        ++p.num_decodes;
    }
    plans.push_back(p);
    REQUIRE(plans.size() < 1000);
  }
  drive(policy, exec, log);
  for (uint64_t id = 1; id <= 8; ++id)
    CHECK(log.tokens(id) == fake_reference_output(make_prompt(20, static_cast<int32_t>(id)),
                                                  id * 7919, 300, vocab, {}));
  CHECK(log.tokens(9) == fake_reference_output(long_prompt, 9 * 7919, 4, vocab, {}));
  CHECK(policy.pool().num_used_blocks() == 0);
  return plans;
}

}  // namespace

TEST_CASE("a long prompt among 8 decoding streams is chunked to keep the TPOT target", "[slo]") {
  // 5 ms a step + 1 ms a token: 8 decodes take 13 ms, leaving 37 prefill tokens under 50 ms.
  const auto plans = long_prompt_among_streams(50, {5e-3, 1e-3, 0.0});
  int64_t total = 0;
  for (const auto& p : plans) {
    CHECK(p.num_decodes == 8);       // no stream misses a step
    CHECK(p.predicted_s <= 0.050 + 1e-12);
    CHECK(p.num_prefill_tokens <= 37);
    total += p.num_prefill_tokens;
  }
  CHECK(total == 2000);
  CHECK(plans.size() == (2000 + 36) / 37);  // every plan but the last takes all the room
}

TEST_CASE("without a TPOT target the same prompt is one step that stalls every stream", "[slo]") {
  const auto plans = long_prompt_among_streams(0, {5e-3, 1e-3, 0.0});
  REQUIRE(plans.size() == 1);
  CHECK(plans[0].num_prefill_tokens == 2000);
  CHECK(plans[0].predicted_s > 2.0);
}

TEST_CASE("a gap factor holds every plan within that multiple of the streams' step", "[slo]") {
  // 5 ms a step + 1 ms a token. The streams: the 8 decoding and the long prompt, which decodes
  // once admitted: 14 ms; x2.5 = 35 ms, of which the 8 decodes take 13: 22 prompt tokens.
  const auto plans = long_prompt_among_streams(0, {5e-3, 1e-3, 0.0}, 2.5);
  int64_t total = 0;
  for (const auto& p : plans) {
    CHECK(p.num_decodes == 8);
    CHECK(p.predicted_s <= 2.5 * 0.014 + 1e-12);
    CHECK(p.num_prefill_tokens <= 22);
    total += p.num_prefill_tokens;
  }
  CHECK(total == 2000);
  CHECK(plans.size() == (2000 + 21) / 22);
}

TEST_CASE("a part-empty batch refills at the gap of the batch it will make", "[slo]") {
  // Two streams decode; six prompts wait with seats free. Priced at the two streams alone (7 ms,
  // x2.5 = 17.5 ms) a plan would carry 10 prompt tokens; the gap the cut protects is that of
  // the 8 streams they make (13 ms, x2.5 = 32.5 ms): 25 prompt tokens beside the 2 decodes.
  scheduler_policy policy(slo_config(0, 0, 2.5));
  policy.slo().cost_model() = step_cost_model({5e-3, 1e-3, 0.0});
  fake_step_executor exec(1024, 16, vocab);
  run_log log;
  for (uint64_t id = 1; id <= 2; ++id)
    REQUIRE_FALSE(policy.add_request(make_request(id, make_prompt(20, static_cast<int32_t>(id)),
                                                  50)).has_value());
  for (int i = 0; i < 2; ++i) {  // the two prompts (no cut: nothing decodes), then a decode
    auto res = exec.run_step(policy.schedule());
    REQUIRE(res.ok());
    log.apply(policy.on_step_result(*res));
  }
  for (uint64_t id = 3; id <= 8; ++id)
    REQUIRE_FALSE(policy.add_request(make_request(id, make_prompt(200, static_cast<int32_t>(id)),
                                                  4)).has_value());
  const step_plan plan = policy.schedule();
  int num_decodes = 0;
  int64_t num_prefill_tokens = 0;
  for (const auto& q : plan.seqs) {
    if (q.seq_id <= 2) num_decodes += static_cast<int>(q.token_ids.size());
    else num_prefill_tokens += static_cast<int64_t>(q.token_ids.size());
  }
  CHECK(num_decodes == 2);
  CHECK(num_prefill_tokens == 25);
  CHECK(policy.slo().cost_model().predict_s(shape_of(plan)) <= 2.5 * 0.013 + 1e-12);
  auto res = exec.run_step(plan);
  REQUIRE(res.ok());
  log.apply(policy.on_step_result(*res));
  drive(policy, exec, log);
  for (uint64_t id = 3; id <= 8; ++id)
    CHECK(log.tokens(id) == fake_reference_output(make_prompt(200, static_cast<int32_t>(id)),
                                                  id * 7919, 4, vocab, {}));
  CHECK(policy.pool().num_used_blocks() == 0);
}

TEST_CASE("with a gap factor and a TPOT target the tighter budget holds", "[slo]") {
  // Budgets: TPOT 50 ms, factor 2.5 x 14 ms = 35 ms -> 22 tokens, as with the factor alone.
  CHECK(long_prompt_among_streams(50, {5e-3, 1e-3, 0.0}, 2.5).size() == (2000 + 21) / 22);
  // Factor 10 (140 ms) is looser than 50 ms: the TPOT target's 37 tokens.
  CHECK(long_prompt_among_streams(50, {5e-3, 1e-3, 0.0}, 10).size() == (2000 + 36) / 37);
}

TEST_CASE("when the decodes alone miss the target, prefill gets as much time", "[slo]") {
  // 60 ms a step: 8 decodes take 68 ms, over the 50 ms target; the plan may take 136 ms, so
  // each carries 68 prompt tokens at 1 ms.
  const auto plans = long_prompt_among_streams(50, {60e-3, 1e-3, 0.0});
  for (size_t i = 0; i + 1 < plans.size(); ++i) {
    CHECK(plans[i].num_prefill_tokens == 68);
    CHECK(plans[i].predicted_s <= 2 * 0.068 + 1e-12);
  }
  CHECK(plans.size() == (2000 + 67) / 68);
}

TEST_CASE("a prompt with no stream decoding is not cut", "[slo]") {
  scheduler_policy policy(slo_config(0, 50));
  policy.slo().cost_model() = step_cost_model({5e-3, 1e-3, 0.0});
  REQUIRE_FALSE(policy.add_request(make_request(1, make_prompt(2000, 1), 2)).has_value());
  step_plan plan = policy.schedule();
  REQUIRE(plan.seqs.size() == 1);
  CHECK(plan.seqs[0].token_ids.size() == 2000);
}

TEST_CASE("admission: deadline order, requests that cannot make it moved after", "[slo]") {
  int64_t now = 0;
  slo_planner p(1000, 0);
  p.set_clock([&] { return now; });
  p.cost_model() = step_cost_model({0.0, 1e-3, 0.0});  // 1 ms a prompt token
  const auto ms = [](int64_t v) { return v * 1'000'000; };
  now = ms(0);
  p.on_arrival(1);  // A: 900 tokens, deadline 1000 ms
  now = ms(10);
  p.on_arrival(2);  // B: 100 tokens, deadline 1010 ms
  now = ms(20);
  p.on_arrival(3);  // C: 100 tokens, deadline 1020 ms
  now = ms(50);
  const std::vector<slo_planner::candidate> waiting = {{1, 0, 900}, {2, 0, 100}, {3, 0, 100}};
  // All three fit when alone: A ends at 950 ms, B at 1050 > 1010 -> the longest kept (A) goes
  // out; B ends at 150, C at 250. Two on time instead of one.
  CHECK(p.order_admission(waiting, 0.0) == std::vector<size_t>{1, 2, 0});
  // Little work: everybody makes it, first come first served.
  const std::vector<slo_planner::candidate> small = {{1, 0, 90}, {2, 0, 100}, {3, 0, 100}};
  CHECK(p.order_admission(small, 0.0) == std::vector<size_t>{0, 1, 2});
  // A backlog of 865 ms of running prefill (now = 50 ms; deadlines 950, 960, 970 ms from now):
  // A would end at 955, B at 965 -- both late -- but C alone ends at 965 <= 970. So C first;
  // A and B, hopeless, follow in arrival order.
  CHECK(p.order_admission(small, 0.865) == std::vector<size_t>{2, 0, 1});
  // Equal arrival: the shorter prompt first.
  p.on_arrival(4);
  p.on_arrival(5);
  CHECK(p.order_admission({{4, 0, 300}, {5, 0, 30}}, 0.0) == std::vector<size_t>{1, 0});
}

TEST_CASE("admission: streams first, then the starved, then the rest", "[slo]") {
  int64_t now = 0;
  slo_planner p(1000, 0);
  p.set_clock([&] { return now; });
  p.cost_model() = step_cost_model({0.0, 1e-3, 0.0});
  p.on_arrival(1);  // hopeless: 5,000 tokens
  now = 100'000'000;
  p.on_arrival(2);
  p.on_arrival(3);
  token_event first;
  first.request_id = 3;
  first.token_ids = {7};
  p.on_events({first});  // request 3 streams (its sequence was preempted since)
  CHECK(p.has_started(3));
  const std::vector<slo_planner::candidate> waiting = {{1, 0, 5000}, {2, 0, 50}, {3, 0, 80}};
  CHECK(p.order_admission(waiting, 0.0) == std::vector<size_t>{2, 1, 0});
  // Past starvation_factor x TTFT the hopeless one goes before anything not yet streaming.
  now = slo_planner::starvation_factor * 1'000'000'000 + 1;
  CHECK(p.order_admission(waiting, 0.0) == std::vector<size_t>{2, 0, 1});
  token_event done;
  done.request_id = 3;
  done.is_request_done = true;
  p.on_events({done});
  CHECK_FALSE(p.has_started(3));
}

TEST_CASE("a hopeless request waits behind feasible ones, but not forever", "[slo]") {
  // One seat, a short request arriving every 30 ms of model time (each needs ~40 ms: the queue
  // grows), and one 1,500-token prompt that cannot meet a 1 s TTFT (1.5 ms a token). First come
  // first served would run it first.
  auto cfg = slo_config(1000, 0);
  cfg.max_num_seqs = 1;
  scheduler_policy policy(cfg);
  int64_t now = 0;
  policy.slo().set_clock([&] { return now; });
  const step_cost_model::coefficients cost{2e-3, 1.5e-3, 0.0};
  policy.slo().cost_model() = step_cost_model(cost);
  fake_step_executor exec(1024, 16, vocab);
  REQUIRE_FALSE(policy.add_request(make_request(1000, make_prompt(1500, 3), 2)).has_value());
  run_log log;
  uint64_t next_id = 1;
  int64_t next_arrival = 0;
  std::map<uint64_t, int64_t> arrival;
  int64_t long_first_token = -1;
  int num_later_served_first = 0;
  for (int step = 0; step < 5000 && long_first_token < 0; ++step) {
    while (next_arrival <= now) {
      arrival[next_id] = now;
      REQUIRE_FALSE(policy.add_request(
          make_request(next_id, make_prompt(20, static_cast<int32_t>(next_id)), 3)).has_value());
      ++next_id;
      next_arrival += 30'000'000;
    }
    step_plan plan = policy.schedule();
    REQUIRE_FALSE(plan.seqs.empty());
    now += static_cast<int64_t>(step_cost_model(cost).predict_s(shape_of(plan)) * 1e9);
    auto res = exec.run_step(plan);
    REQUIRE(res.ok());
    const auto events = policy.on_step_result(*res);
    for (const auto& ev : events) {
      if (ev.request_id == 1000 && !ev.token_ids.empty()) long_first_token = now;
      if (ev.request_id != 1000 && long_first_token < 0 && !ev.token_ids.empty() &&
          log.tokens(ev.request_id).empty())
        ++num_later_served_first;
    }
    log.apply(events);
  }
  REQUIRE(long_first_token > 0);
  CHECK(num_later_served_first > 0);  // short requests that arrived after it went first
  // Admitted once it waited starvation_factor x 1 s, then its prefill (~2.3 s) and a few steps.
  CHECK(long_first_token < (slo_planner::starvation_factor + 3) * 1'000'000'000LL);
  drive(policy, exec, log);
  CHECK(log.tokens(1000) == fake_reference_output(make_prompt(1500, 3), 1000 * 7919, 2, vocab, {}));
  CHECK(policy.pool().num_used_blocks() == 0);
}

TEST_CASE("the first prompt chunk of a plan gets a token even when drafts took the budget",
          "[slo]") {
  slo_planner p(0, 50);
  p.cost_model() = step_cost_model({5e-3, 1e-3, 0.0});
  step_shape decodes;
  for (int i = 0; i < 8; ++i) decodes.add_chunk(100, 1);  // 13 ms
  auto limiter = p.begin_plan(true, decodes, decodes);
  limiter.add(101, 40);  // drafts: 53 ms, over the 50 ms budget
  CHECK(limiter.limit(0, 500) == 1);
  limiter.add(0, 1);
  CHECK(limiter.limit(0, 500) == 0);
  // Inactive (no target, or no stream decoding): nothing is cut.
  CHECK(p.begin_plan(false, decodes, decodes).limit(0, 500) == 500);
  CHECK(slo_planner(0, 0).begin_plan(true, decodes, decodes).limit(0, 500) == 500);
}
