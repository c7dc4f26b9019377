// The actor topology under CAF's deterministic test scheduler (no threads, no sleeps):
// submit -> token events -> exactly one terminal event; cancel; a requester that dies; drain;
// an executor that crashes mid-run is restarted and the output is what it would have been.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <map>
#include <memory>

#include "actors/supervisor_actor.hpp"
#include "fake_model.hpp"
#include "policy_driver.hpp"

using namespace troupe::actors;
using namespace troupe::actors::testing;

namespace {

constexpr int32_t vocab = 50;

// What one simulated request actor saw.
struct client_log {
  bool accepted = false;
  caf::error refusal;
  std::map<int32_t, choice_log> choices;
  int num_request_done = 0;
};

// A stand-in for net/'s request actor: submits once, records every event, quits when the
// scheduler says the request is done (or the submit was refused).
token_sink_actor::behavior_type client_fn(token_sink_actor::pointer self, scheduler_actor sched,
                                          generate_request req, std::shared_ptr<client_log> log) {
  self->request(sched, caf::infinite, submit_atom::value, std::move(req),
                caf::actor_cast<token_sink_actor>(self))
      .then([=](uint64_t) { log->accepted = true; },
            [=](caf::error& e) {
              log->refusal = e;
              self->quit();
            });
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

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  scheduler_config sched_cfg;
  topology topo;
  std::vector<std::shared_ptr<fake_step_executor>> executors;  // one per (re)start
  std::vector<int32_t> fail_at_steps;  // executor k fails at this step (-1: never)

  explicit fixture(scheduler_config sc, std::vector<int32_t> failures = {},
                   int32_t max_restarts = 3)
      : sched_cfg(std::move(sc)), fail_at_steps(std::move(failures)) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    supervisor_config sup;
    sup.detach_executor = false;
    sup.max_restarts = max_restarts;
    topo = spawn_topology(*sys, sched_cfg, sup, [this] {
      auto e = std::make_shared<fake_step_executor>(sched_cfg.num_kv_blocks, sched_cfg.block_size,
                                                    vocab);
      if (executors.size() < fail_at_steps.size()) e->fail_at_step = fail_at_steps[executors.size()];
      executors.push_back(e);
      return e;
    });
    sched->run();
  }
  ~fixture() {
    caf::anon_send_exit(topo.supervisor, caf::exit_reason::user_shutdown);
    sched->run();
  }

  std::shared_ptr<client_log> submit(generate_request req) {
    auto log = std::make_shared<client_log>();
    sys->spawn(client_fn, topo.scheduler, std::move(req), log);
    return log;
  }

  // Asks `h` and runs the system until the answer is there.
  template <class R, class Handle, class... Ts>
  R ask(const Handle& h, Ts... xs) {
    auto out = std::make_shared<R>();
    // The handle goes in as a spawn argument: CAF 0.17 spawning a function without arguments
    // binds a reference through a null shared_ptr (UBSan reports it).
    sys->spawn(
        [=](caf::event_based_actor* self, Handle target) {
          self->request(target, caf::infinite, xs...).then([=](R& r) { *out = std::move(r); });
        },
        h);
    sched->run();
    return *out;
  }
  scheduler_stats stats() { return ask<scheduler_stats>(topo.scheduler, stats_atom::value); }
};

scheduler_config test_config(int32_t num_blocks = 64) {
  scheduler_config c;
  c.max_num_batched_tokens = 32;
  c.max_num_seqs = 8;
  c.max_model_len = 256;
  c.block_size = 4;
  c.num_kv_blocks = num_blocks;
  c.vocab_size = vocab;
  return c;
}

void check_ended_once(const client_log& log, int32_t n) {
  CHECK(log.accepted);
  CHECK(log.num_request_done == 1);
  CHECK(static_cast<int32_t>(log.choices.size()) == n);
  for (const auto& [c, ch] : log.choices) {
    INFO("choice " << c);
    CHECK(ch.num_terminal == 1);
    CHECK(ch.num_events_after_terminal == 0);
  }
}

}  // namespace

