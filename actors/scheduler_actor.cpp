#include "actors/scheduler_actor.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <map>
#include <optional>

#include "actors/scheduler_policy.hpp"
#include "actors/step_timers.hpp"

namespace troupe::actors {

namespace {

struct scheduler_state {
  std::optional<scheduler_policy> policy;
  executor_actor executor;  // stage 0
  uint64_t epoch = 0;        // stamped on every plan (executor_atom)
  bool had_executor = false;
  bool draining = false;
  bool failed = false;
  std::string fail_reason;
  std::map<uint64_t, token_sink_actor> sinks;  // active request id -> its requester
  std::vector<caf::typed_response_promise<caf::ok_atom>> drain_waiters;
  step_timers timers;  // per-step histograms for /metrics
  // The last step result, new stage, or arrival of work at an idle scheduler (for /ready).
  std::chrono::steady_clock::time_point last_progress = std::chrono::steady_clock::now();
  static inline const char* name = "scheduler";
};

using scheduler_pointer = scheduler_actor::stateful_pointer<scheduler_state>;

void dispatch(scheduler_pointer self, std::vector<token_event> events) {
  auto& st = self->state;
  for (auto& ev : events) {
    auto it = st.sinks.find(ev.request_id);
    if (it == st.sinks.end()) continue;
    const bool done = ev.is_request_done;
    self->send(it->second, token_atom::value, std::move(ev));
    if (done) st.sinks.erase(it);
  }
  if (st.draining && st.policy->num_active_requests() == 0) {
    for (auto& rp : st.drain_waiters) rp.deliver(caf::ok_atom::value);
    st.drain_waiters.clear();
  }
}

// Sends plans while a plan slot is free (one per pipeline stage) and there is work. Called
// after anything that may create work or free room.
void kick(scheduler_pointer self) {
  auto& st = self->state;
  using clock = std::chrono::steady_clock;
  auto seconds_since = [](clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
  };
  while (st.executor && st.policy->can_schedule() && st.policy->has_work()) {
    const auto t_build = clock::now();
    step_plan plan = st.policy->schedule();
    if (plan.seqs.empty()) return;  // every idle sequence waits for blocks or a plan's result
    const auto t_sent = clock::now();
    st.timers.on_plan(std::chrono::duration<double>(t_sent - t_build).count(),
                      plan.num_scheduled_tokens);
    plan.epoch = st.epoch;
    self->request(st.executor, caf::infinite, step_atom::value, std::move(plan))
        .then(
            [=](step_result& r) {
              self->state.last_progress = clock::now();
              self->state.timers.on_result(seconds_since(t_sent), r);
              dispatch(self, self->state.policy->on_step_result(r));
              kick(self);
            },
            [=](caf::error&) {
              // A stage died with the step, or refused it as stale (made before a restart).
              // The K/V is gone; the supervisor sends the new stage 0 (executor_atom -> replay)
              // or gives up (fail_atom). Nothing to do now.
            });
  }
}

scheduler_actor::behavior_type scheduler_fn(scheduler_pointer self, scheduler_config cfg) {
  self->state.policy.emplace(std::move(cfg));
  self->set_down_handler([=](caf::down_msg& dm) {
    // A requester died: nobody reads its events any more, so stop computing for it.
    std::vector<uint64_t> orphans;
    for (const auto& [id, sink] : self->state.sinks)
      if (sink.address() == dm.source) orphans.push_back(id);
    for (uint64_t id : orphans) {
      self->state.sinks.erase(id);
      dispatch(self, self->state.policy->cancel_request(id));
    }
    kick(self);
  });
  self->set_exit_handler([=](caf::exit_msg& em) {
    // Invariant 1 holds even when the topology is torn down: every requester hears the end.
    dispatch(self, self->state.policy->fail_all("the server is shutting down"));
    self->quit(em.reason);
  });
  return {
      [=](submit_atom, generate_request& req,
          token_sink_actor& sink) -> caf::result<uint64_t> {
        auto& st = self->state;
        if (st.failed)
          return make_error(submit_error::unavailable, "no model executor: " + st.fail_reason);
        if (st.draining) return make_error(submit_error::shutting_down, "the server is shutting down");
        if (!sink) return make_error(submit_error::invalid_request, "no requester to stream to");
        const uint64_t id = req.request_id;
        if (!st.policy->has_work()) st.last_progress = std::chrono::steady_clock::now();
        if (auto refused = st.policy->add_request(std::move(req)))
          return make_error(refused->code, std::move(refused->message));
        st.sinks.emplace(id, sink);
        self->monitor(sink);
        kick(self);
        return id;
      },
      [=](cancel_atom, uint64_t request_id) {
        dispatch(self, self->state.policy->cancel_request(request_id));
        kick(self);
      },
      [=](stats_atom) {
        auto& st = self->state;
        scheduler_stats s = st.policy->stats();
        s.step_timers = st.timers.snapshot();
        s.has_executor = static_cast<bool>(st.executor);
        s.is_failed = st.failed;
        s.is_draining = st.draining;
        if (st.policy->has_work())
          s.seconds_without_progress =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - st.last_progress)
                  .count();
        return s;
      },
      [=](drain_atom) -> caf::result<caf::ok_atom> {
        auto& st = self->state;
        st.draining = true;
        if (st.policy->num_active_requests() == 0) return caf::ok_atom::value;
        auto rp = self->make_response_promise<caf::ok_atom>();
        st.drain_waiters.push_back(rp);
        return rp;
      },
      [=](abort_atom) { dispatch(self, self->state.policy->abort_all()); },
      [=](executor_atom, executor_actor& exec, uint64_t epoch) {
        auto& st = self->state;
        // A second executor means a stage died: whatever it held is lost, recompute it.
        // The requests of the plan that failed are quarantined; a poison one ends here.
        if (st.had_executor) dispatch(self, st.policy->replay_all());
        st.last_progress = std::chrono::steady_clock::now();
        st.executor = std::move(exec);
        st.epoch = epoch;
        st.had_executor = true;
        kick(self);
      },
      [=](fail_atom, std::string& reason) {
        auto& st = self->state;
        st.failed = true;
        st.fail_reason = reason;
        st.executor = nullptr;
        dispatch(self, st.policy->fail_all("no model executor: " + reason));
      },
  };
}

}  // namespace

scheduler_actor spawn_scheduler(caf::actor_system& sys, scheduler_config cfg) {
  return sys.spawn(scheduler_fn, std::move(cfg));
}

}  // namespace troupe::actors
