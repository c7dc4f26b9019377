// Pipeline stages: the scheduler's policy with P step plans in flight (disjoint sequences, no
// starvation, preemption and cancel still right, outputs as if alone), and the actor topology
// with P fake stages chained by messages -- a stage in the middle that crashes is restarted and
// the output is what it would have been.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "actors/supervisor_actor.hpp"
#include "fake_pipeline.hpp"
#include "policy_driver.hpp"

using namespace troupe::actors;
using namespace troupe::actors::testing;

namespace {

constexpr int32_t vocab = 50;

scheduler_config pipeline_config(int32_t num_stages, int32_t num_blocks, int32_t block_size = 4) {
  scheduler_config c;
  c.max_num_batched_tokens = 32;
  c.max_num_seqs = 8;
  c.max_model_len = 512;
  c.block_size = block_size;
  c.num_kv_blocks = num_blocks;
  c.vocab_size = vocab;
  c.max_num_steps_in_flight = num_stages;
  return c;
}

// What the pipelined driver saw besides the client's view.
struct flight_log {
  size_t max_in_flight = 0;
  std::vector<std::vector<uint64_t>> plans;  // seq ids of every plan, in the order scheduled
};

// Drives the policy as the scheduler actor does with P stages: keeps scheduling while a plan
// slot is free, and completes the oldest plan in flight (stages pass plans on in order).
// Checks on every plan: budgets, and no sequence in two plans in flight.
void drive_pipelined(scheduler_policy& policy, step_executor& exec, run_log& log,
                     flight_log& flog, const std::function<void(int)>& before_step = {},
                     int max_rounds = 100000) {
  const auto& cfg = policy.config();
  std::deque<step_plan> flight;
  std::set<uint64_t> busy;
  for (int round = 0; round < max_rounds; ++round) {
    if (before_step) before_step(round);
    while (policy.can_schedule() && policy.has_work()) {
      step_plan plan = policy.schedule();
      if (plan.seqs.empty()) break;
      int32_t num_tokens = 0;
      std::vector<uint64_t> ids;
      for (const auto& s : plan.seqs) {
        num_tokens += static_cast<int32_t>(s.token_ids.size());
        INFO("sequence " << s.seq_id << " scheduled while in flight");
        REQUIRE(busy.insert(s.seq_id).second);
        ids.push_back(s.seq_id);
      }
      REQUIRE(num_tokens == plan.num_scheduled_tokens);
      REQUIRE(num_tokens <= cfg.max_num_batched_tokens);
      REQUIRE(static_cast<int32_t>(plan.seqs.size()) <= cfg.max_num_seqs);
      flog.plans.push_back(ids);
      flight.push_back(std::move(plan));
    }
    REQUIRE(static_cast<int32_t>(flight.size()) <= cfg.max_num_steps_in_flight);
    REQUIRE(policy.num_steps_in_flight() == static_cast<int32_t>(flight.size()));
    flog.max_in_flight = std::max(flog.max_in_flight, flight.size());
    if (flight.empty()) {
      if (!policy.has_work()) return;
      FAIL("work left, nothing in flight and nothing schedulable: a stall");
    }
    step_plan plan = std::move(flight.front());
    flight.pop_front();
    for (const auto& s : plan.seqs) busy.erase(s.seq_id);
    auto res = exec.run_step(plan);
    INFO((res.ok() ? std::string() : res.message()));
    REQUIRE(res.ok());
    log.apply(policy.on_step_result(*res));
    ++log.num_steps;
  }
  FAIL("did not finish within max_rounds");
}

void check_clean_end(const scheduler_policy& policy, run_log& log) {
  for (auto& [key, c] : log.choices) {
    INFO("request " << key.first << " choice " << key.second);
    CHECK(c.num_terminal == 1);
    CHECK(c.num_events_after_terminal == 0);
  }
  for (auto& [rid, n] : log.num_request_done) CHECK(n == 1);
  CHECK(policy.pool().num_used_blocks() == 0);
  CHECK(policy.num_active_requests() == 0);
  CHECK_FALSE(policy.has_step_in_flight());
  CHECK_FALSE(policy.has_work());
}

std::vector<int32_t> alone(uint64_t id, const std::vector<int32_t>& prompt, int32_t max_tokens,
                           int32_t choice = 0) {
  return fake_reference_output(prompt, derive_choice_seed(id * 7919, choice), max_tokens, vocab,
                               {});
}

}  // namespace

