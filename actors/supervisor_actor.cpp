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
  executor_actor executor;
  supervisor_config cfg;
  executor_factory make_executor;
  std::deque<caf::actor_clock::time_point> restart_times;  // within the window
  supervisor_stats stats;
  static inline const char* name = "supervisor";
};

using supervisor_pointer = supervisor_actor::stateful_pointer<supervisor_state>;

void give_up(supervisor_pointer self, const std::string& why) {
  auto& st = self->state;
  st.stats.is_executor_failed = true;
  st.executor = nullptr;
  std::fprintf(stderr, "troupe: executor: %s; giving up\n", why.c_str());
  self->send(st.scheduler, fail_atom::value, why);
}

void start_executor(supervisor_pointer self) {
  auto& st = self->state;
  auto exec = st.make_executor ? st.make_executor() : nullptr;
  if (!exec) {
    give_up(self, "could not create a step executor");
    return;
  }
  st.executor = spawn_executor(self->system(), std::move(exec), st.cfg.detach_executor);
  self->monitor(st.executor);
  self->send(st.scheduler, executor_atom::value, st.executor);
}

supervisor_actor::behavior_type supervisor_fn(supervisor_pointer self, scheduler_actor sched,
                                              supervisor_config cfg, executor_factory make) {
  auto& st = self->state;
  st.scheduler = std::move(sched);
  st.cfg = cfg;
  st.make_executor = std::move(make);
  self->monitor(st.scheduler);
  start_executor(self);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& s = self->state;
    if (dm.source == s.scheduler.address()) {
      self->quit(dm.reason);
      return;
    }
    if (!s.executor || dm.source != s.executor.address()) return;
    const auto now = self->clock().now();
    while (!s.restart_times.empty() && now - s.restart_times.front() > s.cfg.restart_window)
      s.restart_times.pop_front();
    const std::string reason = self->system().render(dm.reason);
    if (static_cast<int32_t>(s.restart_times.size()) >= s.cfg.max_restarts) {
      give_up(self, "died " + std::to_string(s.restart_times.size() + 1) + " times within the "
                        "restart window (last: " + reason + ")");
      return;
    }
    s.restart_times.push_back(now);
    ++s.stats.num_executor_restarts_total;
    std::fprintf(stderr, "troupe: executor died (%s); restarting (%zu/%d)\n", reason.c_str(),
                 s.restart_times.size(), s.cfg.max_restarts);
    start_executor(self);
  });
  self->set_exit_handler([=](caf::exit_msg& em) {
    auto& s = self->state;
    if (s.executor) self->send_exit(s.executor, em.reason);
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
                        supervisor_config sup_cfg, executor_factory make_executor) {
  topology t;
  t.scheduler = spawn_scheduler(sys, std::move(sched_cfg));
  t.supervisor = sys.spawn(supervisor_fn, t.scheduler, sup_cfg, std::move(make_executor));
  return t;
}

}  // namespace troupe::actors
