#include "actors/executor_actor.hpp"

#include <caf/all.hpp>

namespace troupe::actors {

namespace {

struct executor_state {
  std::shared_ptr<step_executor> exec;
  static inline const char* name = "executor";
};

executor_actor::behavior_type executor_fn(
    executor_actor::stateful_pointer<executor_state> self, std::shared_ptr<step_executor> exec) {
  self->state.exec = std::move(exec);
  return {
      [=](step_atom, const step_plan& plan) -> caf::result<step_result> {
        auto r = self->state.exec->run_step(plan);
        if (!r) {
          // The device state (K/V pages) can no longer be trusted: die, and let the supervisor
          // start a fresh executor while the scheduler replays.
          auto err = caf::make_error(caf::sec::runtime_error, r.message());
          self->quit(err);
          return err;
        }
        return std::move(r).value();
      },
  };
}

}  // namespace

executor_actor spawn_executor(caf::actor_system& sys, std::shared_ptr<step_executor> exec,
                              bool detached) {
  if (detached) return sys.spawn<caf::detached>(executor_fn, std::move(exec));
  return sys.spawn(executor_fn, std::move(exec));
}

}  // namespace troupe::actors