TEST_CASE("P plans in flight hold disjoint sequences and outputs are as if alone",
          "[policy][pipeline]") {
  for (int32_t P : {2, 3}) {
    INFO("P = " << P);
    scheduler_policy policy(pipeline_config(P, 256));
    fake_step_executor exec(256, 4, vocab);
    std::map<uint64_t, std::pair<std::vector<int32_t>, int32_t>> specs;
    for (uint64_t id = 1; id <= 12; ++id) {
      auto prompt = make_prompt(static_cast<int32_t>(3 + (id * 5) % 17), static_cast<int32_t>(id));
      const auto max_tokens = static_cast<int32_t>(8 + id % 9);
      REQUIRE_FALSE(policy.add_request(make_request(id, prompt, max_tokens, 0, id % 4 == 0 ? 2 : 1)));
      specs[id] = {prompt, max_tokens};
    }
    run_log log;
    flight_log flog;
    drive_pipelined(policy, exec, log, flog);
    CHECK(flog.max_in_flight == static_cast<size_t>(P));  // the pipe really was filled
    for (auto& [id, s] : specs)
      for (int32_t c = 0; c < (id % 4 == 0 ? 2 : 1); ++c) {
        INFO("request " << id << " choice " << c);
        CHECK(log.tokens(id, c) == alone(id, s.first, s.second, c));
      }
    check_clean_end(policy, log);
  }
}

TEST_CASE("with P plans in flight no running sequence waits more than P plans",
          "[policy][pipeline]") {
  // A budget and seat count that never bind: only the plan slots decide who runs when.
  for (int32_t P : {2, 3}) {
    INFO("P = " << P);
    auto cfg = pipeline_config(P, 512);
    cfg.max_num_batched_tokens = 1024;
    cfg.max_num_seqs = 64;
    scheduler_policy policy(cfg);
    fake_step_executor exec(512, 4, vocab);
    for (uint64_t id = 1; id <= 16; ++id)
      REQUIRE_FALSE(policy.add_request(
          make_request(id, make_prompt(static_cast<int32_t>(4 + id % 7), static_cast<int32_t>(id)),
                       static_cast<int32_t>(10 + id % 5))));
    run_log log;
    flight_log flog;
    drive_pipelined(policy, exec, log, flog);
    CHECK(flog.max_in_flight == static_cast<size_t>(P));
    // Between two of its steps a sequence waits for at most the P - 1 other plans in flight.
    std::map<uint64_t, std::vector<size_t>> appearances;
    for (size_t i = 0; i < flog.plans.size(); ++i)
      for (uint64_t id : flog.plans[i]) appearances[id].push_back(i);
    for (auto& [id, at] : appearances)
      for (size_t k = 1; k < at.size(); ++k) {
        INFO("sequence " << id << " plans " << at[k - 1] << " and " << at[k]);
        CHECK(at[k] - at[k - 1] <= static_cast<size_t>(P));
      }
    // And the plans share the sequences evenly: 16 decodes over P slots.
    size_t biggest = 0;
    for (const auto& p : flog.plans) biggest = std::max(biggest, p.size());
    CHECK(biggest <= static_cast<size_t>((16 + P - 1) / P));
    check_clean_end(policy, log);
  }
}

