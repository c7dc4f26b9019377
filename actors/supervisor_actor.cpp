#include "actors/supervisor_actor.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <deque>

#include "actors/executor_actor.hpp"
#include "logging/log.hpp"

namespace troupe::actors {

namespace {

struct supervisor_state {
  // Not an aggregate: CAF would otherwise construct the state from the actor pointer (C++20
  // parenthesized aggregate init makes that look possible).
  supervisor_state() = default;
  scheduler_actor scheduler;
  std::vector<executor_actor> stages;  // [0] gets the plans; nullptr after giving up
  std::vector<std::shared_ptr<step_executor>> execs;     // what each stage runs (abandon())
  std::vector<std::shared_ptr<stage_heartbeat>> beats;   // each stage's step start
  uint64_t epoch = 0;                  // (re)starts so far; stamped on plans by the scheduler
  supervisor_config cfg;
  pipeline_factory factory;
  std::deque<caf::actor_clock::time_point> restart_times;  // within the window
  supervisor_stats stats;
  static inline const char* name = "supervisor";
};

using supervisor_pointer = supervisor_actor::stateful_pointer<supervisor_state>;

void give_up(supervisor_pointer self, const std::string& why) {
  auto& st = self->state;
  if (st.stats.is_executor_failed) return;
  st.stats.is_executor_failed = true;
  // The surviving stages have nobody to work for; let them go (and their K/V with them).
  for (auto& s : st.stages) {
    if (s) self->send_exit(s, caf::exit_reason::user_shutdown);
    s = nullptr;
  }
  logging::error("supervisor.give_up", {{"reason", why}});
  self->send(st.scheduler, fail_atom::value, why);
  if (st.cfg.on_give_up) st.cfg.on_give_up(why);
}

// Spawns stage k (next = stage k+1 as it is now) and points stage k-1 at it. False (after
// giving up) when the factory fails.
bool start_stage(supervisor_pointer self, int32_t k) {
  auto& st = self->state;
  auto exec = st.factory.make_stage ? st.factory.make_stage(k) : nullptr;
  if (!exec) {
    give_up(self, "could not create the step executor of stage " + std::to_string(k));
    return false;
  }
  const auto idx = static_cast<size_t>(k);
  stage_input_actor next;
  if (idx + 1 < st.stages.size()) next = st.stages[idx + 1];
  st.execs[idx] = exec;
  st.beats[idx] = std::make_shared<stage_heartbeat>();
  st.stages[idx] = spawn_executor(self->system(), std::move(exec), st.cfg.detach_executor, next,
                                  st.epoch, st.beats[idx]);
  self->monitor(st.stages[idx]);
  // Sent before the scheduler hears of the restart, so it is in stage k-1's mailbox ahead of
  // any plan of the new epoch.
  if (idx > 0 && st.stages[idx - 1])
    self->send(st.stages[idx - 1], executor_atom::value, stage_input_actor{st.stages[idx]});
  return true;
}

// Stage `dead` is gone (died, or abandoned as hung): restart it within the intensity limit,
// bump the epoch and hand the scheduler stage 0 (it replays), or give up.
void on_stage_lost(supervisor_pointer self, int32_t dead, const std::string& cause) {
  auto& s = self->state;
  s.stages[static_cast<size_t>(dead)] = nullptr;
  s.execs[static_cast<size_t>(dead)] = nullptr;
  s.beats[static_cast<size_t>(dead)] = nullptr;
  const auto now = self->clock().now();
  while (!s.restart_times.empty() && now - s.restart_times.front() > s.cfg.restart_window)
    s.restart_times.pop_front();
  if (static_cast<int32_t>(s.restart_times.size()) >= s.cfg.max_restarts) {
    give_up(self, "stages failed " + std::to_string(s.restart_times.size() + 1) +
                      " times within the restart window of " +
                      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                         s.cfg.restart_window)
                                         .count()) +
                      " s (max_restarts " + std::to_string(s.cfg.max_restarts) +
                      "; last: stage " + std::to_string(dead) + ", " + cause + ")");
    return;
  }
  s.restart_times.push_back(now);
  ++s.stats.num_executor_restarts_total;
  ++s.epoch;
  if (!start_stage(self, dead)) return;
  // Logged once the fresh stage exists: the line's time minus the fault's is the restart time.
  logging::warn("stage.restart", {{"stage", dead},
                                  {"cause", cause},
                                  {"restarts_in_window", s.restart_times.size()},
                                  {"max_restarts", s.cfg.max_restarts},
                                  {"epoch", s.epoch}});
  self->send(s.scheduler, executor_atom::value, s.stages[0], s.epoch);
}

