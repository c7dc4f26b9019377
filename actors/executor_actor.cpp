#include "actors/executor_actor.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <string>

namespace troupe::actors {

namespace {

struct executor_state {
  std::shared_ptr<step_executor> exec;
  stage_input_actor next;
  uint64_t epoch = 0;
  std::shared_ptr<stage_heartbeat> heartbeat;  // may be null
  static inline const char* name = "executor";
};

using executor_pointer = executor_actor::stateful_pointer<executor_state>;

caf::result<step_result> run(executor_pointer self, step_plan& plan, const hidden_states& in) {
  auto& st = self->state;
  if (plan.epoch < st.epoch)
    return caf::make_error(caf::sec::runtime_error,
                           "stale step plan " + std::to_string(plan.step_id) + " of epoch " +
                               std::to_string(plan.epoch) + " (stage is at " +
                               std::to_string(st.epoch) + ")");
  st.epoch = plan.epoch;
  if (st.heartbeat)
    st.heartbeat->busy_since_ns.store(
        std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  auto r = st.exec->run_stage(plan, in);
  if (st.heartbeat) st.heartbeat->busy_since_ns.store(0, std::memory_order_relaxed);
  auto die = [&](const std::string& why) -> caf::result<step_result> {
    // The device state (K/V pages) can no longer be trusted: die, and let the supervisor start
    // a fresh executor while the scheduler replays.
    auto err = caf::make_error(caf::sec::runtime_error, why);
    self->quit(err);
    return err;
  };
  if (!r) return die(r.message());
  if (r->is_final) return std::move(r->result);
  if (!st.next) return die("a non-last stage has no next stage");
  // The next stage answers the scheduler directly.
  return self->delegate(st.next, step_atom::value, std::move(plan), std::move(r->hidden));
}

executor_actor::behavior_type executor_fn(executor_pointer self,
                                          std::shared_ptr<step_executor> exec,
                                          stage_input_actor next, uint64_t epoch,
                                          std::shared_ptr<stage_heartbeat> heartbeat) {
  self->state.exec = std::move(exec);
  self->state.heartbeat = std::move(heartbeat);
  self->state.next = std::move(next);
  self->state.epoch = epoch;
  return {
      [=](step_atom, step_plan& plan) -> caf::result<step_result> {
        return run(self, plan, hidden_states{});
      },
      [=](step_atom, step_plan& plan, const hidden_states& in) -> caf::result<step_result> {
        return run(self, plan, in);
      },
      [=](executor_atom, stage_input_actor& new_next) { self->state.next = std::move(new_next); },
  };
}

}  // namespace

executor_actor spawn_executor(caf::actor_system& sys, std::shared_ptr<step_executor> exec,
                              bool detached, stage_input_actor next, uint64_t epoch,
                              std::shared_ptr<stage_heartbeat> heartbeat) {
  if (detached)
    return sys.spawn<caf::detached>(executor_fn, std::move(exec), std::move(next), epoch,
                                    std::move(heartbeat));
  return sys.spawn(executor_fn, std::move(exec), std::move(next), epoch, std::move(heartbeat));
}

}  // namespace troupe::actors