TEST_CASE("preemption with plans in flight changes nothing a client sees", "[policy][pipeline]") {
  // 10 blocks of 4 tokens; each request needs up to 8 (9 + 20 tokens): most cannot run together,
  // so idle ones are preempted while others are in flight.
  for (int32_t P : {2, 3}) {
    INFO("P = " << P);
    scheduler_policy policy(pipeline_config(P, 10));
    fake_step_executor exec(10, 4, vocab);
    for (uint64_t id = 1; id <= 6; ++id)
      REQUIRE_FALSE(policy.add_request(make_request(id, make_prompt(9, static_cast<int32_t>(id)), 20)));
    run_log log;
    flight_log flog;
    drive_pipelined(policy, exec, log, flog);
    CHECK(policy.stats().num_preemptions_total > 0);
    for (uint64_t id = 1; id <= 6; ++id) {
      INFO("request " << id);
      CHECK(log.tokens(id) == alone(id, make_prompt(9, static_cast<int32_t>(id)), 20));
    }
    check_clean_end(policy, log);
  }
}

TEST_CASE("cancel while the sequence's plan is in flight ends it once and frees its blocks",
          "[policy][pipeline]") {
  scheduler_policy policy(pipeline_config(2, 64));
  fake_step_executor exec(64, 4, vocab);
  for (uint64_t id = 1; id <= 4; ++id)
    REQUIRE_FALSE(policy.add_request(make_request(id, make_prompt(6, static_cast<int32_t>(id)), 30)));
  run_log log;
  flight_log flog;
  bool cancelled_in_flight = false;
  drive_pipelined(policy, exec, log, flog, [&](int round) {
    // At the start of a round the newest plan is still in flight. Cancel request 1 (sequence
    // 1) once that plan holds it, after it has streamed a few tokens.
    if (cancelled_in_flight || round < 6 || policy.num_steps_in_flight() != 1) return;
    const auto& newest = flog.plans.back();
    if (std::find(newest.begin(), newest.end(), uint64_t{1}) == newest.end()) return;
    cancelled_in_flight = true;
    log.apply(policy.cancel_request(1));
  });
  CHECK(cancelled_in_flight);
  CHECK(log.choices[{1, 0}].finish == finish_reason::cancelled);
  const auto& got = log.tokens(1);
  const auto expected = alone(1, make_prompt(6, 1), 30);
  CHECK(got.size() < expected.size());
  CHECK(std::equal(got.begin(), got.end(), expected.begin()));
  for (uint64_t id = 2; id <= 4; ++id)
    CHECK(log.tokens(id) == alone(id, make_prompt(6, static_cast<int32_t>(id)), 30));
  check_clean_end(policy, log);
}

