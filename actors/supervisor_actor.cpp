#include "actors/supervisor_actor.hpp"

#include <caf/all.hpp>

#include <cstdio>
#include <deque>

#include "actors/executor_actor.hpp"

namespace troupe::actors {

namespace {

struct supervisor_state {
  // Not an aggregate: CAF would otherwise construct the state from the actor pointer (C++20
  // parenthesized aggregate init makes that look possible).
  supervisor_state() = default;
  scheduler_actor scheduler;
  std::vector<executor_actor> stages;  // [0] gets the plans; nullptr after giving up
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
  st.stats.is_executor_failed = true;
  // The surviving stages have nobody to work for; let them go (and their K/V with them).
  for (auto& s : st.stages) {
    if (s) self->send_exit(s, caf::exit_reason::user_shutdown);
    s = nullptr;
  }
  std::fprintf(stderr, "troupe: executor: %s; giving up\n", why.c_str());
  self->send(st.scheduler, fail_atom::value, why);
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
  st.stages[idx] =
      spawn_executor(self->system(), std::move(exec), st.cfg.detach_executor, next, st.epoch);
  self->monitor(st.stages[idx]);
  // Sent before the scheduler hears of the restart, so it is in stage k-1's mailbox ahead of
  // any plan of the new epoch.
  if (idx > 0 && st.stages[idx - 1])
    self->send(st.stages[idx - 1], executor_atom::value, stage_input_actor{st.stages[idx]});
  return true;
}

supervisor_actor::behavior_type supervisor_fn(supervisor_pointer self, scheduler_actor sched,
                                              supervisor_config cfg, pipeline_factory factory) {
  auto& st = self->state;
  st.scheduler = std::move(sched);
  st.cfg = cfg;
  st.factory = std::move(factory);
  st.stages.resize(static_cast<size_t>(st.factory.num_stages));
  self->monitor(st.scheduler);
  st.epoch = 1;
  // Last stage first: each stage is spawned knowing its next one.
  bool ok = true;
  for (int32_t k = st.factory.num_stages - 1; k >= 0 && ok; --k) ok = start_stage(self, k);
  if (ok) self->send(st.scheduler, executor_atom::value, st.stages[0], st.epoch);
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
    s.stages[static_cast<size_t>(dead)] = nullptr;
    const auto now = self->clock().now();
    while (!s.restart_times.empty() && now - s.restart_times.front() > s.cfg.restart_window)
      s.restart_times.pop_front();
    const std::string reason = self->system().render(dm.reason);
    if (static_cast<int32_t>(s.restart_times.size()) >= s.cfg.max_restarts) {
      give_up(self, "died " + std::to_string(s.restart_times.size() + 1) + " times within the "
                        "restart window (last: stage " + std::to_string(dead) + ", " + reason +
                        ")");
      return;
    }
    s.restart_times.push_back(now);
    ++s.stats.num_executor_restarts_total;
    std::fprintf(stderr, "troupe: executor stage %d died (%s); restarting (%zu/%d)\n", dead,
                 reason.c_str(), s.restart_times.size(), s.cfg.max_restarts);
    ++s.epoch;
    if (start_stage(self, dead)) self->send(s.scheduler, executor_atom::value, s.stages[0], s.epoch);
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