TEST_CASE("submit streams tokens and ends each choice exactly once", "[actors][scheduler]") {
  fixture f(test_config());
  auto a = f.submit(make_request(1, make_prompt(9, 1), 7));
  auto b = f.submit(make_request(2, make_prompt(14, 2), 5, 77, 2));
  f.sched->run();
  check_ended_once(*a, 1);
  check_ended_once(*b, 2);
  CHECK(a->choices[0].tokens == fake_reference_output(make_prompt(9, 1), 7919, 7, vocab, {}));
  CHECK(a->choices[0].finish == finish_reason::length);
  for (int32_t c = 0; c < 2; ++c)
    CHECK(b->choices[c].tokens ==
          fake_reference_output(make_prompt(14, 2), derive_choice_seed(77, c), 5, vocab, {}));
  auto st = f.stats();
  CHECK(st.num_kv_blocks_used == 0);
  CHECK(st.num_active_requests == 0);
  CHECK(st.num_generation_tokens_total == 7 + 2 * 5);
}

TEST_CASE("per-step timers count every step", "[actors][scheduler][metrics]") {
  fixture f(test_config());
  auto a = f.submit(make_request(1, make_prompt(9, 1), 7));
  auto b = f.submit(make_request(2, make_prompt(14, 2), 5));
  f.sched->run();
  check_ended_once(*a, 1);
  check_ended_once(*b, 1);
  auto st = f.stats();
  const auto& t = st.step_timers;
  REQUIRE(st.num_steps_total > 0);
  CHECK(t.plan_build_s.count == st.num_steps_total);
  CHECK(t.round_trip_s.count == st.num_steps_total);
  CHECK(t.num_tokens.count == st.num_steps_total);
  CHECK(t.plan_build_s.counts.size() == t.plan_build_s.bounds.size() + 1);
  // Every prompt token once, every output token but the last fed back: 9 + 14 + 6 + 4.
  CHECK(t.num_tokens.sum == 9 + 14 + 6 + 4);
  // The fake executor measures nothing: no forward or sampling observations are invented.
  CHECK(t.forward_s.empty());
  CHECK(t.sample_s.count == 0);
}

TEST_CASE("a refused submit is an error value with its code and no events",
          "[actors][scheduler]") {
  fixture f(test_config());
  auto good = f.submit(make_request(1, make_prompt(8, 1), 4));
  auto bad = f.submit(make_request(1, make_prompt(8, 2), 4));  // the same id, still active
  f.sched->run();
  CHECK_FALSE(bad->accepted);
  CHECK(to_submit_error(bad->refusal) == submit_error::invalid_request);
  CHECK(submit_error_message(bad->refusal).find("already active") != std::string::npos);
  CHECK(bad->choices.empty());
  CHECK(good->accepted);
}

TEST_CASE("cancel mid-stream ends the request once and frees its blocks",
          "[actors][scheduler]") {
  fixture f(test_config());
  auto a = f.submit(make_request(1, make_prompt(9, 1), 100));
  for (int i = 0; i < 12 && a->choices[0].tokens.size() < 3; ++i) f.sched->run_once();
  REQUIRE(!a->choices[0].tokens.empty());
  REQUIRE(a->choices[0].num_terminal == 0);
  caf::anon_send(f.topo.scheduler, cancel_atom::value, uint64_t{1});
  f.sched->run();
  check_ended_once(*a, 1);
  CHECK(a->choices[0].finish == finish_reason::cancelled);
  CHECK(a->choices[0].tokens.size() < 100);
  CHECK(f.stats().num_kv_blocks_used == 0);
}

TEST_CASE("a requester that dies has its request cancelled", "[actors][scheduler]") {
  fixture f(test_config());
  auto log = std::make_shared<client_log>();
  auto client = f.sys->spawn(client_fn, f.topo.scheduler, make_request(1, make_prompt(9, 1), 100),
                             log);
  for (int i = 0; i < 10; ++i) f.sched->run_once();
  caf::anon_send_exit(client, caf::exit_reason::kill);
  f.sched->run();
  auto st = f.stats();
  CHECK(st.num_active_requests == 0);
  CHECK(st.num_kv_blocks_used == 0);
  CHECK(log->choices[0].tokens.size() < 100);
}