TEST_CASE("random workloads with plans in flight: as if alone, one terminal each, no leaks",
          "[policy][pipeline]") {
  std::mt19937 rng(7);
  for (int round = 0; round < 30; ++round) {
    const auto P = static_cast<int32_t>(2 + rng() % 3);
    auto cfg = pipeline_config(P, static_cast<int32_t>(12 + rng() % 40),
                               static_cast<int32_t>(1 + rng() % 6));
    cfg.max_num_batched_tokens = static_cast<int32_t>(8 + rng() % 40);
    cfg.max_num_seqs = static_cast<int32_t>(2 + rng() % 6);
    cfg.long_prefill_token_threshold = static_cast<int32_t>(rng() % 12);
    cfg.enable_prefix_caching = rng() % 2 == 0;
    cfg.max_model_len = 48;
    INFO("round " << round << " P " << P << " blocks " << cfg.num_kv_blocks << " block_size "
                  << cfg.block_size);
    scheduler_policy policy(cfg);
    fake_step_executor exec(cfg.num_kv_blocks, cfg.block_size, vocab);
    struct spec { std::vector<int32_t> prompt; int32_t max_tokens; int32_t n; bool cancel; };
    std::map<uint64_t, spec> specs;
    uint64_t next_id = 1;
    run_log log;
    flight_log flog;
    std::set<uint64_t> cancelled;
    drive_pipelined(policy, exec, log, flog, [&](int step) {
      if (step < 40 && rng() % 3 == 0) {
        for (int k = 0; k < 3; ++k) {
          auto prompt = make_prompt(static_cast<int32_t>(1 + rng() % 20),
                                    static_cast<int32_t>(rng() % 3));
          auto max_tokens = static_cast<int32_t>(1 + rng() % 20);
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
    for (auto& [id, s] : specs)
      for (int32_t c = 0; c < s.n; ++c) {
        const auto expected = alone(id, s.prompt, s.max_tokens, c);
        const auto& got = log.tokens(id, c);
        INFO("request " << id << " choice " << c);
        if (cancelled.count(id))
          CHECK(std::equal(got.begin(), got.end(), expected.begin()));
        else
          CHECK(got == expected);
      }
    check_clean_end(policy, log);
  }
}

// ---- the actor topology with P fake stages ----

namespace {

struct client_log {
  bool accepted = false;
  std::map<int32_t, choice_log> choices;
  int num_request_done = 0;
};

token_sink_actor::behavior_type client_fn(token_sink_actor::pointer self, scheduler_actor sched,
                                          generate_request req, std::shared_ptr<client_log> log) {
  self->request(sched, caf::infinite, submit_atom::value, std::move(req),
                caf::actor_cast<token_sink_actor>(self))
      .then([=](uint64_t) { log->accepted = true; }, [=](caf::error&) { self->quit(); });
  return {
      [=](token_atom, const token_event& ev) {
        auto& c = log->choices[ev.choice_index];
        if (c.num_terminal > 0) ++c.num_events_after_terminal;
        c.tokens.insert(c.tokens.end(), ev.token_ids.begin(), ev.token_ids.end());
        if (ev.finish != finish_reason::none) {
          ++c.num_terminal;
          c.finish = ev.finish;
        }
        if (ev.is_request_done) {
          ++log->num_request_done;
          self->quit();
        }
      },
  };
}

// P fake stages under CAF's deterministic scheduler. fail_at[k][j]: the j-th incarnation of
// stage k fails at its run number fail_at[k][j].
struct pipeline_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  scheduler_config sched_cfg;
  topology topo;
  std::vector<std::vector<std::shared_ptr<fake_stage_executor>>> stages;  // [stage][incarnation]
  std::vector<std::vector<int32_t>> fail_at;

  pipeline_fixture(int32_t num_stages, std::vector<std::vector<int32_t>> failures = {})
      : sched_cfg(pipeline_config(1, 64)), stages(static_cast<size_t>(num_stages)),
        fail_at(std::move(failures)) {
    fail_at.resize(static_cast<size_t>(num_stages));
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    supervisor_config sup;
    sup.detach_executor = false;
    sup.max_restarts = 5;
    pipeline_factory f;
    f.num_stages = num_stages;
    f.make_stage = [this, num_stages](int32_t k) {
      auto e = std::make_shared<fake_stage_executor>(k, num_stages, sched_cfg.num_kv_blocks,
                                                     sched_cfg.block_size, vocab);
      auto& mine = stages[static_cast<size_t>(k)];
      const auto& fails = fail_at[static_cast<size_t>(k)];
      if (mine.size() < fails.size()) e->fail_at_step = fails[mine.size()];
      mine.push_back(e);
      return e;
    };
    topo = spawn_topology(*sys, sched_cfg, sup, std::move(f));
    sched->run();
  }
  ~pipeline_fixture() {
    caf::anon_send_exit(topo.supervisor, caf::exit_reason::user_shutdown);
    sched->run();
  }
  std::shared_ptr<client_log> submit(generate_request req) {
    auto log = std::make_shared<client_log>();
    sys->spawn(client_fn, topo.scheduler, std::move(req), log);
    return log;
  }
  template <class R, class Handle, class... Ts>
  R ask(const Handle& h, Ts... xs) {
    auto out = std::make_shared<R>();
    sys->spawn(
        [=](caf::event_based_actor* self, Handle target) {
          self->request(target, caf::infinite, xs...).then([=](R& r) { *out = std::move(r); });
        },
        h);
    sched->run();
    return *out;
  }
};

std::vector<generate_request> workload() {
  std::vector<generate_request> r;
  for (uint64_t id = 1; id <= 6; ++id)
    r.push_back(make_request(id, make_prompt(static_cast<int32_t>(5 + 3 * id),
                                             static_cast<int32_t>(id)),
                             12, 0, id == 4 ? 2 : 1));
  return r;
}

using outputs = std::map<uint64_t, std::map<int32_t, std::vector<int32_t>>>;

outputs run_workload(pipeline_fixture& f) {
  std::vector<std::shared_ptr<client_log>> logs;
  for (auto& r : workload()) logs.push_back(f.submit(r));
  f.sched->run();
  outputs out;
  for (size_t i = 0; i < logs.size(); ++i) {
    INFO("request " << i + 1);
    CHECK(logs[i]->accepted);
    CHECK(logs[i]->num_request_done == 1);
    for (auto& [c, ch] : logs[i]->choices) {
      CHECK(ch.num_terminal == 1);
      CHECK(ch.num_events_after_terminal == 0);
      out[i + 1][c] = ch.tokens;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("a pipeline of stages gives the single stage's output", "[actors][pipeline]") {
  outputs single, three;
  {
    pipeline_fixture f(1);
    single = run_workload(f);
  }
  {
    pipeline_fixture f(3);
    three = run_workload(f);
    // Every stage saw every plan, in the scheduler's order.
    for (auto& st : f.stages) {
      REQUIRE(st.size() == 1);
      CHECK(!st[0]->step_ids.empty());
      CHECK(std::is_sorted(st[0]->step_ids.begin(), st[0]->step_ids.end()));
      CHECK(st[0]->step_ids == f.stages[0][0]->step_ids);
    }
    CHECK(f.ask<scheduler_stats>(f.topo.scheduler, stats_atom::value).num_kv_blocks_used == 0);
  }
  CHECK(three == single);
  for (auto& r : workload())
    CHECK(single[r.request_id][0] == alone(r.request_id, r.prompt_token_ids, r.max_tokens));
}

TEST_CASE("a middle stage that crashes is restarted and the output is unchanged",
          "[actors][pipeline][supervisor]") {
  outputs clean, crashed;
  {
    pipeline_fixture f(3);
    clean = run_workload(f);
  }
  {
    // Stage 1 dies at its 5th plan, its replacement at its 9th; stages 0 and 2 live on. (The
    // second crash comes after the replay: one inside it would hit a suspect alone in its
    // plan, which the quarantine takes for a poison request -- scheduler_policy.hpp.)
    pipeline_fixture f(3, {{}, {4, 8}, {}});
    crashed = run_workload(f);
    CHECK(f.stages[0].size() == 1);
    CHECK(f.stages[1].size() == 3);
    CHECK(f.stages[2].size() == 1);
    CHECK(f.ask<supervisor_stats>(f.topo.supervisor, stats_atom::value)
              .num_executor_restarts_total == 2);
    auto st = f.ask<scheduler_stats>(f.topo.scheduler, stats_atom::value);
    CHECK(st.num_executor_replays_total == 2);
    CHECK(st.num_kv_blocks_used == 0);
    CHECK(st.num_active_requests == 0);
  }
  CHECK(crashed == clean);
  CHECK(clean[1][0].size() == 12);
}

TEST_CASE("the first and the last stage may crash too", "[actors][pipeline][supervisor]") {
  outputs clean;
  {
    pipeline_fixture f(2);
    clean = run_workload(f);
  }
  pipeline_fixture f(2, {{3}, {14}});  // stage 1's crash after the replay of stage 0's
  CHECK(run_workload(f) == clean);
  CHECK(f.ask<supervisor_stats>(f.topo.supervisor, stats_atom::value)
            .num_executor_restarts_total == 2);
}