// The step deadline: a stage busy in one step for longer than step_timeout is hung. It cannot
// read messages, so it is abandoned (its late answer is stale: the epoch moves on) and killed
// once it returns; a fresh stage takes its place.
void check_step_deadline(supervisor_pointer self) {
  auto& s = self->state;
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  const int64_t limit = s.cfg.step_timeout.count();
  for (size_t k = 0; k < s.stages.size(); ++k) {
    if (!s.stages[k] || !s.beats[k]) continue;
    const int64_t since = s.beats[k]->busy_since_ns.load(std::memory_order_relaxed);
    if (since == 0 || now - since <= limit) continue;
    const auto busy_ms = (now - since) / 1'000'000;
    logging::error("stage.hung", {{"stage", k},
                                  {"busy_ms", busy_ms},
                                  {"step_timeout_ms", limit / 1'000'000}});
    self->demonitor(s.stages[k].address());
    s.execs[k]->abandon();
    self->send_exit(s.stages[k], caf::exit_reason::kill);
    on_stage_lost(self, static_cast<int32_t>(k),
                  "step deadline passed (busy " + std::to_string(busy_ms) + " ms)");
    return;  // one per check: the restart changed the pipeline
  }
}

caf::timespan watchdog_period(const supervisor_config& cfg) {
  return std::max<caf::timespan>(cfg.step_timeout / 4, std::chrono::milliseconds(10));
}

supervisor_actor::behavior_type supervisor_fn(supervisor_pointer self, scheduler_actor sched,
                                              supervisor_config cfg, pipeline_factory factory) {
  auto& st = self->state;
  st.scheduler = std::move(sched);
  st.cfg = cfg;
  st.factory = std::move(factory);
  st.stages.resize(static_cast<size_t>(st.factory.num_stages));
  st.execs.resize(st.stages.size());
  st.beats.resize(st.stages.size());
  self->monitor(st.scheduler);
  st.epoch = 1;
  // Last stage first: each stage is spawned knowing its next one.
  bool ok = true;
  for (int32_t k = st.factory.num_stages - 1; k >= 0 && ok; --k) ok = start_stage(self, k);
  if (ok) self->send(st.scheduler, executor_atom::value, st.stages[0], st.epoch);
  if (ok && st.cfg.step_timeout.count() > 0)
    self->delayed_send(self, watchdog_period(st.cfg), watchdog_atom::value);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& s = self->state;
    if (dm.source == s.scheduler.address()) {
      self->quit(dm.reason);
      return;
    }
    int32_t dead = -1;
    for (size_t k = 0; k < s.stages.size(); ++k)
      if (s.stages[k] && dm.source == s.stages[k].address()) dead = static_cast<int32_t>(k);
    if (dead < 0) return;
    on_stage_lost(self, dead, "died: " + self->system().render(dm.reason));
  });
  self->set_exit_handler([=](caf::exit_msg& em) {
    auto& s = self->state;
    for (auto& stage : s.stages)
      if (stage) self->send_exit(stage, em.reason);
    self->send_exit(s.scheduler, em.reason);
    self->quit(em.reason);
  });
  return {
      [=](topology_atom) { return self->state.scheduler; },
      [=](stats_atom) { return self->state.stats; },
      [=](watchdog_atom) {
        if (self->state.stats.is_executor_failed) return;
        check_step_deadline(self);
        self->delayed_send(self, watchdog_period(self->state.cfg), watchdog_atom::value);
      },
  };
}

}  // namespace

topology spawn_topology(caf::actor_system& sys, scheduler_config sched_cfg,
                        supervisor_config sup_cfg, pipeline_factory stages) {
  TROUPE_ASSERT(stages.num_stages >= 1);
  sched_cfg.max_num_steps_in_flight = stages.num_stages;
  topology t;
  t.scheduler = spawn_scheduler(sys, std::move(sched_cfg));
  t.supervisor = sys.spawn(supervisor_fn, t.scheduler, sup_cfg, std::move(stages));
  return t;
}

topology spawn_topology(caf::actor_system& sys, scheduler_config sched_cfg,
                        supervisor_config sup_cfg, executor_factory make_executor) {
  pipeline_factory one;
  one.num_stages = 1;
  one.make_stage = [make = std::move(make_executor)](int32_t) {
    return make ? make() : nullptr;
  };
  return spawn_topology(sys, std::move(sched_cfg), sup_cfg, std::move(one));
}

}  // namespace troupe::actors