TEST_CASE("an executor crash mid-run is invisible in the output", "[actors][supervisor]") {
  auto requests = [] {
    std::vector<generate_request> r;
    for (uint64_t id = 1; id <= 4; ++id)
      r.push_back(make_request(id, make_prompt(static_cast<int32_t>(5 + 3 * id),
                                               static_cast<int32_t>(id)),
                               12, 0, id == 4 ? 2 : 1));
    return r;
  };
  std::map<uint64_t, std::map<int32_t, std::vector<int32_t>>> clean, crashed;
  {
    fixture f(test_config());
    std::vector<std::shared_ptr<client_log>> logs;
    for (auto& r : requests()) logs.push_back(f.submit(r));
    f.sched->run();
    for (size_t i = 0; i < logs.size(); ++i)
      for (auto& [c, ch] : logs[i]->choices) clean[i + 1][c] = ch.tokens;
  }
  {
    // The first executor dies at step 5, the second at 8: after the replay (a crash inside it
    // would hit a suspect alone in its plan, which the quarantine takes for a poison request).
    fixture f(test_config(), {5, 8});
    std::vector<std::shared_ptr<client_log>> logs;
    for (auto& r : requests()) logs.push_back(f.submit(r));
    f.sched->run();
    CHECK(f.executors.size() == 3);
    CHECK(f.ask<supervisor_stats>(f.topo.supervisor, stats_atom::value)
              .num_executor_restarts_total == 2);
    auto st = f.stats();
    CHECK(st.num_executor_replays_total == 2);
    CHECK(st.num_kv_blocks_used == 0);
    for (size_t i = 0; i < logs.size(); ++i) {
      check_ended_once(*logs[i], i == 3 ? 2 : 1);
      for (auto& [c, ch] : logs[i]->choices) crashed[i + 1][c] = ch.tokens;
    }
  }
  CHECK(crashed == clean);
  CHECK(clean[1][0].size() == 12);
}

TEST_CASE("past the restart limit every request ends with an error", "[actors][supervisor]") {
  fixture f(test_config(), {0, 0, 0}, /*max_restarts=*/2);
  // Every executor dies at once: the first request fails twice, the second time alone, and
  // ends as poison (two restarts); the next one exceeds the restart limit.
  auto a = f.submit(make_request(1, make_prompt(9, 1), 10));
  f.sched->run();
  check_ended_once(*a, 1);
  CHECK(a->choices[0].finish == finish_reason::error);
  CHECK_FALSE(f.ask<supervisor_stats>(f.topo.supervisor, stats_atom::value).is_executor_failed);
  CHECK(f.stats().num_poison_requests_total == 1);
  auto b = f.submit(make_request(3, make_prompt(9, 2), 10));
  f.sched->run();
  check_ended_once(*b, 1);
  CHECK(b->choices[0].finish == finish_reason::error);
  CHECK(f.ask<supervisor_stats>(f.topo.supervisor, stats_atom::value).is_executor_failed);
  auto late = f.submit(make_request(2, make_prompt(9, 1), 10));
  f.sched->run();
  CHECK(to_submit_error(late->refusal) == submit_error::unavailable);
}

TEST_CASE("drain waits for active requests and refuses new ones", "[actors][scheduler]") {
  fixture f(test_config());
  auto a = f.submit(make_request(1, make_prompt(9, 1), 6));
  f.sched->run_once();
  f.sched->run_once();
  auto drained = std::make_shared<bool>(false);
  f.sys->spawn(
      [=](caf::event_based_actor* self, scheduler_actor s) {
        self->request(s, caf::infinite, drain_atom::value).then([=](caf::ok_atom) {
          *drained = true;
        });
      },
      f.topo.scheduler);
  auto late = f.submit(make_request(2, make_prompt(9, 1), 6));
  f.sched->run();
  CHECK(*drained);
  check_ended_once(*a, 1);
  CHECK(a->choices[0].tokens.size() == 6);
  CHECK(to_submit_error(late->refusal) == submit_error::shutting_down);
}

TEST_CASE("shutting the topology down ends active requests with an error",
          "[actors][supervisor]") {
  auto a = std::make_shared<client_log>();
  {
    fixture f(test_config());
    a = f.submit(make_request(1, make_prompt(9, 1), 100));
    for (int i = 0; i < 8; ++i) f.sched->run_once();
  }  // ~fixture sends the exit
  check_ended_once(*a, 1);
  CHECK(a->choices[0].finish == finish_reason::error);
}
