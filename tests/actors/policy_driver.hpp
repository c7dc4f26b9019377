// Drives a scheduler_policy against the fake executor and records what a client would see.
#pragma once

#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "actors/scheduler_policy.hpp"
#include "fake_model.hpp"

namespace troupe::actors::testing {

struct choice_log {
  std::vector<int32_t> tokens;
  int num_terminal = 0;
  int num_events_after_terminal = 0;
  finish_reason finish = finish_reason::none;
  int32_t stop_token_id = -1;
};

struct run_log {
  std::map<std::pair<uint64_t, int32_t>, choice_log> choices;
  std::map<uint64_t, int> num_request_done;  // is_request_done flags seen per request
  int num_steps = 0;
  int max_seqs_in_step = 0;
  std::map<uint64_t, int> first_sample_step;  // request id -> step of its first event
  std::map<uint64_t, std::set<int32_t>> num_cached_prompt_tokens;  // every value its events gave

  void apply(const std::vector<token_event>& events) {
    for (const auto& ev : events) {
      auto& c = choices[{ev.request_id, ev.choice_index}];
      if (c.num_terminal > 0) ++c.num_events_after_terminal;
      c.tokens.insert(c.tokens.end(), ev.token_ids.begin(), ev.token_ids.end());
      first_sample_step.emplace(ev.request_id, num_steps);
      num_cached_prompt_tokens[ev.request_id].insert(ev.num_cached_prompt_tokens);
      if (ev.finish != finish_reason::none) {
        ++c.num_terminal;
        c.finish = ev.finish;
        c.stop_token_id = ev.stop_token_id;
      }
      if (ev.is_request_done) ++num_request_done[ev.request_id];
    }
  }
  const std::vector<int32_t>& tokens(uint64_t rid, int32_t choice = 0) {
    return choices[{rid, choice}].tokens;
  }
};

// Runs until no work is left. `before_step(step_index)` may add or cancel requests.
inline void drive(scheduler_policy& policy, step_executor& exec, run_log& log,
                  const std::function<void(int)>& before_step = {}, int max_steps = 100000) {
  const auto& cfg = policy.config();
  for (int step = 0; step < max_steps; ++step) {
    if (before_step) before_step(step);
    if (!policy.has_work()) return;
    step_plan plan = policy.schedule();
    REQUIRE_FALSE(plan.seqs.empty());  // work left but nothing schedulable: a stall
    int32_t num_tokens = 0;
    std::set<uint64_t> ids;
    for (const auto& s : plan.seqs) {
      num_tokens += static_cast<int32_t>(s.token_ids.size());
      REQUIRE(ids.insert(s.seq_id).second);
      REQUIRE(!s.token_ids.empty());
    }
    REQUIRE(num_tokens == plan.num_scheduled_tokens);
    REQUIRE(num_tokens <= cfg.max_num_batched_tokens);
    REQUIRE(static_cast<int32_t>(plan.seqs.size()) <= cfg.max_num_seqs);
    log.max_seqs_in_step = std::max(log.max_seqs_in_step, static_cast<int>(plan.seqs.size()));
    auto res = exec.run_step(plan);
    INFO((res.ok() ? std::string() : res.message()));
    REQUIRE(res.ok());
    log.apply(policy.on_step_result(*res));
    ++log.num_steps;
  }
  FAIL("did not finish within max_steps");
}

inline generate_request make_request(uint64_t id, std::vector<int32_t> prompt,
                                     int32_t max_tokens, uint64_t seed = 0, int32_t n = 1) {
  generate_request r;
  r.request_id = id;
  r.prompt_token_ids = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.seed = seed == 0 ? id * 7919 : seed;
  r.n = n;
  return r;
}

// Whether the front door (frontend/request_validation.hpp) lets such a request through to the
// policy, which only asserts these limits: random workloads skip what a client would get a 400 for.
inline bool passes_front_door(const scheduler_config& cfg, const generate_request& r) {
  const auto total = static_cast<int32_t>(r.prompt_token_ids.size()) + r.max_tokens;
  return total <= cfg.max_model_len && r.n <= cfg.max_num_seqs &&
         (total + cfg.block_size - 1) / cfg.block_size <= cfg.num_kv_blocks;
}

inline std::vector<int32_t> make_prompt(int32_t len, int32_t salt, int32_t vocab = 50) {
  std::vector<int32_t> p;
  for (int32_t i = 0; i < len; ++i) p.push_back((i * 7 + salt * 13 + 3) % vocab);
  return p;
}

}  // namespace troupe::actors::testing
